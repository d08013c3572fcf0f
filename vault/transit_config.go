package vault

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// TransitConfig configures the Vault transit KEK. Zero values take the
// documented defaults.
type TransitConfig struct {
	// Address is Vault's URL, e.g. https://vault.example:8200. Required.
	Address string
	// Mount is the path the transit engine is mounted at. Default "transit".
	Mount string
	// Key is the transit key name. Default "tokenproxy".
	Key string
	// CACert is a PEM file of the CA that signed Vault's TLS certificate.
	// Optional: the system roots are used without it.
	CACert string
	// TLSServerName is the name to verify Vault's certificate against, when
	// it differs from Address's host. Optional.
	TLSServerName string
	// Timeout bounds each request to Vault, retries included. Default 10s.
	Timeout time.Duration

	// Authentication: exactly one of a token (Token, TokenFile, or the
	// VAULT_TOKEN environment variable when both are empty) or AppRole.
	Token     string
	TokenFile string
	AppRole   *AppRoleConfig
}

// AppRoleConfig configures AppRole login.
type AppRoleConfig struct {
	// Mount is the path the AppRole auth method is mounted at. Default
	// "approle".
	Mount string
	// RoleID or RoleIDFile: exactly one.
	RoleID     string
	RoleIDFile string
	// SecretIDFile holds the secret_id. Required.
	SecretIDFile string
	// SecretIDWrapped says SecretIDFile holds a response-wrapping token for
	// the secret_id. It is unwrapped once at start (wrapping tokens are
	// single use) and the secret_id is kept in memory only, for re-login.
	SecretIDWrapped bool
}

// Transit defaults.
const (
	DefaultTransitMount   = "transit"
	DefaultTransitKey     = "tokenproxy"
	DefaultAppRoleMount   = "approle"
	DefaultTransitTimeout = 10 * time.Second
)

// TransitOption adjusts NewTransit.
type TransitOption func(*transitOptions)

type transitOptions struct {
	transport http.RoundTripper
	logger    *slog.Logger
	metrics   *TransitMetrics
}

// WithHTTPTransport sends every request to Vault through rt: the test seam
// for counting requests. An *http.Transport is cloned and gets the TLS
// settings of the config; any other RoundTripper is used as it is and then
// cannot honour CACert or TLSServerName, so NewTransit refuses them together.
func WithHTTPTransport(rt http.RoundTripper) TransitOption {
	return func(o *transitOptions) { o.transport = rt }
}

// WithLogger sets the logger for login and renewal events. Default
// slog.Default().
func WithLogger(l *slog.Logger) TransitOption {
	return func(o *transitOptions) { o.logger = l }
}

// withDefaults validates cfg and fills in defaults. Errors name the field,
// so a bad configuration fails at start instead of on the first message.
func (cfg TransitConfig) withDefaults() (TransitConfig, error) {
	if err := checkAddress(cfg.Address); err != nil {
		return cfg, err
	}
	cfg.Mount = defaultString(strings.Trim(cfg.Mount, "/"), DefaultTransitMount)
	cfg.Key = defaultString(cfg.Key, DefaultTransitKey)
	if strings.Contains(cfg.Key, "/") {
		return cfg, fmt.Errorf("vault transit config: Key %q: a transit key name has no slash", cfg.Key)
	}
	if cfg.Timeout < 0 {
		return cfg, fmt.Errorf("vault transit config: Timeout %s is negative", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTransitTimeout
	}
	if cfg.CACert != "" && !strings.HasPrefix(cfg.Address, "https://") {
		return cfg, fmt.Errorf("vault transit config: CACert is set but Address %s is not https", cfg.Address)
	}
	if err := cfg.checkAuth(); err != nil {
		return cfg, err
	}
	if cfg.AppRole != nil {
		ar := *cfg.AppRole
		ar.Mount = defaultString(strings.Trim(ar.Mount, "/"), DefaultAppRoleMount)
		cfg.AppRole = &ar
	}
	return cfg, nil
}

func checkAddress(addr string) error {
	if addr == "" {
		return errors.New("vault transit config: Address is required (e.g. https://vault.example:8200)")
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("vault transit config: Address %q: want http(s)://host[:port]", addr)
	}
	return nil
}

func (cfg TransitConfig) checkAuth() error {
	if cfg.Token != "" && cfg.TokenFile != "" {
		return errors.New("vault transit config: Token and TokenFile are both set; use one")
	}
	if cfg.AppRole == nil {
		if cfg.Token == "" && cfg.TokenFile == "" && os.Getenv(api.EnvVaultToken) == "" {
			return errors.New("vault transit config: no credentials: set Token, TokenFile or AppRole (or VAULT_TOKEN in the environment)")
		}
		return nil
	}
	if cfg.Token != "" || cfg.TokenFile != "" {
		return errors.New("vault transit config: AppRole and a token (Token or TokenFile) are both set; use one")
	}
	ar := cfg.AppRole
	if (ar.RoleID == "") == (ar.RoleIDFile == "") {
		return errors.New("vault transit config: AppRole needs exactly one of RoleID and RoleIDFile")
	}
	if ar.SecretIDFile == "" {
		return errors.New("vault transit config: AppRole.SecretIDFile is required")
	}
	return nil
}

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// isLoopback reports whether a URL's host is a loopback address, where
// plain http does not cross a network.
func isLoopback(addr string) bool {
	u, err := url.Parse(addr)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// newAPIClient builds the Vault client. The transport and address are set
// explicitly so that VAULT_ADDR, VAULT_AGENT_ADDR, VAULT_SKIP_VERIFY and
// similar environment variables cannot silently redirect the proxy or turn
// off certificate checks.
func newAPIClient(cfg TransitConfig, rt http.RoundTripper) (*api.Client, error) {
	conf := api.DefaultConfig()
	if conf.Error != nil {
		return nil, fmt.Errorf("vault client: %w", conf.Error)
	}
	conf.Address = cfg.Address
	conf.AgentAddress = ""
	conf.SRVLookup = false
	conf.Timeout = cfg.Timeout
	conf.MaxRetries = 2
	conf.CheckRetry = checkRetry // notes why an attempt failed (transit_attempts.go)
	httpClient, tlsRoundTripper, err := newHTTPClient(cfg, rt)
	if err != nil {
		return nil, err
	}
	conf.HttpClient = httpClient
	if tlsRoundTripper {
		err := conf.ConfigureTLS(&api.TLSConfig{CACert: cfg.CACert, TLSServerName: cfg.TLSServerName})
		if err != nil {
			return nil, fmt.Errorf("vault transit config: CACert %s: %w", cfg.CACert, err)
		}
	}
	c, err := api.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	return c, nil
}

// newHTTPClient returns the client's HTTP client, and whether its transport
// is ours to configure TLS on.
func newHTTPClient(cfg TransitConfig, rt http.RoundTripper) (*http.Client, bool, error) {
	var tr *http.Transport
	switch rt := rt.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = rt.Clone()
	default:
		if cfg.CACert != "" || cfg.TLSServerName != "" {
			return nil, false, fmt.Errorf("vault transit: a %T transport cannot take CACert or TLSServerName; pass an *http.Transport", rt)
		}
		return &http.Client{Transport: rt, CheckRedirect: noRedirect}, false, nil
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	if tr.TLSClientConfig.MinVersion < tls.VersionTLS12 {
		tr.TLSClientConfig.MinVersion = tls.VersionTLS12
	}
	return &http.Client{Transport: tr, CheckRedirect: noRedirect}, true, nil
}

// noRedirect leaves redirects to the api client, which follows one and
// refuses a downgrade from https to http.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
