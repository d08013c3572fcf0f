package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/logbuf"
	"github.com/tokenproxy/tokenproxy/test/tools"
)

// postfixMain is the main.cf of a test's Postfix: a relay for loopback
// clients to one next hop, SMTPUTF8 on (RFC 6531), no TLS, no DNS for the
// next hop (a bracketed IP), logging to standard output.
const postfixMain = `compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = smarthost.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:%[2]d
smtputf8_enable = yes
smtpd_relay_restrictions = permit_mynetworks, reject
maillog_file = /dev/stdout
alias_maps =
alias_database =
biff = no
smtp_tls_security_level = none
smtpd_tls_security_level = none
`

// postfixMaster runs smtpd on the test's port and the services a relay
// needs, none of them chrooted.
const postfixMaster = `127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
`

// startPostfixRelay runs a real Postfix (its own configuration, queue and
// data directories, loopback port) that relays everything from loopback
// to nextHop (a loopback port), as the company smarthost does. It returns
// the port and the Postfix log. Postfix's master runs as root (Debian's
// package, installed by test/tools/install.sh).
func startPostfixRelay(t *testing.T, nextHop int) (int, *logbuf.Buffer) {
	t.Helper()
	postfix := tools.Path(t, "postfix")
	if os.Geteuid() != 0 {
		t.Fatal("a Postfix instance needs root (its master starts the services as postfix)")
	}
	dir, err := os.MkdirTemp("", "tokenproxy-postfix-") // /tmp: Postfix's users must reach it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"conf", "queue", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "postfix", filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("chown postfix: %v %s", err, out)
	}
	port := freePort(t)
	conf := filepath.Join(dir, "conf")
	for name, text := range map[string]string{
		"main.cf":   fmt.Sprintf(postfixMain, dir, nextHop),
		"master.cf": fmt.Sprintf(postfixMaster, port),
	} {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	log := &logbuf.Buffer{}
	cmd := exec.Command(postfix, "-c", conf, "start-fg")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command(postfix, "-c", conf, "stop").Run()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	waitPort(t, port, log.String)
	return port, log
}

// waitLog waits until the log holds want.
func waitLog(t *testing.T, log *logbuf.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
