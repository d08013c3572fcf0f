package compliance

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/quarantine"
)

// TestQuarantineAPI: officers list, export (with a reason) and delete
// stripped attachments; every access is one audit record, written before
// the content leaves or the file goes; other roles are refused.
func TestQuarantineAPI(t *testing.T) {
	h := newComplianceHarness(t, 50)
	q, err := quarantine.Open(filepath.Join(h.e.dir, "quarantine"), h.e.keys)
	if err != nil {
		t.Fatal(err)
	}
	h.svc.quarantine = q
	const ref = "att-abcdefghijklmnop"
	content := "PK\x03\x04 jane.customer@example.com"
	if err := q.Put(context.Background(), quarantine.Item{Ref: ref, Kind: "office", Name: "letter.docx", Size: len(content)}, []byte(content)); err != nil {
		t.Fatal(err)
	}
	export := map[string]string{"ref": ref, "reason": "ticket 4711: the customer asks for the document"}
	for _, c := range []struct {
		who, method, path string
		body              any
		want              int
	}{
		{"sam", "GET", "/v1/compliance/quarantine", nil, http.StatusForbidden},
		{"otto", "POST", "/v1/compliance/quarantine-export", export, http.StatusForbidden},
		{"nobody", "POST", "/v1/compliance/quarantine-delete", export, http.StatusUnauthorized},
		{"alice", "POST", "/v1/compliance/quarantine-export", map[string]string{"ref": ref}, http.StatusBadRequest},
		{"alice", "POST", "/v1/compliance/quarantine-export", map[string]string{"ref": ref, "reason": "for bob@example.net"}, http.StatusBadRequest},
		{"alice", "POST", "/v1/compliance/quarantine-export", map[string]string{"ref": "att-zzzzzzzzzzzzzzzz", "reason": "r"}, http.StatusNotFound},
		{"alice", "POST", "/v1/compliance/quarantine-export", map[string]string{"ref": "../keyring.json", "reason": "r"}, http.StatusNotFound},
		{"alice", "POST", "/v1/compliance/quarantine-export", map[string]string{"token": ref, "reason": "r"}, http.StatusBadRequest},
	} {
		if code, body := h.call(c.who, c.method, c.path, c.body); code != c.want {
			t.Errorf("%s %s %s: %d %s, want %d", c.who, c.method, c.path, code, body, c.want)
		}
	}
	code, body := h.call("alice", "GET", "/v1/compliance/quarantine", nil)
	if code != 200 || !strings.Contains(body, ref) || !strings.Contains(body, "letter.docx") || strings.Contains(body, "jane.customer") {
		t.Fatalf("list: %d %s", code, body)
	}
	code, body = h.call("alice", "POST", "/v1/compliance/quarantine-export", export)
	var got quarantineExportReply
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil || string(got.Content) != content || got.Kind != "office" {
		t.Fatalf("export: %d %s", code, body)
	}
	code, _ = h.call("alice", "POST", "/v1/compliance/quarantine-delete", export)
	if code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := h.call("alice", "POST", "/v1/compliance/quarantine-export", export); code != http.StatusNotFound {
		t.Fatalf("export after delete: %d", code)
	}
	trail := h.trail()
	for _, want := range []string{`"event":"quarantine.list"`, `"event":"quarantine.export","actor":"principal:alice"`,
		`"event":"quarantine.delete","actor":"principal:alice"`, `"ref":"` + ref + `"`, "(not a reference)"} {
		if !strings.Contains(trail, want) {
			t.Errorf("the trail lacks %s:\n%s", want, trail)
		}
	}
	if strings.Contains(trail, "../keyring.json") || strings.Contains(trail, "jane.customer") {
		t.Errorf("the trail holds what an officer typed or the content:\n%s", trail)
	}
}
