package rewrite

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/rewrite")

func internalDomain(d string) bool { return d == "company.example" || d == "crm.example" }

func newTestRewriter(t testing.TB, opts RewriteOptions) (*Rewriter, *tokenize.Map) {
	t.Helper()
	m := newTestMap(t)
	if opts.Internal == nil {
		opts.Internal = internalDomain
	}
	return NewRewriter(m, opts), m
}

func runInbound(t testing.TB, rw *Rewriter, msg []byte) ([]byte, *Report, error) {
	t.Helper()
	var out bytes.Buffer
	rep, err := rw.Inbound(context.Background(), &out, bytes.NewReader(msg))
	return out.Bytes(), rep, err
}

func runOutbound(t testing.TB, rw *Rewriter, msg []byte) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	_, err := rw.Outbound(context.Background(), &out, bytes.NewReader(msg))
	return out.Bytes(), err
}

// customerAddrRE finds addresses independently of the scanner under test.
var customerAddrRE = regexp.MustCompile(`(?i)[a-z0-9.+_-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.(net|org|com|de)\b`)

// customerAddresses lists the customer addresses a test message holds.
func customerAddresses(msg []byte) []string {
	var out []string
	msg = msgIDLineRE.ReplaceAll(msg, nil) // threading keys, not addresses
	for _, a := range customerAddrRE.FindAllString(string(msg), -1) {
		d := strings.ToLower(domainPart(a))
		if !internalDomain(d) && !strings.HasPrefix(d, "01d9") && !strings.Contains(a, "=") {
			out = append(out, strings.ToLower(a))
		}
	}
	return out
}

var msgIDLineRE = regexp.MustCompile(`(?im)^(message-id|in-reply-to|references|content-id):.*(\r?\n[ \t].*)*$`)

var goldenInputs = []string{"plain-reply", "multipart-html", "forward-calendar-csv", "latin1", "internal-only", "broken-multipart"}

func TestRewriteGolden(t *testing.T) {
	for _, name := range goldenInputs {
		t.Run(name, func(t *testing.T) {
			rw, _ := newTestRewriter(t, RewriteOptions{})
			in, err := os.ReadFile(filepath.Join("testdata/rewrite", name+".eml"))
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := runInbound(t, rw, in)
			if err != nil {
				t.Fatalf("Inbound: %v", err)
			}
			golden := filepath.Join("testdata/rewrite", name+".inbound.golden")
			if *update {
				os.WriteFile(golden, out, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("output differs from %s:\n%s", golden, out)
			}
		})
	}
}

// TestNoLeakAndRoundTrip: inbound leaves no customer address anywhere, raw
// or in any encoding the independent regexp sees after decoding; outbound
// of that output gives every address back.
func TestNoLeakAndRoundTrip(t *testing.T) {
	for _, name := range goldenInputs {
		t.Run(name, func(t *testing.T) {
			rw, _ := newTestRewriter(t, RewriteOptions{DisplayNames: NamesKeep})
			in, _ := os.ReadFile(filepath.Join("testdata/rewrite", name+".eml"))
			out, _, err := runInbound(t, rw, in)
			if err != nil {
				t.Fatal(err)
			}
			decoded := decodeAllForTest(t, out)
			for _, a := range customerAddresses(decodeAllForTest(t, in)) {
				if bytes.Contains(bytes.ToLower(decoded), []byte(a)) {
					t.Errorf("customer address %s left in the inbound output", a)
				}
			}
			if err := rw.Guard(context.Background(), bytes.NewReader(out)); err != nil {
				t.Errorf("Guard on inbound output: %v", err)
			}
			back, err := runOutbound(t, rw, out)
			if err != nil {
				t.Fatalf("Outbound: %v", err)
			}
			backDecoded := bytes.ToLower(decodeAllForTest(t, back))
			for _, a := range customerAddresses(decodeAllForTest(t, in)) {
				if !bytes.Contains(backDecoded, []byte(a)) {
					t.Errorf("address %s not restored by outbound", a)
				}
			}
			if bytes.Contains(backDecoded, []byte("@relay.company.example")) {
				t.Errorf("tokens left after outbound:\n%s", back)
			}
		})
	}
}

func TestInternalOnlyIsByteIdentical(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{})
	in, _ := os.ReadFile("testdata/rewrite/internal-only.eml")
	out, rep, err := runInbound(t, rw, in)
	if err != nil || !bytes.Equal(in, out) || len(rep.Tokens) != 0 {
		t.Fatalf("err %v, tokens %v, output:\n%s", err, rep.Tokens, out)
	}
}

func TestThreadingAndAttachmentsUntouched(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{})
	in, _ := os.ReadFile("testdata/rewrite/multipart-html.eml")
	out, _, err := runInbound(t, rw, in)
	if err != nil {
		t.Fatal(err)
	}
	png := in[bytes.Index(in, []byte("Content-Type: image/png")):]
	if !bytes.Contains(out, png) {
		t.Error("the image part (and everything after it) is not byte-identical")
	}
	plain, _ := os.ReadFile("testdata/rewrite/plain-reply.eml")
	out, _, _ = runInbound(t, rw, plain)
	for _, f := range []string{"Message-ID: <CAF=abc123@mail.example.net>\r\n", "In-Reply-To: <ticket-99@crm.example>\r\n",
		"References: <ticket-99@crm.example> <CAF=abc000@mail.example.net>\r\n"} {
		if !bytes.Contains(out, []byte(f)) {
			t.Errorf("threading field changed: %q", f)
		}
	}
}

func TestDisplayNamePolicies(t *testing.T) {
	msg := []byte("From: Jane Doe <jane@example.net>\r\nTo: support@company.example\r\n\r\nhi\r\n")
	tests := []struct{ policy, want string }{
		{NamesKeep, "From: Jane Doe <t1-"},
		{NamesDrop, "From: <t1-"},
		{NamesPseudonymize, "From: Customer "},
	}
	for _, tt := range tests {
		rw, _ := newTestRewriter(t, RewriteOptions{DisplayNames: tt.policy})
		out, _, err := runInbound(t, rw, msg)
		if err != nil || !bytes.Contains(out, []byte(tt.want)) {
			t.Errorf("%s: err %v\n%s", tt.policy, err, out)
		}
		back, err := runOutbound(t, rw, out)
		if err != nil || !bytes.Contains(back, []byte("From: Jane Doe <jane@example.net>")) {
			t.Errorf("%s: outbound did not restore the name: %v\n%s", tt.policy, err, back)
		}
	}
}

func TestUnscannablePolicy(t *testing.T) {
	for _, name := range []string{"smime", "unknown-encoding"} {
		in, _ := os.ReadFile(filepath.Join("testdata/rewrite", name+".eml"))
		rw, _ := newTestRewriter(t, RewriteOptions{})
		if _, _, err := runInbound(t, rw, in); !errors.Is(err, ErrUnscannable) {
			t.Errorf("%s under reject: err = %v", name, err)
		}
		rw, _ = newTestRewriter(t, RewriteOptions{Unscannable: UnscannableHeadersOnly})
		out, _, err := runInbound(t, rw, in)
		if name == "unknown-encoding" {
			// headers-only passes the body, but the guard still sees its
			// raw bytes: an address visible there refuses the message.
			if !errors.Is(err, ErrLeak) {
				t.Errorf("%s under headers-only: err = %v, want the guard to refuse", name, err)
			}
			continue
		}
		if err != nil || bytes.Contains(out, []byte("jane@example.net")) || !bytes.Contains(out, []byte("MIAGCSqGSIb3DQEHA6CAMIACAQAxggFAMIIBPAIBADCBozCBmzELMAkGA1UEBhMC")) {
			t.Errorf("%s under headers-only: err %v\n%s", name, err, out)
		}
	}
}

func TestLimits(t *testing.T) {
	deep := "Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
	for i := 1; i < 30; i++ {
		deep += "--b" + string(rune('0'+i%10)) + "\r\n"
	}
	tests := []struct {
		name   string
		limits Limits
		msg    string
	}{
		{"message size", Limits{MaxMessageBytes: 100}, "Subject: x\r\n\r\n" + strings.Repeat("a", 200) + "\r\n"},
		{"header size", Limits{MaxHeaderBytes: 50}, "Subject: " + strings.Repeat("a", 100) + "\r\n\r\nbody\r\n"},
		{"text part size", Limits{MaxTextPartBytes: 10}, "Subject: x\r\n\r\n" + strings.Repeat("a", 100) + "\r\n"},
		{"depth", Limits{MaxDepth: 2}, nestedMessage(5)},
		{"parts", Limits{MaxParts: 3}, manyParts(10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw, _ := newTestRewriter(t, RewriteOptions{Limits: tt.limits})
			if _, _, err := runInbound(t, rw, []byte(tt.msg)); !errors.Is(err, ErrLimit) {
				t.Fatalf("err = %v, want ErrLimit", err)
			}
		})
	}
}

func nestedMessage(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("Content-Type: message/rfc822\r\n\r\n")
	}
	b.WriteString("Subject: innermost\r\n\r\nbody\r\n")
	return b.String()
}

func manyParts(n int) string {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=x\r\n\r\n")
	for i := 0; i < n; i++ {
		b.WriteString("--x\r\nContent-Type: text/plain\r\n\r\npart\r\n")
	}
	b.WriteString("--x--\r\n")
	return b.String()
}

func TestGuardRefusesWithoutNamingTheAddress(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{})
	msgs := []string{
		"From: support@company.example\r\nTo: jane@example.net\r\n\r\nhi\r\n",
		"From: support@company.example\r\n\r\nwrite to jane@example.net\r\n",
		"From: support@company.example\r\nContent-Type: application/octet-stream\r\n\r\nraw jane@example.net\r\n",
		"From: support@company.example\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nd3JpdGUgdG8gamFuZUBleGFtcGxlLm5ldA==\r\n",
	}
	for _, m := range msgs {
		err := rw.Guard(context.Background(), strings.NewReader(m))
		if !errors.Is(err, ErrLeak) || strings.Contains(err.Error(), "jane") {
			t.Errorf("Guard(%q) = %v", m, err)
		}
	}
	ok := "From: support@company.example\r\nMessage-ID: <x@example.net>\r\nTo: t1-aaaaaaaaaaaaaaaa@relay.company.example\r\n\r\nhi\r\n"
	if err := rw.Guard(context.Background(), strings.NewReader(ok)); err != nil {
		t.Errorf("Guard on a clean message: %v", err)
	}
}

func TestOutboundUnknownToken(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{})
	msg := "From: support@company.example\r\nTo: T1-AAAAAAAAAAAAAAAA@relay.company.example\r\n\r\nhi\r\n"
	out, err := runOutbound(t, rw, []byte(msg))
	var ute *UnknownTokensError
	if !errors.As(err, &ute) || !errors.Is(err, tokenize.ErrUnknownToken) || len(ute.Tokens) != 1 {
		t.Fatalf("err = %v", err)
	}
	if !bytes.Contains(out, []byte("T1-AAAAAAAAAAAAAAAA@relay.company.example")) {
		t.Fatalf("unknown token not left in place:\n%s", out)
	}
}

func TestOutboundErasedToken(t *testing.T) {
	rw, m := newTestRewriter(t, RewriteOptions{})
	out, _, _ := runInbound(t, rw, []byte("From: jane@example.net\r\nTo: support@company.example\r\n\r\nhi\r\n"))
	m.EraseSubject(context.Background(), "jane@example.net")
	reply := bytes.Replace(out, []byte("From:"), []byte("To:"), 1)
	if _, err := runOutbound(t, rw, reply); !errors.Is(err, tokenize.ErrUnknownToken) {
		t.Fatalf("outbound to an erased token: %v", err)
	}
}

// TestManyAddresses: a CSV attachment with thousands of customers is
// rewritten whole, each address once in the report, where the limit of
// new tokens allows it.
func TestManyAddresses(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxNewTokens: 3000}})
	var b strings.Builder
	b.WriteString("From: support@company.example\r\nContent-Type: text/csv\r\n\r\nname,email\r\n")
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&b, "c%d,c%d@example.net\r\nagain,c%d@example.net\r\n", i, i, i)
	}
	out, rep, err := runInbound(t, rw, []byte(b.String()))
	if err != nil || len(rep.Tokens) != 3000 || rep.Created != 3000 || bytes.Contains(out, []byte("@example.net")) {
		t.Fatalf("err %v, %d tokens, %d created", err, len(rep.Tokens), rep.Created)
	}
}

func TestDecodeBase64Lenient(t *testing.T) {
	tests := []struct{ in, want string }{
		{"aGVsbG8=\r\n", "hello"},
		{"aGVs\r\nbG8=\r\n", "hello"},
		{"aGVsbG8\r\n", "hello"},    // padding missing
		{"aGVsbG8=!\r\n", "hello"},  // stray character
		{"aGVsbG8gd\r\n", "hello "}, // dangling single character (4n+1 characters)
		{"aGV sbG8 =", "hello"},     // spaces
		{"", ""},
	}
	for _, tt := range tests {
		if got := string(decodeBase64Lenient([]byte(tt.in))); got != tt.want {
			t.Errorf("decodeBase64Lenient(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUnknownTransferEncodingIsUnscannable(t *testing.T) {
	msg := []byte("From: support@company.example\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n")
	rw, _ := newTestRewriter(t, RewriteOptions{})
	if _, _, err := runInbound(t, rw, msg); !errors.Is(err, ErrUnscannable) {
		t.Fatalf("err = %v", err)
	}
}
