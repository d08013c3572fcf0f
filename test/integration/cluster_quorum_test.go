package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
)

// TestClusterQuorumLoss runs a node on a 3-member etcd and kills two
// members (SIGKILL, so the quorum is gone at a known instant): a new
// sender gets 451 4.3.0 within about request_timeout (1 s), a known
// sender is still relayed from the cache for known_sender_grace (4 s
// here) and gets 451 4.3.0 after it, the CRM's replies get 451 4.3.0 once
// the node lost freshness (1 s), and /readyz is 503. With the members
// back, /readyz is 200 and all three are relayed again. The times are
// measured and logged.
func TestClusterQuorumLoss(t *testing.T) {
	cl := etcdtest.Start(t)
	crm, smart := startMemSink(t), startMemSink(t)
	a := clusterNode(t, crm, smart, cl.Endpoints(), "node-a", filepath.Join(t.TempDir(), "keyring.json"))
	const grace = 4 * time.Second
	rewriteConfig(t, a.config, "node_id: node-a}", fmt.Sprintf("node_id: node-a, known_sender_grace: %s}", grace))
	p := startServe(t, a.config, a.admin)
	ready := "https://" + a.admin + "/readyz" // the compliance API makes the admin listener HTTPS

	if r := sendCustomer(a.inPort, "known.sender@example.com", "<k1@mail.example.com>"); r != "250" {
		t.Fatalf("known sender before the loss: %s\n%s", r, p.log.String())
	}
	tok := tokenRE.FindString(sinkByID(crm.messages())["<k1@mail.example.com>"])
	if r := sendReply(t, a, tok, "<r0@crm.example>"); tok == "" || r != "250" {
		t.Fatalf("reply to %q before the loss: %s", tok, r)
	}

	killed := time.Now()
	cl.Members[1].Kill()
	cl.Members[2].Kill()

	begin := time.Now()
	r := sendCustomer(a.inPort, "new.sender@example.com", "<n1@mail.example.com>")
	newTook := time.Since(begin)
	if !strings.HasPrefix(r, "451 4.3.0") || newTook > 5*time.Second {
		t.Fatalf("new sender without quorum: %q after %v; want 451 4.3.0 within about request_timeout", r, newTook)
	}
	if r := sendCustomer(a.inPort, "known.sender@example.com", "<k2@mail.example.com>"); r != "250" {
		t.Fatalf("known sender within the grace: %s\n%s", r, p.log.String())
	}
	if got := tokenRE.FindString(sinkByID(crm.messages())["<k2@mail.example.com>"]); got != tok {
		t.Fatalf("known sender within the grace got token %q, want %s", got, tok)
	}

	stale := waitReady(t, ready, 503, 10*time.Second).Sub(killed)
	begin = time.Now()
	r = sendReply(t, a, tok, "<r1@crm.example>")
	replyTook := time.Since(begin)
	if !strings.HasPrefix(r, "451 4.3.0") {
		t.Fatalf("reply on a node that lost freshness: %q; want 451 4.3.0", r)
	}
	if _, ok := sinkByID(smart.messages())["<r1@crm.example>"]; ok {
		t.Fatal("a reply refused with 451 reached the smarthost")
	}
	t.Logf("quorum lost: new sender 451 after %v; /readyz 503 %v after the kill; reply 451 after %v",
		newTook.Round(time.Millisecond), stale.Round(time.Millisecond), replyTook.Round(time.Millisecond))

	// The grace runs from when freshness was lost; poll until the known
	// sender is refused.
	for i := 3; ; i++ {
		r := sendCustomer(a.inPort, "known.sender@example.com", fmt.Sprintf("<k%d@mail.example.com>", i))
		if strings.HasPrefix(r, "451 4.3.0") {
			t.Logf("known sender relayed within the grace, 451 4.3.0 answered %v after the kill (freshness 1 s + grace %v + a 1 s store look-up)",
				time.Since(killed).Round(time.Millisecond), grace)
			break
		}
		if r != "250" || time.Since(killed) > stale+grace+5*time.Second {
			t.Fatalf("known sender %v after the kill: %q; want 250 within the grace, 451 4.3.0 after", time.Since(killed), r)
		}
		time.Sleep(250 * time.Millisecond)
	}

	restarted := time.Now()
	var wg sync.WaitGroup
	for _, i := range []int{1, 2} {
		wg.Add(1)
		go func() { defer wg.Done(); cl.Restart(t, i) }()
	}
	wg.Wait()
	back := waitReady(t, ready, 200, 30*time.Second).Sub(restarted)
	t.Logf("members restarted: /readyz 200 %v after the restart began", back.Round(time.Millisecond))
	for i, send := range []func() string{
		func() string { return sendCustomer(a.inPort, "new.sender@example.com", "<n2@mail.example.com>") },
		func() string { return sendCustomer(a.inPort, "known.sender@example.com", "<k-back@mail.example.com>") },
		func() string { return sendReply(t, a, tok, "<r2@crm.example>") },
	} {
		if r := send(); r != "250" {
			t.Fatalf("after the quorum came back, message %d: %s\n%s", i, r, p.log.String())
		}
	}
	checkClusterMetrics(t, a.admin)
	stopServe(t, p)
	if strings.Contains(strings.ToLower(p.log.String()), "sender@example.com") {
		t.Errorf("the node's log names a customer:\n%s", p.log.String())
	}
}

// waitReady polls url until it answers code and returns when it did.
func waitReady(t *testing.T, url string, code int, limit time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got, _ := httpGet(url)
		if got == code {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d after %v; want %d", url, got, limit, code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkClusterMetrics reads /metrics of a fresh cluster node: the store's
// and the cache's metrics are there, and no address is.
func checkClusterMetrics(t *testing.T, admin string) {
	t.Helper()
	code, metrics := httpGet("https://" + admin + "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{"tokenproxy_store_fresh 1", "tokenproxy_store_freshness_age_seconds ",
		`tokenproxy_etcd_request_duration_seconds_count{op="view"}`, `tokenproxy_etcd_request_duration_seconds_count{op="commit"}`,
		`tokenproxy_etcd_request_duration_seconds_count{op="update"}`, "tokenproxy_etcd_watch_restarts_total ",
		"tokenproxy_known_cache_hits_total ", "tokenproxy_known_cache_misses_total "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, "@example.com") || strings.Contains(metrics, "relay.company.example") {
		t.Error("/metrics names an address or a token")
	}
}
