package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/quarantine"
)

const qref = "att-abcdefghijklmnop"

// keepAttachment puts an original into the harness's quarantine as the
// inbound route does: its name as the CRM saw it, its content naming the
// customer.
func (h *harness) keepAttachment(ref string) []byte {
	h.t.Helper()
	content := []byte("PK\x03\x04 Dear " + customer + ", your order.")
	if err := h.q.Put(context.Background(), quarantine.Item{Ref: ref, Kind: "office", Name: "letter.docx", Size: len(content)}, content); err != nil {
		h.t.Fatal(err)
	}
	return content
}

func TestConsoleQuarantineRoles(t *testing.T) {
	h := newHarness(t)
	h.keepAttachment(qref)
	for _, c := range []struct {
		who    string
		method string
		path   string
		code   int
	}{
		{"alice", "GET", "/console/quarantine", http.StatusOK},
		{"sam", "GET", "/console/quarantine", http.StatusForbidden},
		{"otto", "GET", "/console/quarantine", http.StatusForbidden},
		{"sam", "POST", "/console/quarantine/export", http.StatusForbidden},
		{"otto", "POST", "/console/quarantine/delete", http.StatusForbidden},
	} {
		t.Run(c.who+" "+c.method+" "+c.path, func(t *testing.T) {
			b := h.browser()
			csrf := b.signIn(c.who)
			var form url.Values
			if c.method == "POST" {
				form = url.Values{"csrf": {csrf}, "ref": {qref}, "confirm": {qref}, "reason": {"ticket 9"}}
			}
			p := b.do(c.method, c.path, form)
			if p.code != c.code {
				t.Fatalf("= %d, want %d\n%s", p.code, c.code, p.body)
			}
			if c.code == http.StatusForbidden && !strings.Contains(p.body, "needs the officer role") {
				t.Errorf("the 403 page does not say why:\n%s", p.body)
			}
			nav := strings.Contains(b.do("GET", "/console/overview", nil).body, `href="/console/quarantine"`)
			if nav != (c.who == "alice") {
				t.Errorf("the nav links the Quarantine page for %s: %v", c.who, nav)
			}
		})
	}
	if items, _ := h.q.List(context.Background()); len(items) != 1 {
		t.Errorf("a refused role changed the quarantine: %d items", len(items))
	}
	h.svc.Close() // writes the aggregated refusal records
	want := map[string]bool{"console_quarantine_list/role": false, "console_quarantine_export/role": false, "console_quarantine_delete/role": false}
	for _, r := range h.records() {
		switch r.Event {
		case audit.QuarantineExport, audit.QuarantineDelete:
			t.Errorf("a refused role acted: %+v", r)
		case audit.ComplianceRefused:
			for k := range want {
				want[k] = want[k] || strings.Contains(r.Detail["refusals"], k)
			}
		}
	}
	for k, found := range want {
		if !found {
			t.Errorf("no refusal %s in the trail", k)
		}
	}
}

func TestConsoleQuarantineCSRF(t *testing.T) {
	h := newHarness(t)
	h.keepAttachment(qref)
	b := h.browser()
	b.signIn("alice")
	for _, path := range []string{"/console/quarantine/export", "/console/quarantine/delete"} {
		for _, form := range []url.Values{
			{"ref": {qref}, "confirm": {qref}, "reason": {"ticket 9"}},
			{"ref": {qref}, "confirm": {qref}, "reason": {"ticket 9"}, "csrf": {"forged"}},
		} {
			if p := b.do("POST", path, form); p.code != http.StatusForbidden || !strings.Contains(p.body, "Nothing was done") {
				t.Errorf("POST %s without the form token = %d\n%s", path, p.code, p.body)
			}
		}
	}
	if items, _ := h.q.List(context.Background()); len(items) != 1 {
		t.Errorf("a refused form deleted: %d items left", len(items))
	}
	for _, r := range h.records() {
		if r.Event == audit.QuarantineExport || r.Event == audit.QuarantineDelete {
			t.Errorf("a refused form acted: %+v", r)
		}
	}
}

// TestConsoleQuarantineFlow: an officer lists, exports (once, with a
// reason) and deletes (with the typed reference) a kept original; each
// result shows its audit record; bad input is answered and changes
// nothing; no page, header or log line holds the customer's address.
func TestConsoleQuarantineFlow(t *testing.T) {
	h := newHarness(t)
	content := h.keepAttachment(qref)
	b := h.browser()
	csrf := b.signIn("alice")

	p := b.do("GET", "/console/quarantine", nil)
	for _, want := range []string{qref, "letter.docx", "office", "bytes", "quarantine.list", `option value="` + qref + `"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the list lacks %q", want)
		}
	}
	if p.code != http.StatusOK || p.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("list = %d, Cache-Control %q", p.code, p.header.Get("Cache-Control"))
	}
	noAddress(t, "list page", p.body)
	if p := b.do("GET", "/console/quarantine?ref="+qref, nil); !strings.Contains(p.body, `option value="`+qref+`" selected`) {
		t.Errorf("?ref= does not preselect the reference")
	}
	if p := b.do("GET", "/console/quarantine?ref=%3Cscript%3E", nil); strings.Contains(p.body, "<script>") || p.code != http.StatusOK {
		t.Errorf("a ref that is no reference reaches the page: %d", p.code)
	}

	for _, c := range []struct {
		name string
		form url.Values
		code int
		want string
	}{
		{"no reason", url.Values{"ref": {qref}}, http.StatusBadRequest, "a reason is required"},
		{"address in the reason", url.Values{"ref": {qref}, "reason": {"for " + customer}}, http.StatusBadRequest, "a reason is required"},
		{"unknown reference", url.Values{"ref": {"att-zzzzzzzzzzzzzzzz"}, "reason": {"ticket 9"}}, http.StatusNotFound, "no such quarantined attachment"},
		{"not a reference", url.Values{"ref": {"../../etc/passwd"}, "reason": {"ticket 9"}}, http.StatusNotFound, "no such quarantined attachment"},
	} {
		c.form.Set("csrf", csrf)
		p := b.do("POST", "/console/quarantine/export", c.form)
		if p.code != c.code || !strings.Contains(p.body, c.want) || strings.Contains(p.body, "Export ready") {
			t.Errorf("export, %s = %d\n%s", c.name, p.code, p.body)
		}
		noAddress(t, "export refusal page", p.body)
	}

	p = b.do("POST", "/console/quarantine/export", url.Values{"csrf": {csrf}, "ref": {qref}, "reason": {"ticket 4711: customer asks"}})
	if p.code != http.StatusOK || !strings.Contains(p.body, "Export ready") || !strings.Contains(p.body, "quarantine.export") ||
		!strings.Contains(p.body, "ticket 4711: customer asks") {
		t.Fatalf("export = %d\n%s", p.code, p.body)
	}
	noAddress(t, "export page", p.body)
	link := regexpFind(t, `/console/quarantine/download/[A-Za-z0-9_-]+`, p.body)
	d := b.do("GET", link, nil)
	if d.code != http.StatusOK || d.body != string(content) || d.header.Get("Content-Type") != "application/octet-stream" ||
		d.header.Get("Content-Disposition") != `attachment; filename=letter.docx` || d.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("download = %d %q %q %q", d.code, d.header.Get("Content-Type"), d.header.Get("Content-Disposition"), d.header.Get("Cache-Control"))
	}
	if again := b.do("GET", link, nil); again.code != http.StatusNotFound {
		t.Errorf("second download = %d, want 404", again.code)
	}

	for _, confirm := range []string{"", "att-zzzzzzzzzzzzzzzz"} {
		p = b.do("POST", "/console/quarantine/delete", url.Values{"csrf": {csrf}, "ref": {qref}, "confirm": {confirm}, "reason": {"ticket 4711 closed"}})
		if p.code != http.StatusBadRequest || !strings.Contains(p.body, "Nothing was deleted") {
			t.Errorf("delete confirmed by %q = %d\n%s", confirm, p.code, p.body)
		}
	}
	p = b.do("POST", "/console/quarantine/delete", url.Values{"csrf": {csrf}, "ref": {qref}, "confirm": {qref}})
	if p.code != http.StatusBadRequest || !strings.Contains(p.body, "a reason is required") {
		t.Errorf("delete without a reason = %d", p.code)
	}
	if items, _ := h.q.List(context.Background()); len(items) != 1 {
		t.Fatalf("a refused delete deleted: %d items left", len(items))
	}
	p = b.do("POST", "/console/quarantine/delete", url.Values{"csrf": {csrf}, "ref": {qref}, "confirm": {" " + qref + " "}, "reason": {"ticket 4711 closed"}})
	if p.code != http.StatusOK || !strings.Contains(p.body, "Attachment deleted") || !strings.Contains(p.body, "quarantine.delete") ||
		!strings.Contains(p.body, "No attachment is kept") {
		t.Fatalf("delete = %d\n%s", p.code, p.body)
	}
	if items, _ := h.q.List(context.Background()); len(items) != 0 {
		t.Errorf("%d items left after the delete", len(items))
	}
	p = b.do("POST", "/console/quarantine/delete", url.Values{"csrf": {csrf}, "ref": {qref}, "confirm": {qref}, "reason": {"again"}})
	if p.code != http.StatusNotFound || !strings.Contains(p.body, "not_found") {
		t.Errorf("second delete = %d\n%s", p.code, p.body)
	}

	got := map[string]int{}
	for _, r := range h.records() {
		if strings.HasPrefix(r.Event, "quarantine.") && r.Actor == "principal:alice" {
			got[r.Event+"/"+r.Outcome]++
			if r.Event != audit.QuarantineList && r.Detail["ref"] == "" {
				t.Errorf("%s without the reference: %+v", r.Event, r)
			}
		}
	}
	for _, k := range []string{"quarantine.list/ok", "quarantine.export/ok", "quarantine.export/not_found", "quarantine.delete/ok", "quarantine.delete/not_found"} {
		if got[k] == 0 {
			t.Errorf("no %s record by principal:alice (%v)", k, got)
		}
	}
	if logs := strings.ToLower(h.logs.String()); strings.Contains(logs, customer) || strings.Contains(logs, "letter.docx") {
		t.Errorf("log holds the address or the file name:\n%s", h.logs.String())
	}
}

func TestDownloadName(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"letter.docx", "letter.docx"},
		{"../../x/report.pdf", "report.pdf"},
		{`C:\Users\t1-abc@relay.company.example\a.xlsx`, "a.xlsx"},
		{"a\"b\r\n.doc", "ab.doc"},
		{"", qref + ".bin"},
		{"..", qref + ".bin"},
	} {
		if got := downloadName(quarantine.Item{Ref: qref, Name: c.name}); got != c.want {
			t.Errorf("downloadName(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}
