package downstream

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/emersion/go-sasl"
)

// Auth is the account the proxy logs in with at the next hop (a smarthost
// such as Exchange Online or a Google relay). The password is held in
// memory only, never logged, never in an error.
type Auth struct {
	Username string
	Password string
}

// errAuth: the hop offers no mechanism we use, or refused our credentials.
var errAuth = errors.New("downstream authentication failed")

// maxAuthSteps bounds the challenges of one AUTH (PLAIN has none, LOGIN two).
const maxAuthSteps = 5

// auth logs in (RFC 4954) with PLAIN, else LOGIN, as the hop offers. The
// caller has verified TLS. A refusal is errAuth with the reply's code; the
// reply text is kept out of the error (a hop may echo the user name).
func (w *downWire) auth(a *Auth) error {
	mechs := strings.Fields(strings.ToUpper(w.ext["AUTH"]))
	var c sasl.Client
	switch {
	case !w.has("AUTH"):
		return fmt.Errorf("%w: the hop offers no AUTH", errAuth)
	case contains(mechs, sasl.Plain):
		c = sasl.NewPlainClient("", a.Username, a.Password)
	case contains(mechs, sasl.Login):
		c = sasl.NewLoginClient(a.Username, a.Password)
	default:
		return fmt.Errorf("%w: the hop offers neither PLAIN nor LOGIN", errAuth)
	}
	mech, ir, err := c.Start()
	if err != nil {
		return fmt.Errorf("%w: %w", errAuth, err)
	}
	w.deadline()
	cmd := "AUTH " + mech
	if ir != nil {
		// RFC 4954 §4: an empty initial response is sent as "=".
		resp := base64.StdEncoding.EncodeToString(ir)
		if resp == "" {
			resp = "="
		}
		cmd += " " + resp
	}
	w.line(cmd)
	for step := 0; ; step++ {
		if err := w.bw.Flush(); err != nil {
			return err
		}
		code, text, err := w.anyReply()
		switch {
		case err != nil:
			return err
		case code == 235:
			return nil
		case code != 334 || step == maxAuthSteps:
			return &authRefused{code: code}
		}
		challenge, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			w.line("*") // RFC 4954 §4: cancels the exchange
			return fmt.Errorf("%w: malformed challenge", errAuth)
		}
		resp, err := c.Next(challenge)
		if err != nil {
			w.line("*")
			return fmt.Errorf("%w: %w", errAuth, err)
		}
		w.deadline()
		w.line(base64.StdEncoding.EncodeToString(resp))
	}
}

// authRefused is the hop's reply to our credentials: its code only.
type authRefused struct{ code int }

func (e *authRefused) Error() string { return fmt.Sprintf("%v: reply %d", errAuth, e.code) }
func (e *authRefused) Unwrap() error { return errAuth }

// anyReply reads one reply of any code, its text joined by "\n".
func (w *downWire) anyReply() (int, string, error) {
	var (
		code  int
		lines []string
	)
	for n := 0; ; n++ {
		if n == maxReplyLines {
			return 0, "", fmt.Errorf("%w: more than %d lines", errReplySyntax, maxReplyLines)
		}
		line, err := w.readLine()
		if err != nil {
			return 0, "", err
		}
		c, more, text, err := splitReplyLine(line)
		if err != nil {
			return 0, "", err
		}
		if n > 0 && c != code {
			return 0, "", fmt.Errorf("%w: code %d inside a reply of %d", errReplySyntax, c, code)
		}
		code = c
		lines = append(lines, string(text))
		if !more {
			return code, strings.Join(lines, "\n"), nil
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ReadPassword reads a downstream password from file, or from the systemd
// credential named credential ($CREDENTIALS_DIRECTORY/credential, set by
// LoadCredential= or SetCredential= in the unit). Surrounding white space,
// a final newline most of all, is not part of it. The error never holds
// the password.
func ReadPassword(file, credential string) (string, error) {
	path := file
	if credential != "" {
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return "", fmt.Errorf("password_credential %q: $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=)", credential)
		}
		if strings.ContainsAny(credential, "/\\") || credential == "." || credential == ".." {
			return "", fmt.Errorf("password_credential %q: must be a credential name, not a path", credential)
		}
		path = filepath.Join(dir, credential)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("downstream password: %w", err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("downstream password: %s is empty", path)
	}
	return pw, nil
}
