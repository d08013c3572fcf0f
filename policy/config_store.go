package policy

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Store selects where the token map lives: one bbolt file (one node, the
// default) or etcd (several nodes sharing one map).
type Store struct {
	Backend string    `yaml:"backend"` // bbolt | etcd
	Etcd    EtcdStore `yaml:"etcd"`
}

// EtcdStore configures the etcd backend (DESIGN.md, Store).
type EtcdStore struct {
	Endpoints      []string      `yaml:"endpoints"`
	Prefix         string        `yaml:"prefix"`
	NodeID         string        `yaml:"node_id"`
	TLS            EtcdTLS       `yaml:"tls"`
	Username       string        `yaml:"username"`
	PasswordFile   string        `yaml:"password_file"`
	DialTimeout    time.Duration `yaml:"dial_timeout"`
	RequestTimeout time.Duration `yaml:"request_timeout"`
	Freshness      time.Duration `yaml:"freshness"`
	// KnownSenderGrace is how long after the node lost freshness known
	// senders are still tokenized from its cache; 0: not at all.
	KnownSenderGrace time.Duration `yaml:"known_sender_grace"`
	// AdminURL is where the other nodes reach this node's admin listener
	// to read its audit trail (a subject export or an audit listing on
	// any node merges every node's trail); empty: https://<admin.listen>
	// when that names a host.
	AdminURL string `yaml:"admin_url"`
}

// EtcdTLS names the PEM files of the mTLS client connection.
type EtcdTLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

func defaultStore(c *Config) {
	c.Store = Store{Backend: "bbolt", Etcd: EtcdStore{Prefix: "tp/", DialTimeout: 5 * time.Second,
		RequestTimeout: time.Second, Freshness: time.Second, KnownSenderGrace: 30 * time.Second}}
}

func (c *Config) validateStore() error {
	switch c.Store.Backend {
	case "bbolt":
		return nil
	case "etcd":
		return c.validateEtcd()
	}
	return c.fail("store.backend", "must be bbolt or etcd, got %q", c.Store.Backend)
}

func (c *Config) validateEtcd() error {
	e := c.Store.Etcd
	if len(e.Endpoints) == 0 {
		return c.fail("store.etcd.endpoints", "list the client URLs of the etcd members (backend etcd)")
	}
	for i, ep := range e.Endpoints {
		if err := c.checkEndpoint(fmt.Sprintf("store.etcd.endpoints[%d]", i), ep, e.TLS.CAFile != ""); err != nil {
			return err
		}
	}
	if !strings.HasSuffix(e.Prefix, "/") || strings.HasPrefix(e.Prefix, "/") {
		return c.fail("store.etcd.prefix", "must end with / and not start with one, got %q", e.Prefix)
	}
	if strings.Contains(e.NodeID, "/") {
		return c.fail("store.etcd.node_id", "must not contain /, got %q", e.NodeID)
	}
	if (e.TLS.CertFile == "") != (e.TLS.KeyFile == "") {
		return c.fail("store.etcd.tls", "set both cert_file and key_file, or neither")
	}
	if (e.Username == "") != (e.PasswordFile == "") {
		return c.fail("store.etcd.username", "set username and password_file together (or neither: the client certificate's CN)")
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"dial_timeout", e.DialTimeout}, {"request_timeout", e.RequestTimeout}, {"freshness", e.Freshness}} {
		if d.v <= 0 {
			return c.fail("store.etcd."+d.field, "must be positive, got %s", d.v)
		}
	}
	if e.KnownSenderGrace < 0 {
		return c.fail("store.etcd.known_sender_grace", "must be 0 (no grace) or positive, got %s", e.KnownSenderGrace)
	}
	if e.AdminURL != "" {
		u, err := url.Parse(e.AdminURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			return c.fail("store.etcd.admin_url", "must be an https URL like https://10.0.0.11:9443 (the compliance API is HTTPS only), got %q", e.AdminURL)
		}
	}
	return nil
}

// checkEndpoint accepts https URLs when a CA is set, and plain http only
// to loopback: the map's records are sealed, but the session between
// node and cluster carries RBAC credentials and must not be readable.
func (c *Config) checkEndpoint(field, ep string, tls bool) error {
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.Path != "" {
		return c.fail(field, "must be a URL like https://10.0.0.11:2379, got %q", ep)
	}
	if u.Scheme == "https" && !tls {
		return c.fail(field, "https needs store.etcd.tls.ca_file")
	}
	if u.Scheme == "http" {
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return c.fail(field, "plain http is allowed only to loopback; use https with store.etcd.tls")
		}
	}
	return nil
}
