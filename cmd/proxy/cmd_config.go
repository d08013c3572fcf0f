package main

import (
	"context"
	"fmt"
)

var cmdCheckConfig = &command{
	name:    "check-config",
	summary: "validate the configuration and print it in effect, secrets redacted",
	run:     runCheckConfig,
}

func runCheckConfig(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "# effective configuration from %s\n%s", cfg.Source(), cfg.Redacted())
	return nil
}
