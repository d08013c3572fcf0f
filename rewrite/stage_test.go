package rewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// The new tokens of an inbound message are staged, and bounded by
// Limits.MaxNewTokens (issue 18, item 1; DESIGN.md invariant 4).

// messageTo is a message from support to n customers named in one To:
// field, first..first+n-1.
func messageTo(first, n int) []byte {
	var to []string
	for i := first; i < first+n; i++ {
		to = append(to, fmt.Sprintf("c%d@example.net", i))
	}
	return []byte("From: support@company.example\r\nTo: " + strings.Join(to, ",\r\n ") +
		"\r\nSubject: hi\r\n\r\nHello.\r\n")
}

// liveTokens counts the tokens of the map.
func liveTokens(t *testing.T, m *tokenize.Map) int {
	t.Helper()
	n := 0
	if err := m.Each(context.Background(), func(tokenize.Entry) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func runStaged(rw *Rewriter, st StagedTokens, msg []byte) ([]byte, *Report, error) {
	var out bytes.Buffer
	rep, err := rw.InboundStaged(context.Background(), st, &out, bytes.NewReader(msg))
	return out.Bytes(), rep, err
}

// TestTenThousandRecipientsCreateNothing: the attack of issue 18, one
// header naming 10,000 customers: refused, and the map holds no token.
func TestTenThousandRecipientsCreateNothing(t *testing.T) {
	rw, m := newTestRewriter(t, RewriteOptions{})
	st := m.Begin()
	_, _, err := runStaged(rw, st, messageTo(0, 10000))
	if !errors.Is(err, ErrTooManyNewTokens) || strings.Contains(err.Error(), "@") {
		t.Fatalf("err = %v, want ErrTooManyNewTokens without an address", err)
	}
	if st.Staged() != DefaultLimits.MaxNewTokens+1 {
		t.Errorf("%d staged: the rewrite went on past the limit", st.Staged())
	}
	if n := liveTokens(t, m); n != 0 {
		t.Fatalf("the refused message left %d tokens", n)
	}
}

// TestMaxNewTokens: the limit counts new addresses only, each once, the
// envelope sender's staged token included.
func TestMaxNewTokens(t *testing.T) {
	ctx := context.Background()
	rw, m := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxNewTokens: 5}})
	for i := range 20 { // known customers: never limited
		if _, err := m.Tokenize(ctx, fmt.Sprintf("c%d@example.net", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	st := m.Begin()
	msg := append(messageTo(0, 25), "Again: c24@example.net\r\n"...)
	out, rep, err := runStaged(rw, st, msg)
	if err != nil || rep.Created != 5 || len(rep.Tokens) != 25 || bytes.Contains(out, []byte("@example.net")) {
		t.Fatalf("20 known and 5 new: err %v, %d created, %d tokens", err, rep.Created, len(rep.Tokens))
	}
	if n, err := st.Commit(ctx); n != 5 || err != nil {
		t.Fatalf("Commit = %d, %v", n, err)
	}
	st = m.Begin()
	if _, err := st.Tokenize(ctx, "sender@example.org", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runStaged(rw, st, messageTo(100, 5)); !errors.Is(err, ErrTooManyNewTokens) {
		t.Fatalf("a new sender and 5 new recipients: err = %v, want ErrTooManyNewTokens", err)
	}
	if n := liveTokens(t, m); n != 25 {
		t.Fatalf("%d tokens, want the 25 committed", n)
	}
}

// TestLeakGuardRefusalStagesOnly: a message the leak guard refuses after
// its addresses were staged leaves no token (the caller does not commit).
func TestLeakGuardRefusalStagesOnly(t *testing.T) {
	in, err := os.ReadFile("testdata/rewrite/unknown-encoding.eml")
	if err != nil {
		t.Fatal(err)
	}
	rw, m := newTestRewriter(t, RewriteOptions{Unscannable: UnscannableHeadersOnly})
	st := m.Begin()
	if _, _, err := runStaged(rw, st, in); !errors.Is(err, ErrLeak) {
		t.Fatalf("err = %v, want ErrLeak", err)
	}
	if st.Staged() == 0 {
		t.Fatal("nothing was staged: the test no longer refuses after staging")
	}
	if n := liveTokens(t, m); n != 0 {
		t.Fatalf("the refused message left %d tokens", n)
	}
}
