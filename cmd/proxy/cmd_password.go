package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tokenproxy/tokenproxy/smtp"
)

var cmdHashPassword = &command{
	name: "hash-password",
	args: "< password",
	summary: "read a password from stdin and print its argon2id hash for outbound.auth_users " +
		"(the password never appears on a command line)",
	run: runHashPassword,
}

func runHashPassword(_ context.Context, a *app, args []string) error {
	if err := nArgs(args, 0, ""); err != nil {
		return err
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		return errors.New("no password on stdin")
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 12 {
		return errors.New("password too short: use at least 12 characters (a CRM connector stores it, nobody types it)")
	}
	hash, err := smtp.HashPassword(pw)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, hash)
	return nil
}
