package policy

import "time"

// AdminTLS makes the admin listener serve HTTPS. The compliance API is
// served only over it.
type AdminTLS struct {
	// CertFile and KeyFile: empty means a self-signed certificate
	// generated into data_dir/tls/admin.crt on first start.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile verifies client certificates; principals with
	// client_cert_cn or client_cert_sha256 need it.
	ClientCAFile string `yaml:"client_ca_file"`
}

// Audit configures the audit trail (DESIGN.md "Compliance and audit").
type Audit struct {
	Path               string        `yaml:"path"` // empty: data_dir/audit.jsonl
	Sync               bool          `yaml:"sync"` // fdatasync before an audited operation goes on
	CheckpointEvery    int           `yaml:"checkpoint_every"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// Key is the Vault transit key (type ed25519) that signs
	// checkpoints when keys.provider is vault; the local keyring derives
	// its own signing key otherwise.
	Key    string      `yaml:"key"`
	Syslog AuditSyslog `yaml:"syslog"`
}

// AuditSyslog forwards every audit record to syslog, for a SIEM.
type AuditSyslog struct {
	Network string `yaml:"network"` // "" (off), udp, tcp, unix, unixgram
	Address string `yaml:"address"`
	Tag     string `yaml:"tag"`
}

// Roles of the compliance API.
const (
	RoleAuditor  = "auditor"  // read and verify the audit trail
	RoleOfficer  = "officer"  // resolve, subject access, export, erase
	RoleOperator = "operator" // online backup
)

// Compliance configures the compliance API on the admin listener.
type Compliance struct {
	Enabled    bool        `yaml:"enabled"`
	Principals []Principal `yaml:"principals"`
	// MaxResolutionsPerHour bounds token resolutions per principal in
	// any sliding hour: a bulk de-pseudonymization is refused and
	// audited.
	MaxResolutionsPerHour int `yaml:"max_resolutions_per_hour"`
	// AfterErasure decides a new inbound message from an erased
	// address: new_token (it is a new subject) or refuse (550; the
	// tombstone keeps the address's keyed hash as a suppression entry).
	AfterErasure string `yaml:"after_erasure"`
	// Console is the web console for the same principals (/console/).
	Console Console `yaml:"console"`
}

// Principal is a person or system allowed to call the compliance API,
// by bearer token or by client certificate.
type Principal struct {
	Name  string   `yaml:"name"`
	Roles []string `yaml:"roles"`
	// TokenSHA256 is the hex SHA-256 of the bearer token (`proxy
	// compliance new-token` prints both); the token is 256 random bits,
	// so a fast hash is enough.
	TokenSHA256      string `yaml:"token_sha256"`
	ClientCertCN     string `yaml:"client_cert_cn"`
	ClientCertSHA256 string `yaml:"client_cert_sha256"` // hex SHA-256 of the DER certificate
}

// Retention expires tokens nobody used for a while.
type Retention struct {
	TokenMaxIdle  time.Duration `yaml:"token_max_idle"` // 0: keep forever
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

func defaultCompliance(c *Config) {
	c.Audit = Audit{Sync: true, CheckpointEvery: 10000, CheckpointInterval: time.Minute,
		Key: "tokenproxy-audit", Syslog: AuditSyslog{Tag: "tokenproxy-audit"}}
	c.Compliance = Compliance{MaxResolutionsPerHour: 50, AfterErasure: "new_token", Console: defaultConsole()}
	c.Retention = Retention{SweepInterval: time.Hour}
}
