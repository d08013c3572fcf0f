package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/internal/safeio"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// clientFlags are how `proxy compliance` reaches the admin listener.
type clientFlags struct {
	server, caFile, tokenFile, certFile, keyFile string
	timeout                                      time.Duration
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "admin `URL` (default: https:// + admin.listen)")
	fs.StringVar(&c.caFile, "ca-file", "", "CA `file` that signs the admin certificate (default: admin.tls.cert_file, or the self-signed one in data_dir/tls)")
	fs.StringVar(&c.tokenFile, "token-file", "", "bearer token `file` (default: $TOKENPROXY_TOKEN)")
	fs.StringVar(&c.certFile, "cert", "", "client certificate `file` (PEM)")
	fs.StringVar(&c.keyFile, "key", "", "client key `file` (PEM)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "request `timeout`")
}

// apiClient is a compliance API client that trusts only the configured
// CA and speaks TLS 1.2 or later.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func (a *app) apiClient(cf clientFlags) (*apiClient, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	base := cf.server
	if base == "" {
		base = "https://" + cfg.Admin.Listen
	}
	tc, err := clientTLS(cfg, cf)
	if err != nil {
		return nil, err
	}
	token := os.Getenv("TOKENPROXY_TOKEN")
	if cf.tokenFile != "" {
		b, err := os.ReadFile(cf.tokenFile)
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(string(b))
	}
	return &apiClient{base: strings.TrimSuffix(base, "/"), token: token,
		http: &http.Client{Timeout: cf.timeout, Transport: &http.Transport{TLSClientConfig: tc}}}, nil
}

func clientTLS(cfg *policy.Config, cf clientFlags) (*tls.Config, error) {
	ca := cf.caFile
	if ca == "" {
		ca = cfg.Admin.TLS.CertFile
	}
	if ca == "" {
		ca = filepath.Join(cfg.DataDir, "tls", "selfsigned.crt")
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w (set --ca-file)", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", ca)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if cf.certFile != "" || cf.keyFile != "" {
		pair, err := tls.LoadX509KeyPair(cf.certFile, cf.keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// do sends a request and returns the body of a 2xx reply, or an error
// carrying the server's message.
func (c *apiClient) do(ctx context.Context, method, path string, body any) (io.ReadCloser, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	return nil, fmt.Errorf("%s: %s", resp.Status, e.Error)
}

// complianceCommands are the `proxy compliance` commands.
func complianceCommands() []*command {
	return []*command{
		subjectCommand("resolve", "TOKEN", "print the address behind a token (officer; audited, counted by the bulk guard)", "token"),
		subjectCommand("lookup", "ADDRESS", "print the tokens of an address (officer; subject access)", "address"),
		subjectCommand("export", "ADDRESS", "print a subject's tokens and audit records as JSON (officer; GDPR Art. 15)", "address"),
		subjectCommand("erase", "ADDRESS", "erase a subject: its tokens are refused from then on (officer; GDPR Art. 17)", "address"),
		auditListCommand(), auditVerifyRemoteCommand(), backupRemoteCommand(), newTokenCommand(),
	}
}

func subjectCommand(op, arg, summary, field string) *command {
	var cf clientFlags
	var reason string
	return &command{
		name: "compliance " + op, args: arg + " --reason TEXT", summary: summary,
		flags: func(fs *flag.FlagSet) {
			cf.register(fs)
			fs.StringVar(&reason, "reason", "", "why (required; recorded in the audit trail; no e-mail addresses)")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := nArgs(args, 1, "one "+arg); err != nil {
				return err
			}
			if reason == "" {
				return usagef("--reason is required")
			}
			c, err := a.apiClient(cf)
			if err != nil {
				return err
			}
			body := map[string]string{field: args[0], "reason": reason}
			rc, err := c.do(ctx, http.MethodPost, "/v1/compliance/"+op, body)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(a.stdout, rc)
			return err
		},
	}
}

func auditListCommand() *command {
	var cf clientFlags
	var since, until, token, event, fromSeq, limit string
	return &command{
		name: "compliance audit", summary: "print audit records as JSON lines (auditor)",
		flags: func(fs *flag.FlagSet) {
			cf.register(fs)
			fs.StringVar(&since, "since", "", "RFC 3339 `time`")
			fs.StringVar(&until, "until", "", "RFC 3339 `time`")
			fs.StringVar(&token, "token", "", "records naming this `token`")
			fs.StringVar(&event, "event", "", "comma-separated `events`")
			fs.StringVar(&fromSeq, "from-seq", "", "from this `seq` on")
			fs.StringVar(&limit, "limit", "", "at most this many `records`")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := nArgs(args, 0, ""); err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"since": since, "until": until, "token": token, "from_seq": fromSeq, "limit": limit} {
				if v != "" {
					q.Set(k, v)
				}
			}
			for _, e := range strings.Split(event, ",") {
				if e != "" {
					q.Add("event", e)
				}
			}
			c, err := a.apiClient(cf)
			if err != nil {
				return err
			}
			rc, err := c.do(ctx, http.MethodGet, "/v1/audit/records?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(a.stdout, rc)
			return err
		},
	}
}

func auditVerifyRemoteCommand() *command {
	var cf clientFlags
	return &command{
		name: "compliance verify", summary: "verify the running proxy's audit trail (auditor); exit 1 when it fails",
		flags: cf.register,
		run: func(ctx context.Context, a *app, args []string) error {
			if err := nArgs(args, 0, ""); err != nil {
				return err
			}
			c, err := a.apiClient(cf)
			if err != nil {
				return err
			}
			rc, err := c.do(ctx, http.MethodGet, "/v1/audit/verify", nil)
			if err != nil {
				return err
			}
			defer rc.Close()
			var out struct {
				OK     bool
				Report json.RawMessage
			}
			b, err := io.ReadAll(rc)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &out); err != nil {
				return err
			}
			a.stdout.Write(b)
			if !out.OK {
				return errAuditFails
			}
			return nil
		},
	}
}

func backupRemoteCommand() *command {
	var cf clientFlags
	return &command{
		name: "compliance backup", args: "FILE", summary: "online backup of the running proxy's token map to FILE (operator)",
		flags: cf.register,
		run: func(ctx context.Context, a *app, args []string) error {
			if err := nArgs(args, 1, "one FILE"); err != nil {
				return err
			}
			c, err := a.apiClient(cf)
			if err != nil {
				return err
			}
			rc, err := c.do(ctx, http.MethodGet, "/v1/backup", nil)
			if err != nil {
				return err
			}
			defer rc.Close()
			n, err := saveBackup(rc, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "backup written: %s (%d bytes); the key provider is needed to read it\n", args[0], n)
			return nil
		},
	}
}

// saveBackup writes the stream to a temporary file, checks that it is a
// whole, consistent database (a cut stream is not), and renames it
// (internal/safeio).
func saveBackup(r io.Reader, path string) (int64, error) {
	var n int64
	err := safeio.WriteFileFunc(path, 0o600, func(f *os.File) error {
		var err error
		if n, err = io.Copy(f, r); err != nil {
			return err
		}
		return tokenize.CheckFile(f.Name())
	})
	if err != nil {
		return 0, fmt.Errorf("backup incomplete, nothing kept: %w", err)
	}
	return n, nil
}

func newTokenCommand() *command {
	var name, roles string
	return &command{
		name: "compliance new-token", summary: "make a bearer token and print it with the principal entry for the configuration",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "principal `name`")
			fs.StringVar(&roles, "roles", "officer", "comma-separated `roles`: auditor, officer, operator")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := nArgs(args, 0, ""); err != nil {
				return err
			}
			if name == "" {
				return usagef("--name is required")
			}
			raw := make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return err
			}
			token := base64.RawURLEncoding.EncodeToString(raw)
			sum := sha256.Sum256([]byte(token))
			fmt.Fprintf(a.stdout, "token (give it to %s, store it nowhere else): %s\n\n", name, token)
			fmt.Fprintf(a.stdout, "compliance:\n  principals:\n    - name: %s\n      roles: [%s]\n      token_sha256: %s\n",
				name, strings.Join(strings.Split(roles, ","), ", "), hex.EncodeToString(sum[:]))
			return nil
		},
	}
}
