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
	if err := nArgs(args, 0, ""); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "# effective configuration from %s\n%s", cfg.Source(), cfg.Redacted())
	reportMemory(a.stdout, a.stderr, cfg, machineMemory())
	return nil
}
