package mailauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"github.com/emersion/go-msgauth/dkim"
)

// minRSABits is the smallest RSA key we sign with: RFC 8301 §3.2 says
// signers SHOULD use at least 2048 bits (1024 is the verifiers' floor).
const minRSABits = 2048

// DefaultHeaderKeys returns the header fields signed when
// SignerConfig.HeaderKeys is nil: those RFC 6376 §5.4.1 recommends that a
// CRM reply carries. From is listed twice: a second, empty instance
// "oversigns" it, so a From field added in transit breaks the signature
// (RFC 6376 §8.15). Fields a relay may legitimately add (Received,
// Return-Path) are not signed.
func DefaultHeaderKeys() []string {
	return []string{
		"From", "From", "Reply-To", "Subject", "Date", "To", "Cc",
		"Message-ID", "In-Reply-To", "References",
		"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	}
}

// SignerConfig is the outbound DKIM signing configuration.
type SignerConfig struct {
	// Domain is d=, the signing domain (SDID). It must align with the
	// From domains of the mail it signs to count for DMARC (policy checks
	// it at load, through internal/orgdomain).
	Domain string
	// Selector is s=: receivers find the public key at
	// <Selector>._domainkey.<Domain> (Records publishes it).
	Selector string
	// Key signs: an *rsa.PrivateKey of at least 2048 bits (rsa-sha256) or an
	// ed25519.PrivateKey (ed25519-sha256, RFC 8463), as LoadKeyFile returns,
	// or a Vault transit key (vault.NewDKIMSigner).
	Key crypto.Signer
	// HeaderKeys are the fields signed (h=); nil means DefaultHeaderKeys().
	// From must be among them (RFC 6376 §5.4).
	HeaderKeys []string
}

// Sign writes msg to out with a DKIM-Signature field (RFC 6376,
// relaxed/relaxed canonicalization) prepended. msg is a complete message
// with CRLF line ends, after detokenization: nothing may change it after
// signing.
//
// The signature covers the whole body and goes first, so Sign holds the
// message in memory until it is signed; a route that spools the message
// itself can use Signature and write the field before its own copy.
func Sign(ctx context.Context, cfg SignerConfig, msg io.Reader, out io.Writer) error {
	var buf bytes.Buffer
	sig, err := Signature(ctx, cfg, io.TeeReader(msg, &buf))
	if err != nil {
		return err
	}
	if _, err := io.WriteString(out, sig); err != nil {
		return fmt.Errorf("mailauth: sign: writing: %w", err)
	}
	if _, err := buf.WriteTo(out); err != nil {
		return fmt.Errorf("mailauth: sign: writing: %w", err)
	}
	return nil
}

// Signature reads msg (as for Sign) and returns the DKIM-Signature field to
// prepend to it: name, folded value and the final CRLF. It keeps no copy of
// the message. The key is used only once the whole message has been read,
// and not at all if reading fails or ctx ends first.
func Signature(ctx context.Context, cfg SignerConfig, msg io.Reader) (string, error) {
	key := &guardedSigner{Signer: cfg.Key, ctx: ctx}
	opts, err := cfg.signOptions(key)
	if err != nil {
		return "", err
	}
	s, err := dkim.NewSigner(opts)
	if err != nil {
		return "", fmt.Errorf("mailauth: sign: %w", err)
	}
	if _, err := io.Copy(s, ctxReader{ctx, msg}); err != nil {
		key.aborted.Store(true)
		s.Close()
		return "", fmt.Errorf("mailauth: sign: reading message: %w", err)
	}
	if err := s.Close(); err != nil {
		return "", fmt.Errorf("mailauth: sign: %w", err)
	}
	return s.Signature(), nil
}

// signOptions validates the configuration and returns go-msgauth's options
// signing with key.
func (c SignerConfig) signOptions(key crypto.Signer) (*dkim.SignOptions, error) {
	if c.Domain == "" || c.Selector == "" {
		return nil, errors.New("mailauth: sign: domain and selector are required")
	}
	if c.Key == nil {
		return nil, errors.New("mailauth: sign: no key")
	}
	if err := checkPublicKey(c.Key.Public()); err != nil {
		return nil, fmt.Errorf("mailauth: sign: %w", err)
	}
	keys := c.HeaderKeys
	if keys == nil {
		keys = DefaultHeaderKeys()
	}
	if !hasFrom(keys) {
		return nil, errors.New("mailauth: sign: HeaderKeys must include From (RFC 6376 §5.4)")
	}
	return &dkim.SignOptions{
		Domain:                 c.Domain,
		Selector:               c.Selector,
		Signer:                 key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             keys,
	}, nil
}

// checkPublicKey accepts the key types DKIM signs with (RFC 8301, RFC
// 8463), RSA from 2048 bits.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits, want at least %d (RFC 8301 §3.2)", k.N.BitLen(), minRSABits)
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return errors.New("malformed Ed25519 public key")
		}
		return nil
	default:
		return fmt.Errorf("unsupported key type %T: DKIM signs with RSA or Ed25519", pub)
	}
}

// contextSigner is a key that can bound a signing call by a context: a
// remote key such as vault.DKIMSigner. It is the optional half of the
// signing seam (the other is crypto.Signer), so this package needs no
// Vault client.
type contextSigner interface {
	SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

// guardedSigner passes Signature's context to a contextSigner, and refuses
// to sign once the message could not be read: go-msgauth signs whatever it
// was given when its writer is closed, and a partial message must not cost
// a Vault call, or be signed at all.
type guardedSigner struct {
	crypto.Signer
	ctx     context.Context
	aborted atomic.Bool
}

func (g *guardedSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if g.aborted.Load() {
		return nil, errors.New("mailauth: sign: message not read completely")
	}
	if err := g.ctx.Err(); err != nil {
		return nil, err
	}
	if cs, ok := g.Signer.(contextSigner); ok {
		return cs.SignContext(g.ctx, digest, opts)
	}
	return g.Signer.Sign(rand, digest, opts)
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// hasFrom reports whether From is among keys (RFC 6376 §5.4: it MUST be
// signed).
func hasFrom(keys []string) bool {
	for _, k := range keys {
		if strings.EqualFold(strings.TrimSpace(k), "From") {
			return true
		}
	}
	return false
}
