package attach

import (
	"archive/zip"
	"context"
	"errors"
	"testing"
)

// fuzzToken replaces every customer address with one token in the real
// format: a test token such as "tok-a@relay.example" followed by ".tok-b…"
// reads back as a longer domain, which real tokens ("t1-…") never do
// (rewrite/scan's FuzzReplaceAddresses rests on the same).
func fuzzToken(addr string) (string, error) {
	if r, err := tokenOf(addr); r == "" || err != nil {
		return r, err
	}
	return "t1-abcdefghijklmnop@relay.example", nil
}

// FuzzPart feeds arbitrary bytes to the attachment rewriter as content of
// unknown kind (zip, gzip and tar seeds). It must not panic; its errors
// are the typed refusals; and what it rewrote must pass a leak check of
// its own output, as the guard will run it.
func FuzzPart(f *testing.F) {
	f.Add(buildZip(f, member{name: "[Content_Types].xml", body: "<Types/>"},
		member{name: "word/document.xml", body: "<w:p><w:r><w:t>jane</w:t></w:r><w:r><w:t>@example.com</w:t></w:r></w:p>", method: zip.Deflate}))
	f.Add(buildZip(f, member{name: "mimetype", body: "application/vnd.oasis.opendocument.text"},
		member{name: "content.xml", body: "<text:p>a@example.org<text:s/>b</text:p>"}))
	f.Add(buildZip(f, member{name: "a.txt", body: "x@example.net"}, member{name: "n.zip", body: string(buildZip(f, member{name: "b.txt", body: "y@example.net"}))}))
	f.Add(gz(f, "", tarOf(f, map[string]string{"a.txt": "jane@example.com"})))
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Add(buildZip(f, member{name: "a.pdf", body: "%PDF-1.4\n1 0 obj\n<< /Author (jane\\100example.com) >>\nendobj\n"},
		member{name: "b.pdf", body: "%PDF-1.4\n(invoice 1234)\n"}))
	lim := Limits{MaxBytes: 1 << 20, MaxDepth: 3, MaxMembers: 50, MaxExpandedBytes: 4 << 20, MaxRatio: 100}
	// PDFs are read by leakCheck on both sides: inbound, one naming a
	// customer strips the attachment (the default PDF policy).
	r := New(Options{Policy: Policy{Limits: lim}, Enforce: true, Addr: fuzzToken, PDF: leakCheck})
	check := New(Options{Policy: Policy{Limits: lim}, Addr: leakCheck, PDF: leakCheck})
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := r.Part(context.Background(), KindUnknown, "a", data)
		if err != nil {
			if !errors.Is(err, ErrLimit) && !errors.Is(err, ErrRefused) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if !res.Changed {
			return
		}
		if _, err := check.Part(context.Background(), res.Kind, "a", res.Data); errors.Is(err, errLeakTest) {
			t.Fatalf("the rewritten %s still holds an address", res.Kind)
		}
	})
}

// FuzzRewriteXML: the block marking and the scan of office XML never
// panic, never leave the marker behind, and leave no address a second
// scan would find.
func FuzzRewriteXML(f *testing.F) {
	for _, s := range []string{
		`<w:p><w:r><w:t>jane</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>@example.com</w:t></w:r></w:p>`,
		`<Relationship Target="mailto:a@example.org"/><!-- b@example.net --><![CDATA[c@example.com]]>`,
		`<si><r><rPr><b/></rPr><t>x@</t></r><r><t>example.com</t></r></si><p tp-block0>`,
		`<text:p>a&#64;example.com<text:s/>b@example.org</text:p>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, changed, err := rewriteXML(data, fuzzToken)
		if err != nil {
			t.Fatal(err)
		}
		if !changed {
			return
		}
		if _, _, err := rewriteXML(out, leakCheck); err != nil {
			t.Fatalf("an address survived:\n in %q\nout %q", data, out)
		}
	})
}
