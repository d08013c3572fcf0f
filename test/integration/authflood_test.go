package integration

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// authFlood (issue 18 item 3): the CRM authenticates once from 127.0.0.2;
// then 20 clients, each from its own loopback address, send a wrong
// password at once (argon2id, 64 MiB per check) while the CRM
// authenticates again. The proxy's RSS is sampled throughout: the checks
// run within AuthGuard's memory budget (128 MiB), and the CRM, from an IP
// it authenticated from, has a check slot of its own.
func (a *attacker) authFlood(pid int) {
	plain := func(pw string) string {
		return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00crm\x00"+pw))
	}
	crm := a.tlsSessionFrom(a.out, "127.0.0.2")
	first := crm.cmd(plain(secPassword))
	crm.cmd("QUIT")
	base := rssMiB(pid)
	var peak atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				if r := rssMiB(pid); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	flood := make([]*rawConn, 20)
	for i := range flood {
		flood[i] = a.tlsSessionFrom(a.out, "127.0.0."+strconv.Itoa(10+i))
	}
	crm = a.tlsSessionFrom(a.out, "127.0.0.2")
	var wg sync.WaitGroup
	replies := make([]string, len(flood))
	for i, c := range flood {
		wg.Go(func() {
			if c.write(plain("wrong-"+strconv.Itoa(i))+"\r\n") == nil {
				line, _ := c.r.ReadString('\n')
				replies[i] = firstWords(line, 2)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // the flood's checks are under way
	t0 := time.Now()
	second := crm.cmd(plain(secPassword))
	took := time.Since(t0)
	wg.Wait()
	close(stop)
	counts := map[string]int{}
	for _, r := range replies {
		counts[r]++
	}
	floodOK := counts["535 5.7.8"]+counts["454 4.7.0"] == len(flood)
	a.row("20 concurrent failed AUTHs (outbound, argon2id)", "20× STARTTLS, AUTH PLAIN crm:<wrong>, each from its own IP",
		fmt.Sprintf("%v; RSS %d MiB before, peak %d MiB", counts, base, peak.Load()),
		"535/454 each; peak RSS < base + 256 MiB", floodOK && peak.Load() < base+256)
	a.row("CRM AUTH during the flood", "AUTH PLAIN crm:<right> from 127.0.0.2 (authenticated before)",
		fmt.Sprintf("%s after %.2f s (first AUTH: %s)", firstWords(second, 2), took.Seconds(), firstWords(first, 1)),
		"235 within 2 s", strings.HasPrefix(second, "235") && took < 2*time.Second)
	crm.cmd("QUIT")
}

// tlsSessionFrom is tlsSession from the local address ip (127.0.0.0/8 is
// all loopback): each client its own IP, below the per-IP limits.
func (a *attacker) tlsSessionFrom(addr, ip string) *rawConn {
	a.t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(func() { c.Close() })
	rc := &rawConn{c: c, r: bufio.NewReader(c)}
	for _, step := range []struct{ cmd, want string }{{"", "220 "}, {"EHLO attacker.example", "250"}, {"STARTTLS", "220 "}} {
		r := rc.reply
		got := ""
		if step.cmd == "" {
			got = r()
		} else {
			got = rc.cmd(step.cmd)
		}
		if !strings.HasPrefix(got, step.want) {
			a.t.Fatalf("%q from %s: %q", step.cmd, ip, got)
		}
	}
	rc.upgrade(a.t, a.tls)
	if r := rc.cmd("EHLO attacker.example"); !strings.HasPrefix(r, "250") {
		a.t.Fatalf("EHLO after STARTTLS: %q", r)
	}
	return rc
}

// rssMiB is the resident set of process pid, from /proc; 0 if unknown.
func rssMiB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb >> 10
		}
	}
	return 0
}
