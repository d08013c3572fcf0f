package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/policy"
)

func cmdTokenResolve() *command {
	var reason string
	return &command{
		name:    "token resolve",
		args:    "TOKEN --reason TEXT",
		summary: "print the address behind a token (audited; the proxy must be stopped, else use compliance resolve)",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", "", "why (required; recorded in the audit trail; no e-mail addresses)")
		},
		run: func(ctx context.Context, a *app, args []string) error { return runTokenResolve(ctx, a, args, reason) },
	}
}

func runTokenResolve(ctx context.Context, a *app, args []string, reason string) error {
	if err := nArgs(args, 1, "one TOKEN"); err != nil {
		return err
	}
	if err := compliance.CheckReason(reason); err != nil {
		return usagef("--reason: %v", err)
	}
	return a.withEngine(ctx, func(cfg *policy.Config, e *engine) error {
		svc := e.compliance(cfg, a.log, nil)
		ent, err := svc.Resolve(ctx, args[0], reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "token:        %s\naddress:      %s\ndisplay name: %s\ncreated:      %s\nlast seen:    %s\n",
			ent.Address, ent.Original, ent.DisplayName, ent.Created.UTC().Format(time.RFC3339), ent.LastSeen.UTC().Format(time.RFC3339))
		return nil
	})
}

func cmdTokenNew() *command {
	var name string
	return &command{
		name:    "token new",
		args:    "ADDRESS",
		summary: "print the token of an address, creating it if needed",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "display `name` to store with a new token")
		},
		run: func(ctx context.Context, a *app, args []string) error { return runTokenNew(ctx, a, args, name) },
	}
}

func runTokenNew(ctx context.Context, a *app, args []string, name string) error {
	if err := nArgs(args, 1, "one ADDRESS"); err != nil {
		return err
	}
	return a.withEngine(ctx, func(_ *policy.Config, e *engine) error {
		iss, err := e.m.Tokenize(ctx, args[0], name)
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, iss.Address)
		return nil
	})
}
