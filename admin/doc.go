// Package admin is the admin listener: liveness (/healthz), readiness
// (/readyz, from a function the caller passes), Prometheus metrics
// (/metrics, from the registry the caller passes), and whatever the
// caller mounts with Server.Handle: the compliance API, which needs
// HTTPS (Server.ServeTLS). It knows nothing of the routes or the token
// map; the caller wires them in.
//
// The listener serves probes and scrapes, so its limits are small and its
// answers terse: a readiness failure's cause goes to the log, never to the
// client, as it may name an address or a secret's path.
package admin
