package smtp

import (
	"net/netip"
	"testing"
	"time"
)

func TestTokenRate(t *testing.T) {
	now := time.Unix(6000, 0)
	r := newTokenRate(NewTokenRate{PerIP: 5, Total: 8}, func() time.Time { return now })
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:2")
	steps := []struct {
		ip   netip.Addr
		n    int
		want string
	}{
		{a, 0, ""},           // known addresses only: never limited
		{a, 5, ""},           // up to the rate
		{a, 1, limitPerIP},   // one more
		{b, 2, ""},           // another client
		{v6a, 1, ""},         // total 8 reached
		{v6b, 1, limitTotal}, // over the total
	}
	for i, s := range steps {
		if got := r.take(s.ip, s.n); got != s.want {
			t.Fatalf("step %d: take(%v, %d) = %q, want %q", i, s.ip, s.n, got, s.want)
		}
	}
	r = newTokenRate(NewTokenRate{PerIP: 2, Total: 100}, func() time.Time { return now })
	if r.take(v6a, 2) != "" || r.take(v6b, 1) != limitPerIP {
		t.Fatal("two addresses of one IPv6 /64 are counted apart")
	}
	now = now.Add(time.Minute)
	if got := r.take(v6b, 2); got != "" {
		t.Fatalf("a new minute: take = %q, want the counts started over", got)
	}
}
