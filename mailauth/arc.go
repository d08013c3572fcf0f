package mailauth

import (
	"bytes"
	"strconv"
	"strings"
)

// ARC (RFC 8617): the chain a forwarder's seal adds to a message, which the
// inbound route verifies (arc_verify.go), may let stand in for a DMARC
// failure that forwarding caused (arc_trust.go), and continues with a seal
// of its own over what it relays (arc_seal.go).

// maxARCInstance is the highest instance RFC 8617 §4.2.1 allows.
const maxARCInstance = 50

// The ARC header fields (RFC 8617 §4.1).
const (
	fieldAAR = "ARC-Authentication-Results"
	fieldAMS = "ARC-Message-Signature"
	fieldAS  = "ARC-Seal"
)

// ARCVerdict is the result of validating a message's ARC chain (RFC 8617
// §5.2).
type ARCVerdict struct {
	// Result is none (no chain), pass, fail, or temperror when a key could
	// not be looked up.
	Result Result
	// Instances is the highest instance of the chain, N; 0 without one.
	Instances int
	// OldestPass is the lowest instance from which every newer
	// ARC-Message-Signature still verifies, 0 when all do (RFC 8617 §5.2,
	// step 5); meaningful when Result is pass.
	OldestPass int
	// Sets are the chain's ARC Sets, oldest first, when the chain is
	// well-formed.
	Sets []ARCSet
	// Reason is a short fixed text for a result other than pass or none.
	Reason string
	// Trusted is the instance whose trusted sealer's results stood in for
	// a DMARC failure (see VerifyInput.TrustedARCSealers); 0 if none did.
	Trusted int
}

// ARCSet is one instance of the chain.
type ARCSet struct {
	Instance int
	Domain   string // the ARC-Seal's d=, the sealer (normalized)
	Selector string // the ARC-Seal's s=
	CV       string // the ARC-Seal's cv=: none, pass or fail
	// results is the ARC-Authentication-Results payload after "i=N;": the
	// sealer's verdicts, which may name customer addresses (never log it).
	results      string
	aar, ams, as field
}

// raw returns the set's fields in the order the ARC-Seal hashes them (RFC
// 8617 §5.1.1): AAR, AMS, AS.
func (s ARCSet) raw() [][]byte { return [][]byte{s.aar.raw, s.ams.raw, s.as.raw} }

// arcChain is the ARC fields of a header section, grouped by instance.
type arcChain struct {
	sets   []ARCSet // index i-1 holds instance i
	reason string   // why the chain is malformed; "" when well-formed
}

// parseARC groups the ARC fields of a header section into sets and checks
// the chain's structure (RFC 8617 §5.2 step 3, and §4.2.1: instances 1 to
// N, each set complete and unique). A chain without ARC fields has no sets
// and no reason.
func parseARC(fields []field) arcChain {
	bySet := map[int]*ARCSet{}
	max := 0
	for _, f := range fields {
		kind := arcKind(f.name)
		if kind == "" {
			continue
		}
		i := arcInstance(f)
		if i < 1 || i > maxARCInstance {
			return arcChain{reason: "invalid instance"}
		}
		s := bySet[i]
		if s == nil {
			s = &ARCSet{Instance: i}
			bySet[i] = s
		}
		slot := map[string]*field{fieldAAR: &s.aar, fieldAMS: &s.ams, fieldAS: &s.as}[kind]
		if slot.raw != nil {
			return arcChain{reason: "duplicate ARC field"}
		}
		*slot = f
		max = maxInt(max, i)
	}
	var c arcChain
	for i := 1; i <= max; i++ {
		s := bySet[i]
		if s == nil || s.aar.raw == nil || s.ams.raw == nil || s.as.raw == nil {
			return arcChain{reason: "incomplete ARC set"}
		}
		tags := parseTags(s.as.value())
		s.Domain, s.Selector = normalizeDomain(tags["d"]), stripSpace(tags["s"])
		s.CV = strings.ToLower(stripSpace(tags["cv"]))
		_, s.results, _ = strings.Cut(s.aar.value(), ";")
		c.sets = append(c.sets, *s)
	}
	return c
}

// arcKind returns the canonical name of an ARC field, "" for another.
func arcKind(name string) string {
	for _, k := range []string{fieldAAR, fieldAMS, fieldAS} {
		if strings.EqualFold(name, k) {
			return k
		}
	}
	return ""
}

// arcInstance reads i= of an ARC field: the first tag of an
// ARC-Authentication-Results (RFC 8617 §4.1.1), a tag of the signatures;
// 0 when there is none or it is not a number.
func arcInstance(f field) int {
	v := f.value()
	if strings.EqualFold(f.name, fieldAAR) {
		v, _, _ = strings.Cut(v, ";")
	}
	s, ok := parseTags(v)["i"]
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(stripSpace(s))
	if err != nil {
		return 0
	}
	return n
}

func normalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(stripSpace(d)), ".")
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// StripARC removes every ARC field from a header section (raw bytes, as
// for StripAuthResults) and returns the rest and how many it removed: the
// inbound route does so when rewriting changed an earlier sealer's fields,
// whose seals could then only fail, and starts a chain of its own.
func StripARC(hdr []byte) ([]byte, int) {
	return removeFields(hdr, func(f []byte) bool {
		name, _, _ := bytes.Cut(f, []byte(":"))
		return arcKind(strings.TrimRight(string(name), " \t")) != ""
	})
}
