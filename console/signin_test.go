package console

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/test/testca"
)

// clientCert makes a CA and a client certificate for cn signed by it.
func clientCert(t *testing.T, cn string) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	ca := testca.New(t, "test CA")
	c, k := ca.IssuePEM(t, cn, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return ca.Pool(), pair
}

// TestConsoleSignInWithCertificate: a verified client certificate that
// names a principal is offered on the sign-in page and opens a session.
func TestConsoleSignInWithCertificate(t *testing.T) {
	h := newHarness(t)
	pool, cert := clientCert(t, "carol.ops.example")
	mux := http.NewServeMux()
	h.con.Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	c := *srv.Client()
	tr := c.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	c.Transport, c.Jar = tr, jar
	b := &browser{h: &harness{t: t, srv: srv, tokens: h.tokens}, c: &c}
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	p := b.do("GET", "/console/signin", nil)
	if !strings.Contains(p.body, "client certificate for <strong>carol</strong>") {
		t.Fatalf("the sign-in page does not offer the certificate:\n%s", p.body)
	}
	res := b.do("POST", "/console/signin", url.Values{"csrf": {p.csrf(t)}, "method": {"certificate"}})
	if res.code != http.StatusSeeOther || res.location != "/console/overview" {
		t.Fatalf("certificate sign-in = %d → %q\n%s", res.code, res.location, res.body)
	}
	if p := b.do("GET", "/console/audit", nil); p.code != http.StatusOK || !strings.Contains(p.body, "Signed in as <strong>carol</strong>") {
		t.Errorf("carol's trail page = %d", p.code)
	}
}

// TestConsoleClusterHealth: on etcd the overview says whether the node is
// fresh, without the cause (it goes to the log).
func TestConsoleClusterHealth(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		fresh error
		want  string
	}{
		{nil, "<strong>fresh</strong>"},
		{errors.New("etcd 10.0.0.1:2379: watch lost"), "<strong>not fresh</strong>"},
	} {
		con, err := New(Options{Service: h.svc, Fresh: func() error { return c.fresh }, Config: policy.Console{IdleTimeout: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		con.Register(mux)
		srv := httptest.NewTLSServer(mux)
		jar, _ := cookiejar.New(nil)
		cl := *srv.Client()
		cl.Jar = jar
		b := &browser{h: &harness{t: t, srv: srv, tokens: h.tokens}, c: &cl}
		b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		b.signIn("otto")
		p := b.do("GET", "/console/overview", nil)
		if !strings.Contains(p.body, c.want) || strings.Contains(p.body, "10.0.0.1") {
			t.Errorf("fresh=%v: overview lacks %q or shows the cause", c.fresh, c.want)
		}
		srv.Close()
		con.Close()
	}
}
