package mailauth

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
)

// minVerifyRSABits is the smallest RSA key whose signature we accept: RFC
// 8301 §3.2 asks verifiers to accept 1024 to 4096 bits.
const minVerifyRSABits = 1024

// Why an ARC signature did not verify. Short fixed texts: they reach the
// Authentication-Results comment and the log, and name no key or address.
var (
	errARCKeyTemp    = errors.New("key record unavailable")
	errARCKeyMissing = errors.New("no key record")
	errARCKeyBad     = errors.New("malformed key record")
	errARCAlgorithm  = errors.New("unsupported algorithm")
	errARCSignature  = errors.New("signature did not verify")
	errARCBodyHash   = errors.New("body hash did not verify")
	errARCTags       = errors.New("malformed signature tags")
)

// arcKey looks up the public key of s= at d= (RFC 6376 §3.6.2.2, the
// record syntax of §3.6.1), as both ARC signatures do (RFC 8617 §4.1.2,
// §4.1.3). go-msgauth's key query is unexported.
func arcKey(ctx context.Context, r *Resolver, domain, selector string) (crypto.PublicKey, error) {
	txts, err := r.lookupKey(ctx, selector+"._domainkey."+domain)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, errARCKeyMissing
		}
		return nil, errARCKeyTemp
	}
	if len(txts) != 1 {
		return nil, errARCKeyBad
	}
	return parseKeyRecord(txts[0])
}

// parseKeyRecord reads k= and p= of a DKIM key record: an RSA key in
// SubjectPublicKeyInfo (or PKCS#1, which some publish) or a raw Ed25519 key
// (RFC 8463 §4.2).
func parseKeyRecord(txt string) (crypto.PublicKey, error) {
	tags := parseTags(txt)
	if v, ok := tags["v"]; ok && v != "DKIM1" {
		return nil, errARCKeyBad
	}
	p, err := base64.StdEncoding.DecodeString(stripSpace(tags["p"]))
	if err != nil || len(p) == 0 { // an empty p= is a revoked key
		return nil, errARCKeyBad
	}
	switch k := tags["k"]; k {
	case "", "rsa":
		if pub, err := x509.ParsePKIXPublicKey(p); err == nil {
			if rk, ok := pub.(*rsa.PublicKey); ok && rk.N.BitLen() >= minVerifyRSABits {
				return rk, nil
			}
			return nil, errARCKeyBad
		}
		rk, err := x509.ParsePKCS1PublicKey(p)
		if err != nil || rk.N.BitLen() < minVerifyRSABits {
			return nil, errARCKeyBad
		}
		return rk, nil
	case "ed25519":
		if len(p) != ed25519.PublicKeySize {
			return nil, errARCKeyBad
		}
		return ed25519.PublicKey(p), nil
	default:
		return nil, errARCAlgorithm
	}
}

// verifyHashed checks a signature over the SHA-256 hash of the signed
// data with the algorithm a= names.
func verifyHashed(pub crypto.PublicKey, alg string, hashed, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg != "rsa-sha256" {
			return errARCAlgorithm
		}
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, hashed, sig) != nil {
			return errARCSignature
		}
	case ed25519.PublicKey:
		if alg != "ed25519-sha256" {
			return errARCAlgorithm
		}
		// RFC 8463 §3: Ed25519 signs the SHA-256 hash (PureEdDSA over it).
		if !ed25519.Verify(k, hashed, sig) {
			return errARCSignature
		}
	default:
		return errARCAlgorithm
	}
	return nil
}

// arcSig is the tag list of an ARC-Message-Signature or ARC-Seal.
type arcSig struct {
	tags map[string]string
	raw  []byte // the whole field as received
}

// signedHash is the header hash of a signature: the signed fields
// canonicalized, then the signature field without b= and line end.
func signedHash(canon string, signed [][]byte, sigField []byte) []byte {
	h := sha256.New()
	for _, f := range signed {
		h.Write(canonHeader(f, canon))
	}
	self := canonHeader(withoutSignature(sigField), canon)
	h.Write(self[:len(self)-2])
	return h.Sum(nil)
}
