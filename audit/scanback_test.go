package audit

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestScanBackward(t *testing.T) {
	path := testPath(t)
	l := mustOpen(t, Options{Path: path})
	// Long reasons make records span the 64 KiB read chunks.
	for i := range 300 {
		r := resolved(i)
		r.Reason = strings.Repeat("x", 1000+i)
		mustAppend(t, l, r)
	}
	mustClose(t, l)
	want := records(t, path)
	slices.Reverse(want)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		data []byte
		want []Record
	}{
		{"whole trail", data, want},
		{"a partial last line is skipped", append(bytes.Clone(data), `{"seq":999,"ti`...), want},
		{"only a partial line", []byte(`{"seq":1`), nil},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Record
			err := ScanBackward(bytes.NewReader(tt.data), int64(len(tt.data)), func(r Record) (bool, error) {
				got = append(got, r)
				return true, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d records, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i].Seq != tt.want[i].Seq || got[i].Hash != tt.want[i].Hash {
					t.Fatalf("record %d: seq %d, want %d", i, got[i].Seq, tt.want[i].Seq)
				}
			}
		})
	}

	t.Run("stops when asked", func(t *testing.T) {
		n := 0
		err := ScanBackward(bytes.NewReader(data), int64(len(data)), func(Record) (bool, error) {
			n++
			return n < 5, nil
		})
		if err != nil || n != 5 {
			t.Fatalf("read %d records, %v; want 5", n, err)
		}
	})
	t.Run("a malformed line is an error", func(t *testing.T) {
		bad := append([]byte("not json\n"), data...)
		err := ScanBackward(bytes.NewReader(bad), int64(len(bad)), func(Record) (bool, error) { return true, nil })
		if err == nil || !strings.Contains(err.Error(), "offset 0") {
			t.Fatalf("err = %v, want one naming offset 0", err)
		}
		stop := errors.New("stop")
		err = ScanBackward(bytes.NewReader(data), int64(len(data)), func(Record) (bool, error) { return false, stop })
		if !errors.Is(err, stop) {
			t.Fatalf("err = %v, want fn's error", err)
		}
	})
}
