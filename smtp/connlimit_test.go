package smtp

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const clHost = "mx.test.example"
const clReply = "421 4.7.0 mx.test.example Too many connections, try again later\r\n"
const clWait = 5 * time.Second

// clServer is a limited listener on 127.0.0.1 whose accepted connections and
// refusals are handed to the test in order.
type clServer struct {
	addr     string
	accepted chan net.Conn
	refused  chan string
}

func clStart(t *testing.T, l *ConnLimiter) *clServer {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &clServer{
		addr:     inner.Addr().String(),
		accepted: make(chan net.Conn, 64),
		refused:  make(chan string, 64),
	}
	ln := l.Listener(inner, clHost, func(reason string) { s.refused <- reason })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(s.accepted)
		for c := range s.accepted {
			c.Close()
		}
	})
	return s
}

// clDial connects from the loopback address src, skipping the test where the
// host cannot bind it (127.0.0.2 works on Linux, not everywhere).
func clDial(t *testing.T, addr, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: clWait}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Skipf("cannot bind %s: %v", src, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clExpectRefused reads the 421 line and then end of stream from a refused
// client connection.
func clExpectRefused(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(clWait))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil || line != clReply {
		t.Fatalf("refused client read %q, %v; want %q", line, err, clReply)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after 421: %v, want EOF", err)
	}
}

// clStep is one action of a limit scenario: dial from src expecting want
// ("" accepted, else the refusal reason), or close accepted connection close-1.
type clStep struct {
	src   string
	want  string
	close int
}

func dialFrom(src, want string) clStep { return clStep{src: src, want: want} }
func closeNth(i int) clStep            { return clStep{close: i + 1} }

func TestConnLimiterLimits(t *testing.T) {
	const a, b = "127.0.0.1", "127.0.0.2"
	tests := []struct {
		name       string
		max, perIP int
		steps      []clStep
	}{
		{"total", 2, 0, []clStep{
			dialFrom(a, ""), dialFrom(b, ""), dialFrom(b, RefuseTotal), dialFrom(a, RefuseTotal),
			closeNth(0), dialFrom(b, ""), dialFrom(a, RefuseTotal),
		}},
		{"per ip", 0, 1, []clStep{
			dialFrom(a, ""), dialFrom(a, RefusePerIP), dialFrom(b, ""), dialFrom(b, RefusePerIP),
			closeNth(0), dialFrom(a, ""),
		}},
		{"both", 3, 2, []clStep{
			dialFrom(a, ""), dialFrom(a, ""), dialFrom(a, RefusePerIP), dialFrom(b, ""),
			dialFrom(b, RefuseTotal), closeNth(1), dialFrom(b, ""), dialFrom(b, RefuseTotal),
		}},
		{"unlimited", 0, 0, []clStep{
			dialFrom(a, ""), dialFrom(a, ""), dialFrom(a, ""), dialFrom(b, ""),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewConnLimiter(tt.max, tt.perIP)
			s := clStart(t, l)
			var server []net.Conn
			t.Cleanup(func() {
				for _, c := range server {
					c.Close()
				}
			})
			open := 0
			for i, st := range tt.steps {
				if st.close > 0 {
					server[st.close-1].Close()
					open--
				} else if c := clRun(t, s, st); c != nil {
					server = append(server, c)
					open++
				}
				if got := l.Open(); got != open {
					t.Fatalf("step %d: Open() = %d, want %d", i, got, open)
				}
			}
		})
	}
}

// clRun performs a dial step and returns the server side of the connection,
// or nil when it was refused.
func clRun(t *testing.T, s *clServer, st clStep) net.Conn {
	t.Helper()
	c := clDial(t, s.addr, st.src)
	select {
	case reason := <-s.refused:
		if reason != st.want {
			t.Fatalf("dial from %s refused %q, want %q", st.src, reason, st.want)
		}
		clExpectRefused(t, c)
		return nil
	case conn := <-s.accepted:
		if st.want != "" {
			conn.Close()
			t.Fatalf("dial from %s accepted, want refusal %q", st.src, st.want)
		}
		return conn
	case <-time.After(clWait):
		t.Fatalf("dial from %s: neither accepted nor refused", st.src)
	}
	return nil
}

func TestConnLimiterConcurrent(t *testing.T) {
	const max, clients = 4, 60
	l := NewConnLimiter(max, 3)
	var refusals atomic.Int32
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.Listener(inner, clHost, func(string) { refusals.Add(1) })
	defer ln.Close()
	var over atomic.Bool
	go clServeBriefly(ln, l, max, &over)

	var accepted, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range clients {
		src := []string{"127.0.0.1", "127.0.0.2"}[i%2]
		wg.Go(func() {
			if clGreeting(t, inner.Addr().String(), src) == "220 ok\r\n" {
				accepted.Add(1)
			} else {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	if over.Load() {
		t.Error("more than max connections were open at once")
	}
	if accepted.Load()+refused.Load() != clients || accepted.Load() < max {
		t.Errorf("accepted %d refused %d of %d", accepted.Load(), refused.Load(), clients)
	}
	clEventually(t, func() bool { return l.Open() == 0 && refusals.Load() == refused.Load() })
}

// clServeBriefly greets each accepted connection, holds it a moment and
// closes it twice from two goroutines to exercise the idempotent release.
func clServeBriefly(ln net.Listener, l *ConnLimiter, max int, over *atomic.Bool) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if l.Open() > max {
			over.Store(true)
		}
		go func() {
			_, _ = io.WriteString(c, "220 ok\r\n")
			time.Sleep(2 * time.Millisecond)
			go c.Close()
			c.Close()
		}()
	}
}

// clGreeting returns the first line the server sends to a client from src.
func clGreeting(t *testing.T, addr, src string) string {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: clWait}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Errorf("dial from %s: %v", src, err)
		return ""
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(clWait))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Errorf("read greeting: %v", err)
	} else if line != "220 ok\r\n" && line != clReply {
		t.Errorf("greeting %q", line)
	}
	return line
}

func clEventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(clWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConnLimiterCloseIdempotent(t *testing.T) {
	l := NewConnLimiter(1, 1)
	s := clStart(t, l)
	clDial(t, s.addr, "127.0.0.1")
	c := <-s.accepted
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
	if got := l.Open(); got != 0 {
		t.Fatalf("Open() = %d after closing one connection 8 times, want 0", got)
	}
	if c := clRun(t, s, dialFrom("127.0.0.1", "")); c != nil {
		c.Close()
	}
}

// clPipeListener hands out net.Pipe ends, whose writes block until the other
// end reads: the slowest possible client.
type clPipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (p *clPipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *clPipeListener) Close() error   { p.once.Do(func() { close(p.done) }); return nil }
func (p *clPipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (p *clPipeListener) dial() net.Conn {
	server, client := net.Pipe()
	p.conns <- server
	return client
}

func TestConnLimiterSlowClientDoesNotBlockAccept(t *testing.T) {
	p := &clPipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	refused := make(chan string, 1)
	ln := NewConnLimiter(1, 0).Listener(p, clHost, func(r string) { refused <- r })
	defer ln.Close()
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	p.dial()
	first := <-accepted
	slow := p.dial() // refused; its 421 write blocks as nobody reads yet
	<-refused
	first.Close()
	third := p.dial()
	defer third.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(refuseWriteTimeout / 2):
		t.Fatal("Accept blocked behind a refused client that does not read")
	}
	clExpectRefused(t, slow)
}

func TestConnLimiterTLS(t *testing.T) {
	store, err := LoadCert("", "", t.TempDir(), []string{clHost}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := NewConnLimiter(1, 1)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(l.Listener(inner, clHost, nil), ServerTLSConfig(store))
	defer ln.Close()
	go clEchoOnce(ln)

	roots := x509.NewCertPool()
	roots.AddCert(store.Leaf())
	c, err := tls.Dial("tcp", inner.Addr().String(), &tls.Config{RootCAs: roots, ServerName: clHost})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "EHLO x\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "EHLO x\r\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
	clEventually(t, func() bool { return l.Open() == 0 })
}

// clEchoOnce echoes one line on the first connection, then closes it.
func clEchoOnce(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil {
		_, _ = io.WriteString(c, line)
	}
}

func TestIPKey(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 25}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 25}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 587}, "2001:db8::1"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 25, Zone: "eth0"}, "fe80::1"},
		{clAddr("[2001:db8::2%eth0]:25"), "2001:db8::2"},
		{clAddr("198.51.100.1:1234"), "198.51.100.1"},
		{clAddr("pipe"), "pipe"},
		{nil, ""},
	}
	for _, tt := range tests {
		name := "nil"
		if tt.addr != nil {
			name = tt.addr.String()
		}
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			if got := ipKey(tt.addr); got != tt.want {
				t.Errorf("ipKey(%v) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

// clAddr is a net.Addr of another kind than *net.TCPAddr.
type clAddr string

func (a clAddr) Network() string { return "test" }
func (a clAddr) String() string  { return string(a) }
