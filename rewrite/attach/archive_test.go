package attach

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestZipArchiveMembers(t *testing.T) {
	in := buildZip(t,
		member{name: "notes.txt", body: "call jane@example.com", method: zip.Deflate},
		member{name: "page.html", body: `<a href="mailto:bob@example.org">bob</a>`, method: zip.Deflate},
		member{name: "photo.jpg", body: "\xff\xd8\xff jane@example.com in EXIF", method: zip.Store},
		member{name: "dir/", body: ""},
		member{name: "blob.bin", body: "\x00\x01\x02jane@example.com", method: zip.Deflate})
	res := part(t, newTest(Policy{}, true), KindArchive, "a.zip", in)
	got, _ := readZip(t, res.Data)
	if got["notes.txt"] != "call tok-jane@relay.example" || !strings.Contains(got["page.html"], "mailto:tok-bob@relay.example") {
		t.Fatalf("text members: %q", got)
	}
	if got["photo.jpg"] != "\xff\xd8\xff jane@example.com in EXIF" || got["blob.bin"] != "\x00\x01\x02jane@example.com" {
		t.Fatalf("media and unreadable members under pass must stay as they are: %q", got)
	}
}

func TestArchiveMemberPolicy(t *testing.T) {
	in := buildZip(t, member{name: "notes.txt", body: "jane@example.com"},
		member{name: "blob.bin", body: "\x00\x01\x02", method: zip.Deflate})
	for _, c := range []struct {
		p    Policy
		want Action
		err  error
	}{
		{Policy{Unreadable: Refuse}, "", ErrRefused},
		{Policy{Unreadable: Strip}, Strip, nil}, // a member to strip strips its archive
		{Policy{Text: Refuse}, "", ErrRefused},
		{Policy{Archive: Strip}, Strip, nil},
		{Policy{}, Rewrite, nil},
	} {
		res, err := newTest(c.p, true).Part(context.Background(), KindArchive, "a.zip", in)
		if !errors.Is(err, c.err) || err == nil && res.Action != c.want {
			t.Errorf("%+v: %v %v", c.p, res.Action, err)
		}
	}
}

// TestZipChecksumMismatchScanned: a member whose data descriptor's CRC-32
// disagrees with the central directory (FuzzPart found it) decompresses
// whole, and other readers show it: it is rewritten like any member, not
// passed unread and then healed by the repack with the address in it.
func TestZipChecksumMismatchScanned(t *testing.T) {
	in := buildZip(t, member{name: "a.txt", body: "x jane@example.com", method: zip.Deflate},
		member{name: "b.txt", body: "bob@example.org", method: zip.Deflate})
	// archive/zip's writer follows each member with a data descriptor
	// (PK\a\b, CRC-32, sizes): spoil a.txt's CRC there only.
	dd := bytes.Index(in, []byte("PK\x07\x08"))
	in[dd+4] ^= 0xff
	zr, _ := zip.NewReader(bytes.NewReader(in), int64(len(in)))
	rc, _ := zr.File[0].Open()
	if _, err := io.ReadAll(rc); !errors.Is(err, zip.ErrChecksum) {
		t.Fatalf("the damage did not take: %v", err)
	}
	res := part(t, newTest(Policy{Unreadable: Refuse}, true), KindArchive, "a.zip", in)
	got, _ := readZip(t, res.Data)
	if got["a.txt"] != "x tok-jane@relay.example" || got["b.txt"] != "tok-bob@relay.example" {
		t.Fatalf("members: %q", got)
	}
}

func TestGzipAndTar(t *testing.T) {
	tgz := gz(t, "", tarOf(t, map[string]string{"a.txt": "jane@example.com", "b.eml": "To: bob@example.org\r\n\r\nhi"}))
	res := part(t, newTest(Policy{}, true), KindUnknown, "logs.tgz", tgz)
	if !res.Changed || res.Kind != KindArchive {
		t.Fatalf("tar.gz not rewritten: %+v", res.Kind)
	}
	zr, err := gzip.NewReader(bytes.NewReader(res.Data))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if bytes.Contains(plain, []byte("example.")) || !bytes.Contains(plain, []byte("tok-jane@relay.example")) {
		t.Fatalf("tar content: %q", plain)
	}
	one := gz(t, "notes.txt", []byte("mail jane@example.com"))
	res = part(t, newTest(Policy{}, true), KindArchive, "notes.txt.gz", one)
	zr, _ = gzip.NewReader(bytes.NewReader(res.Data))
	plain, _ = io.ReadAll(zr)
	if string(plain) != "mail tok-jane@relay.example" || zr.Name != "notes.txt" {
		t.Fatalf("gzip: %q name %q", plain, zr.Name)
	}
}

func TestSavedMessageMember(t *testing.T) {
	var seen string
	r := New(Options{Addr: tokenOf, Enforce: true, Message: func(_ context.Context, msg []byte) ([]byte, bool, error) {
		seen = string(msg)
		return []byte("rewritten"), true, nil
	}})
	in := buildZip(t, member{name: "saved.eml", body: "From: jane@example.com\r\n\r\nx"})
	res := part(t, r, KindArchive, "a.zip", in)
	got, _ := readZip(t, res.Data)
	if seen == "" || got["saved.eml"] != "rewritten" {
		t.Fatalf("a saved message goes to the message rewriter: %q", got)
	}
}

// TestBombsAndDamage: every hostile or broken archive gets a defined
// answer: ErrLimit, or the unreadable policy; never a panic or runaway
// memory.
func TestBombsAndDamage(t *testing.T) {
	zeros := buildZip(t, member{name: "zeros.txt", body: strings.Repeat("\x00", 8<<20), method: zip.Deflate})
	var nested []byte = buildZip(t, member{name: "a.txt", body: "x"})
	for i := 0; i < 6; i++ {
		nested = buildZip(t, member{name: "n.zip", body: string(nested)})
	}
	many := make([]member, 300)
	for i := range many {
		many[i] = member{name: strings.Repeat("m", i%50+1) + ".txt", body: "x"}
	}
	encrypted := buildZip(t, member{name: "secret.txt", body: "jane@example.com", flags: 0x1})
	good := buildZip(t, member{name: "a.txt", body: "jane@example.com", method: zip.Deflate})
	truncated := good[:len(good)-10]
	lying := bytes.Clone(good)
	// The central directory says 4 bytes; the member holds 16.
	cd := bytes.Index(lying, []byte("PK\x01\x02"))
	binary.LittleEndian.PutUint32(lying[cd+24:], 4)
	bigGz := gz(t, "", bytes.Repeat([]byte("a"), 4<<20))

	lim := Limits{MaxDepth: 4, MaxMembers: 200, MaxExpandedBytes: 16 << 20, MaxRatio: 100}
	for _, c := range []struct {
		name string
		data []byte
		p    Policy
		err  error
		act  Action
	}{
		{"ratio bomb", zeros, Policy{Limits: lim}, ErrLimit, ""},
		{"expanded bytes", zeros, Policy{Limits: Limits{MaxExpandedBytes: 1 << 20, MaxRatio: 1 << 20}}, ErrLimit, ""},
		{"gzip ratio", bigGz, Policy{Limits: lim}, ErrLimit, ""},
		{"deep nesting", nested, Policy{Limits: lim}, ErrLimit, ""},
		{"too many members", buildZip(t, many...), Policy{Limits: lim}, ErrLimit, ""},
		{"encrypted member, pass", encrypted, Policy{}, nil, Rewrite},
		{"encrypted member, refuse", encrypted, Policy{Unreadable: Refuse}, ErrRefused, ""},
		{"truncated, pass", truncated, Policy{}, nil, Pass},
		{"truncated, refuse", truncated, Policy{Unreadable: Refuse}, ErrRefused, ""},
		{"truncated, strip", truncated, Policy{Unreadable: Strip}, nil, Strip},
		{"size larger than declared", lying, Policy{Unreadable: Refuse}, ErrRefused, ""},
		{"claims zip, is not", []byte("hello jane@example.com"), Policy{Unreadable: Refuse}, ErrRefused, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := newTest(c.p, true).Part(context.Background(), KindArchive, "x.zip", c.data)
			if !errors.Is(err, c.err) || err == nil && res.Action != c.act {
				t.Fatalf("got %v %v, want %v %v", res.Action, err, c.act, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "example.com") {
				t.Fatalf("error text holds an address: %v", err)
			}
		})
	}
}

// TestPartHeldReserves: the expansion is asked for before it is read, in
// growing totals, and a refusal stops the reading as ErrHeld wrapping the
// caller's error, never as unreadable content the policy could pass.
func TestPartHeldReserves(t *testing.T) {
	var b strings.Builder // deflates about 5 times: within the ratio limit
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, "order %d shipped %x, write to jane@example.com\n", i*7919%1000003, i*104729)
	}
	body := b.String()
	in := buildZip(t, member{name: "a.txt", body: body, method: zip.Deflate},
		member{name: "b.tgz", body: string(gz(t, "", tarOf(t, map[string]string{"c.txt": body[:1<<20]}))), method: zip.Store})
	var asked []int64
	res, err := newTest(Policy{}, true).PartHeld(context.Background(), KindArchive, "a.zip", in, func(n int64) error {
		asked = append(asked, n)
		return nil
	})
	if err != nil || !res.Changed {
		t.Fatalf("%v %v", res.Action, err)
	}
	if len(asked) < 2 || !slices.IsSorted(asked) || asked[len(asked)-1] < int64(len(body)+1<<20) {
		t.Fatalf("reserved %v for %d bytes expanded", asked, len(body)+1<<20)
	}
	full := errors.New("budget full")
	for _, lim := range []int64{0, 1 << 20, 4 << 20} {
		_, err := newTest(Policy{Unreadable: Refuse}, true).PartHeld(context.Background(), KindArchive, "a.zip", in, func(n int64) error {
			if n > lim {
				return full
			}
			return nil
		})
		if !errors.Is(err, ErrHeld) || !errors.Is(err, full) || errors.Is(err, ErrRefused) {
			t.Errorf("budget %d: %v, want ErrHeld wrapping the caller's error", lim, err)
		}
	}
}
