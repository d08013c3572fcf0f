package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
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

	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
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

// apiClient is the compliance API client the flags and the
// configuration's defaults describe: the admin listener, and its
// self-signed certificate as the CA unless another is named.
func (a *app) apiClient(cf clientFlags) (*compliance.Client, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	o := compliance.ClientOptions{Server: cf.server, CAFile: cf.caFile, CertFile: cf.certFile, KeyFile: cf.keyFile,
		Token: os.Getenv("TOKENPROXY_TOKEN"), TokenFile: cf.tokenFile, Timeout: cf.timeout}
	if o.Server == "" {
		o.Server = "https://" + cfg.Admin.Listen
	}
	if o.CAFile == "" {
		o.CAFile = cfg.Admin.TLS.CertFile
	}
	if o.CAFile == "" {
		o.CAFile = filepath.Join(cfg.DataDir, "tls", "selfsigned.crt")
	}
	return compliance.NewClient(o)
}

// complianceCommands are the `proxy compliance` commands.
func complianceCommands() []*command {
	return []*command{
		subjectCommand("resolve", "TOKEN", "print the address behind a token (officer; audited, counted by the bulk guard)", "token"),
		subjectCommand("lookup", "ADDRESS", "print the tokens of an address (officer; subject access)", "address"),
		subjectCommand("export", "ADDRESS", "print a subject's tokens and audit records as JSON (officer; GDPR Art. 15)", "address"),
		subjectCommand("erase", "ADDRESS", "erase a subject: its tokens are refused from then on (officer; GDPR Art. 17)", "address"),
		subjectCommand("quarantine-export", "REF", "print a stripped attachment kept in the quarantine as JSON, content in base64 (officer; audited)", "ref"),
		subjectCommand("quarantine-delete", "REF", "delete a stripped attachment from the quarantine (officer; audited)", "ref"),
		quarantineListCommand(),
		auditListCommand(), auditVerifyRemoteCommand(), backupRemoteCommand(), newTokenCommand(),
	}
}

// quarantineListCommand lists the stripped attachments the quarantine
// keeps: reference, kind, file name as the CRM saw it, size, time.
func quarantineListCommand() *command {
	var cf clientFlags
	return &command{
		name: "compliance quarantine", summary: "list the stripped attachments the quarantine keeps, as JSON (officer; audited)",
		flags: cf.register,
		run: func(ctx context.Context, a *app, args []string) error {
			if err := nArgs(args, 0, ""); err != nil {
				return err
			}
			c, err := a.apiClient(cf)
			if err != nil {
				return err
			}
			rc, err := c.Do(ctx, http.MethodGet, "/v1/compliance/quarantine", nil)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(a.stdout, rc)
			return err
		},
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
			rc, err := c.Do(ctx, http.MethodPost, "/v1/compliance/"+op, body)
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
			rc, h, err := c.DoHeader(ctx, http.MethodGet, "/v1/audit/records?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			defer rc.Close()
			if _, err = io.Copy(a.stdout, rc); err != nil {
				return err
			}
			// A cluster's listing merges every node's trail; one whose
			// node did not answer is missing, and an auditor must not take
			// the rest for the whole.
			if missing := h.Get(compliance.TrailsMissingHeader); missing != "" {
				return fmt.Errorf("incomplete listing: the records of node(s) %s are missing (their nodes did not answer; see the proxy log); "+
					"the listing holds those of %s", missing, h.Get(compliance.TrailsHeader))
			}
			return nil
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
			rc, err := c.Do(ctx, http.MethodGet, "/v1/audit/verify", nil)
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
			n, err := c.Backup(ctx, args[0], boltstore.CheckFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "backup written: %s (%d bytes); the key provider is needed to read it\n", args[0], n)
			return nil
		},
	}
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
