package pdf

import (
	"errors"
	"maps"
	"slices"
	"testing"
)

// TestScanToUnicodeFirst: a CMap that a font names is read before the
// content streams, wherever it lies (after the pages, as LibreOffice
// writes it; its font in an object stream), so that no stream is decoded
// twice; one no font names is read where it comes, and the content before
// it decoded again. Either way the address is found, within a budget that
// holds each stream once.
func TestScanToUnicodeFirst(t *testing.T) {
	content := []byte("BT /F1 10 Tf [" + shifted("Bitte an jane") + " -20 " + shifted(".doe@example.com") + "] TJ ET")
	font := "<< /Type /Font /Subtype /TrueType /ToUnicode 3 0 R >>"
	cmapObj := streamObj("/Filter /FlateDecode", flate([]byte(shiftedCMap)))
	pageObj := streamObj("/Filter /FlateDecode", flate(content))
	for _, tc := range []struct {
		name      string
		doc       []byte
		wantAgain int
	}{
		{"font names the CMap", handPDF(font, pageObj, cmapObj), 0},
		{"font in an object stream", handPDF(
			streamObj("/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode", flate([]byte("9 0 "+font))), pageObj, cmapObj), 0},
		{"no font names it", handPDF("<< /Type /Font >>", pageObj, cmapObj), 1},
		{"a font names another object", handPDF("<< /ToUnicode 1 0 R >>", pageObj, cmapObj), 1},
	} {
		once := int64(len(content) + len(shiftedCMap))
		if tc.name == "font in an object stream" {
			once += int64(len("9 0 " + font))
		}
		var got []string
		s := &scanner{limits: Limits{MaxDecodedBytes: once}, fn: func(a string) (string, error) {
			got = append(got, a)
			return "", nil
		}}
		s.limits = s.limits.withDefaults()
		if err := s.file(tc.doc); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Contains(got, "jane.doe@example.com") || s.again != tc.wantAgain {
			t.Errorf("%s: found %q, %d streams decoded again; want the address, %d", tc.name, got, s.again, tc.wantAgain)
		}
		if _, err := Scan(tc.doc, Limits{MaxDecodedBytes: once - 1}, func(string) (string, error) { return "", nil }); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: budget short by a byte: %v, want ErrLimit", tc.name, err)
		}
	}
}

// TestScanToUnicodeUnreadable: a named CMap that cannot be decoded is
// left to the file's pass, which says so as it always did.
func TestScanToUnicodeUnreadable(t *testing.T) {
	doc := handPDF("<< /ToUnicode 2 0 R >>", streamObj("/Filter /JBIG9Decode", "\x80"))
	if _, err := found(t, doc); !errors.Is(err, ErrUnreadable) {
		t.Fatalf("err = %v, want ErrUnreadable", err)
	}
}

func TestToUnicodeRefs(t *testing.T) {
	for in, want := range map[string][]int{
		"/ToUnicode 8 0 R":                        {8},
		"<</ToUnicode 12 0 R/FirstChar 0>>":       {12},
		"/ToUnicode\n 7\r\n0\tR /ToUnicode 9 1 R": {7, 9},
		"/ToUnicode /Identity-H":                  nil,
		"/ToUnicode 8 0 obj":                      nil,
		"/ToUnicode 8 R":                          nil,
		"/ToUnicode 80R":                          nil,
		"/ToUnicode 8 0 R/ToUnicode 8 0 R":        {8},
		"/ToUnicode 12345678901 0 R":              nil,
		"/ToUnicode":                              nil,
	} {
		got := slices.Sorted(maps.Keys(toUnicodeRefs(nil, []byte(in))))
		if !slices.Equal(got, want) {
			t.Errorf("toUnicodeRefs(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestObjectNumber(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"8 0 obj", 8}, {"endobj\n12 0 obj", 12}, {"x\r\n345 2\nobj", 345},
		{"0 obj", -1}, {"8 obj", -1}, {"80obj", -1}, {"a b obj", -1}, {"1234567890 0 obj", -1},
	} {
		at := len(tc.in) - len("obj")
		if got := objectNumber([]byte(tc.in), at); got != tc.want {
			t.Errorf("objectNumber(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if got := objectNumber([]byte("8 0 xbj"), 4); got != -1 {
		t.Errorf("no obj keyword: %d", got)
	}
}

// FuzzFile: the file's pass, without Scan's recover, neither panics nor
// fails untyped on any input: a panic there would make a PDF unreadable
// (and pass it, by default) instead of read; and it finds the same with
// and without skipping streams (skip.go). The seeds hold CMaps that
// fonts name, in object streams too, and ones no font names.
func FuzzFile(f *testing.F) {
	content := "BT /F1 10 Tf [" + shifted("Bitte an jane") + " -20 " + shifted(".doe@example.com") + "] TJ ET"
	cmapObj := streamObj("/Filter /FlateDecode", flate([]byte(shiftedCMap)))
	f.Add(handPDF("<< /ToUnicode 3 0 R >>", streamObj("", content), cmapObj))
	f.Add(handPDF(streamObj("/Type /ObjStm /N 1 /First 4", "9 0 << /ToUnicode 3 0 R >>"), streamObj("", content), streamObj("", shiftedCMap)))
	f.Add(handPDF(streamObj("", content), streamObj("", shiftedCMap), "<< /ToUnicode 1 0 R /ToUnicode 2 0 R >>"))
	f.Add(handPDF(streamObj("", "[(mailto:jane%) (40ex.com) (\xfe\xff\x00@)] TJ /K <FEFF0025>"), "<< /T (a\\100b.de) >>"))
	f.Add(handPDF("<< /ToUnicode 2 0 R >>", streamObj("/Filter /FlateDecode", flate([]byte(shiftedCMap))),
		streamObj("", "BT /F1 10 Tf ["+shiftedGlyphs("Rechnung")+"] TJ ET"), streamObj("", "BT ["+shiftedGlyphs("a jane@x.de")+"] TJ ET")))
	f.Fuzz(func(t *testing.T, data []byte) {
		var found [2][]string
		var errs [2]error
		for k, noSkip := range []bool{false, true} {
			s := &scanner{limits: Limits{MaxDecodedBytes: 1 << 20}.withDefaults(), noSkip: noSkip, fn: func(a string) (string, error) {
				found[k] = append(found[k], a)
				return "", nil
			}}
			errs[k] = s.file(data)
			if err := errs[k]; err != nil && !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrLimit) {
				t.Fatalf("untyped error: %v", err)
			}
		}
		// Skipping the streams mayHit says no to (skip.go) finds what
		// reading every stream's strings finds.
		if !slices.Equal(found[0], found[1]) || (errs[0] == nil) != (errs[1] == nil) {
			t.Fatalf("with the skip %q, %v; without %q, %v", found[0], errs[0], found[1], errs[1])
		}
	})
}
