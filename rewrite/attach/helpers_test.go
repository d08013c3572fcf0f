package attach

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"strings"
	"testing"
)

// tokenOf is the tests' AddrFunc: every address outside relay.example
// becomes a fixed-form token; the leak check fails on any such address.
func tokenOf(addr string) (string, error) {
	if strings.HasSuffix(addr, "@relay.example") {
		return "", nil
	}
	local, _, _ := strings.Cut(addr, "@")
	return "tok-" + strings.ToLower(strings.ReplaceAll(local, ".", "-")) + "@relay.example", nil
}

var errLeakTest = fmt.Errorf("leak")

func leakCheck(addr string) (string, error) {
	if strings.HasSuffix(addr, "@relay.example") {
		return "", nil
	}
	return "", errLeakTest
}

func newTest(p Policy, enforce bool) *Rewriter {
	return New(Options{Policy: p, Enforce: enforce, Addr: tokenOf})
}

// member is one file of a zip built by a test.
type member struct {
	name   string
	body   string
	method uint16
	flags  uint16
}

func buildZip(t testing.TB, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		fh := &zip.FileHeader{Name: m.name, Method: m.method, Flags: m.flags}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(m.body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, name string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Name = name
	zw.Write(body)
	zw.Close()
	return buf.Bytes()
}

func tarOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

// members reads a zip back: name → content, and the names in order.
func readZip(t testing.TB, data []byte) (map[string]string, []*zip.File) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("result is no zip: %v", err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		out[f.Name] = b.String()
	}
	return out, zr.File
}

func part(t testing.TB, r *Rewriter, kind Kind, name string, data []byte) Result {
	t.Helper()
	res, err := r.Part(context.Background(), kind, name, data)
	if err != nil {
		t.Fatalf("Part: %v", err)
	}
	return res
}
