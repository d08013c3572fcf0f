package mailauth

import (
	"bytes"
	"context"
	"testing"
)

// FuzzARCChain feeds any message to ARC validation without DNS: parseARC,
// the body hashes, a verification whose key look-ups all fail (its context
// is cancelled), the trusted sealer's results parser and StripARC. None may
// panic, no chain passes without keys, and StripARC keeps no ARC field.
func FuzzARCChain(f *testing.F) {
	for _, seed := range []string{
		"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=a.example; s=s; b=AAAA\r\nARC-Message-Signature: i=1; c=relaxed/simple; h=from; bh=; b=\r\nARC-Authentication-Results: i=1; a.example; dkim=pass (c;c) header.d=x\r\nFrom: a@b\r\n\r\nbody  \r\n\r\n",
		"ARC-Seal: i=2; cv=pass\r\nARC-Seal: i=1\r\n\r\n",
		"arc-authentication-results: i=51; x\r\n\r\n",
		"ARC-Message-Signature: i=1; c=bogus; l=5\r\n\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		hdr, body, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
		fields := splitFields(append(hdr, "\r\n"...))
		c := newARCCheck(fields)
		if w := c.bodyWriter(); w != nil {
			w.Write(body)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // every look-up fails at once
		v := c.verify(ctx, NewResolver("127.0.0.1:9", testTimeout))
		if v.Result == ResultPass {
			t.Fatalf("a chain passed without keys: %q", msg)
		}
		for _, s := range c.chain.sets {
			vouches(s.results, DMARCVerdict{FromDomain: "example.com"})
		}
		out, _ := StripARC(msg)
		for _, fl := range splitFields(out) {
			if arcKind(fl.name) != "" {
				t.Fatalf("StripARC kept %q", fl.raw)
			}
		}
	})
}
