package pdf

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/textforms"
)

// found runs Scan and lists the addresses it saw, each once, sorted.
func found(t testing.TB, pdf []byte) ([]string, error) {
	t.Helper()
	seen := map[string]bool{}
	n, err := Scan(pdf, Limits{}, func(a string) (string, error) {
		seen[strings.ToLower(a)] = true
		return "x@y.example", nil
	})
	var out []string
	for a := range seen {
		out = append(out, a)
	}
	slices.Sort(out)
	if err == nil && n == 0 && len(out) > 0 {
		t.Fatalf("%d replacements counted for %v", n, out)
	}
	return out, err
}

// TestScanReportLab: PDFs written by ReportLab, with compressed content
// streams. Before issue 17 a PDF was streamed as it came: the guard saw
// its raw bytes only, and every address in a compressed stream reached
// the CRM.
func TestScanReportLab(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string
	}{
		{"text in a compressed page", `c = canvas.Canvas(path, pageCompression=1)
c.drawString(72, 720, "Invoice for jane.doe@example.com")
c.save()`, []string{"jane.doe@example.com"}},
		{"address drawn in two pieces", `c = canvas.Canvas(path, pageCompression=1)
c.drawString(72, 700, "jane.doe")
c.drawString(118, 700, "@example.com")
c.save()`, []string{"jane.doe@example.com"}},
		{"info dictionary", `c = canvas.Canvas(path, pageCompression=1)
c.setAuthor("Jane Doe <jane.doe@example.com>")
c.setSubject("Bestellung von Jörg, bob.roe@example.org")
c.drawString(72, 720, "Invoice")
c.save()`, []string{"bob.roe@example.org", "jane.doe@example.com"}},
		{"mailto link annotation", `c = canvas.Canvas(path, pageCompression=1)
c.linkURL("mailto:bob.roe@example.org", (72, 680, 300, 695))
c.drawString(72, 680, "Write to Bob")
c.save()`, []string{"bob.roe@example.org"}},
		{"escaped parentheses and octal", `c = canvas.Canvas(path, pageCompression=1)
c.drawString(72, 720, "(Jane) jane\\(x\\)@example.com")
c.save()`, nil},
		{"no address", `c = canvas.Canvas(path, pageCompression=1)
c.drawString(72, 720, "Invoice 1234, total 99 EUR")
c.save()`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pdf := textforms.ReportLabPDF(t, tt.body)
			if !bytes.Contains(pdf, []byte("FlateDecode")) {
				t.Fatal("ReportLab wrote no compressed stream: the test proves nothing")
			}
			got, err := found(t, pdf)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "escaped parentheses and octal" {
				// "jane(x)@example.com" is no address; the scan must not
				// break on the escapes, and must see "x)@example.com"'s
				// neighbour as a reader does.
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("found %v, want %v\npdftotext:\n%s", got, tt.want, textforms.PDFText(t, pdf))
			}
		})
	}
}

// handPDF is a minimal PDF with the given objects (bodies without "n 0
// obj"), for forms ReportLab does not write.
func handPDF(objects ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	for i, o := range objects {
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	b.WriteString("trailer\n<< /Root 1 0 R >>\n%%EOF\n")
	return b.Bytes()
}

func flate(b []byte) string {
	var out bytes.Buffer
	w := zlib.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.String()
}

func streamObj(dict string, data string) string {
	return fmt.Sprintf("<< %s /Length %d >>\nstream\n%s\nendstream", dict, len(data), data)
}

func TestScanForms(t *testing.T) {
	xmp := `<?xpacket begin=""?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><dc:creator><rdf:Seq><rdf:li>jane.doe&#64;example.com</rdf:li></rdf:Seq></dc:creator></rdf:RDF></x:xmpmeta>`
	tests := []struct {
		name string
		pdf  []byte
		want []string
	}{
		{"XMP metadata, compressed", handPDF(streamObj("/Type /Metadata /Subtype /XML /Filter /FlateDecode", flate([]byte(xmp)))), []string{"jane.doe@example.com"}},
		{"hex string in a TJ array", handPDF(streamObj("/Filter /FlateDecode", flate([]byte("BT /F1 12 Tf [<6a616e65> -20 (.doe@exam) 5 (ple.com)] TJ ET")))), []string{"jane.doe@example.com"}},
		{"UTF-16BE text string", handPDF("<< /Author <FEFF006A0061006E0065004000650078002E0063006F006D> >>"), []string{"jane@ex.com"}},
		{"UTF-16BE literal", handPDF("<< /Title (\xfe\xff\x00j\x00@\x00e\x00x\x00.\x00d\x00e) >>"), []string{"j@ex.de"}},
		{"octal escape for the at sign", handPDF("<< /Author (jane\\100example.com) >>"), []string{"jane@example.com"}},
		{"ASCIIHex then Flate", handPDF(streamObj("/Filter [/ASCIIHexDecode /FlateDecode]", fmt.Sprintf("%x>", flate([]byte("(bob@example.org) Tj"))))), []string{"bob@example.org"}},
		{"ASCII85", handPDF(streamObj("/Filter /ASCII85Decode", "<~@rH4'Ch[s*F*)>@FD,5.A79Rg~>")), nil},
		{"image stream skipped", handPDF(streamObj("/Subtype /Image /Filter /DCTDecode", "\xff\xd8\xff\xe0 jane")), nil},
		{"object stream", handPDF(streamObj("/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode", flate([]byte("2 0 << /URI (mailto:jane@example.com) >>")))), []string{"jane@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := found(t, tt.pdf)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("found %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestScanRefusals: what cannot be read whole is said so, never a
// panic or a memory run.
func TestScanRefusals(t *testing.T) {
	bomb := flate(bytes.Repeat([]byte{' '}, 200<<20)) // 200 MiB of spaces in about 200 KiB
	tests := []struct {
		name string
		pdf  []byte
		want error
	}{
		{"not a PDF", []byte("GIF89a"), ErrUnreadable},
		{"deflate bomb", handPDF(streamObj("/Filter /FlateDecode", bomb)), ErrLimit},
		{"encrypted", append(handPDF("<< /Author (x) >>"), "trailer << /Encrypt 5 0 R >>\n"...), ErrUnreadable},
		{"unknown filter", handPDF(streamObj("/Filter /JBIG9Decode", "\x80\x0b")), ErrUnreadable},
		{"broken zlib", handPDF(streamObj("/Filter /FlateDecode", "not zlib")), ErrUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := found(t, tt.pdf); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// A file cut short keeps what can be read.
	pdf := handPDF(streamObj("/Filter /FlateDecode", flate([]byte("(jane@example.com) Tj ET"))))
	if got, err := found(t, pdf[:len(pdf)*2/3]); err != nil && !errors.Is(err, ErrUnreadable) {
		t.Fatalf("truncated: %v, %v", got, err)
	}
}

// FuzzScan: any input is scanned or refused with ErrUnreadable or
// ErrLimit; nothing panics, and fn's own error comes back as it is.
func FuzzScan(f *testing.F) {
	f.Add(handPDF(streamObj("/Filter /FlateDecode", flate([]byte("BT [(jane@exa) 3 (mple.com)] TJ ET")))))
	f.Add(handPDF("<< /Author <FEFF006A0040> /Title (a\\)b\\100c.de) >>"))
	f.Add(handPDF(streamObj("/Filter [/AHx /Fl]", "78 9c 03 00 00 00 00 01>")))
	f.Add([]byte("%PDF-1.4\nstream\r\nendstream"))
	f.Add(handPDF(streamObj("/Filter /LZWDecode", lzwOf([]byte("BT (bob@example.org) Tj ET")))))
	f.Add(handPDF(streamObj("/Filter [/RL /Fl]", runLengthOf([]byte(flate([]byte("(dave@example.com) Tj")))))))
	errStop := errors.New("stop")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Scan(data, Limits{MaxDecodedBytes: 1 << 20}, func(string) (string, error) { return "", nil })
		if err != nil && !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrLimit) {
			t.Fatalf("untyped error: %v", err)
		}
		if _, err := Scan(data, Limits{MaxDecodedBytes: 1 << 20}, func(string) (string, error) { return "", errStop }); err != nil &&
			!errors.Is(err, errStop) && !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrLimit) {
			t.Fatalf("fn's error lost: %v", err)
		}
	})
}

// TestScanLibreOffice: LibreOffice Writer's PDF export shows text in
// subset fonts whose codes are no characters ("jane" may be <0E0F0510>);
// only the ToUnicode CMaps read it. Without them the addresses go unseen.
func TestScanLibreOffice(t *testing.T) {
	if testing.Short() {
		t.Skip("LibreOffice")
	}
	doc := textforms.LibreOfficePDF(t, "Rechnung für Jörg\nBitte an jane.doe@example.com schreiben,\nKopie an bob.roe@example.org.\n")
	text := textforms.PDFText(t, doc)
	if !strings.Contains(text, "jane.doe@example.com") || !strings.Contains(text, "bob.roe@example.org") {
		t.Fatalf("pdftotext does not see the addresses: the test proves nothing\n%s", text)
	}
	got, err := found(t, doc)
	if err != nil || !slices.Equal(got, []string{"bob.roe@example.org", "jane.doe@example.com"}) {
		t.Fatalf("found %v, %v", got, err)
	}
	// Its fonts name their CMaps: they are read first, and no stream is
	// decoded twice.
	s := &scanner{limits: Limits{}.withDefaults(), fn: func(string) (string, error) { return "", nil }}
	if err := s.file(doc); err != nil || s.again != 0 || len(s.pre) == 0 {
		t.Fatalf("scan: %v; %d streams read first, %d decoded again", err, len(s.pre), s.again)
	}
	// Nowhere in the file, streams decoded, is the address in plain codes.
	s = &scanner{limits: Limits{}.withDefaults()}
	for i := 0; i < len(doc); {
		kw, ds, de, next, dict := nextStream(doc, i)
		if kw < 0 {
			break
		}
		content, _ := s.decode(dict, doc[ds:de])
		if bytes.Contains(content, []byte("jane")) || bytes.Contains(pdfStrings(content, plainString), []byte("jane")) {
			t.Fatalf("a stream shows the address in plain codes: the test proves nothing")
		}
		i = next
	}
}

func TestParseCMap(t *testing.T) {
	cm := parseCMap([]byte("begincmap 1 begincodespacerange <0000> <FFFF> endcodespacerange\n"+
		"2 beginbfchar <0001> <006A> <0002> <0040> endbfchar\n"+
		"2 beginbfrange <0010> <0012> <0061> <0020> <0021> [<0065> <D83DDE00>] endbfrange endcmap"), 100)
	got := string(cm.decode(nil, []byte{0, 1, 0, 0x10, 0, 0x12, 0, 2, 0, 0x20, 0, 0x21, 0, 0x99}))
	if want := "jac@e😀\uFFFD"; got != want {
		t.Fatalf("decoded %q, want %q", got, want)
	}
}

// TestScanCMapBombs: a file of many CMaps, each asking for every content
// stream to be read once more, or of CMaps naming more codes than fonts
// have, is refused as a limit.
func TestScanCMapBombs(t *testing.T) {
	small := "begincmap 1 begincodespacerange <00> <FF> endcodespacerange 1 beginbfchar <01> <0041> endbfchar endcmap"
	big := "begincmap 1 begincodespacerange <0000> <FFFF> endcodespacerange 1 beginbfrange <0000> <FFFF> <0041> endbfrange endcmap"
	for name, tt := range map[string]struct {
		cmap string
		n    int
	}{"many": {small, maxCMaps + 1}, "large": {big, 3}} {
		var objs []string
		for range tt.n {
			objs = append(objs, streamObj("/Filter /FlateDecode", flate([]byte(tt.cmap))))
		}
		objs = append(objs, streamObj("", "BT <0001> Tj ET"))
		if _, err := found(t, handPDF(objs...)); !errors.Is(err, ErrLimit) {
			t.Fatalf("%s: err = %v, want ErrLimit", name, err)
		}
	}
}
