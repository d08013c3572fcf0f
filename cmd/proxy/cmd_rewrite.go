package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/rewrite/attach"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

func cmdRewrite() *command {
	var route string
	return &command{
		name:    "rewrite",
		args:    "--route inbound|outbound < in.eml > out.eml",
		summary: "rewrite one message offline with the routes' code and token map: inbound tokenizes, outbound restores",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&route, "route", "", "`direction`: inbound (customer → CRM) or outbound (CRM → customer)")
		},
		run: func(ctx context.Context, a *app, args []string) error { return runRewrite(ctx, a, args, route) },
	}
}

func runRewrite(ctx context.Context, a *app, args []string, route string) error {
	if err := nArgs(args, 0, ""); err != nil {
		return err
	}
	if route != "inbound" && route != "outbound" {
		return usagef("--route must be inbound or outbound")
	}
	return a.withEngine(ctx, func(cfg *policy.Config, e *engine) error {
		// The result is spooled and written only when the whole message
		// passed: a refused message must not reach stdout half-written.
		spool, err := os.CreateTemp("", "tokenproxy-rewrite-*.eml")
		if err != nil {
			return err
		}
		defer os.Remove(spool.Name())
		defer spool.Close()
		rw := newRewriter(cfg, e.m)
		var rep *rewrite.Report
		if route == "inbound" {
			rep, err = rewriteInbound(ctx, rw, e.m, spool, a.stdin)
		} else {
			rep, err = rw.Outbound(ctx, spool, a.stdin)
		}
		if err != nil {
			return rewriteError(err)
		}
		if err := keepQuarantine(ctx, cfg, e, rep); err != nil {
			return fmt.Errorf("message not rewritten: %w", err)
		}
		a.log.Info("message rewritten", "event", "rewrite", "route", route, "parts", rep.Parts,
			"changed_parts", rep.Changed, "tokens", len(rep.Tokens), "tokens_created", rep.Created,
			"attachments_stripped", rep.Stripped)
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return err
		}
		_, err = io.Copy(a.stdout, spool)
		return err
	})
}

// rewriteInbound stages the message's new tokens and commits them only
// when the rewrite passed, as the inbound route does (DESIGN.md
// invariant 4).
func rewriteInbound(ctx context.Context, rw *rewrite.Rewriter, m *tokenize.Map, dst io.Writer, src io.Reader) (*rewrite.Report, error) {
	st := m.Begin()
	rep, err := rw.InboundStaged(ctx, st, dst, src)
	if err != nil {
		return rep, err
	}
	if _, err := st.Commit(ctx); err != nil {
		return rep, fmt.Errorf("commit new tokens: %w", err)
	}
	return rep, nil
}

// keepQuarantine stores the originals of the attachments the inbound
// rewrite stripped, as the inbound route does before its final dot.
func keepQuarantine(ctx context.Context, cfg *policy.Config, e *engine, rep *rewrite.Report) error {
	if len(rep.Quarantine) == 0 {
		return nil
	}
	q, err := e.quarantine(cfg)
	if err != nil {
		return err
	}
	return keepStripped(q)(ctx, rep.Quarantine)
}

// rewriteError gives the one-line reason; the rewriter's errors carry no
// address, and an unknown token is not customer data.
func rewriteError(err error) error {
	switch {
	case errors.Is(err, rewrite.ErrLeak), errors.Is(err, rewrite.ErrUnscannable),
		errors.Is(err, rewrite.ErrLimit), errors.Is(err, rewrite.ErrMalformedAddress),
		errors.Is(err, rewrite.ErrTooManyNewTokens),
		errors.Is(err, tokenize.ErrUnknownToken):
		return fmt.Errorf("message refused: %w", err)
	}
	return fmt.Errorf("message not rewritten: %w", err)
}

func newRewriter(cfg *policy.Config, m *tokenize.Map) *rewrite.Rewriter {
	l := cfg.Rewrite.Limits
	return rewrite.NewRewriter(m, rewrite.RewriteOptions{
		Internal:     cfg.IsInternal,
		DisplayNames: cfg.Rewrite.DisplayNames,
		Unscannable:  cfg.Rewrite.Unscannable,
		Limits: rewrite.Limits{MaxMessageBytes: l.MaxMessageBytes, MaxHeaderBytes: l.MaxHeaderBytes,
			MaxDepth: l.MaxMIMEDepth, MaxParts: l.MaxParts, MaxTextPartBytes: l.MaxTextPartBytes,
			MaxNewTokens: l.MaxNewTokens, MaxHeldBytes: l.MaxHeldBytes},
		Attachments: attachmentPolicy(cfg.Rewrite.Attachments),
	})
}

// attachmentPolicy is the validated rewrite.attachments section as the
// attachment rewriter takes it.
func attachmentPolicy(a policy.Attachments) attach.Policy {
	l := a.Limits
	return attach.Policy{
		Office: attach.Action(a.Office), Archive: attach.Action(a.Archive), Text: attach.Action(a.Text),
		Signed: attach.Action(a.Signed), PDF: attach.Action(a.PDF), Media: attach.Action(a.Media),
		Unreadable: attach.Action(a.Unreadable),
		Limits: attach.Limits{MaxBytes: l.MaxBytes, MaxDepth: l.MaxDepth, MaxMembers: l.MaxMembers,
			MaxExpandedBytes: l.MaxExpandedBytes, MaxRatio: l.MaxRatio},
	}
}
