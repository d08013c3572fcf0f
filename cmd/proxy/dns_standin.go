package main

import (
	"errors"
	"net"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsStandin is a DNS server on loopback UDP that answers TXT and MX
// questions from records it is given; other names are NXDOMAIN. The demo
// uses it as the customer's DNS, so that the inbound route's SPF, DKIM and
// DMARC check runs offline and answers at once; tests use it as the DNS
// that `proxy dns --check` reads.
type dnsStandin struct {
	pc net.PacketConn

	mu  sync.Mutex
	txt map[string][]string // lower-case FQDN → values
	mx  map[string][]string // lower-case FQDN → host names, by preference
}

func startDNSStandin() (*dnsStandin, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &dnsStandin{pc: pc, txt: map[string][]string{}, mx: map[string][]string{}}
	go d.serve()
	return d, nil
}

func (d *dnsStandin) addr() string { return d.pc.LocalAddr().String() }

func (d *dnsStandin) close() { d.pc.Close() }

// setTXT sets the TXT records of name.
func (d *dnsStandin) setTXT(name string, values ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[dnsKey(name)] = values
}

// setMX sets the MX records of name.
func (d *dnsStandin) setMX(name string, hosts ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mx[dnsKey(name)] = hosts
}

func dnsKey(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

// serve answers until close.
func (d *dnsStandin) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		d.answer(buf[:n], from)
	}
}

// answer replies to one query; one it cannot parse gets no answer, and a
// panic on a malformed one ends neither the server nor the process.
func (d *dnsStandin) answer(query []byte, from net.Addr) {
	defer func() { recover() }()
	if resp, err := d.reply(query); err == nil {
		d.pc.WriteTo(resp, from)
	}
}

// reply builds the answer to one query (RFC 1035 §4.1).
func (d *dnsStandin) reply(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	txt, hasTXT := d.txt[strings.ToLower(q.Name.String())]
	mx, hasMX := d.mx[strings.ToLower(q.Name.String())]
	d.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !hasTXT && !hasMX {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if err := errors.Join(b.StartQuestions(), b.Question(q), b.StartAnswers()); err != nil {
		return nil, err
	}
	if err := addAnswers(&b, q, txt, mx); err != nil {
		return nil, err
	}
	return b.Finish()
}

// addAnswers adds the records of q's type; a name with records of other
// types only gets none (NODATA).
func addAnswers(b *dnsmessage.Builder, q dnsmessage.Question, txt, mx []string) error {
	hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	switch q.Type {
	case dnsmessage.TypeTXT:
		for _, v := range txt {
			if err := b.TXTResource(hdr, dnsmessage.TXTResource{TXT: splitTXT(v)}); err != nil {
				return err
			}
		}
	case dnsmessage.TypeMX:
		for i, host := range mx {
			name, err := dnsmessage.NewName(dnsKey(host))
			if err != nil {
				return err
			}
			if err := b.MXResource(hdr, dnsmessage.MXResource{Pref: uint16(10 * (i + 1)), MX: name}); err != nil {
				return err
			}
		}
	}
	return nil
}

// splitTXT splits a value into character-strings of at most 255 bytes
// (RFC 1035 §3.3.14).
func splitTXT(v string) []string {
	var out []string
	for len(v) > 255 {
		out, v = append(out, v[:255]), v[255:]
	}
	return append(out, v)
}
