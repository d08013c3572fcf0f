package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	bolt "go.etcd.io/bbolt"
)

const boltPage = 4096 // bbolt's page size is the OS page size: 4 KiB on amd64 and arm64 Linux

// TestCorruptDatabase damages a stopped proxy's token map three ways and
// checks what an operator sees:
//
//   - both meta pages overwritten, and the root bucket's page with its
//     neighbours overwritten (pages every open reads): `proxy serve`
//     refuses to start, exit 1, with one line naming the file, saying it is
//     corrupt and to restore a backup, and no panic trace;
//   - a leaf page of the tokens bucket overwritten (a page an open does not
//     read: OpenDB reads only the meta bucket, so opening costs the same for
//     any map size): `proxy serve` starts, a customer whose record lives on
//     that page gets 451 4.3.0 (bbolt's panic on the page is a store
//     error, not go-smtp's 421 and a stack trace) and nothing of that
//     message is relayed, the others pass, and the process stays up.
//
// After each, `proxy restore` from a backup taken earlier with `proxy
// backup` brings every token back: the outbound route resolves them all.
func TestCorruptDatabase(t *testing.T) {
	crm, smart := startMemSink(t), startMemSink(t)
	sv := writeServeConfig(t, crm.addr, smart.addr, "info", "client_networks: [127.0.0.0/8]")
	dbFile := filepath.Join(sv.dataDir, "tokenproxy.db")
	const domain = "customer-corrupt.example"
	p := startServe(t, sv.config, sv.admin)
	senders := map[string]string{} // Message-ID → sender
	for i := range 60 {
		from, id := fmt.Sprintf("c%d@%s", i, domain), fmt.Sprintf("<corrupt-%d@mail.example.com>", i)
		if r := sendCustomer(sv.inPort, from, id); r != "250" {
			t.Fatalf("%s: %s\n%s", from, r, p.log.String())
		}
		senders[id] = from
	}
	stopServe(t, p)
	tokens := map[string]string{} // token → address
	for id, m := range sinkByID(crm.messages()) {
		tokens[tokenRE.FindString(m)] = senders[id]
	}
	if len(tokens) != len(senders) {
		t.Fatalf("the CRM got %d distinct tokens for %d senders", len(tokens), len(senders))
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if r := runProxyBounded(t, 30*time.Second, sv.config, "backup", backup); r.code != 0 {
		t.Fatalf("proxy backup: %+v", r)
	}
	good, err := os.ReadFile(dbFile)
	if err != nil {
		t.Fatal(err)
	}
	restore := func(t *testing.T) {
		t.Helper()
		if r := runProxyBounded(t, 30*time.Second, sv.config, "restore", backup); r.code != 0 || !strings.Contains(r.stdout, "restored") {
			t.Fatalf("proxy restore: %+v", r)
		}
		p := startServe(t, sv.config, sv.admin)
		checkOutboundResolves(t, sv, smart, tokens)
		stopServe(t, p)
	}

	for _, c := range []struct {
		name  string
		pages func(t *testing.T, db []byte) []int
	}{
		{"meta pages", func(*testing.T, []byte) []int { return []int{0, 1} }},
		{"root bucket page and neighbours", func(t *testing.T, db []byte) []int {
			r := int(metaRoot(db))
			return []int{max(r-1, 2), r, r + 1}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pages := c.pages(t, good)
			overwritePages(t, dbFile, good, pages)
			r := runProxyBounded(t, 20*time.Second, sv.config, "serve")
			t.Logf("pages %v overwritten; proxy serve exit %d, stderr:\n%s", pages, r.code, lastLines(r.log, 2))
			if r.code != 1 {
				t.Fatalf("proxy serve on a corrupt map: exit %d, want 1\n%s", r.code, r.log)
			}
			noPanicTrace(t, "stderr", r.log)
			msg := lastLines(r.log, 1)
			for _, want := range []string{dbFile, "corrupt", "restore"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the last stderr line does not say %q: %s", want, msg)
				}
			}
			restore(t)
		})
	}

	t.Run("tokens leaf page", func(t *testing.T) {
		leaf := tokensLeaf(t, good)
		overwritePages(t, dbFile, good, []int{leaf})
		p := startServe(t, sv.config, sv.admin) // starts: the damaged page is not read at start
		before := len(crm.messages())
		var refused []string
		var passed int
		ids := make([]string, 0, len(senders))
		for id := range senders {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			again := strings.Replace(id, "<corrupt-", "<again-", 1)
			switch r := sendCustomer(sv.inPort, senders[id], again); {
			case r == "250":
				passed++
			case strings.HasPrefix(r, "451 4.3.0 "):
				refused = append(refused, again)
				if len(refused) == 1 {
					t.Logf("leaf page %d overwritten; a sender whose record is there gets %q", leaf, r)
				}
			default:
				t.Errorf("sender %s with a damaged record got %q, want 451 4.3.0", senders[id], r)
			}
		}
		if len(refused) == 0 {
			t.Fatalf("no sender was refused after leaf page %d was overwritten", leaf)
		}
		if code, _ := httpGet("http://" + sv.admin + "/readyz"); code != 200 {
			t.Errorf("/readyz after the refusals: %d", code)
		}
		got := sinkByID(crm.messages()[before:])
		for _, id := range refused {
			if _, ok := got[id]; ok {
				t.Errorf("%s was refused but reached the CRM", id)
			}
		}
		if len(got) != passed {
			t.Errorf("the CRM got %d messages, %d were accepted", len(got), passed)
		}
		t.Logf("%d senders refused, %d passed", len(refused), passed)
		stopServe(t, p)
		if strings.Contains(p.log.String(), domain) {
			t.Errorf("the proxy log names a customer address")
		}
		noPanicTrace(t, "the proxy log", p.log.String())
		if !strings.Contains(p.log.String(), "damaged page read") {
			t.Errorf("the proxy log does not name the damaged page:\n%s", p.log.String())
		}
		restore(t)
	})
}

// overwritePages writes db to path with the given pages replaced by random
// bytes.
func overwritePages(t *testing.T, path string, db []byte, pages []int) {
	t.Helper()
	bad := bytes.Clone(db)
	for _, p := range pages {
		if (p+1)*boltPage > len(bad) {
			t.Fatalf("page %d is past the end of the %d-byte file", p, len(bad))
		}
		rand.Read(bad[p*boltPage : (p+1)*boltPage])
	}
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
}

// metaRoot returns the root bucket's page id from the newer of bbolt's two
// meta pages. A meta page is the 16-byte page header, then magic, version,
// page size, flags (4 bytes each), the root bucket (root page id and
// sequence, 8 bytes each), freelist, high-water page id, txid, checksum.
func metaRoot(db []byte) uint64 {
	var root, txid uint64
	for p := range 2 {
		m := db[p*boltPage+16:]
		if id := binary.LittleEndian.Uint64(m[48:]); id >= txid {
			txid, root = id, binary.LittleEndian.Uint64(m[16:])
		}
	}
	return root
}

// tokensLeaf returns a leaf page of the tokens bucket: the middle child of
// the bucket's root, which must be a branch page (a branch page's elements
// are 16 bytes each after the page header: key position and size, 4 bytes
// each, then the child's page id).
func tokensLeaf(t *testing.T, db []byte) int {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "inspect.db")
	if err := os.WriteFile(tmp, db, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := bolt.Open(tmp, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var root int
	b.View(func(tx *bolt.Tx) error {
		root = int(tx.Bucket([]byte("tokens")).Root())
		return nil
	})
	b.Close()
	page := db[root*boltPage:]
	if flags := binary.LittleEndian.Uint16(page[8:]); flags != 0x01 { // a page header: id, flags, count, overflow
		t.Fatalf("the tokens bucket's root page %d has flags %#x: want a branch (0x01); too few tokens?", root, flags)
	}
	count := int(binary.LittleEndian.Uint16(page[10:]))
	elem := page[16+16*(count/2):]
	return int(binary.LittleEndian.Uint64(elem[8:]))
}

// checkOutboundResolves sends one reply from the CRM to every token
// through the outbound route and checks the smarthost got each address
// back, in the envelope's place (the To field) and with no token left.
func checkOutboundResolves(t *testing.T, sv served, smart *memSink, tokens map[string]string) {
	t.Helper()
	c, err := gosmtp.DialStartTLS(fmt.Sprintf("127.0.0.1:%d", sv.outPort), selfSignedTrust(t, sv.dataDir, "relay.company.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	toks := make([]string, 0, len(tokens))
	for tok := range tokens {
		toks = append(toks, tok)
	}
	sort.Strings(toks)
	msg := fmt.Sprintf("From: support@crm.example\r\nTo: %s\r\nSubject: reply\r\nMessage-ID: <reply-%d@crm.example>\r\n\r\nthanks\r\n",
		strings.Join(toks, ",\r\n "), time.Now().UnixNano())
	if err := c.SendMail("support@crm.example", toks, strings.NewReader(msg)); err != nil {
		t.Fatalf("outbound reply to %d tokens: %s", len(toks), replyOf(err))
	}
	c.Quit()
	msgs := smart.messages()
	got := msgs[len(msgs)-1]
	for tok, addr := range tokens {
		if !strings.Contains(got, addr) || strings.Contains(got, tok) {
			t.Errorf("token %s did not come back as %s:\n%s", tok, addr, got)
			return
		}
	}
	t.Logf("all %d tokens resolve through the outbound route", len(tokens))
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
