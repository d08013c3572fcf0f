// Package policy holds tokenproxy's configuration: its schema, loading,
// validation, and the decisions it implies. Of the project's packages it
// imports only the leaf helper internal/orgdomain, for the DKIM alignment
// rule (one implementation of RFC 7489 §3.1 for the check at load and, in
// mailauth, at run time).
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrConfig is the sentinel of every configuration error.
var ErrConfig = errors.New("config")

// FieldError names the field that is wrong and why.
type FieldError struct {
	Source string // file name, or "embedded quickstart"
	Field  string // YAML path, e.g. tokens.length
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("config %s: %s: %s", e.Source, e.Field, e.Reason)
}

func (e *FieldError) Is(target error) bool { return target == ErrConfig }

// Config is the whole configuration file.
type Config struct {
	DataDir         string     `yaml:"data_dir"`
	RelayDomain     string     `yaml:"relay_domain"`
	InternalDomains []string   `yaml:"internal_domains"`
	Mailboxes       []Mailbox  `yaml:"mailboxes"`
	Tokens          Tokens     `yaml:"tokens"`
	Rewrite         Rewrite    `yaml:"rewrite"`
	Keys            Keys       `yaml:"keys"`
	Log             Log        `yaml:"log"`
	Inbound         Inbound    `yaml:"inbound"`
	Outbound        Outbound   `yaml:"outbound"`
	Admin           Admin      `yaml:"admin"`
	SMTP            SMTP       `yaml:"smtp"`
	DNS             DNS        `yaml:"dns"`
	Audit           Audit      `yaml:"audit"`
	Compliance      Compliance `yaml:"compliance"`
	Retention       Retention  `yaml:"retention"`
	Store           Store      `yaml:"store"`

	source string
}

// Mailbox maps a public company address to its CRM intake address.
type Mailbox struct {
	Public string `yaml:"public"`
	CRM    string `yaml:"crm"`
}

// Tokens configures token derivation.
type Tokens struct {
	Tenant        string `yaml:"tenant"`
	Prefix        string `yaml:"prefix"`
	Length        int    `yaml:"length"`
	LocalPartCase string `yaml:"local_part_case"`
}

// Rewrite configures the message rewriter.
type Rewrite struct {
	DisplayNames string      `yaml:"display_names"` // keep | pseudonymize | drop
	Unscannable  string      `yaml:"unscannable"`   // reject | headers-only
	Limits       Limits      `yaml:"limits"`
	Attachments  Attachments `yaml:"attachments"` // config_attachments.go
}

// Limits bound the messages the rewriter accepts.
type Limits struct {
	MaxMessageBytes  int64 `yaml:"max_message_bytes"`
	MaxHeaderBytes   int   `yaml:"max_header_bytes"`
	MaxMIMEDepth     int   `yaml:"max_mime_depth"`
	MaxParts         int   `yaml:"max_parts"`
	MaxTextPartBytes int   `yaml:"max_text_part_bytes"`
	// MaxNewTokens bounds the tokens one inbound message may create
	// (new customer addresses, the envelope sender's included); known
	// addresses never count. Over it: 552 5.7.0.
	MaxNewTokens int `yaml:"max_new_tokens"`
	// MaxHeldBytes bounds the parts a route's messages hold whole at once
	// (beyond the first 256 KiB of each); over it 452 4.3.1, or 552 5.3.4
	// for a message that alone needs more.
	MaxHeldBytes int64 `yaml:"max_held_bytes"`
}

// Keys selects and configures the key provider.
type Keys struct {
	Provider string    `yaml:"provider"`
	Local    LocalKeys `yaml:"local"`
	Vault    VaultKeys `yaml:"vault"`
}

// LocalKeys configures the local keyring.
type LocalKeys struct {
	KeyFile string `yaml:"key_file"`
}

// VaultKeys configures Vault transit.
type VaultKeys struct {
	Address       string        `yaml:"address"`
	Mount         string        `yaml:"mount"`
	Key           string        `yaml:"key"`
	CACert        string        `yaml:"ca_cert"`
	TLSServerName string        `yaml:"tls_server_name"`
	Timeout       time.Duration `yaml:"timeout"`
	Auth          VaultAuth     `yaml:"auth"`
}

// VaultAuth selects how the proxy logs in to Vault.
type VaultAuth struct {
	Method    string  `yaml:"method"`
	TokenFile string  `yaml:"token_file"`
	AppRole   AppRole `yaml:"approle"`
}

// AppRole holds AppRole credentials: role_id inline or in a file, the
// secret_id always in a file (systemd LoadCredential=).
type AppRole struct {
	Mount           string `yaml:"mount"`
	RoleID          string `yaml:"role_id"`
	RoleIDFile      string `yaml:"role_id_file"`
	SecretIDFile    string `yaml:"secret_id_file"`
	SecretIDWrapped bool   `yaml:"secret_id_wrapped"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Defaults returns the configuration every file starts from: a field left
// out of a file keeps the value shown in deploy/examples/quickstart.yaml.
func Defaults() Config {
	c := Config{
		DataDir: "./data",
		Tokens:  Tokens{Tenant: "default", Prefix: "t", Length: 16, LocalPartCase: "fold"},
		Rewrite: Rewrite{DisplayNames: "pseudonymize", Unscannable: "reject", Limits: Limits{
			MaxMessageBytes: 50 << 20, MaxHeaderBytes: 256 << 10, MaxMIMEDepth: 20, MaxParts: 1000,
			MaxTextPartBytes: 16 << 20, MaxNewTokens: 50, MaxHeldBytes: 128 << 20}},
		Keys: Keys{
			Provider: "local",
			Vault: VaultKeys{Mount: "transit", Key: "tokenproxy", Timeout: 10 * time.Second,
				Auth: VaultAuth{Method: "token", AppRole: AppRole{Mount: "approle"}}},
		},
		Log: Log{Level: "info", Format: "text"},
	}
	defaultRoutes(&c)
	defaultMailAuth(&c)
	defaultCompliance(&c)
	defaultStore(&c)
	defaultAttachments(&c)
	return c
}

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return Parse(data, path)
}

// Parse decodes and validates a configuration. Unknown fields are errors:
// a misspelt setting silently ignored is a setting silently defaulted.
func Parse(data []byte, source string) (*Config, error) {
	c := Defaults()
	c.source = source
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, decodeError(err, data, source)
	}
	c.dropDefaultDownstreamAddress(data)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Source names where the configuration came from.
func (c *Config) Source() string { return c.source }

// Redacted returns the configuration as YAML with secrets hidden.
func (c *Config) Redacted() string {
	r := *c
	if r.Keys.Vault.Auth.AppRole.RoleID != "" {
		r.Keys.Vault.Auth.AppRole.RoleID = "(redacted)"
	}
	// A copy: the slice shares its array with c.
	r.Outbound.AuthUsers = append([]AuthUser(nil), c.Outbound.AuthUsers...)
	for i := range r.Outbound.AuthUsers {
		r.Outbound.AuthUsers[i].PasswordHash = "(redacted)"
	}
	r.Compliance.Principals = append([]Principal(nil), c.Compliance.Principals...)
	for i := range r.Compliance.Principals {
		if r.Compliance.Principals[i].TokenSHA256 != "" {
			r.Compliance.Principals[i].TokenSHA256 = "(redacted)"
		}
	}
	out, err := yaml.Marshal(&r)
	if err != nil {
		return fmt.Sprintf("# cannot render configuration: %v\n", err)
	}
	return string(out)
}
