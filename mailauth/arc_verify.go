package mailauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"strings"
)

// arcCheck validates one message's ARC chain: parseARC's sets, the body
// hashes its ARC-Message-Signatures need (fed through bodyWriter while
// Verify streams the body), then verify.
type arcCheck struct {
	chain  arcChain
	fields []field
	bodies map[string]*bodyHasher // by body canonicalization
	keys   map[string]keyResult   // looked up once per d= and s=
}

type keyResult struct {
	pub any
	err error
}

func newARCCheck(fields []field) *arcCheck {
	c := &arcCheck{chain: parseARC(fields), fields: fields, bodies: map[string]*bodyHasher{}, keys: map[string]keyResult{}}
	for _, s := range c.chain.sets {
		_, body := amsCanon(parseTags(s.ams.value()))
		if body != "" && c.bodies[body] == nil {
			c.bodies[body] = newBodyHasher(body)
		}
	}
	return c
}

// bodyWriter is where Verify copies the body to; nil when no
// ARC-Message-Signature needs it.
func (c *arcCheck) bodyWriter() io.Writer {
	if len(c.bodies) == 0 {
		return nil
	}
	ws := make([]io.Writer, 0, len(c.bodies))
	for _, b := range c.bodies {
		ws = append(ws, b)
	}
	return io.MultiWriter(ws...)
}

// verify validates the chain by RFC 8617 §5.2, once the body has been
// written.
func (c *arcCheck) verify(ctx context.Context, r *Resolver) ARCVerdict {
	sets := c.chain.sets
	v := ARCVerdict{Result: ResultNone, Instances: len(sets)}
	switch {
	case c.chain.reason != "":
		return ARCVerdict{Result: ResultFail, Reason: c.chain.reason}
	case len(sets) == 0:
		return v // step 1: no chain
	}
	v.Sets = sets
	// Step 2: a chain that a sealer declared failed ends there.
	if sets[len(sets)-1].CV == "fail" {
		return c.fail(v, "chain declared failed")
	}
	// Step 3: instance 1 has cv=none, every later one cv=pass.
	for _, s := range sets {
		if (s.Instance == 1) != (s.CV == "none") || (s.Instance > 1 && s.CV != "pass") {
			return c.fail(v, "invalid cv= value")
		}
	}
	// Step 4: the newest ARC-Message-Signature must verify.
	if err := c.verifyAMS(ctx, r, sets[len(sets)-1]); err != nil {
		return c.failErr(v, "newest ARC-Message-Signature", err)
	}
	// Step 5: the oldest instance from which every AMS still verifies.
	v.OldestPass = 0
	for i := len(sets) - 2; i >= 0; i-- {
		if c.verifyAMS(ctx, r, sets[i]) != nil {
			v.OldestPass = sets[i].Instance + 1
			break
		}
	}
	// Step 6: every ARC-Seal, newest first.
	for i := len(sets) - 1; i >= 0; i-- {
		if err := c.verifyAS(ctx, r, sets[:i+1]); err != nil {
			return c.failErr(v, "ARC-Seal", err)
		}
	}
	v.Result = ResultPass
	return v
}

func (c *arcCheck) fail(v ARCVerdict, reason string) ARCVerdict {
	v.Result, v.Reason = ResultFail, reason
	return v
}

// failErr is fail, or temperror when a key could not be looked up: the
// chain may pass on a retry.
func (c *arcCheck) failErr(v ARCVerdict, what string, err error) ARCVerdict {
	v = c.fail(v, what+": "+err.Error())
	if errors.Is(err, errARCKeyTemp) {
		v.Result = ResultTempError
	}
	return v
}

// verifyAMS checks one ARC-Message-Signature like a DKIM-Signature (RFC
// 8617 §4.1.2): the body hash, then the signed fields, which may not
// include ARC-Seal.
func (c *arcCheck) verifyAMS(ctx context.Context, r *Resolver, s ARCSet) error {
	tags := parseTags(s.ams.value())
	if _, ok := tags["l"]; ok {
		// A body length limit lets anything be appended; DKIM's l= is
		// not part of ARC's tag list (RFC 8617 §4.1.2).
		return errARCTags
	}
	headerCanon, bodyCanon := amsCanon(tags)
	bh, err := base64.StdEncoding.DecodeString(stripSpace(tags["bh"]))
	if err != nil || headerCanon == "" || bodyCanon == "" {
		return errARCTags
	}
	if !bytes.Equal(bh, c.bodies[bodyCanon].sum()) {
		return errARCBodyHash
	}
	var names []string
	for _, n := range strings.Split(tags["h"], ":") {
		n = strings.TrimSpace(n)
		if strings.EqualFold(n, fieldAS) || n == "" {
			return errARCTags
		}
		names = append(names, n)
	}
	sig := arcSig{tags: tags, raw: s.ams.raw}
	return c.verifySig(ctx, r, sig, headerCanon, pickHeaders(c.fields, names))
}

// verifyAS checks the ARC-Seal of the last of sets: relaxed header
// canonicalization over every set up to it, oldest first, AAR, AMS, AS in
// each, the seal itself last with b= empty (RFC 8617 §4.1.3, §5.1.1).
func (c *arcCheck) verifyAS(ctx context.Context, r *Resolver, sets []ARCSet) error {
	last := sets[len(sets)-1]
	tags := parseTags(last.as.value())
	if _, ok := tags["h"]; ok {
		return errARCTags // §4.1.3: an ARC-Seal has no h=
	}
	var signed [][]byte
	for _, s := range sets[:len(sets)-1] {
		signed = append(signed, s.raw()...)
	}
	signed = append(signed, last.aar.raw, last.ams.raw)
	return c.verifySig(ctx, r, arcSig{tags: tags, raw: last.as.raw}, canonRelaxed, signed)
}

// verifySig looks the key up once per domain and selector for the whole
// chain.
func (c *arcCheck) verifySig(ctx context.Context, r *Resolver, sig arcSig, canon string, signed [][]byte) error {
	b, err := base64.StdEncoding.DecodeString(stripSpace(sig.tags["b"]))
	domain, selector := normalizeDomain(sig.tags["d"]), stripSpace(sig.tags["s"])
	if err != nil || len(b) == 0 || domain == "" || selector == "" {
		return errARCTags
	}
	id := selector + "._domainkey." + domain
	k, ok := c.keys[id]
	if !ok {
		k.pub, k.err = arcKey(ctx, r, domain, selector)
		c.keys[id] = k
	}
	if k.err != nil {
		return k.err
	}
	return verifyHashed(k.pub, stripSpace(sig.tags["a"]), signedHash(canon, signed, sig.raw), b)
}

// amsCanon reads c= (RFC 6376 §3.5: header/body, simple when absent, body
// simple when only the header's is given); "" for an unknown value.
func amsCanon(tags map[string]string) (header, body string) {
	c, ok := tags["c"]
	if !ok {
		return canonSimple, canonSimple
	}
	h, b, found := strings.Cut(strings.ToLower(stripSpace(c)), "/")
	if !found {
		b = canonSimple
	}
	valid := func(s string) string {
		if s == canonSimple || s == canonRelaxed {
			return s
		}
		return ""
	}
	return valid(h), valid(b)
}
