package smtp_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// extSession implements ExtensionSession: XFORWARD is answered 250, XCLIENT
// with a new greeting, XBAD with a 550, and anything else is unknown.
type extSession struct{ session }

func (s *extSession) Extensions() []string { return []string{"XFORWARD NAME ADDR"} }

func (s *extSession) Command(cmd, arg string) error {
	switch cmd {
	case "XFORWARD":
		return nil
	case "XCLIENT":
		return &smtp.SMTPError{Code: 220, EnhancedCode: smtp.NoEnhancedCode, Message: "localhost ESMTP " + arg}
	case "XBAD":
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Not authorized"}
	}
	return smtp.ErrCommandUnrecognized
}

func TestServer_extensionSession(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &extSession{}, nil }))
	s.Domain = "localhost"
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := bufio.NewScanner(c)
	sc.Scan() // greeting

	// Before EHLO there is no session: go-smtp's own refusal.
	io.WriteString(c, "XFORWARD ADDR=192.0.2.1\r\n")
	if sc.Scan(); !strings.HasPrefix(sc.Text(), "5") {
		t.Fatalf("before EHLO: %q", sc.Text())
	}
	io.WriteString(c, "EHLO localhost\r\n")
	announced := false
	for sc.Scan() {
		if strings.HasSuffix(sc.Text(), "XFORWARD NAME ADDR") {
			announced = true
		}
		if strings.HasPrefix(sc.Text(), "250 ") {
			break
		}
	}
	if !announced {
		t.Fatal("EHLO does not announce the session's extension")
	}
	for _, tc := range []struct{ cmd, want string }{
		{"XFORWARD ADDR=192.0.2.1", "250 2.0.0 OK"},
		{"xclient ADDR=192.0.2.1", "220 localhost ESMTP ADDR=192.0.2.1"},
		{"XBAD", "550 5.7.0 Not authorized"},
		{"XNONE ARG", "500 5.5.2 Syntax errors, XNONE command unrecognized"},
	} {
		io.WriteString(c, tc.cmd+"\r\n")
		if sc.Scan(); sc.Text() != tc.want {
			t.Errorf("%s: got %q, want %q", tc.cmd, sc.Text(), tc.want)
		}
	}
}

// TestServer_rcptPostmaster: RFC 5321 §4.1.1.3 "RCPT TO:<Postmaster>" has no
// domain; it reaches the session as "postmaster" (patch 4).
func TestServer_rcptPostmaster(t *testing.T) {
	be, s, c, scanner := testServerAuthenticated(t)
	defer s.Close()
	defer c.Close()
	io.WriteString(c, "MAIL FROM:<>\r\n")
	scanner.Scan()
	for _, rcpt := range []string{"<Postmaster>", "<POSTMASTER>"} {
		io.WriteString(c, "RCPT TO:"+rcpt+"\r\n")
		if scanner.Scan(); !strings.HasPrefix(scanner.Text(), "250 ") {
			t.Fatalf("RCPT TO:%s: %q", rcpt, scanner.Text())
		}
	}
	io.WriteString(c, "RCPT TO:<Postmasterx>\r\n")
	if scanner.Scan(); !strings.HasPrefix(scanner.Text(), "501 ") {
		t.Fatalf("RCPT TO:<Postmasterx>: %q", scanner.Text())
	}
	io.WriteString(c, "DATA\r\n")
	scanner.Scan()
	io.WriteString(c, "Subject: x\r\n\r\n.\r\n")
	scanner.Scan()
	if len(be.messages) != 1 || len(be.messages[0].To) != 2 || be.messages[0].To[0] != "postmaster" {
		t.Fatalf("messages = %+v", be.messages)
	}
}
