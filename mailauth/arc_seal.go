package mailauth

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/internal/rawheader"
)

// ARCSealer is the inbound route's ARC sealing configuration (RFC 8617
// §5.1): the signing domain and selector whose key record receivers look
// up, as for DKIM.
type ARCSealer struct {
	Domain   string
	Selector string
	// Key signs the seal and the message signature: RSA of at least 2048
	// bits (rsa-sha256), from LoadKeyFile or a Vault transit key
	// (vault.NewDKIMSigner). Not Ed25519: ARC verifiers know rsa-sha256
	// only (dkimpy's fails an ed25519-sha256 seal as an "unknown signature
	// algorithm"), and a seal the next hop cannot verify is worse than none.
	// Incoming Ed25519 seals are verified all the same.
	Key crypto.Signer
	// HeaderKeys are the fields the ARC-Message-Signature signs; nil means
	// DefaultHeaderKeys(). ARC-Seal may not be among them (§4.1.2).
	HeaderKeys []string
	// Now is the clock of t=; nil: time.Now.
	Now func() time.Time
}

// ARCSeal is what Seal computed for one message.
type ARCSeal struct {
	// Fields are the new ARC Set to prepend: ARC-Seal,
	// ARC-Message-Signature and ARC-Authentication-Results, each folded
	// and ending in CRLF.
	Fields string
	// Instance is the new set's i=.
	Instance int
	// StripOld tells the caller to remove the ARC fields the message
	// already has (StripARC) before relaying it with Fields: they were
	// changed on the way (the inbound route tokenizes the addresses in
	// them), so their seals could only fail, and the new set starts a
	// chain of its own (i=1, cv=none). The chain they formed is reported
	// in the new set's results.
	StripOld bool
}

// Seal reads msg, the message as it will be relayed (CRLF line ends), and
// returns the ARC Set that continues the chain Verify found on the message
// as received (nil: none was verified), carrying results, our
// Authentication-Results value ("authserv-id; results"), as its
// ARC-Authentication-Results.
//
// The chain is continued (i=N+1, cv= the chain's result, RFC 8617 §5.1)
// only when msg still carries every one of its fields byte for byte;
// otherwise Seal starts a new one (see ARCSeal.StripOld). A chain with a
// temperror is sealed cv=fail: we could not say it passed.
func (s ARCSealer) Seal(ctx context.Context, chain *ARCVerdict, results string, msg io.Reader) (*ARCSeal, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	return s.seal(ctx, chain, results, msg)
}

// seal is Seal with any key DKIM signs with: the tests seal with Ed25519
// to check that our verifier accepts such seals from others.
func (s ARCSealer) seal(ctx context.Context, chain *ARCVerdict, results string, msg io.Reader) (*ARCSeal, error) {
	alg := "rsa-sha256"
	if _, ok := s.Key.Public().(ed25519.PublicKey); ok {
		alg = "ed25519-sha256"
	}
	br := bufio.NewReaderSize(ctxReader{ctx, msg}, 32<<10)
	hdr, err := rawheader.Read(br, maxHeaderBytes)
	if err != nil {
		return nil, fmt.Errorf("mailauth: arc seal: reading header: %w", err)
	}
	body := newBodyHasher(canonRelaxed)
	if _, err := io.Copy(body, br); err != nil {
		return nil, fmt.Errorf("mailauth: arc seal: reading message: %w", err)
	}
	fields := splitFields(hdr)
	prior, cv, strip := continuation(chain, parseARC(fields))
	if strip {
		fields = withoutARC(fields)
	}
	n := len(prior) + 1
	t := s.now().Unix()
	key := &guardedSigner{Signer: s.Key, ctx: ctx}

	aar := FoldResults(fieldAAR+": i="+strconv.Itoa(n)+"; ", results)
	amsTags := fmt.Sprintf("i=%d; a=%s; c=relaxed/relaxed; d=%s; s=%s; t=%d;\r\n\th=%s;\r\n\tbh=%s;\r\n\tb=",
		n, alg, s.Domain, s.Selector, t, strings.Join(s.headerKeys(), ":"), base64.StdEncoding.EncodeToString(body.sum()))
	ams, err := signField(key, fieldAMS+": "+amsTags, pickHeaders(fields, s.headerKeys()))
	if err != nil {
		return nil, err
	}
	// §5.1.1: the seal covers every set, oldest first, AAR, AMS, AS in
	// each; with cv=fail only the set being added.
	var sealed [][]byte
	if cv != "fail" {
		for _, p := range prior {
			sealed = append(sealed, p.raw()...)
		}
	}
	sealed = append(sealed, []byte(aar), []byte(ams))
	asTags := fmt.Sprintf("i=%d; a=%s; t=%d; cv=%s;\r\n\td=%s; s=%s;\r\n\tb=", n, alg, t, cv, s.Domain, s.Selector)
	as, err := signField(key, fieldAS+": "+asTags, sealed)
	if err != nil {
		return nil, err
	}
	return &ARCSeal{Fields: as + ams + aar, Instance: n, StripOld: strip}, nil
}

// Check validates the configuration: a domain, a selector, and an RSA key
// of at least 2048 bits (see Key). The route runs it at start.
func (s ARCSealer) Check() error {
	if s.Domain == "" || s.Selector == "" || s.Key == nil {
		return errors.New("mailauth: arc seal: domain, selector and key are required")
	}
	if _, ok := s.Key.Public().(*rsa.PublicKey); !ok {
		return fmt.Errorf("mailauth: arc seal: a %T key: ARC seals with RSA (rsa-sha256), which ARC verifiers know", s.Key.Public())
	}
	if err := checkPublicKey(s.Key.Public()); err != nil {
		return fmt.Errorf("mailauth: arc seal: %w", err)
	}
	return nil
}

// continuation decides what the new set continues: the sets of the chain
// as received, if the message still carries them unchanged, and the cv=
// to seal with; strip when the message's ARC fields must go.
func continuation(chain *ARCVerdict, now arcChain) (prior []ARCSet, cv string, strip bool) {
	if chain == nil || len(chain.Sets) == 0 {
		// No chain was verified: whatever ARC fields the message has were
		// never validated, and cannot be continued.
		return nil, "none", len(now.sets) > 0 || now.reason != ""
	}
	if now.reason != "" || len(now.sets) != len(chain.Sets) || len(chain.Sets) >= maxARCInstance {
		return nil, "none", true
	}
	for i, s := range chain.Sets {
		for j, raw := range s.raw() {
			if !bytes.Equal(raw, now.sets[i].raw()[j]) {
				return nil, "none", true
			}
		}
	}
	cv = "fail"
	if chain.Result == ResultPass {
		cv = "pass"
	}
	return chain.Sets, cv, false
}

// withoutARC returns fields without the ARC fields.
func withoutARC(fields []field) []field {
	out := fields[:0:0]
	for _, f := range fields {
		if arcKind(f.name) == "" {
			out = append(out, f)
		}
	}
	return out
}

// signField signs the canonicalized (relaxed) fields and the new field,
// whose value ends in an empty "b=", and returns the field with b=
// filled in, folded, and a final CRLF.
func signField(key crypto.Signer, head string, signed [][]byte) (string, error) {
	digest := signedHash(canonRelaxed, signed, []byte(head))
	var opts crypto.SignerOpts = crypto.SHA256
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		opts = crypto.Hash(0) // RFC 8463 §3: Ed25519 signs the SHA-256 hash itself
	}
	sig, err := key.Sign(rand.Reader, digest, opts)
	if err != nil {
		return "", fmt.Errorf("mailauth: arc seal: %w", err)
	}
	return head + foldBase64(base64.StdEncoding.EncodeToString(sig)) + "\r\n", nil
}

// foldBase64 breaks a b= value into lines of 72 characters: folding white
// space in it is ignored (RFC 6376 §3.5), and keeps lines short.
func foldBase64(s string) string {
	var b strings.Builder
	for len(s) > 72 {
		b.WriteString(s[:72])
		b.WriteString("\r\n\t ")
		s = s[72:]
	}
	b.WriteString(s)
	return b.String()
}

func (s ARCSealer) headerKeys() []string {
	if s.HeaderKeys != nil {
		return s.HeaderKeys
	}
	return DefaultHeaderKeys()
}

func (s ARCSealer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
