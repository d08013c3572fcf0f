package policy

import "time"

// Inbound configures the route that accepts customer mail and delivers it,
// tokenized, to the CRM intake.
type Inbound struct {
	Listen     string     `yaml:"listen"`   // host:port
	Hostname   string     `yaml:"hostname"` // greeting and EHLO name; empty: the machine's host name
	TLS        ServerTLS  `yaml:"tls"`
	Downstream Downstream `yaml:"downstream"` // the CRM intake
	AuthCheck  AuthCheck  `yaml:"auth_check"`
	// MaxConnections and MaxConnectionsPerIP limit this route's own open
	// client connections; zero inherits smtp.max_connections and
	// smtp.max_connections_per_ip (InboundConnLimits).
	MaxConnections      int `yaml:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// NewTokenRate bounds the tokens customers' mail creates per minute.
	NewTokenRate NewTokenRate `yaml:"new_token_rate"`
	// TrustedRelays and Postmaster: config_relay.go.
	TrustedRelays []string `yaml:"trusted_relays"`
	Postmaster    string   `yaml:"postmaster"`
}

// NewTokenRate is how many new tokens the inbound route creates per
// minute, per client (an IPv4 address or an IPv6 /64) and over all
// clients; a message that would exceed either gets 451 4.7.0 and creates
// nothing. Known addresses never count.
type NewTokenRate struct {
	PerIP int `yaml:"per_ip"`
	Total int `yaml:"total"`
}

// Outbound configures the route that accepts the CRM's replies and relays
// them, detokenized, through the company smarthost.
type Outbound struct {
	Listen         string     `yaml:"listen"`
	Hostname       string     `yaml:"hostname"`
	TLS            ServerTLS  `yaml:"tls"`
	AuthUsers      []AuthUser `yaml:"auth_users"`
	ClientNetworks []string   `yaml:"client_networks"` // CIDR prefixes allowed without AUTH
	AllowedDomains []string   `yaml:"allowed_domains"` // non-token recipients allowed only here
	RewriteFrom    string     `yaml:"rewrite_from"`    // when set, replaces the CRM's From
	Downstream     Downstream `yaml:"downstream"`      // the company smarthost
	DKIM           DKIM       `yaml:"dkim"`
	// SPFNetworks and SPFIncludes are the smarthost's addresses and SPF
	// includes, for the SPF records `proxy dns` prints.
	SPFNetworks []string `yaml:"spf_networks"`
	SPFIncludes []string `yaml:"spf_includes"`
	// MaxConnections and MaxConnectionsPerIP: as inbound's, counted apart
	// from inbound's so a flood of customer connections never refuses the
	// CRM (DESIGN.md invariant 5).
	MaxConnections      int `yaml:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
}

// ConnLimits are one route's limits on open client connections: in total
// and from one client IP. Each route counts its own, so one route's
// clients can never starve the other's. Zero: the smtp section's value.
type ConnLimits struct {
	MaxConnections      int
	MaxConnectionsPerIP int
}

// orDefault fills l's zero fields from the smtp section's defaults.
func (l ConnLimits) orDefault(s SMTP) ConnLimits {
	if l.MaxConnections == 0 {
		l.MaxConnections = s.MaxConnections
	}
	if l.MaxConnectionsPerIP == 0 {
		l.MaxConnectionsPerIP = s.MaxConnectionsPerIP
	}
	return l
}

// InboundConnLimits are the inbound route's effective connection limits.
func (c *Config) InboundConnLimits() ConnLimits {
	return ConnLimits{c.Inbound.MaxConnections, c.Inbound.MaxConnectionsPerIP}.orDefault(c.SMTP)
}

// OutboundConnLimits are the outbound route's effective connection limits.
func (c *Config) OutboundConnLimits() ConnLimits {
	return ConnLimits{c.Outbound.MaxConnections, c.Outbound.MaxConnectionsPerIP}.orDefault(c.SMTP)
}

// ServerTLS names a listener's certificate. Both empty: a self-signed
// certificate is generated into data_dir on first start.
type ServerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Downstream is the SMTP server a route relays to: one address, an
// ordered list (failover) or a domain's MX hosts (config_downstream.go).
type Downstream struct {
	Address    string   `yaml:"address"`     // host:port
	Addresses  []string `yaml:"addresses"`   // host:port each, tried in order
	MX         string   `yaml:"mx"`          // a domain: its MX hosts by preference
	MXPort     int      `yaml:"mx_port"`     // with mx; default 25
	TLS        string   `yaml:"tls"`         // verify | insecure
	CAFile     string   `yaml:"ca_file"`     // PEM; empty: the system roots
	ServerName string   `yaml:"server_name"` // empty: the host of address
	// AllowInsecureRemote permits tls: insecure to a non-loopback address:
	// plain SMTP across a network exposes every message, so it is never
	// implied.
	AllowInsecureRemote bool `yaml:"allow_insecure_remote"`
	// ClientCertFile and ClientKeyFile: the certificate presented to the
	// hop (a certificate-identified connector); re-read on SIGHUP.
	ClientCertFile string         `yaml:"client_cert_file"`
	ClientKeyFile  string         `yaml:"client_key_file"`
	Auth           DownstreamAuth `yaml:"auth"`
	// EightBit: an 8-bit body to a hop without 8BITMIME is converted to
	// quoted-printable ("convert", the default) or refused ("refuse").
	EightBit string `yaml:"eight_bit"`
}

// AuthUser is a SMTP AUTH account of the outbound route. Only a bcrypt or
// argon2id hash is stored, never the password.
type AuthUser struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"`
}

// Admin configures the HTTP admin listener (health, metrics).
type Admin struct {
	Listen string   `yaml:"listen"`
	TLS    AdminTLS `yaml:"tls"`
}

// SMTP holds the limits and timeouts both routes share. MaxConnections and
// MaxConnectionsPerIP are the defaults of each route's own limits
// (ConnLimits): each route counts its connections apart. go-smtp's zero
// values mean unlimited, so every one of them is set and positive.
type SMTP struct {
	MaxMessageBytes     int64         `yaml:"max_message_bytes"`
	MaxRecipients       int           `yaml:"max_recipients"`
	MaxLineLength       int           `yaml:"max_line_length"`
	ReadTimeout         time.Duration `yaml:"read_timeout"`
	WriteTimeout        time.Duration `yaml:"write_timeout"`
	DataTimeout         time.Duration `yaml:"data_timeout"`
	MaxConnections      int           `yaml:"max_connections"`
	MaxConnectionsPerIP int           `yaml:"max_connections_per_ip"`
	DownstreamPoolSize  int           `yaml:"downstream_pool_size"`
	DownstreamTimeout   time.Duration `yaml:"downstream_timeout"`
	// MaxSessionDuration bounds a connection's whole life: read_timeout
	// bounds each command, but a client sending one every few seconds
	// would otherwise hold a connection (and a max_connections slot) for
	// ever. A DATA transfer under way is not cut; the next command is.
	MaxSessionDuration time.Duration `yaml:"max_session_duration"`
	// ShutdownTimeout is how long SIGTERM waits for transactions under
	// way before aborting them (their downstream never gets the dot).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// RefusalCode is the reply to leak-guard and unscannable refusals:
	// 554 (permanent) or 451 (the sender retries).
	RefusalCode int `yaml:"refusal_code"`
}

// defaultRoutes are the route defaults of Defaults(). Downstream TLS is
// verify: the quickstart relaxes it to insecure on loopback only.
func defaultRoutes(c *Config) {
	c.Inbound = Inbound{Listen: "127.0.0.1:2525",
		Downstream:   Downstream{Address: "127.0.0.1:2526", TLS: "verify", EightBit: "convert"},
		NewTokenRate: NewTokenRate{PerIP: 120, Total: 2000}}
	c.Outbound = Outbound{Listen: "127.0.0.1:2587", ClientNetworks: []string{"127.0.0.0/8"},
		Downstream: Downstream{Address: "127.0.0.1:2527", TLS: "verify", EightBit: "convert"}}
	c.Admin = Admin{Listen: "127.0.0.1:8025"}
	c.SMTP = SMTP{MaxMessageBytes: 50 << 20, MaxRecipients: 100, MaxLineLength: 2000,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute, DataTimeout: 5 * time.Minute, MaxSessionDuration: 10 * time.Minute,
		MaxConnections: 200, MaxConnectionsPerIP: 20, DownstreamPoolSize: 8,
		DownstreamTimeout: 30 * time.Second, ShutdownTimeout: 30 * time.Second, RefusalCode: 554}
}
