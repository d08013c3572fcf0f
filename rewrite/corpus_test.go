package rewrite

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-message"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// Public MIME test corpora, none written by us:
//   - github.com/jhillyerd/enmime v1.3.0, testdata/: real-world and
//     deliberately broken messages (fetched from the Go module proxy);
//   - CPython's Lib/test/test_email/data (the machine's Python), when present.
const enmimeModule = "github.com/jhillyerd/enmime@v1.3.0"

func corpusFiles(t *testing.T) map[string][]string {
	t.Helper()
	sets := map[string][]string{}
	dir := t.TempDir() // outside our module: the download must not touch go.mod
	cmd := exec.Command("go", "mod", "download", "-json", enmimeModule)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", enmimeModule, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(filepath.Join(mod.Dir, "testdata"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".golden") {
			sets["enmime"] = append(sets["enmime"], p)
		}
		return nil
	})
	py, err := exec.Command("python3", "-c", "import os, test.test_email as t; print(os.path.dirname(t.__file__))").Output()
	if err == nil {
		files, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(py)), "data", "msg_*.txt"))
		sets["cpython"] = files
	} else {
		t.Logf("CPython's test_email corpus not on this machine: %v", err)
	}
	return sets
}

// TestCorpus rewrites every corpus message inbound. Each is either
// rewritten, leaking nothing and corrupting nothing, or refused with a
// typed error; nothing panics and nothing else fails.
func TestCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("corpus")
	}
	for set, files := range corpusFiles(t) {
		counts := map[string]int{}
		for _, f := range files {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rw, _ := newTestRewriter(t, RewriteOptions{})
			out, _, err := runInbound(t, rw, in)
			switch {
			case err == nil:
				counts["rewritten"]++
				checkCorpusOutput(t, f, in, out)
			case errors.Is(err, ErrUnscannable):
				counts["refused: unscannable"]++
				t.Logf("%s: %v", filepath.Base(f), err)
			case errors.Is(err, ErrMalformedAddress):
				counts["refused: malformed address"]++
				t.Logf("%s: %v", filepath.Base(f), err)
			case errors.Is(err, ErrLimit):
				counts["refused: limit"]++
			case errors.Is(err, ErrLeak):
				t.Errorf("%s: the guard caught what the rewriter missed: %v", f, err)
			default:
				t.Errorf("%s: untyped failure: %v", f, err)
			}
		}
		t.Logf("corpus %s: %d messages: %v", set, len(files), counts)
		if counts["rewritten"] == 0 {
			t.Errorf("corpus %s: nothing rewritten", set)
		}
	}
}

func checkCorpusOutput(t *testing.T, name string, in, out []byte) {
	t.Helper()
	inDecoded := decodeAllForTest(t, in)
	outDecoded := bytes.ToLower(decodeAllForTest(t, out))
	for _, a := range customerAddresses(inDecoded) {
		if bytes.Contains(outDecoded, []byte(a)) {
			t.Errorf("%s: %s left in the output", name, a)
		}
	}
	inTree, inErr := partTree(in)
	outTree, outErr := partTree(out)
	if inErr == nil && (outErr != nil || inTree != outTree) {
		t.Errorf("%s: structure changed:\n in: %s\nout: %s (%v)", name, inTree, outTree, outErr)
	}
}

// partTree describes a message as go-message parses it: media types, and
// for non-text parts a digest of the decoded body, which must not change.
func partTree(msg []byte) (string, error) {
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return "", err
	}
	var b strings.Builder
	err = e.Walk(func(path []int, part *message.Entity, err error) error {
		if err != nil {
			return nil
		}
		mt, _, _ := part.Header.ContentType()
		if !mediaTypeRE.MatchString(mt) {
			mt = "(unparsable)" // a broken field, not a structure to compare
		}
		b.WriteString(mt)
		if !strings.HasPrefix(mt, "multipart/") && textKindOf(mt) < 0 && !strings.HasPrefix(mt, "message/") {
			body, _ := io.ReadAll(part.Body)
			b.WriteString("#")
			b.WriteString(strings.TrimSpace(string(body))[:min(len(bytes.TrimSpace(body)), 16)])
		}
		b.WriteString(" ")
		return nil
	})
	return b.String(), err
}

var mediaTypeRE = regexp.MustCompile(`^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$`)

// decodeAllForTest renders a message for the independent leak check: the
// raw bytes, every header field as go-message decodes it, and every text
// part's body decoded by go-message.
func decodeAllForTest(t testing.TB, msg []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	b.Write(msg)
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && e == nil {
		return b.Bytes()
	}
	e.Walk(func(path []int, part *message.Entity, err error) error {
		if err != nil || part == nil {
			return nil
		}
		fields := part.Header.Fields()
		for fields.Next() {
			if msgIDFields[strings.ToLower(fields.Key())] {
				continue
			}
			if v, err := fields.Text(); err == nil {
				b.WriteString(v + "\n")
			}
		}
		mt, _, _ := part.Header.ContentType()
		if kind := textKindOf(mt); kind >= 0 {
			body, _ := io.ReadAll(part.Body)
			if kind == scan.TextFolded { // RFC 5545 section 3.1 unfolding
				body = regexp.MustCompile(`\r?\n[ \t]`).ReplaceAll(body, nil)
			}
			b.Write(body)
		}
		return nil
	})
	return b.Bytes()
}
