// Package dnstest is an authoritative DNS server on loopback for tests:
// the TXT and A records a test sets, SERVFAIL on demand, and a server that
// never answers (for timeouts). The mail authentication tests of smtp and
// mailauth share it.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is an authoritative DNS server on loopback (UDP and TCP on one
// port) serving the TXT and A records a test sets.
type Server struct {
	Addr string

	mu       sync.Mutex
	txt      map[string][]string // lower-case FQDN → records (values joined)
	a        map[string][]net.IP
	mx       map[string][]*dns.MX
	servfail map[string]bool
	queries  map[string]int // questions asked per lower-case FQDN
}

// Start starts a server, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	z := &Server{txt: map[string][]string{}, a: map[string][]net.IP{}, mx: map[string][]*dns.MX{}, servfail: map[string]bool{}, queries: map[string]int{}}
	pc, ln := listenSamePort(t)
	udp := &dns.Server{PacketConn: pc, Handler: z}
	tcp := &dns.Server{Listener: ln, Handler: z}
	for _, s := range []*dns.Server{udp, tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	z.Addr = pc.LocalAddr().String()
	return z
}

// listenSamePort opens UDP and TCP sockets on the same loopback port.
func listenSamePort(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil, nil
}

// TXT sets the TXT records of name (replacing earlier ones).
func (z *Server) TXT(name string, values ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.txt[dns.Fqdn(strings.ToLower(name))] = values
}

// Remove deletes the TXT records of name.
func (z *Server) Remove(name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	delete(z.txt, dns.Fqdn(strings.ToLower(name)))
}

// A sets the A records of name.
func (z *Server) A(name string, ips ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, ip := range ips {
		z.a[dns.Fqdn(strings.ToLower(name))] = append(z.a[dns.Fqdn(strings.ToLower(name))], net.ParseIP(ip))
	}
}

// MX adds an MX record of name: host at preference pref ("." for a null
// MX, RFC 7505).
func (z *Server) MX(name string, pref uint16, host string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	k := dns.Fqdn(strings.ToLower(name))
	z.mx[k] = append(z.mx[k], &dns.MX{Preference: pref, Mx: dns.Fqdn(host)})
}

// ServFail makes every question about name answer SERVFAIL.
func (z *Server) ServFail(name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.servfail[dns.Fqdn(strings.ToLower(name))] = true
}

// Queries reports how many questions about name (any type, UDP and TCP)
// the server was asked: what a cache saves.
func (z *Server) Queries(name string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.queries[dns.Fqdn(strings.ToLower(name))]
}

// ServeDNS answers from the records set (dns.Handler).
func (z *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) == 1 {
		z.answer(m, req.Question[0])
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size) // sets TC when it does not fit: the client retries over TCP
	}
	w.WriteMsg(m)
}

func (z *Server) answer(m *dns.Msg, q dns.Question) {
	z.mu.Lock()
	defer z.mu.Unlock()
	name := strings.ToLower(q.Name)
	z.queries[name]++
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 60, Rrtype: q.Qtype}
	_, hasTXT := z.txt[name]
	_, hasA := z.a[name]
	_, hasMX := z.mx[name]
	switch {
	case z.servfail[name]:
		m.Rcode = dns.RcodeServerFailure
	case q.Qtype == dns.TypeTXT && hasTXT:
		for _, v := range z.txt[name] {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: chunks(v)})
		}
	case q.Qtype == dns.TypeA && hasA:
		for _, ip := range z.a[name] {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip})
		}
	case q.Qtype == dns.TypeMX && hasMX:
		for _, mx := range z.mx[name] {
			m.Answer = append(m.Answer, &dns.MX{Hdr: hdr, Preference: mx.Preference, Mx: mx.Mx})
		}
	case hasTXT || hasA || hasMX:
		// the name exists, without records of this type: NODATA
	default:
		m.Rcode = dns.RcodeNameError
	}
}

// Blackhole returns the address of a UDP "server" that reads queries and
// never answers, for timeouts.
func Blackhole(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

// chunks cuts a TXT value into the character-strings of at most 255
// octets a TXT record is made of (RFC 1035 §3.3.14).
func chunks(v string) []string {
	out := []string{}
	for len(v) > 255 {
		out, v = append(out, v[:255]), v[255:]
	}
	return append(out, v)
}
