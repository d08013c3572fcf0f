package integration

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// memSink is an in-process SMTP server that keeps each message it
// accepted: a message is kept only once its final dot arrived, so a
// partial message would show up as missing, never as truncated.
type memSink struct {
	mu   sync.Mutex
	msgs []string
	srv  *gosmtp.Server
	addr string
}

func startMemSink(t *testing.T) *memSink {
	t.Helper()
	s := &memSink{}
	s.srv = gosmtp.NewServer(s)
	s.srv.Domain = "sink.test"
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go s.srv.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *memSink) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &memSinkSession{s: s}, nil }

func (s *memSink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

type memSinkSession struct{ s *memSink }

func (ss *memSinkSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (ss *memSinkSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (ss *memSinkSession) Reset()                                 {}
func (ss *memSinkSession) Logout() error                          { return nil }
func (ss *memSinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, string(b))
	ss.s.mu.Unlock()
	return nil
}

// TestKill9DuringLoad: the proxy is killed with SIGKILL in the middle of
// a 1,000-message load. Every message whose client saw 250 is at the
// sink, whole; and every token the sink saw resolves after a restart
// (DESIGN.md invariants 2 and 3: a token is durable before the message
// carrying it is relayed).
func TestKill9DuringLoad(t *testing.T) {
	sink := startMemSink(t)
	sv := writeServeConfig(t, sink.addr, sink.addr, "warn", "client_networks: [127.0.0.0/8]")
	config, inPort, outPort, admin := sv.config, sv.inPort, sv.outPort, sv.admin
	p := startServe(t, config, admin)
	const total, clients = 1000, 8
	var next, accepted atomic.Int64
	var mu sync.Mutex
	acked := map[string]bool{} // Message-IDs the client saw 250 for
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				id := fmt.Sprintf("<load-%d@mail.example.com>", i)
				msg := fmt.Sprintf("From: c%d@customer%d.example\r\nTo: support@company.example\r\nMessage-ID: %s\r\nSubject: load %d\r\n\r\nnew customer c%d@customer%d.example writes.\r\n", i, i%50, id, i, i, i%50)
				err := sendPlain(fmt.Sprintf("127.0.0.1:%d", inPort), fmt.Sprintf("c%d@customer%d.example", i, i%50), msg)
				if err == nil {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
					accepted.Add(1)
				}
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for accepted.Load() < 250 {
		if time.Now().After(deadline) || next.Load() > total {
			t.Fatalf("only %d messages accepted before the kill:\n%s", accepted.Load(), p.log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	wg.Wait()
	<-p.done
	p.done <- nil

	msgs := sink.messages()
	byID := map[string]string{}
	idRE := regexp.MustCompile(`(?m)^Message-ID: (<load-\d+@mail\.example\.com>)\r$`)
	for _, m := range msgs {
		if mm := idRE.FindStringSubmatch(m); mm != nil {
			byID[mm[1]] = m
		}
		if !strings.HasSuffix(m, "writes.\r\n") {
			t.Errorf("partial message at the sink:\n%q", m)
		}
	}
	mu.Lock()
	for id := range acked {
		if _, ok := byID[id]; !ok {
			t.Errorf("message %s was acknowledged with 250 but is not at the sink", id)
		}
	}
	nAcked := len(acked)
	mu.Unlock()
	t.Logf("killed after %d acknowledged; sink holds %d messages (duplicates are allowed, loss is not)", nAcked, len(msgs))

	// After a restart every token the sink saw resolves: the outbound route
	// accepts each as a recipient.
	p2 := startServe(t, config, admin)
	tokRE := regexp.MustCompile(`t1-[a-z2-7]{16}@relay\.company\.example`)
	seen := map[string]bool{}
	for _, m := range msgs {
		for _, tok := range tokRE.FindAllString(m, -1) {
			seen[tok] = true
		}
	}
	if len(seen) == 0 {
		t.Fatal("the sink saw no token")
	}
	c, err := gosmtp.DialStartTLS(fmt.Sprintf("127.0.0.1:%d", outPort), selfSignedTrust(t, sv.dataDir, "relay.company.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := 0
	for tok := range seen {
		if n%90 == 0 { // stay under smtp.max_recipients
			c.Reset()
			if err := c.Mail("support@crm.example", nil); err != nil {
				t.Fatal(err)
			}
		}
		n++
		if err := c.Rcpt(tok, nil); err != nil {
			t.Errorf("token %s seen by the sink does not resolve after the crash: %v", tok, err)
		}
	}
	t.Logf("%d tokens seen at the sink all resolve after restart", len(seen))
	c.Reset()
	c.Quit()

	// The audit trail shows each of those tokens created exactly once:
	// records left in the outbox by the kill were delivered at restart,
	// none twice, and the chain verifies.
	stopServe(t, p2)
	created := tokenCreations(t, filepath.Join(sv.dataDir, "audit.jsonl"))
	for tok := range seen {
		if created[tok] != 1 {
			t.Errorf("token %s has %d token.created records in the trail, want 1", tok, created[tok])
		}
	}
	for tok, n := range created {
		if n > 1 {
			t.Errorf("token %s has %d token.created records", tok, n)
		}
	}
	if r := runProxyBounded(t, 30*time.Second, config, "audit", "verify"); r.code != 0 {
		t.Fatalf("audit verify after the crash: exit %d\n%s%s", r.code, r.stdout, r.log)
	}
}

// tokenCreations counts the token.created records of a trail by token.
func tokenCreations(t *testing.T, path string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec struct {
			Event  string   `json:"event"`
			Tokens []string `json:"tokens"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("trail line %q: %v", line, err)
		}
		if rec.Event == "token.created" {
			for _, tok := range rec.Tokens {
				out[tok]++
			}
		}
	}
	return out
}

// selfSignedTrust trusts the certificate the proxy generated in dataDir.
func selfSignedTrust(t *testing.T, dataDir, name string) *tls.Config {
	t.Helper()
	pemBytes, err := os.ReadFile(filepath.Join(dataDir, "tls", "selfsigned.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in selfsigned.crt")
	}
	return &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}
}

// sendPlain sends one message without STARTTLS (loopback; the client side
// of a customer MTA that does not insist on TLS).
func sendPlain(addr, from, msg string) error {
	c, err := gosmtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, []string{"support@company.example"}, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}
