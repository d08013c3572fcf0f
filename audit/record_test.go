package audit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEncodeLineRoundTrip(t *testing.T) {
	rec := Record{Seq: 7, Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), Event: TokenCreated,
		Tokens: []string{"t1-abc@relay.example"}, Detail: map[string]string{"b": "2", "a": "<&>"}, Prev: zeroHash}
	line, err := encodeLine(&rec)
	if err != nil {
		t.Fatal(err)
	}
	if line[len(line)-1] != '\n' || !strings.HasSuffix(string(line), `,"hash":"`+rec.Hash+`"}`+"\n") {
		t.Fatalf("line does not end with the hash field: %s", line)
	}
	got, computed, err := parseLine(line[:len(line)-1])
	if err != nil {
		t.Fatal(err)
	}
	if computed != rec.Hash || got.Hash != rec.Hash {
		t.Fatalf("hash: computed %s, stated %s, want %s", computed, got.Hash, rec.Hash)
	}
	if !got.Time.Equal(rec.Time) || got.Seq != 7 || got.Detail["a"] != "<&>" {
		t.Fatalf("round trip: got %+v", got)
	}
	if !strings.Contains(string(line), `"time":"2025-01-02T03:04:05.000000006Z"`) {
		t.Fatalf("time not RFC 3339 with nanoseconds: %s", line)
	}
}

func TestParseLineRefuses(t *testing.T) {
	rec := Record{Seq: 1, Event: Started, Prev: zeroHash}
	good, err := encodeLine(&rec)
	if err != nil {
		t.Fatal(err)
	}
	good = good[:len(good)-1]
	tests := []struct{ name, line string }{
		{"empty", ""},
		{"not json", "hello"},
		{"no hash", `{"seq":1,"event":"x","prev":"` + zeroHash + `"}`},
		{"upper-case hash", strings.Replace(string(good), rec.Hash, strings.ToUpper(rec.Hash), 1)},
		{"duplicate hash key", strings.Replace(string(good), `{"seq":1`, `{"hash":"`+zeroHash+`","seq":1`, 1) + ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, computed, err := parseLine([]byte(tt.line))
			if err == nil && computed == rec.Hash {
				t.Fatalf("parseLine accepted %q", tt.line)
			}
		})
	}
}

func TestCheckpointMessage(t *testing.T) {
	got := string(CheckpointMessage(42, zeroHash))
	want := "tokenproxy audit checkpoint v1\n42\n" + zeroHash + "\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestAppendRefusesAddresses(t *testing.T) {
	path := testPath(t)
	l := mustOpen(t, Options{Path: path})
	defer mustClose(t, l)
	tests := []struct {
		name string
		rec  Record
		want error
	}{
		{"token with @ is fine", Record{Event: TokenCreated, Tokens: []string{"t1-abc@relay.example"}}, nil},
		{"actor", Record{Event: AuditRead, Actor: "officer:alice@example.com"}, ErrAddressInRecord},
		{"route", Record{Event: TokenResolved, Route: "a@b"}, ErrAddressInRecord},
		{"reason", Record{Event: ComplianceLookup, Reason: "request from bob@example.com"}, ErrAddressInRecord},
		{"msgid", Record{Event: TokenResolved, MessageID: "<x@y>"}, ErrAddressInRecord},
		{"outcome", Record{Event: TokenResolved, Outcome: "@"}, ErrAddressInRecord},
		{"detail value", Record{Event: Backup, Detail: map[string]string{"to": "c@d"}}, ErrAddressInRecord},
		{"detail key", Record{Event: Backup, Detail: map[string]string{"c@d": "x"}}, ErrAddressInRecord},
		{"event", Record{Event: "x@y"}, ErrAddressInRecord},
		{"no event", Record{Actor: "system"}, ErrInvalidRecord},
		{"checkpoint by caller", Record{Event: Checkpoint, Sig: "v1:AAAA"}, ErrInvalidRecord},
		{"too large", Record{Event: Backup, Reason: strings.Repeat("x", MaxLineSize)}, ErrInvalidRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := l.Head()
			_, err := l.Append(t.Context(), tt.rec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Append error %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "@") && !strings.Contains(err.Error(), "'@'") {
				t.Fatalf("error text echoes the value: %v", err)
			}
			if err != nil && l.Head() != before {
				t.Fatalf("a refused record moved the head")
			}
		})
	}
	// A refused record in a call refuses the whole call.
	if _, err := l.Append(t.Context(), resolved(1), Record{Event: AuditRead, Reason: "a@b"}); !errors.Is(err, ErrAddressInRecord) {
		t.Fatalf("mixed call: %v", err)
	}
	requireOK(t, verifyFile(t, path, nil))
}
