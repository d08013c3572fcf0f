package downstream

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
	"github.com/tokenproxy/tokenproxy/test/logbuf"
)

const testPassword = "s3cret-Pa55word"

// authSink is a smarthost that requires STARTTLS and AUTH (a go-smtp
// server with a certificate for 127.0.0.1 from ca).
func authSink(t *testing.T, ca *testCA, mutate func(*downstreamtest.Sink, *tls.Config)) (*downstreamtest.Sink, string) {
	t.Helper()
	b := &downstreamtest.Sink{RequireTLS: true, Users: map[string]string{"crm-relay": testPassword}}
	srv := ca.serverTLS("127.0.0.1")
	if mutate != nil {
		mutate(b, srv)
	}
	return b, downstreamtest.Start(t, b, srv)
}

// TestDownstreamAuth: the smarthost gets AUTH after a verified STARTTLS,
// PLAIN when offered, LOGIN when only that is; a wrong password is a
// temporary failure at connect (the sender retries while the operator
// fixes it), and the password is never logged.
func TestDownstreamAuth(t *testing.T) {
	ca := newTestCA(t)
	for _, tc := range []struct {
		name     string
		mechs    []string
		password string
		wantErr  bool
	}{
		{"plain", nil, testPassword, false},
		{"login only", []string{"LOGIN"}, testPassword, false},
		{"wrong password", nil, "wrong-" + testPassword, true},
		{"no usable mechanism", []string{"CRAM-MD5"}, testPassword, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, addr := authSink(t, ca, func(b *downstreamtest.Sink, _ *tls.Config) { b.AuthMechs = tc.mechs })
			logs := &logbuf.Buffer{}
			d := newDS(t, addr, slog.New(slog.NewJSONHandler(logs, nil)), func(c *Config) {
				c.TLS, c.CAFile = TLSVerify, ca.file
				c.Auth = &Auth{Username: "crm-relay", Password: tc.password}
			})
			err := send(dsCtx(t), d, dsBody, "a@crm.test")
			st := b.Stats()
			if tc.wantErr {
				de := wantKind(t, err, ErrTemp, "connect", 0)
				if connectResult(de) != "auth" || len(st.Messages) != 0 {
					t.Fatalf("error %v (%s), %d messages: want an auth failure and none", err, connectResult(de), len(st.Messages))
				}
			} else if err != nil || len(st.Messages) != 1 || len(st.Authed) != 1 || !st.TLSMail[0] {
				t.Fatalf("err %v, messages %d, authed %v, TLS %v", err, len(st.Messages), st.Authed, st.TLSMail)
			}
			if strings.Contains(logs.String(), testPassword) {
				t.Fatalf("the password is in the log:\n%s", logs)
			}
		})
	}
}

// TestDownstreamAuthNeverInClear: AUTH is never sent without a verified
// TLS connection: not over plain text (New refuses the combination), not
// to a server without STARTTLS, not to one whose certificate fails.
func TestDownstreamAuthNeverInClear(t *testing.T) {
	if _, err := New(Config{Address: "127.0.0.1:25", TLS: TLSInsecure, Auth: &Auth{Username: "u", Password: "p"}}, nil); err == nil {
		t.Fatal("auth with tls insecure: want an error")
	}
	// A server offering AUTH in plain text and no STARTTLS.
	addr := scriptDS(t, func(c *textproto.Conn, _ net.Conn) error {
		if err := greetEHLO(c, "AUTH PLAIN LOGIN"); err != nil {
			return err
		}
		line, err := c.ReadLine()
		if err != nil {
			return nil // closed without a word: right
		}
		return &scriptError{got: line, want: "nothing"}
	})
	ca := newTestCA(t)
	d := newDS(t, addr, nil, func(c *Config) {
		c.HeloName, c.TLS, c.CAFile = "proxy.test", TLSVerify, ca.file
		c.Auth = &Auth{Username: "crm-relay", Password: testPassword}
	})
	_, err := d.Begin(dsCtx(t), "from@relay.test", nil)
	if !errors.Is(err, errNoStartTLS) {
		t.Fatalf("error %v: want no STARTTLS", err)
	}
	// A server whose certificate is not from the configured CA.
	other := newTestCA(t)
	b, addr2 := authSink(t, other, nil)
	d2 := newDS(t, addr2, nil, func(c *Config) {
		c.TLS, c.CAFile = TLSVerify, ca.file
		c.Auth = &Auth{Username: "crm-relay", Password: testPassword}
	})
	_, err = d2.Begin(dsCtx(t), "from@relay.test", nil)
	var cv *tls.CertificateVerificationError
	if !errors.As(err, &cv) || len(b.Stats().Authed) != 0 {
		t.Fatalf("error %v, authed %v: want a certificate failure and no AUTH", err, b.Stats().Authed)
	}
}

// TestDownstreamClientCertificate: a hop that requires a client
// certificate (a certificate-identified connector) takes the message with
// the configured one, and refuses the handshake without it.
func TestDownstreamClientCertificate(t *testing.T) {
	ca := newTestCA(t)
	b := &downstreamtest.Sink{RequireTLS: true}
	srv := ca.serverTLS("127.0.0.1")
	srv.ClientAuth, srv.ClientCAs = tls.RequireAndVerifyClientCert, ca.pool()
	addr := downstreamtest.Start(t, b, srv)
	certFile, keyFile := ca.clientFiles("proxy.company.example")

	with := newDS(t, addr, nil, func(c *Config) {
		c.TLS, c.CAFile, c.ClientCertFile, c.ClientKeyFile = TLSVerify, ca.file, certFile, keyFile
	})
	if err := send(dsCtx(t), with, dsBody, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	without := newDS(t, addr, nil, func(c *Config) { c.TLS, c.CAFile = TLSVerify, ca.file })
	err := send(dsCtx(t), without, dsBody, "a@crm.test")
	wantKind(t, err, ErrTemp, "connect", 0)
	if n := len(b.Stats().Messages); n != 1 {
		t.Fatalf("%d messages: want 1", n)
	}
	if _, err := New(Config{Address: addr, CAFile: ca.file, ClientCertFile: certFile, ClientKeyFile: "/nonexistent"}, nil); err == nil {
		t.Fatal("a missing client key: want an error")
	}
}

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte(testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "smarthost"), []byte(testPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	for _, tc := range []struct {
		name, file, cred string
		ok               bool
	}{
		{"file, newline trimmed", file, "", true},
		{"systemd credential", "", "smarthost", true},
		{"credential as a path", "", "../pw", false},
		{"missing file", filepath.Join(dir, "nope"), "", false},
		{"empty file", filepath.Join(dir, "empty"), "", false},
	} {
		pw, err := ReadPassword(tc.file, tc.cred)
		if tc.ok && (err != nil || pw != testPassword) {
			t.Errorf("%s: %q, %v", tc.name, pw, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("%s: want an error", tc.name)
		}
		if err != nil && strings.Contains(err.Error(), testPassword) {
			t.Errorf("%s: the error holds the password", tc.name)
		}
	}
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if _, err := ReadPassword("", "smarthost"); err == nil {
		t.Error("a credential without $CREDENTIALS_DIRECTORY: want an error")
	}
}
