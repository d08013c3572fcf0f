package tokenize_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// TestEraseTokens: a replay erases the live tokens it names, skips
// tombstones, and reports tokens the map does not hold (never issued, or
// not tokens of this map) without failing.
func TestEraseTokens(t *testing.T) {
	ctx := context.Background()
	tm := openTestMap(t, tokenize.Options{})
	var toks []string
	for _, a := range []string{"jane@example.com", "joe@example.com", "kim@example.com"} {
		iss, err := tm.Tokenize(ctx, a, "")
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, iss.Address)
	}
	if err := tm.Erase(ctx, toks[1]); err != nil {
		t.Fatal(err)
	}
	never := testFormat.Address(testFormat.Prefix + "1-aaaaaaaaaaaaaaaaaaaaaaaa")
	st, err := tm.EraseTokens(ctx, []string{toks[0], toks[1], never, "not-a-token"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Erased, []string{toks[0]}) || st.Already != 1 || len(st.Unknown) != 2 {
		t.Fatalf("EraseTokens = %+v, want %s erased, 1 already, 2 unknown", st, toks[0])
	}
	for _, tok := range toks[:2] {
		if _, err := tm.Resolve(ctx, tok); !errors.Is(err, tokenize.ErrUnknownToken) {
			t.Errorf("Resolve(%s) after the replay = %v, want ErrUnknownToken", tok, err)
		}
	}
	if _, err := tm.Resolve(ctx, toks[2]); err != nil {
		t.Errorf("a token the replay did not name stopped resolving: %v", err)
	}
	again, err := tm.EraseTokens(ctx, toks[:2])
	if err != nil || len(again.Erased) != 0 || again.Already != 2 {
		t.Fatalf("a second replay = %+v, %v; want nothing erased, 2 already", again, err)
	}
}
