package main

import (
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/smtp/downstream"
)

// downstreamDelivery adds to c what issue 16 added to a downstream: the
// host list or the MX domain (looked up through the same resolver as
// mail authentication, inbound.auth_check.dns_server), the login with its
// password read now (from a file or a systemd credential; never logged),
// the client certificate, the 8-bit policy and the per-host metrics.
func (d routeDeps) downstreamDelivery(c *downstream.Config, ds policy.Downstream, route string) error {
	c.Addresses, c.MX, c.MXPort, c.EightBit = ds.Addresses, ds.MX, ds.MXPort, ds.EightBit
	c.ClientCertFile, c.ClientKeyFile = ds.ClientCertFile, ds.ClientKeyFile
	if ds.MX != "" {
		c.Resolver = resolver(d.cfg)
	}
	if a := ds.Auth; a.Enabled() {
		pw, err := downstream.ReadPassword(a.PasswordFile, a.PasswordCredential)
		if err != nil {
			return err
		}
		c.Auth = &downstream.Auth{Username: a.Username, Password: pw}
	}
	c.Observe = d.metrics.DownstreamObserver(route)
	return nil
}
