package integration

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
)

// consoleClient is an HTTPS client of a node's console with its own
// cookie jar, signed in with a bearer token.
type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

var consoleCSRFRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func signInConsole(t *testing.T, admin, token string) *consoleClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cc := &consoleClient{t: t, base: "https://" + admin, c: &http.Client{Jar: jar, Timeout: time.Minute,
		// The admin listener's certificate is self-signed; the connection
		// stays on loopback.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	code, page := cc.get("/console/signin")
	m := consoleCSRFRE.FindStringSubmatch(page)
	if code != 200 || m == nil {
		t.Fatalf("sign-in page: %d\n%s", code, page)
	}
	resp, err := cc.c.PostForm(cc.base+"/console/signin", url.Values{"csrf": {m[1]}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Signed in as") {
		t.Fatalf("sign-in: %d\n%s", resp.StatusCode, body)
	}
	return cc
}

func (cc *consoleClient) get(path string) (int, string) {
	cc.t.Helper()
	resp, err := cc.c.Get(cc.base + path)
	if err != nil {
		cc.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestConsoleClusterOverview runs `proxy serve` on a real 3-member etcd
// cluster: the console's overview names the node, says it is fresh and
// the cluster healthy, and lists every member with the leader; with two
// members stopped (no quorum) it shows them unreachable, the cluster not
// healthy and, within the freshness bound, the node not fresh, and the
// page still comes.
func TestConsoleClusterOverview(t *testing.T) {
	cl := etcdtest.Start(t)
	crm, smart := startMemSink(t), startMemSink(t)
	keyring := filepath.Join(t.TempDir(), "keyring.json")
	sv := clusterNode(t, crm, smart, cl.Endpoints(), "node-a", keyring)
	p := startServe(t, sv.config, sv.admin)
	leader := cl.Members[cl.Leader(t, 10*time.Second)]

	cc := signInConsole(t, sv.admin, "alice-token")
	code, page := cc.get("/console/overview")
	if code != 200 {
		t.Fatalf("overview: %d\n%s", code, page)
	}
	want := []string{`<strong class="node">node-a</strong>`, "<strong>fresh</strong>", "<strong>healthy</strong>", "3 etcd members",
		"<td>" + leader.Name + `</td><td class="wrap">` + leader.ClientURL + "</td><td>leader</td>"}
	for _, m := range cl.Members {
		want = append(want, "<td>"+m.Name+"</td>")
	}
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("the overview lacks %q", w)
		}
	}
	if strings.Contains(page, "unreachable") || strings.Contains(page, "NOT HEALTHY") {
		t.Error("the overview calls a healthy cluster unhealthy")
	}
	if t.Failed() {
		t.Fatalf("overview:\n%s\nlog:\n%s", page, p.log.String())
	}

	var stopped []string // two followers: the leader stays, without a quorum
	for _, m := range cl.Members {
		if m != leader && len(stopped) < 2 {
			m.Stop()
			stopped = append(stopped, m.Name)
		}
	}
	deadline := time.Now().Add(2 * time.Minute) // a shared machine may be slow
	for {
		start := time.Now()
		code, page = cc.get("/console/overview")
		took := time.Since(start)
		if code == 200 && strings.Contains(page, "<strong>not fresh</strong>") && strings.Contains(page, "NOT HEALTHY") &&
			strings.Count(page, "<strong>unreachable</strong>") == 2 {
			t.Logf("without quorum the overview took %s", took.Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("without quorum (%v stopped) the overview is %d:\n%s", stopped, code, page)
		}
		time.Sleep(500 * time.Millisecond)
	}
	checkNoAddress(t, "the proxy log", p.log.String())
}
