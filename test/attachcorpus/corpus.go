// Package attachcorpus makes the attachment corpus of issue 17: documents
// from real producers (make_documents.py: python-docx, openpyxl,
// LibreOffice headless, Python's zipfile and tarfile) and the readers that
// check them (read_documents.py). test/integration runs the corpus
// through `proxy rewrite` and the inbound route; the rewriter's
// benchmarks take their large document from here.
package attachcorpus

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/tools"
)

// Dir is this package's directory, where the scripts are.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Install runs test/tools/install-office.sh (once per test binary).
func Install(tb testing.TB) {
	tb.Helper()
	script := filepath.Join(Dir(), "..", "tools", "install-office.sh")
	if out, err := tools.RunScript(script); err != nil {
		tb.Fatalf("test/tools/install-office.sh: %v\n%s", err, out)
	}
}

// LargeDocx returns the benchmarks' text-only docx of about 1 MB (23,000
// python-docx paragraphs, about 10 MB of XML, a customer address in every
// 50th paragraph), made once and kept in the temporary directory.
func LargeDocx(tb testing.TB) []byte { return document(tb, "--large", 23000) }

// LetterDocx returns a text-only docx of about 1 MB as a support case
// holds one: the same 23,000 paragraphs, the customer named only where a
// letter names them (header, properties, the opening lines, a table, a
// hyperlink, the signature at the end).
func LetterDocx(tb testing.TB) []byte { return document(tb, "--letter", 23000) }

// PictureDocx returns a docx of about 1 MB as most are: 1,500 paragraphs
// of text (500 KB of XML, 30 customer addresses) and a 900 KB picture.
func PictureDocx(tb testing.TB) []byte { return document(tb, "--picture", 1500) }

func document(tb testing.TB, mode string, paragraphs int) []byte {
	tb.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("tokenproxy-bench%s-%d.docx", mode, paragraphs))
	if b, err := os.ReadFile(path); err == nil {
		return b
	}
	Install(tb)
	tmp := path + ".tmp"
	cmd := exec.Command("/usr/bin/python3", filepath.Join(Dir(), "make_documents.py"), mode, fmt.Sprint(paragraphs), tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("make_documents.py %s: %v\n%s", mode, err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
