package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tokenproxy/tokenproxy/test/tools"
)

// consoleBrowser is a headless Chromium (Debian's, installed by
// test/tools/install-chromium.sh) driven over the DevTools protocol, with
// its profile and disk cache in a folder the test scans afterwards, and
// every URL it requested recorded.
type consoleBrowser struct {
	t       *testing.T
	ctx     context.Context
	base    string // https://<admin>
	shots   string // where screenshots go
	profile string
	mu      sync.Mutex
	urls    []string
}

func newConsoleBrowser(t *testing.T, admin, shots string) (*consoleBrowser, func()) {
	t.Helper()
	b := &consoleBrowser{t: t, base: "https://" + admin, shots: shots, profile: filepath.Join(t.TempDir(), "profile")}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(tools.Chromium(t)),
		chromedp.UserDataDir(b.profile),
		chromedp.Flag("disk-cache-dir", filepath.Join(b.profile, "cache")),
		// The admin listener's certificate is self-signed (the CLI pins
		// it; a browser would be told to trust it once).
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 5*time.Minute)
	b.ctx = ctx
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.urls = append(b.urls, e.Request.URL)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("chromium: network.enable: %v", err)
	}
	return b, func() { cancelT(); cancelC(); cancelA() }
}

// open navigates to a console path and returns the HTTP status.
func (b *consoleBrowser) open(path string) int64 {
	b.t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(b.base+path))
	if err != nil {
		b.t.Fatalf("open %s: %v", path, err)
	}
	return resp.Status
}

// click clicks what sel selects, as a person would (a mouse event, not a
// script), waits for the page it loads, and returns its status.
func (b *consoleBrowser) click(sel string) int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
	return resp.Status
}

// typeIn types text into a field with key events.
func (b *consoleBrowser) typeIn(sel, text string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
		b.t.Fatalf("type into %s: %v", sel, err)
	}
}

// html is the page's markup, read through the DOM (works with JavaScript off).
func (b *consoleBrowser) html() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		b.t.Fatalf("read the page: %v", err)
	}
	return s
}

// shot writes a full-page PNG screenshot to the screenshot folder.
func (b *consoleBrowser) shot(name string) []byte {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return png
}

func (b *consoleBrowser) signIn(token string) {
	b.t.Helper()
	b.open("/console/signin")
	b.typeIn("#token", token)
	if code := b.click(`form[action="/console/signin"] button`); code != 200 || !strings.Contains(b.html(), "Signed in as") {
		b.t.Fatalf("sign-in: %d\n%s", code, b.html())
	}
}

func (b *consoleBrowser) signOut() {
	b.t.Helper()
	if code := b.click(".signout button"); code != 200 || !strings.Contains(b.html(), "Bearer token") {
		b.t.Fatalf("sign-out: %d", code)
	}
}

// mustSee fails unless the page holds every want.
func (b *consoleBrowser) mustSee(what string, want ...string) string {
	b.t.Helper()
	h := b.html()
	for _, w := range want {
		if !strings.Contains(h, w) {
			b.t.Fatalf("%s: the page lacks %q:\n%s", what, w, h)
		}
	}
	return h
}

// consoleServe starts `proxy serve` with compliance on and three
// principals (alice: officer, sam: auditor, otto: operator), extra lines
// added under compliance:.
func consoleServe(t *testing.T, extra string) (served, *proxyProc, int, string, string) {
	t.Helper()
	crmPort, crmDir := startSink(t)
	smartPort, smartDir := startSink(t)
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), fmt.Sprintf("127.0.0.1:%d", smartPort), "info",
		"client_networks: [127.0.0.0/8]")
	appendConfig(t, sv.config, complianceConfig(extra, "alice:officer", "sam:auditor", "otto:operator"))
	return sv, startServe(t, sv.config, sv.admin), crmPort, crmDir, smartDir
}

var crmTokenRE = regexp.MustCompile(`X-Mail-Args: <(t1-[a-z2-7]+@relay\.company\.example)>`)

// crmTokens is the set of sender tokens in the CRM sink's messages.
func crmTokens(t *testing.T, dir string) map[string]bool {
	out := map[string]bool{}
	for _, m := range sinkMessages(t, dir) {
		if tok := crmTokenRE.FindStringSubmatch(m); tok != nil {
			out[tok[1]] = true
		}
	}
	return out
}

// inboundToken sends a customer message in (the CRM sink's nth) and
// returns the sender's token, the one no earlier message carried.
func inboundToken(t *testing.T, sv served, crmDir, from string, n int) string {
	t.Helper()
	before := crmTokens(t, crmDir)
	code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.inPort), "--tls", "--ehlo", "mail.example.com",
		"--from", from, "--to", "support@company.example", "--header", "Subject: order", "--body", "hello")
	if code != 0 {
		t.Fatalf("inbound from %s: %s", from, out)
	}
	waitSink(t, crmDir, n)
	for tok := range crmTokens(t, crmDir) {
		if !before[tok] {
			return tok
		}
	}
	t.Fatalf("no new token at the CRM after the message from %s", from)
	return ""
}

// reply sends the CRM's answer to a token through the outbound route.
func reply(t *testing.T, sv served, token string) (int, string) {
	return swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.outPort), "--tls", "--ehlo", "crm.example",
		"--from", "support@crm.example", "--to", token, "--header", "Subject: re: order", "--body", "answer")
}

// shotsDir is the folder the console screenshots go to: $TOKENPROXY_CONSOLE_SHOTS,
// or tokenproxy-console-screenshots in the temporary directory. They are
// for review, not compared pixel by pixel. With TOKENPROXY_UPDATE_DOCS=1
// the overview's also replaces docs/console-overview.png.
func shotsDir(t *testing.T) string {
	dir := os.Getenv("TOKENPROXY_CONSOLE_SHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tokenproxy-console-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("console screenshots in %s", dir)
	return dir
}

// TestConsoleBrowser drives the compliance console in a real headless
// Chromium against a real `proxy serve` (bbolt token map, signed audit
// trail, smtp-sink downstreams, swaks clients): each role signs in; the
// auditor reads, filters and verifies the trail and is refused the
// Subject page (403, audited); the officer looks up, resolves, exports and
// erases a subject, after which the outbound route refuses its token
// (550 5.1.1); a form without its CSRF token is refused; with JavaScript
// off the officer still resolves and erases; the officer exports and
// deletes an attachment the inbound route stripped into the quarantine
// (console_quarantine_test.go). Then neither the browser's profile and
// cache, nor the proxy's log, nor any URL the browser asked for holds a
// customer address.
func TestConsoleBrowser(t *testing.T) {
	const jane, bob = "jane.doe@example.com", "bob.roe@example.org"
	sv, p, _, crmDir, smartDir := consoleServe(t, consoleStrip)
	janeTok := inboundToken(t, sv, crmDir, jane, 1)
	bobTok := inboundToken(t, sv, crmDir, bob, 2)
	if code, out := reply(t, sv, janeTok); code != 0 {
		t.Fatalf("outbound before erasure: %s", out)
	}
	waitSink(t, smartDir, 1)
	if code, out := reply(t, sv, "t1-aaaaaaaaaaaaaaaa@relay.company.example"); code == 0 || !strings.Contains(out, "550 5.1.1") {
		t.Fatalf("outbound to an unknown token: exit %d\n%s", code, out)
	}

	shots := shotsDir(t)
	b, closeBrowser := newConsoleBrowser(t, sv.admin, shots)
	defer closeBrowser()
	downloads, seen := t.TempDir(), map[string]bool{}
	if _, err := chromedp.CallBrowser(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}

	t.Run("operator", func(t *testing.T) {
		b.t = t
		if code := b.open("/console/overview"); code != 200 || !strings.Contains(b.html(), "Bearer token") {
			t.Fatalf("without a session the overview sends to sign in: %d", code)
		}
		b.shot("signin")
		b.signIn("otto-token")
		b.mustSee("overview", "inbound route, last hour", "<svg", "unknown tokens seen", "Last signed checkpoint")
		png := b.shot("overview")
		if os.Getenv("TOKENPROXY_UPDATE_DOCS") == "1" {
			if err := os.WriteFile("../../docs/console-overview.png", png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b.open("/console/principals")
		b.mustSee("principals", "alice", "officer", "0 of 50")
		b.shot("principals")
		if code := b.open("/console/audit"); code != 403 {
			t.Errorf("operator opens the trail: %d, want 403", code)
		}
		b.signOut()
	})

	t.Run("auditor", func(t *testing.T) {
		b.t = t
		b.signIn("sam-token")
		b.open("/console/audit")
		b.mustSee("trail", "token.created", janeTok)
		b.shot("audit")
		b.open("/console/audit?event=token.created")
		h := b.mustSee("trail filtered", bobTok)
		if strings.Contains(h, "<td>audit.read</td>") {
			t.Error("the event filter lets audit.read records through")
		}
		if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(`a[href^="/console/audit/export"]`))); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(waitDownload(t, downloads, seen)), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], `"event":"token.created"`) || !strings.Contains(lines[1], bobTok) {
			t.Errorf("the filtered export:\n%s", strings.Join(lines, "\n"))
		}
		b.click(`table.records a`)
		b.mustSee("record", "Previous hash", "token.created")
		b.shot("audit-record")
		b.open("/console/audit")
		b.click(`form[action="/console/audit/verify"] button`)
		for i := 0; ; i++ { // the page reloads itself when the verification ends
			// A read while the page reloads finds no document: try again.
			h, _ := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
			if strings.Contains(h, "Verified.") {
				break
			}
			if i > 1200 { // two minutes: a shared machine may be slow
				t.Fatalf("verification did not end:\n%s", h)
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.mustSee("verification", "signatures checked")
		b.shot("audit-verify")
		if code := b.open("/console/subject"); code != 403 {
			t.Fatalf("auditor opens Subject: %d, want 403", code)
		}
		b.mustSee("403 page", "needs the officer role", "recorded in the audit trail")
		b.shot("subject-403")
		b.signOut()
	})

	t.Run("officer", func(t *testing.T) {
		b.t = t
		b.signIn("alice-token")
		b.open("/console/subject")
		if !strings.Contains(b.html(), `<html lang="en" class="js">`) {
			t.Error("the console's script did not run with JavaScript on")
		}
		b.shot("subject")
		b.typeIn("#address", jane)
		b.typeIn("#lookup-reason", "ticket 4711: subject access request")
		if code := b.click(`form[action="/console/subject/lookup"] button`); code != 200 {
			t.Fatalf("lookup: %d\n%s", code, b.html())
		}
		h := b.mustSee("lookup", janeTok, "compliance.lookup", "principal:alice")
		if strings.Contains(h, jane) {
			t.Error("the lookup page echoes the typed address")
		}
		b.shot("subject-lookup")

		b.typeIn("#export-reason", "ticket 4711: Art. 15 export")
		if code := b.click(`form[action="/console/subject/export"] button`); code != 200 {
			t.Fatalf("export: %d", code)
		}
		b.mustSee("export", "Export ready", "compliance.export")
		b.shot("subject-export")
		if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS("#download"))); err != nil {
			t.Fatal(err)
		}
		export := waitDownload(t, downloads, seen)
		if !strings.Contains(export, janeTok) || !strings.Contains(export, `"audit"`) {
			t.Errorf("the export lacks the token or the audit records:\n%s", export)
		}

		b.typeIn("#token", janeTok)
		b.typeIn("#resolve-reason", "ticket 4711: agent needs the address")
		if code := b.click(`form[action="/console/subject/resolve"] button`); code != 200 {
			t.Fatalf("resolve: %d\n%s", code, b.html())
		}
		b.mustSee("resolve", "Token resolved", jane, "compliance.resolve")
		b.shot("subject-resolve")

		// CSRF: the same form with its token taken out is refused.
		b.open("/console/subject")
		if err := chromedp.Do(b.ctx, chromedp.Evaluate[chromedp.Void](
			`document.querySelector('form[action="/console/subject/resolve"] input[name=csrf]').remove()`)); err != nil {
			t.Fatal(err)
		}
		b.typeIn("#token", janeTok)
		b.typeIn("#resolve-reason", "ticket 4711: again")
		if code := b.click(`form[action="/console/subject/resolve"] button`); code != 403 {
			t.Fatalf("resolve without the CSRF token: %d, want 403", code)
		}
		b.mustSee("csrf refusal", "no valid form token", "Nothing was done")
		b.shot("csrf-refused")

		b.open("/console/subject")
		b.typeIn("#address", jane)
		b.typeIn("#lookup-reason", "ticket 4711: erasure request")
		b.click(`form[action="/console/subject/lookup"] button`)
		b.typeIn("#confirm", jane)
		b.typeIn("#erase-reason", "ticket 4711: Art. 17 erasure")
		if code := b.click(`form[action="/console/subject/erase"] button`); code != 200 {
			t.Fatalf("erase: %d\n%s", code, b.html())
		}
		h = b.mustSee("erase", "Subject erased", janeTok, "compliance.erase")
		if strings.Contains(h, jane) {
			t.Error("the erase page echoes the typed address")
		}
		b.shot("subject-erase")
		if code, out := reply(t, sv, janeTok); code == 0 || !strings.Contains(out, "550 5.1.1") {
			t.Fatalf("outbound to the erased token: exit %d\n%s", code, out)
		}
	})

	t.Run("officer without JavaScript", func(t *testing.T) {
		b.t = t
		if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled,
			emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		b.open("/console/subject")
		if strings.Contains(b.html(), `class="js"`) {
			t.Fatal("the console's script ran with JavaScript off")
		}
		b.typeIn("#token", bobTok)
		b.typeIn("#resolve-reason", "ticket 4712: agent needs the address")
		if code := b.click(`form[action="/console/subject/resolve"] button`); code != 200 {
			t.Fatalf("resolve: %d", code)
		}
		b.mustSee("resolve without JavaScript", "Token resolved", bob)
		b.typeIn("#address", bob)
		b.typeIn("#lookup-reason", "ticket 4712: erasure request")
		b.click(`form[action="/console/subject/lookup"] button`)
		b.typeIn("#confirm", bob)
		b.typeIn("#erase-reason", "ticket 4712: Art. 17 erasure")
		if code := b.click(`form[action="/console/subject/erase"] button`); code != 200 {
			t.Fatalf("erase: %d", code)
		}
		b.mustSee("erase without JavaScript", "Subject erased", bobTok)
		b.shot("subject-erase-nojs")
		if code, out := reply(t, sv, bobTok); code == 0 || !strings.Contains(out, "550 5.1.1") {
			t.Fatalf("outbound to the erased token: exit %d\n%s", code, out)
		}
		if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled,
			emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
			t.Fatal(err)
		}
		b.signOut()
	})

	t.Run("officer quarantine", func(t *testing.T) { // console_quarantine_test.go
		b.t = t
		consoleQuarantine(t, b, sv, crmDir, downloads, seen, 3)
	})

	trail, err := os.ReadFile(filepath.Join(sv.dataDir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"event":"compliance.erase","actor":"principal:alice"`,
		`"event":"compliance.export","actor":"principal:alice"`,
		`"event":"compliance.resolve","actor":"principal:alice"`,
		`"event":"audit.verify","actor":"principal:sam"`,
		`"event":"compliance.refused","actor":"principal:sam"`,
	} {
		if !strings.Contains(string(trail), want) {
			t.Errorf("the trail lacks %s", want)
		}
	}
	closeBrowser() // Chromium writes its profile out as it exits
	time.Sleep(500 * time.Millisecond)
	noAddressLeft(t, b, p, jane, bob, quarantineSender)
}

// waitDownload returns the content of the first finished download not
// in seen, and adds it there.
func waitDownload(t *testing.T, dir string, seen map[string]bool) string {
	t.Helper()
	for i := 0; i < 300; i++ {
		es, _ := os.ReadDir(dir)
		for _, e := range es {
			if !strings.HasSuffix(e.Name(), ".crdownload") && !seen[e.Name()] {
				seen[e.Name()] = true
				if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && len(b) > 0 {
					return string(b)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no download finished")
	return ""
}

// noAddressLeft scans the browser's profile and cache (as UTF-8 and
// UTF-16, as Chromium stores both), the proxy's log and every URL the
// browser requested for the customers' addresses.
func noAddressLeft(t *testing.T, b *consoleBrowser, p *proxyProc, addrs ...string) {
	t.Helper()
	var files int
	filepath.WalkDir(b.profile, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		files++
		low := strings.ToLower(string(data))
		for _, a := range addrs {
			if strings.Contains(low, a) || strings.Contains(string(data), utf16le(a)) {
				t.Errorf("the browser's profile holds %s in %s", a, path)
			}
		}
		return nil
	})
	if files == 0 {
		t.Errorf("the browser's profile %s is empty: nothing was scanned", b.profile)
	}
	logs := strings.ToLower(p.log.String())
	b.mu.Lock()
	urls := strings.ToLower(strings.Join(b.urls, "\n"))
	n := len(b.urls)
	b.mu.Unlock()
	if n == 0 {
		t.Error("no URL recorded")
	}
	for _, a := range addrs {
		local, _, _ := strings.Cut(a, "@")
		if strings.Contains(logs, a) {
			t.Errorf("the proxy's log holds %s", a)
		}
		if strings.Contains(urls, local) {
			t.Errorf("a URL the browser requested holds %s:\n%s", a, urls)
		}
	}
}

func utf16le(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
		b.WriteByte(0)
	}
	return b.String()
}

// TestConsoleSessionExpiry: a session idle for console.idle_timeout ends;
// the next page asks to sign in again, and says why.
func TestConsoleSessionExpiry(t *testing.T) {
	sv, _, _, _, _ := consoleServe(t, "  console: {idle_timeout: 5s}\n")
	b, closeBrowser := newConsoleBrowser(t, sv.admin, shotsDir(t))
	defer closeBrowser()
	b.signIn("alice-token")
	if code := b.open("/console/subject"); code != 200 {
		t.Fatalf("subject: %d", code)
	}
	time.Sleep(6 * time.Second)
	b.open("/console/subject")
	b.mustSee("after the idle timeout", "Your session ended", "Bearer token")
	b.shot("session-ended")
}
