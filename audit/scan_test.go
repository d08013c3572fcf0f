package audit

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestScanMalformedLine(t *testing.T) {
	signer, _ := testKeys(t, "local:test")
	lines, _ := trail(t, signer)
	tests := []struct {
		name string
		in   []byte
		want string // in the error; "" for none
		n    int    // records seen
	}{
		{"good", join(lines), "", 24},
		{"garbage on line 3", join(slices.Insert(slices.Clone(lines), 2, []byte("{not json"))), "line 3", 2},
		{"empty line 2", join(slices.Insert(slices.Clone(lines), 1, []byte{})), "line 2", 1},
		{"too long line 4", join(slices.Insert(slices.Clone(lines), 3, bytes.Repeat([]byte("x"), MaxLineSize+1))), "line 4", 3},
		{"partial last line skipped", join(lines)[:len(join(lines))-10], "", 23},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			err := Scan(bytes.NewReader(tt.in), func(Record, []byte) error { n++; return nil })
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Scan error %v, want %q", err, tt.want)
			}
			if n != tt.n {
				t.Fatalf("%d records before the error, want %d", n, tt.n)
			}
		})
	}
}

func TestScanStopsOnCallbackError(t *testing.T) {
	signer, _ := testKeys(t, "local:test")
	lines, _ := trail(t, signer)
	stop := errors.New("stop")
	err := Scan(bytes.NewReader(join(lines)), func(rec Record, line []byte) error {
		if !bytes.Equal(line, lines[rec.Seq-1]) {
			t.Fatalf("line %d differs", rec.Seq)
		}
		if rec.Seq == 3 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("Scan: %v", err)
	}
}

func TestSelect(t *testing.T) {
	path := testPath(t)
	clock := fakeClock() // one second per batch: Started at +1s, record i at +(i+2)s
	l := mustOpen(t, Options{Path: path, Now: clock})
	recs := []Record{
		{Event: TokenCreated, Tokens: []string{"t1-aaa@relay.example"}},
		{Event: TokenResolved, Tokens: []string{"t1-aaa@relay.example", "t1-bbb@relay.example"}},
		{Event: ComplianceLookup, Actor: "officer:alice", Tokens: []string{"T1-BBB@Relay.Example"}},
		{Event: TokenErased, Tokens: []string{"t1-aaa@relay.example"}},
		{Event: AuditRead, Actor: "officer:alice"},
	}
	for _, r := range recs {
		mustAppend(t, l, r)
	}
	mustClose(t, l)
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }

	tests := []struct {
		name string
		q    Query
		want []uint64
	}{
		{"all", Query{}, []uint64{1, 2, 3, 4, 5, 6, 7}},
		{"token, case-insensitive", Query{Token: "t1-BBB@relay.example"}, []uint64{3, 4}},
		{"token aaa", Query{Token: "t1-aaa@relay.example"}, []uint64{2, 3, 5}},
		{"events", Query{Events: []string{TokenCreated, TokenErased}}, []uint64{2, 5}},
		{"from seq", Query{FromSeq: 6}, []uint64{6, 7}},
		{"since until", Query{Since: at(3), Until: at(5)}, []uint64{3, 4}},
		{"limit", Query{Token: "t1-aaa@relay.example", Limit: 2}, []uint64{2, 3}},
		{"token and event", Query{Token: "t1-aaa@relay.example", Events: []string{TokenErased}}, []uint64{5}},
		{"no match", Query{Token: "t1-zzz@relay.example"}, nil},
		{"actor", Query{Actor: "officer:alice"}, []uint64{4, 6}},
		{"actor and event", Query{Actor: "officer:alice", Events: []string{AuditRead}}, []uint64{6}},
		{"actor, exactly", Query{Actor: "officer:Alice"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var got []uint64
			if err := Select(f, tt.q, func(rec Record) error {
				got = append(got, rec.Seq)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got seqs %v, want %v", got, tt.want)
			}
		})
	}
}
