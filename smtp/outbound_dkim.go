package smtp

import (
	"context"
	"fmt"
	"io"

	"github.com/tokenproxy/tokenproxy/mailauth"
)

// prepare: the outbound route rewrites the CRM's message as it arrives.
func (p *outboundPolicy) prepare(_ context.Context, _ *session, src io.Reader, _ *dataResult) (io.Reader, func(), error) {
	return src, func() {}, nil
}

// sealer signs the detokenized message, sender fields rewritten, with
// DKIM (relaxed/relaxed, RFC 6376 §3.4.2 and §3.4.4: the next hops may
// refold headers and change trailing white space): the last change made to
// it. Nil without a signing configuration.
func (p *outboundPolicy) sealer(*dataResult) sealFunc {
	if p.o.DKIM == nil {
		return nil
	}
	cfg := *p.o.DKIM
	return func(ctx context.Context, msg io.Reader) (sealed, error) {
		sig, err := mailauth.Signature(ctx, cfg, msg)
		if err != nil {
			// Unknown failure is temporary: Vault down, a timeout. The
			// client is answered 451 4.3.0 and retries.
			return sealed{}, fmt.Errorf("smtp: dkim signature: %w", err)
		}
		return sealed{fields: sig}, nil
	}
}
