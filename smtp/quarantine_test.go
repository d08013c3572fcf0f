package smtp

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/rewrite/attach"
)

// docxMessage is a customer message with a docx naming the customer.
func docxMessage(t *testing.T) (string, []byte) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range [][2]string{{"[Content_Types].xml", "<Types/>"}, {"word/document.xml", "<w:p><w:r><w:t>jane.doe@example.com</w:t></w:r></w:p>"}} {
		w, _ := zw.Create(m[0])
		w.Write([]byte(m[1]))
	}
	zw.Close()
	enc := base64.StdEncoding.EncodeToString(buf.Bytes())
	var lines []string
	for len(enc) > 76 {
		lines, enc = append(lines, enc[:76]), enc[76:]
	}
	lines = append(lines, enc)
	return "From: jane.doe@example.com\r\nTo: support@company.example\r\nSubject: doc\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nattached\r\n--b\r\n" +
		"Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document\r\n" +
		"Content-Disposition: attachment; filename=letter.docx\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		strings.Join(lines, "\r\n") + "\r\n--b--\r\n", buf.Bytes()
}

// TestStrippedAttachmentQuarantined: under office: strip the CRM gets the
// notice and the route keeps the original before its final dot; a
// quarantine that fails refuses the message (451) and relays nothing.
func TestStrippedAttachmentQuarantined(t *testing.T) {
	var mu sync.Mutex
	var kept []rewrite.Stripped
	var fail error
	h := newHarness(t, func(o *harnessOpts) {
		o.rewrite.Attachments = attach.Policy{Office: attach.Strip}
		o.quarantine = func(_ context.Context, parts []rewrite.Stripped) error {
			mu.Lock()
			defer mu.Unlock()
			if fail != nil {
				return fail
			}
			kept = append(kept, parts...)
			return nil
		}
	})
	msg, doc := docxMessage(t)
	if r := h.send("jane.doe@example.com", msg); !strings.HasPrefix(r, "250") {
		t.Fatalf("reply %q", r)
	}
	got := h.ds.Stats().Messages
	if len(got) != 1 || !strings.Contains(got[0], "This attachment was removed") || strings.Contains(got[0], "UEsDB") {
		t.Fatalf("the CRM got:\n%v", got)
	}
	if len(kept) != 1 || !bytes.Equal(kept[0].Content, doc) || !strings.Contains(got[0], kept[0].Ref) {
		t.Fatalf("quarantined %+v", kept)
	}
	mu.Lock()
	fail = errors.New("disk full")
	mu.Unlock()
	if r := h.send("jane.doe@example.com", msg); !strings.HasPrefix(r, "451 4.3.0") {
		t.Fatalf("with the quarantine failing: %q", r)
	}
	if n := len(h.ds.Stats().Messages); n != 1 {
		t.Fatalf("the CRM got %d messages: a message whose original was not kept was relayed", n)
	}
}

// TestRefusedMessageLeavesNoQuarantine: the originals are kept before the
// final dot; when the downstream refuses the message, they are removed
// (DESIGN.md invariant 4).
func TestRefusedMessageLeavesNoQuarantine(t *testing.T) {
	var mu sync.Mutex
	kept, calls := map[string]bool{}, 0
	h := newHarness(t, func(o *harnessOpts) {
		o.ds.DataErr = errors.New("554 5.7.1 no thanks")
		o.rewrite.Attachments = attach.Policy{Office: attach.Strip}
		o.quarantine = func(_ context.Context, parts []rewrite.Stripped) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			for _, p := range parts {
				kept[p.Ref] = true
			}
			return nil
		}
		o.unquarantine = func(_ context.Context, refs []string) error {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range refs {
				delete(kept, r)
			}
			return nil
		}
	})
	msg, _ := docxMessage(t)
	if r := h.send("jane.doe@example.com", msg); strings.HasPrefix(r, "250") {
		t.Fatalf("the downstream refused, the client got %q", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 || len(kept) != 0 {
		t.Fatalf("kept %d times; a refused message left %d quarantined originals", calls, len(kept))
	}
}
