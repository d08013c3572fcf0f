package smtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tokenproxy/tokenproxy/internal/rawheader"
	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/rewrite"
)

// sealer ARC-seals the rewritten message (RFC 8617 §5.1) when the route
// has a seal: the set's ARC-Authentication-Results are our
// Authentication-Results, computed before rewriting; the seal and
// message signature cover the message as the CRM receives it. Nil
// without a seal, and the message streams.
func (p *inboundPolicy) sealer(res *dataResult) sealFunc {
	a := p.o.AuthCheck
	if a == nil || a.ARCSeal == nil {
		return nil
	}
	return func(ctx context.Context, msg io.Reader) (out sealed, err error) {
		defer func() {
			// A message that trips the sealer must not take the session
			// down (STYLE.md, habit 9); it is not relayed unsealed.
			if r := recover(); r != nil {
				out, err = sealed{}, fmt.Errorf("smtp: arc seal: panic: %v", r)
			}
			if err != nil {
				p.o.Route.Metrics.ARCSeal("failed")
			}
		}()
		var chain *mailauth.ARCVerdict
		if res.auth != nil {
			chain = &res.auth.ARC
		}
		seal, err := a.ARCSeal.Seal(ctx, chain, res.authResults, msg)
		if err != nil {
			// Unknown failure is temporary: Vault down, a timeout. The
			// client is answered 451 4.3.0 and retries.
			return sealed{}, fmt.Errorf("smtp: arc seal: %w", err)
		}
		res.arcSealed = seal.Instance
		p.o.Route.Metrics.ARCSeal(arcSealResult(seal.Instance, seal.StripOld))
		out = sealed{fields: seal.Fields}
		if seal.StripOld {
			out.filter = p.withoutARC
		}
		return out, nil
	}
}

// withoutARC returns msg without the ARC fields of its header section
// (mailauth.StripARC). The rewritten header section may have grown (a
// token can be longer than the address it replaced): it may be twice the
// limit the client's was held to.
func (p *inboundPolicy) withoutARC(msg io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(msg, 8<<10)
	hdr, err := rawheader.Read(br, 2*p.o.MaxHeaderBytes)
	if errors.Is(err, rawheader.ErrTooLarge) {
		err = fmt.Errorf("%w: %w", rewrite.ErrLimit, err)
	}
	if err != nil {
		return nil, err
	}
	hdr, _ = mailauth.StripARC(hdr)
	return io.MultiReader(bytes.NewReader(hdr), br), nil
}

// arcAttrs are the log attributes of the ARC verdict: the result and
// whether a trusted sealer overrode DMARC, never a domain.
func arcAttrs(v *mailauth.Verdicts) []any {
	if v.ARC.Result == "" || v.ARC.Result == mailauth.ResultNone {
		return nil
	}
	attrs := []any{"arc", string(v.ARC.Result)}
	if v.DMARC.ARCOverride != "" {
		attrs = append(attrs, "dmarc_override", "arc")
	}
	return attrs
}
