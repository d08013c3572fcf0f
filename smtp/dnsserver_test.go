package smtp

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// testDNS is an authoritative DNS server on loopback (UDP and TCP on one
// port) serving the TXT records a test sets; every other name is NXDOMAIN.
// It is a copy of mailauth's test helper, reduced to what the route tests
// need.
type testDNS struct {
	Addr string

	mu  sync.Mutex
	txt map[string][]string // lower-case FQDN → records (values joined)
}

// startTestDNS starts a server, stopped when the test ends.
func startTestDNS(t *testing.T) *testDNS {
	t.Helper()
	z := &testDNS{txt: map[string][]string{}}
	pc, ln := dnsListenSamePort(t)
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: z}, {Listener: ln, Handler: z}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	z.Addr = pc.LocalAddr().String()
	return z
}

// dnsListenSamePort opens UDP and TCP sockets on the same loopback port
// (a truncated UDP answer is retried over TCP).
func dnsListenSamePort(t *testing.T) (net.PacketConn, net.Listener) {
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

// TXT sets the TXT records of name.
func (z *testDNS) TXT(name string, values ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.txt[dns.Fqdn(strings.ToLower(name))] = values
}

func (z *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
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
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

func (z *testDNS) answer(m *dns.Msg, q dns.Question) {
	z.mu.Lock()
	defer z.mu.Unlock()
	values, ok := z.txt[strings.ToLower(q.Name)]
	switch {
	case ok && q.Qtype == dns.TypeTXT:
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 60, Rrtype: dns.TypeTXT}
		for _, v := range values {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: dnsSplitTXT(v)})
		}
	case ok:
		// the name exists, without records of this type: NODATA
	default:
		m.Rcode = dns.RcodeNameError
	}
}

// dnsSplitTXT splits a value into character-strings of at most 255 bytes.
func dnsSplitTXT(v string) []string {
	var out []string
	for len(v) > 255 {
		out, v = append(out, v[:255]), v[255:]
	}
	return append(out, v)
}

// blackholeDNS returns the address of a UDP "server" that reads queries and
// never answers: every look-up times out.
func blackholeDNS(t *testing.T) string {
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
