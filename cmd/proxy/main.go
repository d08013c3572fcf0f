// Command proxy is tokenproxy's single binary: the mail routes,
// the token engine's admin commands, and offline tools.
//
// Exit status: 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"

	"github.com/tokenproxy/tokenproxy/audit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// command is one `proxy` command. Commands with flags are built fresh
// for each run, so flag values never outlive an invocation.
type command struct {
	name    string // "keys rotate"
	args    string // synopsis of the arguments
	summary string
	flags   func(fs *flag.FlagSet) // command-specific flags, may be nil
	run     func(ctx context.Context, a *app, args []string) error
}

func commands() []*command {
	cmds := []*command{
		cmdServe, cmdDemo, cmdCheckConfig, cmdHashPassword, cmdKeysStatus, cmdKeysRotate(),
		cmdTokenNew(), cmdTokenResolve(), cmdRewrite(), cmdBackup, cmdRestore(), cmdDNS(),
		cmdAuditVerify(), cmdAuditKeys(), cmdAuditExport(), cmdStoreMigrate(), cmdStoreReplayErasures(), cmdClusterStatus,
	}
	return append(cmds, complianceCommands()...)
}

// run parses the command line and runs one command; it returns the exit
// status. Global flags may stand before or after the command name.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	top := flag.NewFlagSet("proxy", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	a.globalFlags(top)
	err := top.Parse(args)
	if errors.Is(err, flag.ErrHelp) || (err == nil && top.NArg() == 0) {
		printUsage(stdout)
		if err == nil {
			return 2
		}
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "proxy: %v\n", err)
		printUsage(stderr)
		return 2
	}
	cmd, rest := findCommand(top.Args())
	if cmd == nil {
		if code, handled := runHelp(top.Args(), stdout, stderr); handled {
			return code
		}
		fmt.Fprintf(stderr, "proxy: unknown command %q\n", strings.Join(top.Args(), " "))
		printUsage(stderr)
		return 2
	}
	return a.runCommand(ctx, cmd, rest)
}

func (a *app) runCommand(ctx context.Context, cmd *command, args []string) int {
	fs := flag.NewFlagSet("proxy "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: proxy [--config FILE] [--data-dir DIR] %s %s\n\n%s\n\nflags:\n", cmd.name, cmd.args, cmd.summary)
		fs.PrintDefaults()
	}
	a.globalFlags(fs)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	// Whatever a command does to the token map is audited under the
	// operating-system user who ran it; serve's routes name themselves.
	err = cmd.run(audit.WithActor(ctx, cliActor()), a, positional)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "proxy %s: %v\n", cmd.name, err)
		fs.Usage()
		return 2
	default:
		fmt.Fprintf(a.stderr, "proxy %s: %v\n", cmd.name, err)
		return 1
	}
}

// parseInterspersed parses flags before and after positional arguments
// (`compliance erase ADDRESS --reason TEXT`); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// cliActor names the user running a command, for the audit trail.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return fmt.Sprintf("cli:uid-%d", os.Getuid())
}

// findCommand matches the longest command name at the start of args.
func findCommand(args []string) (*command, []string) {
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c, args[len(words):]
		}
	}
	return nil, nil
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: proxy [--config FILE] [--data-dir DIR] COMMAND [ARGS]")
	fmt.Fprintln(w, "\nWithout --config, the embedded quickstart configuration is used.\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-28s %s\n", c.name+" "+c.args, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'proxy COMMAND --help' for a command's flags.")
}
