package pdf

import (
	"errors"
	"slices"
	"testing"
)

// TestCMapMayShowAt: a CMap none of whose codes reads as '@' or '%' cannot
// make an address, and its reading is skipped.
func TestCMapMayShowAt(t *testing.T) {
	for _, tc := range []struct {
		name, cmap string
		want       bool
	}{
		{"letters", "begincmap 2 beginbfchar <01> <006A> <02> <0061> endbfchar endcmap", false},
		{"at", "begincmap 2 beginbfchar <01> <006A> <02> <0040> endbfchar endcmap", true},
		{"percent", "begincmap 1 beginbfchar <01> <0025> endbfchar endcmap", true},
		{"range", "begincmap 1 beginbfrange <00> <5E> <0020> endbfrange endcmap", true},
		{"range below", "begincmap 1 beginbfrange <00> <1F> <0000> endbfrange endcmap", false},
		{"ligature", "begincmap 1 beginbfchar <01> <00410040> endbfchar endcmap", true},
	} {
		if got := parseCMap([]byte(tc.cmap), 1000).mayShowAt; got != tc.want {
			t.Errorf("%s: mayShowAt = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestScanCMapAfterContent: text shown in a font's codes is found when
// the CMap comes after the content stream (the content stream is decoded
// again for the CMap reading), within a budget that holds each stream
// once: the second decoding is not counted against it.
func TestScanCMapAfterContent(t *testing.T) {
	content := []byte("BT /F1 10 Tf [" + shifted("Bitte an jane") + " -20 " + shifted(".doe@example.com") + "] TJ ET")
	doc := handPDF(
		streamObj("/Filter /FlateDecode", flate(content)),
		streamObj("/Filter /FlateDecode", flate([]byte(shiftedCMap))),
	)
	once := int64(len(content) + len(shiftedCMap))
	for _, tc := range []struct {
		name    string
		budget  int64
		want    []string
		wantErr error
	}{
		{"budget for one decoding", once, []string{"jane.doe@example.com"}, nil},
		{"budget short by one byte", once - 1, nil, ErrLimit},
	} {
		var got []string
		_, err := Scan(doc, Limits{MaxDecodedBytes: tc.budget}, func(a string) (string, error) {
			got = append(got, a)
			return "", nil
		})
		if !errors.Is(err, tc.wantErr) {
			t.Fatalf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
		if tc.wantErr == nil && !slices.Contains(got, tc.want[0]) {
			t.Fatalf("%s: found %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestScanCMapWithoutAt: in a file whose CMaps cannot make an '@' (whose
// readings are skipped), an address in plain text next to text in a
// font's codes is still found.
func TestScanCMapWithoutAt(t *testing.T) {
	letters := "begincmap 1 beginbfrange <01> <1A> <0061> endbfrange endcmap"
	doc := handPDF(
		streamObj("/Filter /FlateDecode", flate([]byte("BT <010203> Tj (bob@example.org) Tj ET"))),
		streamObj("/Filter /FlateDecode", flate([]byte(letters))),
	)
	got, err := found(t, doc)
	if err != nil || !slices.Equal(got, []string{"bob@example.org"}) {
		t.Fatalf("found %v, %v", got, err)
	}
}

func TestShowsText(t *testing.T) {
	for in, want := range map[string]bool{
		"": false, "T": false, "Tj": true, "TJ": true, "BT /F1 9 Tf 1 0 Td [(a)] TJ": true,
		"BT (a) Tj ET": true, "BT ET Td Tf": false, "q 1 0 0 1 cm /Im0 Do Q": false, "xT": false,
	} {
		if got := showsText([]byte(in)); got != want {
			t.Errorf("showsText(%q) = %v", in, got)
		}
	}
}
