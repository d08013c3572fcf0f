package attach

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func docx(t testing.TB, body string, extra ...member) []byte {
	ms := []member{
		{name: "[Content_Types].xml", body: `<?xml version="1.0"?><Types/>`, method: zip.Deflate},
		{name: "word/document.xml", body: `<w:document><w:body>` + body + `</w:body></w:document>`, method: zip.Deflate},
		{name: "word/_rels/document.xml.rels", body: `<Relationships><Relationship Id="r1" Target="mailto:jane@example.com"/></Relationships>`, method: zip.Deflate},
		{name: "docProps/core.xml", body: `<cp:coreProperties><dc:creator>jane@example.com</dc:creator></cp:coreProperties>`, method: zip.Deflate},
		{name: "word/media/image1.png", body: "\x89PNG\r\n\x1a\nnot scanned", method: zip.Store},
	}
	return buildZip(t, append(ms, extra...)...)
}

func TestOfficeRewritten(t *testing.T) {
	in := docx(t, `<w:p><w:r><w:t>jane</w:t></w:r><w:r><w:t>@example.com</w:t></w:r></w:p>`)
	res := part(t, newTest(Policy{}, true), KindOffice, "a.docx", in)
	if res.Kind != KindOffice || res.Action != Rewrite || !res.Changed {
		t.Fatalf("result %+v", res)
	}
	got, files := readZip(t, res.Data)
	for name, body := range got {
		if strings.Contains(body, "example.com") {
			t.Errorf("%s still holds an address: %s", name, body)
		}
	}
	if !strings.Contains(got["word/_rels/document.xml.rels"], "mailto:tok-jane@relay.example") ||
		!strings.Contains(got["docProps/core.xml"], "<dc:creator>tok-jane@relay.example<") {
		t.Errorf("targets or properties not rewritten: %q", got)
	}
	want := []string{"[Content_Types].xml", "word/document.xml", "word/_rels/document.xml.rels", "docProps/core.xml", "word/media/image1.png"}
	for i, f := range files {
		if f.Name != want[i] {
			t.Fatalf("member %d is %s, want %s: order changed", i, f.Name, want[i])
		}
	}
	if files[4].Method != zip.Store {
		t.Errorf("an untouched member changed its method")
	}
	// The leak check finds nothing in the result, as the guard will not.
	if _, err := New(Options{Addr: leakCheck}).Part(context.Background(), KindOffice, "a.docx", res.Data); err != nil {
		t.Fatalf("guard pass over the result: %v", err)
	}
}

func TestOfficeUnchangedIsIdentical(t *testing.T) {
	in := buildZip(t, member{name: "[Content_Types].xml", body: "<Types/>"},
		member{name: "word/document.xml", body: "<w:p><w:r><w:t>nothing here, a@relay.example</w:t></w:r></w:p>", method: zip.Deflate})
	res := part(t, newTest(Policy{}, true), KindUnknown, "x.bin", in)
	if res.Changed || !bytes.Equal(res.Data, in) || res.Kind != KindOffice {
		t.Fatalf("a document without customer addresses changed: %+v", res.Kind)
	}
}

func TestODFMimetypeFirstAndStored(t *testing.T) {
	in := buildZip(t,
		member{name: "mimetype", body: "application/vnd.oasis.opendocument.text", method: zip.Store},
		member{name: "content.xml", body: `<office:text><text:p>jane@example.com</text:p></office:text>`, method: zip.Deflate},
		member{name: "meta.xml", body: `<office:meta><meta:initial-creator>bob@example.org</meta:initial-creator></office:meta>`, method: zip.Deflate},
		member{name: "META-INF/manifest.xml", body: `<manifest:manifest/>`, method: zip.Deflate})
	res := part(t, newTest(Policy{}, true), KindOffice, "a.odt", in)
	got, files := readZip(t, res.Data)
	if files[0].Name != "mimetype" || files[0].Method != zip.Store || got["mimetype"] != "application/vnd.oasis.opendocument.text" {
		t.Fatalf("mimetype is not first and stored: %s method %d", files[0].Name, files[0].Method)
	}
	// ODF 1.2 part 3 section 3.3: the member's data starts at byte 38.
	if !bytes.HasPrefix(res.Data[30:], []byte("mimetypeapplication/vnd.oasis")) {
		t.Errorf("mimetype is not at the start of the package: %q", res.Data[:70])
	}
	if strings.Contains(got["content.xml"], "example.com") || strings.Contains(got["meta.xml"], "example.org") {
		t.Errorf("addresses remain: %q", got)
	}
}

func TestSignedDocumentPolicy(t *testing.T) {
	sig := member{name: "_xmlsignatures/sig1.xml", body: "<Signature/>"}
	addr := docx(t, `<w:p><w:r><w:t>jane@example.com</w:t></w:r></w:p>`, sig)
	for _, c := range []struct {
		signed Action
		want   Action
		err    error
	}{
		{Rewrite, Rewrite, nil},
		{Strip, Strip, nil},
		{Refuse, "", ErrRefused},
	} {
		t.Run(string(c.signed), func(t *testing.T) {
			res, err := newTest(Policy{Signed: c.signed}, true).Part(context.Background(), KindOffice, "s.docx", addr)
			if !errors.Is(err, c.err) || err == nil && res.Action != c.want {
				t.Fatalf("signed=%s: %v %v", c.signed, res.Action, err)
			}
		})
	}
	// A signed document with nothing to replace is not touched at all.
	clean := buildZip(t, member{name: "[Content_Types].xml", body: "<Types/>"}, sig)
	res := part(t, newTest(Policy{Signed: Refuse}, true), KindOffice, "s.docx", clean)
	if res.Changed || !bytes.Equal(res.Data, clean) {
		t.Fatal("a clean signed document changed")
	}
}

func TestOfficePolicy(t *testing.T) {
	in := docx(t, `<w:p><w:r><w:t>jane@example.com</w:t></w:r></w:p>`)
	for _, c := range []struct {
		office Action
		want   Action
		err    error
	}{{Strip, Strip, nil}, {Refuse, "", ErrRefused}, {Rewrite, Rewrite, nil}} {
		res, err := newTest(Policy{Office: c.office}, true).Part(context.Background(), KindOffice, "a.docx", in)
		if !errors.Is(err, c.err) || err == nil && res.Action != c.want {
			t.Errorf("office=%s: %v %v", c.office, res.Action, err)
		}
	}
	// Without Enforce (outbound, the guard) the policy does not apply.
	if res := part(t, newTest(Policy{Office: Refuse}, false), KindOffice, "a.docx", in); res.Action != Rewrite || !res.Changed {
		t.Errorf("outbound: %+v", res.Action)
	}
}

func TestEmbeddedDocumentRecursion(t *testing.T) {
	inner := docx(t, `<w:p><w:r><w:t>inner@example.com</w:t></w:r></w:p>`)
	outer := buildZip(t, member{name: "[Content_Types].xml", body: "<Types/>"},
		member{name: "word/embeddings/Microsoft_Word_Document.docx", body: string(inner), method: zip.Store})
	res := part(t, newTest(Policy{}, true), KindOffice, "a.docx", outer)
	got, _ := readZip(t, res.Data)
	emb, _ := readZip(t, []byte(got["word/embeddings/Microsoft_Word_Document.docx"]))
	if !strings.Contains(emb["word/document.xml"], "tok-inner@relay.example") {
		t.Fatalf("embedded document not rewritten: %q", emb["word/document.xml"])
	}
}

func TestThumbnailBlankedWhenTheTextChanged(t *testing.T) {
	thumb := "\xff\xd8\xff\xe0 a picture of the first page, jane@example.com in pixels"
	withThumb := func(text string) []byte {
		return buildZip(t, member{name: "[Content_Types].xml", body: "<Types/>"},
			member{name: "word/document.xml", body: "<w:p><w:r><w:t>" + text + "</w:t></w:r></w:p>"},
			member{name: "docProps/thumbnail.jpeg", body: thumb})
	}
	res := part(t, newTest(Policy{}, true), KindOffice, "a.docx", withThumb("jane@example.com"))
	got, _ := readZip(t, res.Data)
	if got["docProps/thumbnail.jpeg"] == thumb || !strings.HasPrefix(got["docProps/thumbnail.jpeg"], "\xff\xd8") {
		t.Fatalf("the thumbnail of a rewritten document is not a blank JPEG: %q", got["docProps/thumbnail.jpeg"])
	}
	clean := withThumb("nothing")
	if res := part(t, newTest(Policy{}, true), KindOffice, "a.docx", clean); res.Changed {
		t.Fatal("a document with nothing to replace lost its thumbnail")
	}
	odf := buildZip(t, member{name: "mimetype", body: "application/vnd.oasis.opendocument.text"},
		member{name: "content.xml", body: "<text:p>jane@example.com</text:p>"},
		member{name: "Thumbnails/thumbnail.png", body: "\x89PNG old"})
	got, _ = readZip(t, part(t, newTest(Policy{}, true), KindOffice, "a.odt", odf).Data)
	if !strings.HasPrefix(got["Thumbnails/thumbnail.png"], "\x89PNG\r\n\x1a\n") {
		t.Fatalf("ODF thumbnail: %q", got["Thumbnails/thumbnail.png"])
	}
}
