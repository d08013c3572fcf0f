package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// helpWords ask for help wherever a command name could stand:
// `proxy help`, `proxy compliance --help`, `proxy keys -h`, `proxy audit help`.
var helpWords = []string{"help", "-h", "-help", "--help"}

// groupOf returns the command group named by word ("compliance" for
// "compliance erase"), or "" when no multi-word command starts with it.
func groupOf(word string) string {
	for _, c := range commands() {
		if first, _, multi := strings.Cut(c.name, " "); multi && first == word {
			return first
		}
	}
	return ""
}

// groupCommands lists the commands of a group, in the order of commands().
func groupCommands(group string) []*command {
	var cmds []*command
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

// runHelp answers a command line that found no command: help asked for
// (the whole list, or a group's commands) exits 0 on stdout; a group named
// without a subcommand, or with an unknown one, lists the group on stderr
// and exits 2; anything else is an unknown command. handled is false when
// args name no group and ask for no help.
func runHelp(args []string, stdout, stderr io.Writer) (code int, handled bool) {
	if len(args) == 0 {
		return 0, false
	}
	if slices.Contains(helpWords, args[0]) {
		if len(args) > 1 {
			if g := groupOf(args[1]); g != "" {
				printGroupUsage(stdout, g)
				return 0, true
			}
			if cmd, _ := findCommand(args[1:]); cmd != nil {
				fmt.Fprintf(stdout, "Run 'proxy %s --help' for its flags.\n", cmd.name)
				return 0, true
			}
			fmt.Fprintf(stderr, "proxy: no help for %q\n", strings.Join(args[1:], " "))
			printUsage(stderr)
			return 2, true
		}
		printUsage(stdout)
		return 0, true
	}
	g := groupOf(args[0])
	if g == "" {
		return 0, false
	}
	// Help asked last counts whatever stands between (`proxy compliance
	// --config FILE --help`): the group's listing is what helps.
	if len(args) >= 2 && slices.Contains(helpWords, args[len(args)-1]) {
		printGroupUsage(stdout, g)
		return 0, true
	}
	if len(args) == 1 {
		fmt.Fprintf(stderr, "proxy %s: a subcommand is needed\n", g)
	} else {
		fmt.Fprintf(stderr, "proxy: unknown command %q\n", strings.Join(args, " "))
	}
	printGroupUsage(stderr, g)
	return 2, true
}

// printGroupUsage lists a group's commands with their synopses.
func printGroupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "usage: proxy [--config FILE] [--data-dir DIR] %s COMMAND [ARGS]\n\ncommands:\n", group)
	for _, c := range groupCommands(group) {
		fmt.Fprintf(w, "  %-28s %s\n", c.name+" "+c.args, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'proxy %s COMMAND --help' for a command's flags.\n", group)
}
