package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/tokenproxy/tokenproxy/policy"
)

var cmdDemo = &command{
	name:    "demo",
	args:    "[ADDRESS...]",
	summary: "tokenize addresses (sample ones by default), resolve the tokens back, and show the result",
	run:     runDemo,
}

var demoAddresses = []struct{ addr, name string }{
	{"Jane.Doe@Example.com", "Jane Doe"},
	{"jane.doe@example.com", ""}, // same customer, other case: same token
	{"jörg.müller@bücher.example", "Jörg Müller"},
	{`"john smith"@example.org`, "John Smith"},
}

func runDemo(ctx context.Context, a *app, args []string) error {
	return a.withEngine(ctx, func(cfg *policy.Config, e *engine) error { return demo(ctx, a, cfg, e, args) })
}

func demo(ctx context.Context, a *app, cfg *policy.Config, e *engine, args []string) error {
	inputs := demoAddresses
	if len(args) > 0 {
		inputs = inputs[:0:0]
		for _, s := range args {
			inputs = append(inputs, struct{ addr, name string }{s, ""})
		}
	}
	fmt.Fprintf(a.stdout, "token map: %s (relay domain %s)\n\n", e.db.Path(), cfg.RelayDomain)
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tTOKEN\tNEW\tRESOLVES TO")
	failed := 0
	for _, in := range inputs {
		iss, err := e.m.Tokenize(ctx, in.addr, in.name)
		if err != nil {
			fmt.Fprintf(tw, "%s\t(refused: %v)\t\t\n", in.addr, err)
			failed++
			continue
		}
		ent, err := e.m.Resolve(ctx, iss.Address)
		if err != nil {
			return fmt.Errorf("resolve %s: %w", iss.Local, err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", in.addr, iss.Address, iss.New, displayEntry(ent.DisplayName, ent.Original))
	}
	tw.Flush()
	if failed > 0 {
		return fmt.Errorf("%d of %d addresses refused", failed, len(inputs))
	}
	return nil
}

func displayEntry(name, addr string) string {
	if name == "" {
		return addr
	}
	return fmt.Sprintf("%q <%s>", name, addr)
}
