package audit

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

type memForwarder struct {
	mu    sync.Mutex
	lines [][]byte
	err   error
}

func (m *memForwarder) Forward(line []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.lines = append(m.lines, bytes.Clone(line))
	return nil
}

func TestForwardSendsEveryLine(t *testing.T) {
	path := testPath(t)
	fw := &memForwarder{}
	l := mustOpen(t, Options{Path: path, Forward: fw})
	for i := range 5 {
		mustAppend(t, l, resolved(i), resolved(i+100))
	}
	mustClose(t, l) // waits for the forwarder
	want := readLines(t, path)
	if len(fw.lines) != len(want) {
		t.Fatalf("forwarded %d lines, file has %d", len(fw.lines), len(want))
	}
	for i := range want {
		if !bytes.Equal(fw.lines[i], want[i]) {
			t.Fatalf("line %d: forwarded %s, file %s", i+1, fw.lines[i], want[i])
		}
	}
}

func TestForwardErrorsDoNotFailAppend(t *testing.T) {
	metrics := NewMetrics(nil)
	fw := &memForwarder{err: errors.New("syslog: connection refused")}
	l := mustOpen(t, Options{Path: testPath(t), Forward: fw, Metrics: metrics})
	for i := range 5 {
		mustAppend(t, l, resolved(i))
	}
	mustClose(t, l)
	if got := testutilCounter(metrics.forwardErrors); got != 7 { // Started, 5, Stopped
		t.Fatalf("forward errors %v, want 7", got)
	}
}

func TestSyslogForwarder(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	fw, err := NewSyslog("udp", pc.LocalAddr().String(), "tokenproxy-audit")
	if err != nil {
		t.Fatal(err)
	}
	defer fw.(interface{ Close() error }).Close()

	line := []byte(`{"seq":1,"event":"audit.started","prev":"0","hash":"1"}`)
	if err := fw.Forward(line); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	msg := string(buf[:n])
	// <37>: facility auth (4) * 8 + severity notice (5).
	if !strings.HasPrefix(msg, "<37>") || !strings.Contains(msg, "tokenproxy-audit") || !strings.Contains(msg, string(line)) {
		t.Fatalf("syslog message %q", msg)
	}
}

// closingForwarder counts its Close calls.
type closingForwarder struct {
	memForwarder
	closed int
}

func (c *closingForwarder) Close() error { c.closed++; return nil }

// TestLogClosesForwarder: a Forwarder that is an io.Closer (the syslog
// connection) is closed by Close, and by an Open that fails.
func TestLogClosesForwarder(t *testing.T) {
	fw := &closingForwarder{}
	l := mustOpen(t, Options{Path: testPath(t), Forward: fw})
	mustClose(t, l)
	if fw.closed != 1 {
		t.Fatalf("forwarder closed %d times after Close, want 1", fw.closed)
	}

	// A directory where the file should be: Open fails.
	fw = &closingForwarder{}
	if _, err := Open(t.Context(), Options{Path: t.TempDir(), Forward: fw}); err == nil {
		t.Fatal("Open of a directory succeeded")
	}
	if fw.closed != 1 {
		t.Fatalf("forwarder closed %d times after a failed Open, want 1", fw.closed)
	}
}
