// Package compliance owns what compliance officers, auditors and
// operators do with the token map and the audit trail: resolving a token,
// subject access (lookup, export; GDPR Art. 15), erasure (Art. 17),
// reading and verifying the trail, online backup, and the retention sweep
// that expires idle tokens. It serves them as an HTTPS API (Register)
// on the admin listener, gives the CLI its client (Client), and gives the
// web console (package console) the same acts, exported in console.go.
//
// It also holds MapAudit, the token map's tokenize.Auditor that
// moves token-creation records from the map's outbox into the trail, so
// that the audit package depends on nothing of ours.
//
// # Roles
//
// A principal (configured, identified by bearer token or verified client
// certificate) holds roles: policy.RoleAuditor reads and verifies the
// trail, policy.RoleOfficer resolves, looks up, exports and erases,
// policy.RoleOperator takes online backups. An auditor cannot resolve. A
// bulk guard refuses more than compliance.max_resolutions_per_hour
// resolutions by one principal in any sliding hour. Reload swaps the
// principals and the limit whole, so a revoked token stops at the next
// request.
//
// # Audit first
//
// Every call, refused ones included, is an audit record naming the actor,
// the stated reason (required, without an address) and the outcome, never
// an address. The record is written before data leaves (resolve, lookup,
// export, backup) or before the change (erase, expiry); when it cannot be
// written the operation does not happen and the API answers 503.
//
// # Across a cluster
//
// On a cluster node (Options.Cluster) a subject export and an audit
// listing merge every node's trail (merge.go): each node's records in its
// chain's order, the map's changes in etcd revision order, the rest by
// time. The other nodes' records are read through their admin listeners
// (peer.go), authenticated by a token each node publishes in the store
// with its URL and its certificate's fingerprint (cluster.go); the read is
// audited on the node read. A node that cannot be read is named in the
// result, never silently left out. The console's paged trail view reads
// this node's trail only.
//
// # The contract
//
// The service reaches the token map only through TokenMap, and the map's
// store only through Backuper; *tokenize.Map and *boltstore.Store satisfy
// them (cmd/proxy checks it at compile time).
package compliance

import (
	"context"
	"io"
	"time"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// TokenMap is what the service uses of the token map: exactly the calls
// it makes.
type TokenMap interface {
	// Inspect returns a token's entry without counting a use (no
	// last-seen update); tokenize.ErrUnknownToken when there is none.
	Inspect(ctx context.Context, token string) (tokenize.Entry, error)
	// Lookup returns the token local parts held for an address.
	Lookup(ctx context.Context, address string) ([]string, error)
	// EraseSubject turns an address's tokens into tombstones and returns
	// their local parts; tokenize.ErrScrubBusy means they are erased but
	// the free pages are not wiped yet.
	EraseSubject(ctx context.Context, address string) ([]string, error)
	// Expire erases the tokens last used before before, batch by batch,
	// each batch's token.expired records committed with it through the
	// map's outbox (nothing expires while the trail cannot take them),
	// and returns how many expired.
	Expire(ctx context.Context, before time.Time, detail map[string]string) (int, error)
	// SyncAudit returns once the creation records of every token
	// committed so far are in the trail.
	SyncAudit(ctx context.Context) error
	// Format makes token addresses of local parts.
	Format() tokenize.Format
}

// Backuper writes a consistent copy of the map's database while it
// serves.
type Backuper interface {
	Backup(w io.Writer) (int64, error)
}
