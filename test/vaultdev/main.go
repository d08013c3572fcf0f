// Command vaultdev runs a real, in-memory HashiCorp Vault server for
// integration tests.
//
// Vault's own CLI (v1.21.3) does not compile against any published
// github.com/hashicorp/vault/sdk, but its core does, so this program wires the
// core up directly: in-memory storage, a single Shamir key share, and only the
// plugins our tests need (transit, kv, approle, file audit). It lives in its
// own module so Vault's large dependency graph stays out of the project's
// go.mod.
//
// Once the server is ready it prints exactly two lines on stdout:
//
//	VAULT_ADDR=http://127.0.0.1:PORT
//	VAULT_TOKEN=<root token>
//
// and serves until SIGINT or SIGTERM (or, with -exit-with-stdin, until stdin
// is closed). transit/ and auth/approle are already
// mounted at that point, like on an operator's Vault.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/audit"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/logical/transit"
	"github.com/hashicorp/vault/helper/namespace"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/internalshared/configutil"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical/inmem"
	"github.com/hashicorp/vault/vault"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback `address` to listen on")
	tlsDir := flag.String("tls-dir", "", "if set, write a self-signed ca.pem, cert.pem and key.pem to `dir` and serve HTTPS")
	tokenFile := flag.String("root-token-file", "", "if set, also write the root token to `file`")
	logLevel := flag.String("log-level", "info", "Vault log `level` (written to stderr)")
	exitWithStdin := flag.Bool("exit-with-stdin", false, "also stop when stdin reaches EOF")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *exitWithStdin {
		// A parent that keeps our stdin pipe open gets us stopped even if it
		// dies without signalling (e.g. a go test timeout), portably.
		go func() {
			io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	if err := run(ctx, *listen, *tlsDir, *tokenFile, *logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "vaultdev:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, tlsDir, tokenFile, logLevel string) error {
	// The server is unsealed and prints a root token, so never expose it
	// beyond this machine.
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-listen %s: only loopback addresses are allowed", listen)
	}
	// Bind before building the core so the port is known and connections
	// that arrive early just queue until we start serving.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	defer ln.Close()

	scheme := "http"
	if tlsDir != "" {
		cert, err := writeTLSFiles(tlsDir)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
		})
		scheme = "https"
	}

	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "vault",
		Level:  hclog.LevelFromString(logLevel),
		Output: os.Stderr,
	})
	core, rootToken, err := newCore(logger)
	if err != nil {
		return err
	}
	defer core.Shutdown()

	srv := &http.Server{
		Handler: vaulthttp.Handler.Handler(&vault.HandlerProperties{
			Core: core,
			// Required: a nil ListenerConfig panics in v1.21.3. Zero
			// values mean Vault's defaults (request size limits etc.).
			ListenerConfig: &configutil.Listener{Type: "tcp", Address: ln.Addr().String()},
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	if tokenFile != "" {
		if err := os.WriteFile(tokenFile, []byte(rootToken+"\n"), 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("VAULT_ADDR=%s://%s\nVAULT_TOKEN=%s\n", scheme, ln.Addr(), rootToken)

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		// A client still holds a request open (a renewal, a slow test
		// client). This server only exists for tests: cut the connections
		// rather than fail the test that stopped it.
		fmt.Fprintln(os.Stderr, "vaultdev: requests still open after 5s; closing their connections")
		err = srv.Close()
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newCore builds, initializes and unseals a Vault core on in-memory storage,
// then mounts what tests expect an operator to have enabled.
func newCore(logger hclog.Logger) (*vault.Core, string, error) {
	physical, err := inmem.NewInmem(nil, logger.Named("storage"))
	if err != nil {
		return nil, "", err
	}
	core, err := vault.NewCore(&vault.CoreConfig{
		Physical:     physical,
		StorageType:  "inmem",
		DisableMlock: true, // tests run unprivileged; nothing here is worth protecting from swap
		Logger:       logger,
		// Builtin mounts resolve through the plugin catalog, which needs a
		// registry; Vault's full one would pull in every plugin it ships.
		BuiltinRegistry: builtins,
		AuditBackends:   map[string]audit.Factory{"file": audit.NewFileBackend},
	})
	if err != nil {
		return nil, "", err
	}

	ctx := namespace.RootContext(context.Background())
	init, err := core.Initialize(ctx, &vault.InitParams{
		BarrierConfig: &vault.SealConfig{Type: "shamir", SecretShares: 1, SecretThreshold: 1},
	})
	if err != nil {
		core.Shutdown()
		return nil, "", fmt.Errorf("initialize: %w", err)
	}
	if unsealed, err := core.Unseal(init.SecretShares[0]); err != nil || !unsealed {
		core.Shutdown()
		return nil, "", fmt.Errorf("unseal: unsealed=%v err=%v", unsealed, err)
	}

	for path, typ := range map[string]string{
		"sys/mounts/transit": "transit",
		"sys/auth/approle":   "approle",
	} {
		resp, err := core.HandleRequest(ctx, &logical.Request{
			Operation:   logical.UpdateOperation,
			ClientToken: init.RootToken,
			Path:        path,
			Data:        map[string]any{"type": typ},
		})
		if err == nil && resp.IsError() {
			err = resp.Error()
		}
		if err != nil {
			core.Shutdown()
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
	}
	return core, init.RootToken, nil
}

// builtins is the plugin catalog's view of the built-in plugins.
var builtins = registry{
	consts.PluginTypeSecrets: {
		"transit": transit.Factory,
		"kv":      kv.Factory,
	},
	consts.PluginTypeCredential: {
		"approle": approle.Factory,
	},
}

// registry implements vault/plugincatalog.BuiltinRegistry.
type registry map[consts.PluginType]map[string]logical.Factory

func (r registry) Get(name string, t consts.PluginType) (func() (any, error), bool) {
	f, ok := r[t][name]
	if !ok {
		return nil, false
	}
	// The catalog type-asserts the returned value to logical.Factory.
	return func() (any, error) { return f, nil }, true
}

func (r registry) Contains(name string, t consts.PluginType) bool {
	_, ok := r[t][name]
	return ok
}

func (r registry) Keys(t consts.PluginType) []string {
	return slices.Sorted(maps.Keys(r[t]))
}

func (r registry) DeprecationStatus(name string, t consts.PluginType) (consts.DeprecationStatus, bool) {
	if !r.Contains(name, t) {
		return consts.Unknown, false
	}
	return consts.Supported, true
}

func (r registry) IsBuiltinEntPlugin(string, consts.PluginType) bool { return false }

// writeTLSFiles writes a fresh CA (ca.pem) and a server certificate for
// 127.0.0.1, ::1 and localhost signed by it (cert.pem, key.pem) into dir.
func writeTLSFiles(dir string) (tls.Certificate, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	newKey := func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		return n
	}

	caKey, err := newKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "vaultdev test CA"},
		NotBefore:             now.Add(-time.Hour), // tolerate clock skew
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, err
	}

	key, err := newKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    caTmpl.NotBefore,
		NotAfter:     caTmpl.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}

	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	for name, data := range map[string][]byte{"ca.pem": caPEM, "cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return tls.Certificate{}, err
		}
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
