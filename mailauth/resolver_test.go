package mailauth

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

func TestResolverTXT(t *testing.T) {
	z := dnstest.Start(t)
	long := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 3000) // over UDP's 1232 bytes: truncated, then TCP
	z.TXT("long.example", long)
	z.TXT("two.example", "a", "b")
	z.A("aonly.example", "192.0.2.1")
	z.ServFail("servfail.example")
	r := NewResolver(z.Addr, 2*time.Second)

	tests := []struct {
		name       string
		want       []string
		notFound   bool
		temporary  bool
		isDNSError bool
	}{
		{name: "long.example", want: []string{long}},
		{name: "two.example.", want: []string{"a", "b"}},
		{name: "missing.example", notFound: true, isDNSError: true},
		{name: "aonly.example", notFound: true, isDNSError: true}, // NODATA
		{name: "servfail.example", temporary: true, isDNSError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.LookupTXT(context.Background(), tt.name)
			checkDNSError(t, err, tt.isDNSError, tt.notFound, tt.temporary)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("LookupTXT = %q, want %q", got, tt.want)
			}
		})
	}
}

func checkDNSError(t *testing.T, err error, want, notFound, temporary bool) {
	t.Helper()
	var de *net.DNSError
	if !want {
		if err != nil {
			t.Fatalf("err = %v", err)
		}
		return
	}
	// The libraries type-assert, so the error must be a *net.DNSError
	// itself, not one wrapped.
	de, ok := err.(*net.DNSError)
	if !ok {
		t.Fatalf("err = %#v, want a *net.DNSError", err)
	}
	if de.IsNotFound != notFound || de.Temporary() != temporary {
		t.Errorf("err = %+v: IsNotFound %v Temporary %v, want %v %v", de, de.IsNotFound, de.Temporary(), notFound, temporary)
	}
}

func TestResolverTimeout(t *testing.T) {
	r := NewResolver(dnstest.Blackhole(t), testTimeout)
	begin := time.Now()
	_, err := r.LookupTXT(context.Background(), "example.com")
	if elapsed := time.Since(begin); elapsed > 3*testTimeout {
		t.Errorf("look-up took %v with timeout %v", elapsed, testTimeout)
	}
	de, ok := err.(*net.DNSError)
	if !ok || !de.IsTimeout || !de.Temporary() {
		t.Errorf("err = %#v, want a temporary timeout *net.DNSError", err)
	}
}

func TestDNSErrorClassifies(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(live)
	cancel()
	tests := []struct {
		name                string
		ctx                 context.Context
		err                 error
		notFound, temporary bool
	}{
		{"not found stays permanent", live, &net.DNSError{Err: "no such host", IsNotFound: true}, true, false},
		{"not found after the deadline stays permanent", done, &net.DNSError{Err: "no such host", IsNotFound: true}, true, false},
		{"unclassified DNSError is temporary", live, &net.DNSError{Err: "cannot unmarshal DNS message"}, false, true},
		{"cancelled is temporary", done, &net.DNSError{Err: "operation was canceled"}, false, true},
		{"other error type is temporary", live, errors.New("dial: connection refused"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDNSError(t, dnsError(tt.ctx, "x.example", tt.err), true, tt.notFound, tt.temporary)
		})
	}
	if dnsError(live, "x.example", nil) != nil {
		t.Error("dnsError(nil) != nil")
	}
}

func TestNewResolverServer(t *testing.T) {
	tests := []struct{ server, want string }{
		{"127.0.0.1", "127.0.0.1:53"},
		{"::1", "[::1]:53"},
		{"[::1]", "[::1]:53"},
		{"127.0.0.1:5353", "127.0.0.1:5353"},
		{"ns.example", "ns.example:53"},
		{"", ""},
	}
	for _, tt := range tests {
		r := NewResolver(tt.server, 0)
		if r.server != tt.want || r.timeout != DefaultDNSTimeout {
			t.Errorf("NewResolver(%q, 0): server %q timeout %v, want %q %v", tt.server, r.server, r.timeout, tt.want, DefaultDNSTimeout)
		}
	}
}
