package attach

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"testing"
)

// spliceText is XML-like text of about n bytes, varied enough that a
// compressor makes many blocks of it.
func spliceText(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "<w:p><w:r><w:t>paragraph %d of the case, item %x, amount %d.%02d</w:t></w:r></w:p>\n",
			i, i*2654435761, i*37%1000, i%100)
	}
	return b.Bytes()[:n]
}

// deflateWith compresses text with the standard library (an encoder
// other than the splice's own), flushing every flushEvery bytes (0: never)
// so that some blocks start on a byte boundary and some do not.
func deflateWith(t testing.TB, text []byte, level, flushEvery int) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	for rest := text; len(rest) > 0; {
		n := len(rest)
		if flushEvery > 0 {
			n = min(n, flushEvery)
		}
		fw.Write(rest[:n])
		rest = rest[n:]
		if flushEvery > 0 {
			fw.Flush()
		}
	}
	fw.Close()
	return buf.Bytes()
}

// blocksOf inflates comp, noting its blocks.
func blocksOf(t testing.TB, comp []byte) (*deflated, []byte) {
	t.Helper()
	d, rc := inflateBlocks(comp)
	text, err := io.ReadAll(rc)
	if d.tooMany {
		return d, nil
	}
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	if n := len(d.ends); n == 0 || !d.ends[n-1].final || d.ends[n-1].text != len(text) {
		t.Fatalf("block ends %+v for %d bytes", d.ends, len(text))
	}
	return d, text
}

// editSpans makes edits of spans (old[from:to] becomes text, in order)
// and returns them with the new text, built here independently of
// applyEdits.
func editSpans(old []byte, spans []struct {
	from, to int
	text     string
}) ([]byte, []edit) {
	var next []byte
	var edits []edit
	prev := 0
	for _, s := range spans {
		next = append(next, old[prev:s.from]...)
		edits = append(edits, edit{from: s.from, to: s.to, text: []byte(s.text)})
		next = append(next, s.text...)
		prev = s.to
	}
	return append(next, old[prev:]...), edits
}

// spliceChecked splices and checks the result: the standard library
// inflates it to next, and applyEdits, editedLen and editedCRC agree
// with next.
func spliceChecked(t testing.TB, d *deflated, old, next []byte, edits []edit) []byte {
	t.Helper()
	out, err := splice(d, old, edits)
	if err != nil {
		t.Fatal(err)
	}
	if got := inflateStd(t, out); !bytes.Equal(got, next) {
		t.Fatalf("spliced stream inflates to %d bytes, want %d", len(got), len(next))
	}
	if !bytes.Equal(applyEdits(old, edits), next) || editedLen(old, edits) != len(next) ||
		editedCRC(old, edits) != crc32.ChecksumIEEE(next) {
		t.Fatal("applyEdits, editedLen or editedCRC disagree with the edited text")
	}
	return out
}

// inflateStd is the check: the standard library's inflater reads the
// spliced stream.
func inflateStd(t testing.TB, comp []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(comp)))
	if err != nil {
		t.Fatalf("the spliced stream does not inflate: %v", err)
	}
	return out
}

func TestSplice(t *testing.T) {
	text := spliceText(600 << 10)
	n := len(text)
	type span = struct {
		from, to int
		text     string
	}
	edits := []struct {
		name  string
		spans []span
		// keepsFirst: the first block is copied as it was.
		keepsFirst bool
	}{
		{"none", nil, true},
		{"first bytes", []span{{0, 5, "<x:p>"}}, false},
		{"near the end, longer", []span{{n - 100, n - 90, "t1-abcdefghijklmnop@relay.example"}}, true},
		{"last byte, shorter", []span{{n - 1, n, ""}}, true},
		{"middle", []span{{n / 2, n/2 + 20, "t1-x@relay.example"}}, true},
		{"top and end", []span{{100, 120, "a"}, {n - 50, n - 40, "bbbbbbbbbbbbbbbbbbbbbb"}}, false},
		{"every 20 KB", everyN(n, 20<<10), false},
		{"every 100 KB", everyN(n, 100<<10), false},
	}
	streams := []struct {
		name              string
		level, flushEvery int
	}{
		{"default level", flate.DefaultCompression, 0},
		{"best speed", flate.BestSpeed, 0},
		{"sync flushes every 50 KB", flate.DefaultCompression, 50 << 10},
		{"stored", flate.NoCompression, 0},
		{"sync flushes every 40 KB, best compression", flate.BestCompression, 40000},
	}
	for _, s := range streams {
		comp := deflateWith(t, text, s.level, s.flushEvery)
		d, old := blocksOf(t, comp)
		if !bytes.Equal(old, text) || len(d.ends) < 3 {
			t.Fatalf("%s: %d blocks", s.name, len(d.ends))
		}
		for _, e := range edits {
			t.Run(s.name+"/"+e.name, func(t *testing.T) {
				next, ed := editSpans(text, e.spans)
				out := spliceChecked(t, d, text, next, ed)
				if first := d.ends[0].bit / 8; e.keepsFirst && !bytes.Equal(out[:first], comp[:first]) {
					t.Errorf("the first block was not copied")
				}
				if e.spans == nil && !bytes.Equal(out, comp) {
					t.Errorf("with no edit the stream changed")
				}
			})
		}
	}
}

func everyN(n, step int) []struct {
	from, to int
	text     string
} {
	var s []struct {
		from, to int
		text     string
	}
	for p := 1000; p+40 < n; p += step {
		s = append(s, struct {
			from, to int
			text     string
		}{p, p + 20, "t1-abcdefghijklmnop@relay.example"})
	}
	return s
}

func TestSpliceRefusesBadEdits(t *testing.T) {
	text := spliceText(100 << 10)
	d, _ := blocksOf(t, deflateWith(t, text, flate.DefaultCompression, 0))
	for _, c := range []struct {
		name  string
		edits []edit
	}{
		{"empty in the old text", []edit{{from: 10, to: 10, text: []byte("ab")}}},
		{"out of order", []edit{{from: 50, to: 60}, {from: 10, to: 20}}},
		{"overlapping", []edit{{from: 10, to: 60}, {from: 50, to: 70}}},
		{"past the end", []edit{{from: len(text) - 1, to: len(text) + 1}}},
	} {
		if _, err := splice(d, text, c.edits); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if _, err := splice(d, text[1:], nil); err == nil {
		t.Errorf("a text other than the stream's: no error")
	}
}

// TestSplicedDocx: a package whose long document part changes at its top
// and end is written with the part spliced: archive/zip reads it with its
// CRC-32 checked, the local header holds the sizes (no data descriptor),
// and the blocks between the changes were copied, not compressed again.
func TestSplicedDocx(t *testing.T) {
	var body strings.Builder
	body.WriteString(`<w:p><w:r><w:t>jane</w:t></w:r><w:r><w:t>@example.com</w:t></w:r></w:p>`)
	body.Write(spliceText(2 << 20))
	body.WriteString(`<w:p><w:r><w:t>Regards, bob@example.org</w:t></w:r></w:p>`)
	in := docx(t, body.String())
	res := part(t, newTest(Policy{}, true), KindOffice, "a.docx", in)
	if !res.Changed {
		t.Fatal("not rewritten")
	}
	zr, err := zip.NewReader(bytes.NewReader(res.Data), int64(len(res.Data)))
	if err != nil {
		t.Fatal(err)
	}
	var doc *zip.File
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(rc) // archive/zip checks the CRC-32 at the end
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if strings.Contains(string(content), "@example.") {
			t.Errorf("%s still holds an address", f.Name)
		}
		if f.Name == "word/document.xml" {
			doc = f
			want, _, _ := rewriteXML([]byte(`<w:document><w:body>`+body.String()+`</w:body></w:document>`), tokenOf)
			if !bytes.Equal(content, want) {
				t.Errorf("document.xml differs from the rewritten text")
			}
		}
	}
	off, err := doc.DataOffset()
	if err != nil {
		t.Fatal(err)
	}
	local := res.Data[off-int64(30+len(doc.Name)) : off]
	flags := binary.LittleEndian.Uint16(local[6:])
	crc, csize, usize := binary.LittleEndian.Uint32(local[14:]), binary.LittleEndian.Uint32(local[18:]), binary.LittleEndian.Uint32(local[22:])
	if flags&0x8 != 0 || crc != doc.CRC32 || uint64(csize) != doc.CompressedSize64 || uint64(usize) != doc.UncompressedSize64 {
		t.Errorf("local header flags %#x crc %#x sizes %d/%d; central directory %#x %d/%d",
			flags, crc, csize, usize, doc.CRC32, doc.CompressedSize64, doc.UncompressedSize64)
	}
	// The original's middle blocks are in the new stream as they were.
	oz, _ := zip.NewReader(bytes.NewReader(in), int64(len(in)))
	for _, f := range oz.File {
		if f.Name != "word/document.xml" {
			continue
		}
		o, _ := f.DataOffset()
		orig := in[o : o+int64(f.CompressedSize64)]
		mid := orig[len(orig)/2 : len(orig)/2+4096]
		d, _ := doc.DataOffset()
		if !containsShifted(res.Data[d:d+int64(doc.CompressedSize64)], mid) {
			t.Errorf("the unchanged middle of the stream was not copied")
		}
	}
}

// containsShifted reports whether stream holds the bits of part at any bit
// offset (copied blocks are shifted onto a byte boundary).
func containsShifted(stream, part []byte) bool {
	for sh := uint(0); sh < 8; sh++ {
		shifted := make([]byte, len(part)-1)
		for i := range shifted {
			shifted[i] = part[i]>>sh | part[i+1]<<(8-sh)
		}
		if bytes.Contains(stream, shifted[1:]) {
			return true
		}
	}
	return false
}

// FuzzSplice: for any text, any stream the standard library makes of it
// and any edits, the spliced stream inflates to the edited text. The text
// is unit repeated reps times with a counter between (inputs stay small,
// so the fuzzer minimizes quickly, while the streams get many blocks).
func FuzzSplice(f *testing.F) {
	unit := []byte("<w:p><w:r><w:t>paragraph of the case, item, amount</w:t></w:r></w:p>\n")
	f.Add(unit, uint16(2000), uint32(100), uint16(20), "t1-x@relay.example", uint32(60<<10), uint16(3), uint8(6), uint16(0))
	f.Add(unit, uint16(3000), uint32(0), uint16(1), "", uint32(150<<10), uint16(40), uint8(1), uint16(4000))
	f.Add(unit, uint16(3000), uint32(90<<10), uint16(10), "a@b", uint32(0), uint16(40), uint8(0), uint16(0))
	f.Add([]byte("a@example.com"), uint16(0), uint32(0), uint16(13), "t@relay.example", uint32(13), uint16(0), uint8(9), uint16(1))
	f.Fuzz(func(t *testing.T, unit []byte, reps uint16, at1 uint32, len1 uint16, repl string, at2 uint32, len2 uint16, level uint8, flushEvery uint16) {
		if len(unit) == 0 || len(unit) > 256 || len(repl) > 64 {
			return
		}
		var text []byte
		for i := 0; i <= int(reps) && len(text) < 160<<10; i++ {
			text = strconv.AppendInt(append(text, unit...), int64(i*7919), 36)
		}
		if flushEvery > 0 && len(text)/int(flushEvery) > 200 {
			return // flushing every few bytes: slow to make, and not spliced (maxBlocks)
		}
		comp := deflateWith(t, text, int(level%10), int(flushEvery))
		d, old := blocksOf(t, comp)
		if d.tooMany {
			return // not spliced (TestSpliceManyBlocks)
		}
		if !bytes.Equal(old, text) {
			t.Fatal("the recording inflater read other text")
		}
		type span = struct {
			from, to int
			text     string
		}
		var spans []span
		a := int(at1) % len(text)
		b := min(a+1+int(len1), len(text))
		spans = append(spans, span{a, b, repl})
		if c := b + int(at2)%(len(text)-b+1); c < len(text) {
			spans = append(spans, span{c, min(c+1+int(len2), len(text)), strings.ToUpper(repl)})
		}
		next, edits := editSpans(text, spans)
		spliceChecked(t, d, text, next, edits)
	})
}

// The spliced package reads back through the whole rewriter too: the
// guard finds nothing in it.
func TestSplicedDocxGuard(t *testing.T) {
	var body strings.Builder
	body.Write(spliceText(300 << 10))
	body.WriteString(`<w:p><w:r><w:t>x@example.org</w:t></w:r></w:p>`)
	body.Write(spliceText(300 << 10))
	res := part(t, newTest(Policy{}, true), KindOffice, "a.docx", docx(t, body.String()))
	if _, err := New(Options{Addr: leakCheck}).Part(context.Background(), KindOffice, "a.docx", res.Data); err != nil {
		t.Fatalf("guard pass over the spliced document: %v", err)
	}
}

// TestSpliceManyBlocks: a stream of more blocks than maxBlocks allows is
// not read to its end for splicing (each block reported costs a copy of
// the inflater's window), and its member is read again and compressed
// anew: the document is still rewritten, correctly.
func TestSpliceManyBlocks(t *testing.T) {
	text := spliceText(200 << 10)
	d, old := blocksOf(t, deflateWith(t, text, flate.BestSpeed, 100))
	if !d.tooMany || old != nil || len(d.ends) > maxBlocks(200<<10) {
		t.Fatalf("%d blocks noted, tooMany %v", len(d.ends), d.tooMany)
	}
	body := append([]byte("<w:p><w:r><w:t>a@example.com</w:t></w:r></w:p>"), text...)
	comp := deflateWith(t, body, flate.BestSpeed, 100)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("[Content_Types].xml")
	w.Write([]byte("<Types/>"))
	w, _ = zw.CreateRaw(&zip.FileHeader{Name: "word/document.xml", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(body),
		CompressedSize64: uint64(len(comp)), UncompressedSize64: uint64(len(body))})
	w.Write(comp)
	zw.Close()
	res := part(t, newTest(Policy{}, true), KindOffice, "a.docx", buf.Bytes())
	got, _ := readZip(t, res.Data)
	want := append([]byte("<w:p><w:r><w:t>tok-a@relay.example</w:t></w:r></w:p>"), text...)
	if !res.Changed || got["word/document.xml"] != string(want) {
		t.Fatalf("changed %v, document.xml of %d bytes", res.Changed, len(got["word/document.xml"]))
	}
}

// TestSplicedNestedDocuments: a document embedded in a document, both
// with long spliced parts, and two parts read before and after the
// embedded one. The buffers their texts were inflated into are recycled
// (budget.release): the embedded document releases only its own, so the
// outer parts are still whole when the outer document is written.
func TestSplicedNestedDocuments(t *testing.T) {
	long := func(who string) string {
		return `<w:p><w:r><w:t>` + who + `@example.com</w:t></w:r></w:p>` + string(spliceText(400<<10)) +
			`<w:p><w:r><w:t>` + who + `@example.org</w:t></w:r></w:p>`
	}
	inner := docx(t, long("inner"))
	outer := buildZip(t, member{name: "[Content_Types].xml", body: "<Types/>"},
		member{name: "word/document.xml", body: long("outer"), method: zip.Deflate},
		member{name: "word/embeddings/inner.docx", body: string(inner), method: zip.Store},
		member{name: "word/footer1.xml", body: long("footer"), method: zip.Deflate})
	r := newTest(Policy{}, true)
	for range 3 { // the second and third pass get recycled buffers
		res := part(t, r, KindOffice, "a.docx", outer)
		got, _ := readZip(t, res.Data)
		emb, _ := readZip(t, []byte(got["word/embeddings/inner.docx"]))
		for name, who := range map[string]string{"word/document.xml": "outer", "word/footer1.xml": "footer"} {
			want, _, _ := rewriteXML([]byte(long(who)), tokenOf)
			if got[name] != string(want) {
				t.Fatalf("%s differs from its rewritten text", name)
			}
		}
		want, _, _ := rewriteXML([]byte(`<w:document><w:body>`+long("inner")+`</w:body></w:document>`), tokenOf)
		if emb["word/document.xml"] != string(want) {
			t.Fatal("the embedded document.xml differs from its rewritten text")
		}
	}
}

// TestDamagedDeflatedPart: a deflated document part is read by
// readDeflated, not archive/zip: damage gets the answer it got there (the
// unreadable policy), and archive/zip itself refuses each damaged member.
func TestDamagedDeflatedPart(t *testing.T) {
	good := docx(t, `<w:p><w:r><w:t>jane@example.com</w:t></w:r></w:p>`+string(spliceText(100<<10)))
	name := []byte("word/document.xml")
	central := bytes.LastIndex(good, name) - 46 // central directory header (APPNOTE 4.3.12)
	local := bytes.Index(good, name) - 30       // local file header (APPNOTE 4.3.7)
	csize := int(binary.LittleEndian.Uint32(good[central+20:]))
	desc := local + 30 + len(name) + csize // the data descriptor zip.Writer wrote
	damage := func(at int, v uint32) []byte {
		d := bytes.Clone(good)
		binary.LittleEndian.PutUint32(d[at:], v)
		return d
	}
	usize := binary.LittleEndian.Uint32(good[central+24:])
	crc := binary.LittleEndian.Uint32(good[central+16:])
	cut := bytes.Clone(good)
	for i := local + 30 + len(name) + csize/2; i < desc; i++ {
		cut[i] = 0xff // the second half of the stream is garbage
	}
	for _, c := range []struct {
		name     string
		data     []byte
		readable bool // the text inflates whole: only a CRC-32 disagrees
	}{
		{"CRC-32 in the central directory", damage(central+16, crc^1), true},
		{"CRC-32 in the data descriptor", damage(desc+4, crc^1), true},
		{"declares more than it holds", damage(central+24, usize+1), false},
		{"declares less than it holds", damage(central+24, usize-1), false},
		{"damaged stream", cut, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			zr, err := zip.NewReader(bytes.NewReader(c.data), int64(len(c.data)))
			if err != nil {
				t.Fatal(err)
			}
			var f *zip.File
			for _, m := range zr.File {
				if m.Name == string(name) {
					f = m
				}
			}
			if rc, err := f.Open(); err == nil {
				if _, err := io.ReadAll(rc); err == nil {
					t.Fatal("archive/zip reads the damaged member: not damage")
				}
			}
			if c.readable {
				// Other readers show the text (unzip warns and
				// extracts): it is rewritten like any document's, and
				// the new member's CRC-32 is right.
				res, err := newTest(Policy{Unreadable: Refuse}, true).Part(context.Background(), KindOffice, "a.docx", c.data)
				if err != nil || !res.Changed {
					t.Fatalf("got %v %v, want the document rewritten", res.Action, err)
				}
				got, _ := readZip(t, res.Data)
				if doc := got[string(name)]; strings.Contains(doc, "jane@example.com") || !strings.Contains(doc, "tok-jane@relay.example") {
					t.Fatalf("document.xml: %.200s", doc)
				}
				return
			}
			_, err = newTest(Policy{Unreadable: Refuse}, true).Part(context.Background(), KindOffice, "a.docx", c.data)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("got %v, want the unreadable policy's refusal", err)
			}
			res, err := newTest(Policy{}, true).Part(context.Background(), KindOffice, "a.docx", c.data)
			if err != nil || res.Action != Pass {
				t.Fatalf("got %v %v, want the unreadable policy's pass", res.Action, err)
			}
		})
	}
}

// TestSpliceFallback: a stream the splice cannot follow (here, block ends
// that do not fit the text) is compressed anew: the member is still
// written, with the edited text.
func TestSpliceFallback(t *testing.T) {
	body := spliceText(50 << 10)
	in := buildZip(t, member{name: "[Content_Types].xml", body: "<Types/>"},
		member{name: "word/document.xml", body: string(body), method: zip.Deflate})
	zr, err := zip.NewReader(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	edits := []edit{{from: 10, to: 20, text: []byte("t1-x@relay.example")}}
	bad := &deflated{comp: []byte{0}, ends: []blockEnd{{bit: 8, text: 1, final: true}}}
	out, err := repackZip(zr, in, map[int]newMember{1: {src: bad, orig: body, edits: edits}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readZip(t, out)
	if got["word/document.xml"] != string(applyEdits(body, edits)) {
		t.Fatal("the member was not written with the edited text")
	}
}
