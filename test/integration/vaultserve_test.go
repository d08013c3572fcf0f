package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/vaulttest"
)

// TestServeKeepsFlowingWhenVaultDies runs `proxy serve` with its keys in
// a real Vault (transit), sends 300 messages from 300 new customers over 4
// connections at a time, and kills Vault with SIGKILL after the first 100
// were accepted. The data keys were unwrapped at start, so every message
// still gets 250 and reaches the CRM, new customers' tokens included, and
// the outbound route resolves tokens made during the outage (DESIGN.md:
// "a Vault outage after start does not stop mail"). A restart without
// Vault then refuses, naming Vault's address and the cause (the library
// side of this is TestVaultStoppedAfterStart, the CLI side
// TestBinaryRefusesWithoutVault).
func TestServeKeepsFlowingWhenVaultDies(t *testing.T) {
	srv := vaulttest.Start(t)
	key := createTransitKey(t, srv, "serve-outage")
	crm, smart := startMemSink(t), startMemSink(t)
	sv := writeServeConfig(t, crm.addr, smart.addr, "info", "client_networks: [127.0.0.0/8]")
	tokenFile := filepath.Join(filepath.Dir(sv.config), "vault-token")
	if err := os.WriteFile(tokenFile, []byte(srv.RootToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	appendConfig(t, sv.config, fmt.Sprintf(`keys:
  provider: vault
  vault:
    address: "%s"
    key: %s
    auth: {method: token, token_file: %s}
`, srv.Addr, key, tokenFile))
	p := startServe(t, sv.config, sv.admin)

	const total, clients, killAfter = 300, 4, 100
	const domain = "customer-vault.example"
	var next, done atomic.Int64
	var killedAt atomic.Int64 // messages started before the kill
	var mu sync.Mutex
	failures := map[string]string{} // Message-ID → reply other than 250
	sentAfterKill := map[string]string{}
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				from, id := fmt.Sprintf("c%d@%s", i, domain), fmt.Sprintf("<vault-%d@mail.example.com>", i)
				afterKill := false
				select {
				case <-killed:
					afterKill = true
				default:
				}
				r := sendCustomer(sv.inPort, from, id)
				mu.Lock()
				if r != "250" {
					failures[id] = r
				} else if afterKill {
					sentAfterKill[id] = from
				}
				mu.Unlock()
				done.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for done.Load() < killAfter {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages done in 60 s:\n%s", done.Load(), p.log.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	srv.Kill()
	killedAt.Store(next.Load())
	close(killed)
	wg.Wait()
	if code, _ := httpGet(srv.Addr + "/v1/sys/health"); code != 0 {
		t.Fatalf("Vault still answers after the kill: %d", code)
	}
	for id, r := range failures {
		t.Errorf("%s: %s", id, r)
	}
	byID := sinkByID(crm.messages())
	for i := 1; i <= total; i++ {
		if _, ok := byID[fmt.Sprintf("<vault-%d@mail.example.com>", i)]; !ok {
			t.Errorf("message %d is not at the CRM", i)
		}
	}
	t.Logf("Vault killed after %d messages had started; %d of %d accepted, %d started after the kill, CRM holds %d",
		killedAt.Load(), total-len(failures), total, len(sentAfterKill), len(byID))
	if len(sentAfterKill) < 100 {
		t.Fatalf("only %d messages were sent after the kill; the test proves little", len(sentAfterKill))
	}

	// Tokens made during the outage resolve on the outbound route.
	outage := map[string]string{}
	for id, from := range sentAfterKill {
		if len(outage) == 20 {
			break
		}
		outage[tokenRE.FindString(byID[id])] = from
	}
	checkOutboundResolves(t, sv, smart, outage)

	stopServe(t, p)
	if strings.Contains(p.log.String(), domain) {
		t.Errorf("the proxy log names a customer address")
	}
	r := runProxyBounded(t, 30*time.Second, sv.config, "serve")
	t.Logf("restart without Vault: exit %d, stderr:\n%s", r.code, lastLines(r.log, 1))
	if r.code != 1 || !strings.Contains(lastLines(r.log, 1), srv.Addr) || !strings.Contains(r.log, "connection refused") {
		t.Fatalf("proxy serve without Vault: exit %d, want 1 with a message naming %s and the cause:\n%s", r.code, srv.Addr, r.log)
	}
	noPanicTrace(t, "stderr", r.log)
}

// appendConfig adds top-level sections to a configuration file that
// writeServeConfig wrote (it sets no keys: or smtp: section).
func appendConfig(t *testing.T, config, yaml string) {
	t.Helper()
	f, err := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
}
