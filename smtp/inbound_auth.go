package smtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/tokenproxy/tokenproxy/internal/rawheader"
	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/rewrite"
)

// AuthCheck configures the inbound route's check of SPF, DKIM and DMARC on
// the message as the customer's server sent it, before any rewriting.
type AuthCheck struct {
	Resolver *mailauth.Resolver // required
	// TagDMARCReject relays mail that fails DMARC under p=reject, with
	// dmarc=fail in Authentication-Results, instead of refusing it with
	// 550 5.7.1.
	TagDMARCReject bool
	// TrustedARCSealers are the ARC signing domains whose results may
	// stand in for a DMARC failure that forwarding caused
	// (mailauth.VerifyInput); ARCSeal, when set, seals what the route
	// relays (inbound_arc.go).
	TrustedARCSealers []string
	ARCSeal           *mailauth.ARCSealer
}

// prepare runs before the rewriter and before the downstream DATA. It
// always removes incoming Authentication-Results fields that claim our
// authserv-id; with an AuthCheck it first reads the whole message into a
// spool while mailauth.Verify checks it, since the verdict is known only at
// the end but goes on top, and refuses mail whose From domain asks for it.
// The rewriter then reads our field, the cleaned header section and the
// body: it tokenizes them like the rest, and its leak guard covers our
// field too.
func (p *inboundPolicy) prepare(ctx context.Context, s *session, src io.Reader, res *dataResult) (io.Reader, func(), error) {
	if p.o.AuthCheck == nil {
		return p.withAuthResults(src, "", p.removedAuthservIDs(s), res)
	}
	sp := newSpool(s.r.opts.SpoolDir, spoolMemBytes)
	msg, release, err := p.authenticate(ctx, s, src, sp, res)
	if err != nil {
		sp.Close()
		return nil, nil, err
	}
	return msg, func() { release(); sp.Close() }, nil
}

// authenticate verifies the message into sp and returns it with our
// Authentication-Results field, and the release of withAuthResults.
func (p *inboundPolicy) authenticate(ctx context.Context, s *session, src io.Reader, sp *spool, res *dataResult) (io.Reader, func(), error) {
	in := p.verifyInput(s)
	in.TrustedARCSealers = p.o.AuthCheck.TrustedARCSealers
	v, err := s.verify(ctx, p.o.AuthCheck.Resolver, in, src, sp)
	if err != nil {
		return nil, nil, err
	}
	// RFC 8601 §2.2: "none" says no method could be applied.
	value := p.o.AuthservID + "; none"
	if v != nil {
		res.auth = v
		s.r.opts.Metrics.ARCResult(string(v.ARC.Result))
		// RFC 7489 §6.6.2 step 6: the Domain Owner's policy is applied;
		// DMARCReject holds back for pct < 100 and temporary errors.
		if v.DMARCReject() && !p.o.AuthCheck.TagDMARCReject {
			return nil, nil, errDMARCReject
		}
		value = v.AuthenticationResults(p.o.AuthservID, s.authResultsAddr)
	}
	res.authResults = value
	msg, err := sp.Reader()
	if err != nil {
		return nil, nil, err
	}
	return p.withAuthResults(msg, authResultsField(value), p.removedAuthservIDs(s), res)
}

// verify reads the client's whole message into sp while mailauth.Verify
// checks it. An error of the client's data (bare CR or LF, too large, a
// lost connection) is returned as it is. A message mailauth cannot parse
// but we could read gets nil verdicts: the rewriter has the last word on it.
// DNS failures are temperror verdicts, never errors.
func (s *session) verify(ctx context.Context, r *mailauth.Resolver, vin mailauth.VerifyInput, src io.Reader, sp *spool) (*mailauth.Verdicts, error) {
	in := &firstErrReader{r: src}
	v, err := mailauth.Verify(ctx, r, vin, io.TeeReader(in, sp))
	switch {
	case in.err != nil:
		return nil, in.err
	case err == nil:
		return v, nil
	}
	// Verify may have stopped early; the spool needs all of it.
	if _, cerr := io.Copy(sp, in); cerr != nil {
		return nil, cerr
	}
	if in.err != nil {
		return nil, in.err
	}
	// The error is not logged: a parser's error may quote the header.
	s.log.Warn("message not verifiable: reported as none", "event", "auth_unverifiable")
	return nil, nil
}

// authResultsAddr is what Authentication-Results shows of an address: the
// envelope sender's token, which is how the CRM knows the customer, and of
// any other address only its domain (RFC 8601 §2.2 allows a bare domain).
func (s *session) authResultsAddr(addr string) string {
	if s.from != "" && s.down != "" && strings.EqualFold(addr, s.from) {
		return s.down
	}
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// withAuthResults returns field, then the header section of msg without
// the Authentication-Results fields that claim one of ids (ours, and the
// trusted relays' on a connection from elsewhere), then the rest of msg.
// RFC 8601 §5: a border MTA MUST remove them, or the CRM would read a
// forger's verdicts as ours. release returns the read buffer
// once the message has been relayed; it is nil on error.
func (p *inboundPolicy) withAuthResults(msg io.Reader, field string, ids []string, res *dataResult) (_ io.Reader, release func(), _ error) {
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(msg)
	release = func() {
		br.Reset(nil) // the pool must not keep the client's data reachable
		headerReaders.Put(br)
	}
	hdr, err := rawheader.Read(br, p.o.MaxHeaderBytes)
	if errors.Is(err, rawheader.ErrTooLarge) {
		err = fmt.Errorf("%w: %w", rewrite.ErrLimit, err)
	}
	if err != nil {
		release()
		return nil, nil, err
	}
	hdr = dropLeadingFolds(hdr)
	for _, id := range ids {
		var n int
		hdr, n = mailauth.StripAuthResults(hdr, id)
		res.authRemoved += n
	}
	return io.MultiReader(strings.NewReader(field), bytes.NewReader(hdr), br), release, nil
}

// headerReaders recycles the readers of withAuthResults. 8 KiB: longer
// lines are read in pieces; a fresh buffer per message cost its
// allocation and zeroing, a tenth of the route's garbage.
var headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8<<10) }}

// dropLeadingFolds removes folded lines before the first field: they
// belong to no field (RFC 5322 §2.2.3), and would otherwise continue the
// field put on top of them, letting a sender append text to our
// Authentication-Results or Received field.
func dropLeadingFolds(hdr []byte) []byte {
	for len(hdr) > 0 && (hdr[0] == ' ' || hdr[0] == '\t') {
		i := bytes.IndexByte(hdr, '\n')
		if i < 0 {
			return nil
		}
		hdr = hdr[i+1:]
	}
	return hdr
}

// authResultsField returns the Authentication-Results field for a value,
// folded by mailauth.FoldResults. "" for "".
func authResultsField(value string) string {
	if value == "" {
		return ""
	}
	return mailauth.FoldResults("Authentication-Results: ", value)
}

// authAttrs are the log attributes of the verdicts: results only, never a
// domain or an address.
func authAttrs(res dataResult) []any {
	var attrs []any
	if v := res.auth; v != nil {
		spf := mailauth.ResultNone
		if len(v.SPF) > 0 {
			spf = v.SPF[0].Result
		}
		attrs = append(attrs, "spf", string(spf), "dkim", string(dkimSummary(v.DKIM)), "dmarc", string(v.DMARC.Result))
		if v.DMARC.AuthresOverride != "" {
			attrs = append(attrs, "dmarc_override", "trusted_authres")
		}
		attrs = append(attrs, arcAttrs(v)...)
	}
	if res.arcSealed > 0 {
		attrs = append(attrs, "arc_sealed", res.arcSealed)
	}
	if res.authRemoved > 0 {
		attrs = append(attrs, "auth_results_removed", res.authRemoved)
	}
	return attrs
}

// dkimSummary is pass if any signature passed, else the first result.
func dkimSummary(ds []mailauth.DKIMVerdict) mailauth.Result {
	if len(ds) == 0 {
		return mailauth.ResultNone
	}
	for _, d := range ds {
		if d.Result == mailauth.ResultPass {
			return mailauth.ResultPass
		}
	}
	return ds[0].Result
}

// firstErrReader remembers the first read error other than EOF: the
// client's error, told apart from what mailauth makes of it.
type firstErrReader struct {
	r   io.Reader
	err error
}

func (f *firstErrReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF && f.err == nil {
		f.err = err
	}
	return n, err
}
