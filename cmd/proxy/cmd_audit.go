package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/vault"
)

// errAuditFails is returned when verification finds problems: exit 1.
var errAuditFails = errors.New("the audit trail does not verify")

// openVerifier opens only what checks checkpoint signatures: the transit
// key's public half, or the local keyring file. It does not open the
// database, so it works while the proxy runs.
func (a *app) openVerifier(ctx context.Context, cfg *policy.Config) (auditSigner, func(), error) {
	if cfg.Keys.Provider == "vault" {
		t, err := vault.NewTransit(ctx, transitConfig(cfg.Keys.Vault), vault.WithLogger(a.log))
		if err != nil {
			return nil, nil, err
		}
		s, err := t.AuditSigner(ctx, cfg.Audit.Key)
		if err != nil {
			t.Close()
			return nil, nil, err
		}
		return s, func() { t.Close() }, nil
	}
	path := cfg.Keys.Local.KeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, "keyring.json")
	}
	l, err := vault.OpenLocal(path, vault.LocalOptions{Logger: a.log})
	if err != nil {
		return nil, nil, err
	}
	s, err := l.AuditSigner()
	if err != nil {
		return nil, nil, err
	}
	return s, func() { l.Close() }, nil
}

func cmdAuditVerify() *command {
	var file, keysFile, trails string
	var cluster bool
	return &command{
		name:    "audit verify",
		summary: "verify the audit trail: hash chain, head file, signed checkpoints (works while serving)",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&file, "file", "", "trail `file` (default: audit.path); an export is checked without a head")
			fs.StringVar(&keysFile, "keys", "", "public keys `file` from 'proxy audit keys' (default: ask the key provider)")
			fs.BoolVar(&cluster, "cluster", false, "verify every node's trail (from --trails) against the head it published in etcd")
			fs.StringVar(&trails, "trails", "", "with --cluster: `directory` of the nodes' trails, named <node id>.jsonl")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := nArgs(args, 0, ""); err != nil {
				return err
			}
			if cluster != (trails != "") || (cluster && file != "") {
				return usagef("--cluster needs --trails DIR (and no --file); --trails needs --cluster")
			}
			if cluster {
				return runClusterVerify(ctx, a, trails, keysFile)
			}
			return runAuditVerify(ctx, a, file, keysFile)
		},
	}
}

func runAuditVerify(ctx context.Context, a *app, file, keysFile string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	keys := func(ctx context.Context) (audit.Keys, error) { return readKeysFile(keysFile) }
	if keysFile == "" {
		s, closeFn, err := a.openVerifier(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeFn()
		keys = func(ctx context.Context) (audit.Keys, error) { return auditKeys(ctx, s) }
	}
	path := auditPath(cfg)
	var rep audit.Report
	if file != "" && file != path {
		rep, err = verifyExport(ctx, file, keys)
	} else {
		rep, err = audit.VerifyFile(ctx, path, keys)
	}
	if err != nil {
		return err
	}
	printReport(a.stdout, rep)
	if !rep.OK() {
		return errAuditFails
	}
	return nil
}

// verifyExport checks an exported file (no head file: its tail cannot be
// checked for truncation; the report says where it ends).
func verifyExport(ctx context.Context, file string, keys func(context.Context) (audit.Keys, error)) (audit.Report, error) {
	ks, err := keys(ctx)
	if err != nil {
		return audit.Report{}, err
	}
	f, err := os.Open(file)
	if err != nil {
		return audit.Report{}, err
	}
	defer f.Close()
	return audit.Verify(f, nil, ks)
}

func printReport(w io.Writer, rep audit.Report) {
	fmt.Fprintf(w, "records:          %d (seq %d to %d)\n", rep.Records, rep.First.Seq, rep.Last.Seq)
	fmt.Fprintf(w, "checkpoints:      %d (last at seq %d; signatures checked: %t)\n", rep.Checkpoints, rep.LastCheckpoint, rep.SignaturesChecked)
	fmt.Fprintf(w, "unsigned tail:    %d records after the last checkpoint\n", rep.UnsignedTail)
	fmt.Fprintf(w, "head:             %d %s\n", rep.Last.Seq, rep.Last.Hash)
	if rep.OK() {
		fmt.Fprintln(w, "result:           OK")
		return
	}
	fmt.Fprintf(w, "result:           FAILED, %d problem(s)\n", len(rep.Problems)+rep.MoreProblems)
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  line %d seq %d: %s: %s\n", p.Line, p.Seq, p.Kind, p.Text)
	}
	if rep.MoreProblems > 0 {
		fmt.Fprintf(w, "  ... and %d more\n", rep.MoreProblems)
	}
}

// keysFile is the JSON form of audit.Keys: key ID → version → base64
// public key.
type keysFile map[string]map[string]string

func cmdAuditKeys() *command {
	return &command{
		name:    "audit keys",
		summary: "print the public keys that verify the audit trail's checkpoints (JSON, for --keys)",
		run: func(ctx context.Context, a *app, args []string) error {
			if err := nArgs(args, 0, ""); err != nil {
				return err
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			s, closeFn, err := a.openVerifier(ctx, cfg)
			if err != nil {
				return err
			}
			defer closeFn()
			pubs, err := s.PublicKeys(ctx)
			if err != nil {
				return err
			}
			out := keysFile{s.KeyID(): {}}
			for v, p := range pubs {
				out[s.KeyID()][strconv.Itoa(v)] = base64.StdEncoding.EncodeToString(p)
			}
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
}

func readKeysFile(path string) (audit.Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var kf keysFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("keys file %s: %w", path, err)
	}
	keys := audit.Keys{}
	for id, vs := range kf {
		for v, b64 := range vs {
			n, err1 := strconv.Atoi(v)
			pub, err2 := base64.StdEncoding.DecodeString(b64)
			if err1 != nil || err2 != nil || len(pub) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("keys file %s: key %s version %q is not an Ed25519 public key", path, id, v)
			}
			keys.Add(id, n, pub)
		}
	}
	return keys, nil
}

func cmdAuditExport() *command {
	var out, since, until, token, events, trails string
	var fromSeq uint64
	var limit int
	var cluster bool
	return &command{
		name:    "audit export",
		summary: "write audit records as JSON lines, as stored (an unfiltered export verifies with audit verify --file)",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&out, "out", "-", "output `file`; - is stdout")
			fs.StringVar(&since, "since", "", "records at or after this RFC 3339 `time`")
			fs.StringVar(&until, "until", "", "records before this RFC 3339 `time`")
			fs.Uint64Var(&fromSeq, "from-seq", 0, "records from this `seq` on")
			fs.StringVar(&events, "event", "", "comma-separated `events` (e.g. compliance.resolve,token.resolved)")
			fs.StringVar(&token, "token", "", "records naming this `token`")
			fs.IntVar(&limit, "limit", 0, "at most this many `records` (0: all)")
			fs.BoolVar(&cluster, "cluster", false, "merge every node's trail (from --trails) in time order, records delivered twice (same ref) once")
			fs.StringVar(&trails, "trails", "", "with --cluster: `directory` of the nodes' trails, named <node id>.jsonl")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := nArgs(args, 0, ""); err != nil {
				return err
			}
			if cluster != (trails != "") || (cluster && fromSeq != 0) {
				return usagef("--cluster needs --trails DIR (and no --from-seq: each node numbers its own records); --trails needs --cluster")
			}
			q := audit.Query{FromSeq: fromSeq, Token: token, Limit: limit}
			if events != "" {
				q.Events = strings.Split(events, ",")
			}
			for _, t := range []struct {
				s   string
				dst *time.Time
			}{{since, &q.Since}, {until, &q.Until}} {
				if t.s == "" {
					continue
				}
				var err error
				if *t.dst, err = time.Parse(time.RFC3339, t.s); err != nil {
					return usagef("--since/--until must be RFC 3339 times")
				}
			}
			if cluster {
				return runClusterExport(ctx, a, q, out, trails)
			}
			return runAuditExport(ctx, a, q, out)
		},
	}
}

func runAuditExport(ctx context.Context, a *app, q audit.Query, out string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	f, err := os.Open(auditPath(cfg))
	if err != nil {
		return err
	}
	defer f.Close()
	w, closeOut, err := a.exportOutput(out)
	if err != nil {
		return err
	}
	defer closeOut()
	n := 0
	err = audit.SelectLines(f, q, func(_ audit.Record, line []byte) error {
		n++
		return writeLine(w, line)
	})
	if err == nil && out != "-" {
		fmt.Fprintf(a.stderr, "%d records written to %s\n", n, out)
	}
	return err
}

// exportOutput is stdout for "-", else a new file (never overwritten).
func (a *app) exportOutput(out string) (io.Writer, func(), error) {
	if out == "-" {
		return a.stdout, func() {}, nil
	}
	of, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nil, err
	}
	return of, func() { of.Close() }, nil
}

func writeLine(w io.Writer, line []byte) error {
	if _, err := w.Write(line); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// runClusterExport writes the records of every node's trail merged in
// time order, each line as its node wrote it (a verifier can still check
// each record's hash; the merged file is no chain), and each change
// delivered twice once.
func runClusterExport(ctx context.Context, a *app, q audit.Query, out, dir string) error {
	if _, err := a.config(); err != nil {
		return err
	}
	files, err := trailFiles(dir)
	if err != nil {
		return err
	}
	w, closeOut, err := a.exportOutput(out)
	if err != nil {
		return err
	}
	defer closeOut()
	n, dups := 0, 0
	for l, err := range mergeTrails(ctx, files, &dups) {
		if err != nil {
			return err
		}
		if !q.Match(&l.rec) {
			continue
		}
		if err := writeLine(w, l.line); err != nil {
			return err
		}
		if n++; q.Limit > 0 && n >= q.Limit {
			break
		}
	}
	fmt.Fprintf(a.stderr, "%d records of %d trail(s) written, %d delivered twice left out\n", n, len(files), dups)
	return nil
}
