package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// fullDisk makes writes under a data directory fail with "no space left"
// and lets them succeed again.
type fullDisk interface {
	fill(t *testing.T)
	free(t *testing.T)
}

// tmpfsDisk is a small tmpfs mounted on the data directory, filled by a
// filler file: the real ENOSPC a full disk gives.
type tmpfsDisk struct{ dir, filler string }

// mountTmpfs mounts a tmpfs of size bytes on dir (unmounted at cleanup).
func mountTmpfs(t *testing.T, dir string, size int) (*tmpfsDisk, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tokenproxy-diskfull", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV,
		fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("umount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return &tmpfsDisk{dir: dir, filler: filepath.Join(dir, "filler")}, nil
}

func (d *tmpfsDisk) fill(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(d.filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", d.dir, err)
			}
			break
		}
	}
	var st syscall.Statfs_t
	syscall.Statfs(d.dir, &st)
	t.Logf("data directory full: %d bytes free", st.Bavail*uint64(st.Bsize))
}

func (d *tmpfsDisk) free(t *testing.T) {
	t.Helper()
	if err := os.Remove(d.filler); err != nil {
		t.Fatal(err)
	}
}

// fsizeDisk is the fallback where mounting is not permitted: the running
// proxy's RLIMIT_FSIZE is lowered to the database file's size with
// prlimit(2), so growing the file fails (EFBIG, the Go runtime ignores
// SIGXFSZ) as it would on a full disk.
type fsizeDisk struct {
	pid  int
	path string
}

func (d *fsizeDisk) setLimit(t *testing.T, limit uint64) {
	t.Helper()
	lim := syscall.Rlimit{Cur: limit, Max: ^uint64(0)}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(d.pid), uintptr(syscall.RLIMIT_FSIZE),
		uintptr(unsafe.Pointer(&lim)), 0, 0, 0); e != 0 {
		t.Fatalf("prlimit(%d, RLIMIT_FSIZE): %v", d.pid, e)
	}
}

func (d *fsizeDisk) fill(t *testing.T) {
	fi, err := os.Stat(d.path)
	if err != nil {
		t.Fatal(err)
	}
	d.setLimit(t, uint64(fi.Size()))
	t.Logf("file size limit of the proxy set to %d bytes", fi.Size())
}

func (d *fsizeDisk) free(t *testing.T) { d.setLimit(t, ^uint64(0)) }

// TestDiskFullDataDir fills the file system under data_dir while `proxy
// serve` runs. A new customer then cannot get a token: the inbound route
// answers 451 4.3.0 and relays nothing (DESIGN.md invariant 3: a token is
// durable before the message carrying it is relayed), while customers
// whose tokens exist still pass. Once space is freed, new customers pass
// again without a restart; after a clean stop the file passes bbolt's
// consistency check and every token issued resolves to its address. No
// customer address reaches the log.
func TestDiskFullDataDir(t *testing.T) {
	sink := startMemSink(t)
	sv := writeServeConfig(t, sink.addr, sink.addr, "debug", "client_networks: [127.0.0.0/8]")
	var disk fullDisk
	tmpfs, err := mountTmpfs(t, sv.dataDir, 4<<20)
	if err != nil {
		t.Logf("cannot mount a tmpfs on the data directory (%v): falling back to a file size limit (prlimit RLIMIT_FSIZE) on the proxy", err)
	} else {
		disk = tmpfs
	}
	p := startServe(t, sv.config, sv.admin)
	if disk == nil {
		disk = &fsizeDisk{pid: p.cmd.Process.Pid, path: filepath.Join(sv.dataDir, "tokenproxy.db")}
	}

	const domain = "customer-diskfull.example"
	sent := map[string]string{} // Message-ID → sender, for every 250
	n := 0
	send := func(from string) (reply, id string) {
		n++
		id = fmt.Sprintf("<diskfull-%d@mail.example.com>", n)
		reply = sendCustomer(sv.inPort, from, id)
		if reply == "250" {
			sent[id] = from
		}
		return reply, id
	}
	var known []string
	for i := range 20 {
		from := fmt.Sprintf("known%d@%s", i, domain)
		if r, _ := send(from); r != "250" {
			t.Fatalf("before the disk filled, %s got %s\n%s", from, r, p.log.String())
		}
		known = append(known, from)
	}

	disk.fill(t)
	// bbolt reuses the file's free pages before it grows the file, so a
	// few new tokens may still fit, and a page freed by the last
	// successful commit is reused by the next: a refusal may be followed
	// by a success. Each success is durable (checked below). Once two
	// commits in a row have failed no page is left to reuse, and every
	// new sender is refused.
	refused := map[string]bool{} // Message-IDs answered 451
	var accepted, inARow int
	for i := 0; inARow < 3; i++ {
		if i == 500 {
			t.Fatalf("500 new senders on a full disk: %d accepted, never 3 refusals in a row", accepted)
		}
		r, id := send(fmt.Sprintf("new%d@%s", i, domain))
		switch {
		case r == "250":
			accepted++
			inARow = 0
		case strings.HasPrefix(r, "451 4.3.0 "):
			refused[id] = true
			inARow++
		default:
			t.Fatalf("new sender on a full disk got %q, want 250 or 451 4.3.0\n%s", r, p.log.String())
		}
	}
	t.Logf("full disk: %d new senders still fitted in free pages, then 3 refusals in a row", accepted)
	for i := range 5 {
		r, id := send(fmt.Sprintf("full%d@%s", i, domain))
		switch {
		case strings.HasPrefix(r, "451 4.3.0 Temporary local problem, try again later (session "):
			refused[id] = true
		case r == "250" && tmpfs == nil:
			// The file size limit fails only the truncate that grows the
			// file; after bbolt's rollback reloads the freelist, a commit
			// can fit again. A real full disk (tmpfs) fails every write.
			t.Logf("new sender %d after 3 refusals in a row accepted under the file size limit", i)
		default:
			t.Errorf("new sender %d after 3 refusals in a row got %q, want 451 4.3.0", i, r)
		}
	}
	for _, from := range known[:5] {
		if r, _ := send(from); r != "250" {
			t.Errorf("known sender %s on a full disk got %q, want 250", from, r)
		}
	}

	disk.free(t)
	for i := range 5 {
		if r, _ := send(fmt.Sprintf("after%d@%s", i, domain)); r != "250" {
			t.Errorf("new sender %d after space was freed got %q, want 250 (no restart)\n%s", i, r, p.log.String())
		}
	}
	stopServe(t, p)

	// What the sink holds: every 250, and nothing refused.
	byID := sinkByID(sink.messages())
	issued := map[string]string{} // token → sender
	for id, from := range sent {
		m, ok := byID[id]
		if !ok {
			t.Errorf("%s (from %s) was accepted but is not at the sink", id, from)
			continue
		}
		tok := tokenRE.FindString(m)
		if tok == "" || strings.Contains(m, domain) {
			t.Errorf("message %s at the sink has no token or names the customer:\n%s", id, m)
			continue
		}
		issued[tok] = from
	}
	for id := range refused {
		if _, ok := byID[id]; ok {
			t.Errorf("%s was refused with 451 but reached the sink", id)
		}
	}

	checkBolt(t, filepath.Join(sv.dataDir, "tokenproxy.db"))
	for tok, from := range issued {
		if got := resolveOffline(t, sv.config, tok); got != from {
			t.Errorf("token %s resolves to %q, want %q", tok, got, from)
		}
	}
	t.Logf("%d tokens issued around the full disk all resolve; %d messages refused, none relayed", len(issued), len(refused))
	logs := p.log.String()
	if strings.Contains(logs, domain) {
		t.Errorf("the proxy log names a customer address:\n%s", logs)
	}
	if !strings.Contains(logs, "no space left on device") && !strings.Contains(logs, "file too large") {
		t.Errorf("the log does not say why tokens failed:\n%s", logs)
	}
}

// checkBolt runs bbolt's consistency check on a closed database file.
func checkBolt(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("bbolt open %s: %v", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatalf("bbolt consistency check of %s: %v", path, err)
	}
}
