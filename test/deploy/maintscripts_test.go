package deploy

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeRoot is a throwaway system root for the maintainer scripts: the
// package's /etc and /var as dpkg unpacks them, a minimal /etc (passwd,
// group, shadow, PAM, login.defs) and the host's /usr bound read-only in a
// private mount namespace, entered with chroot. The scripts run with the
// real adduser/useradd, chown and dpkg-statoverride on the fake root's
// files; only systemctl is a stub that records its arguments. Nothing on
// the host changes, and the bind mounts vanish with the namespace.
type fakeRoot struct {
	dir  string
	hide []string // programs under /usr hidden from the scripts (bound over with /dev/null)
}

func newFakeRoot(t *testing.T, deb string) *fakeRoot {
	t.Helper()
	needRoot(t, "the maintainer scripts run in a chroot with a private mount namespace")
	dir, err := os.MkdirTemp("", "tokenproxy-fakeroot-")
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRoot{dir: dir}
	t.Cleanup(func() {
		// Never delete through a mount that leaked into the host's namespace.
		if m := r.mounts(); len(m) > 0 {
			t.Errorf("mounts left under %s, not removing it: %v", dir, m)
			return
		}
		os.RemoveAll(dir)
	})

	dpkgDeb := tool(t, "dpkg-deb")
	pkg := filepath.Join(dir, ".pkg")
	mustRun(t, "", nil, dpkgDeb, "-x", deb, pkg)
	mustRun(t, "", nil, dpkgDeb, "-e", deb, filepath.Join(dir, "control"))
	for _, d := range []string{"usr", "etc", "var/lib/dpkg", "var/log", "run", "tmp", "dev", "stubs", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The package's files as dpkg unpacks them: owned by root, since the
	// user does not exist yet.
	mustRun(t, "", nil, "cp", "-a", pkg+"/etc/tokenproxy", dir+"/etc/")
	mustRun(t, "", nil, "cp", "-a", pkg+"/var/lib/tokenproxy", dir+"/var/lib/")
	mustRun(t, "", nil, "cp", "-a", pkg+"/var/log/tokenproxy", dir+"/var/log/")
	os.RemoveAll(pkg)

	// Merged /usr (Debian 12): /bin, /sbin, /lib, /lib64 point into /usr.
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		target, err := os.Readlink("/" + l)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			t.Fatalf("/%s is not a symbolic link into /usr (a merged-/usr system is needed): %v", l, err)
		}
		if err := os.Symlink(target, filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}

	r.write(t, "etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	r.write(t, "etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n")
	r.write(t, "etc/shadow", 0o640, "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n")
	r.write(t, "etc/gshadow", 0o640, "root:*::\nnogroup:*::\n")
	r.write(t, "etc/nsswitch.conf", 0o644, "passwd: files\ngroup: files\nshadow: files\ngshadow: files\n")
	r.write(t, "var/lib/dpkg/statoverride", 0o644, "")
	r.write(t, "dev/null", 0o666, "")
	r.write(t, "stubs/systemctl", 0o755, "#!/bin/sh\necho \"$*\" >> /systemctl.log\n")
	for _, f := range []string{"/etc/login.defs", "/etc/adduser.conf", "/etc/pam.d", "/etc/security"} {
		if _, err := os.Stat(f); err == nil {
			mustRun(t, "", nil, "cp", "-a", f, dir+"/etc/")
		}
	}
	return r
}

func (r *fakeRoot) write(t *testing.T, rel string, mode os.FileMode, content string) {
	t.Helper()
	p := filepath.Join(r.dir, rel)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// mounts lists mount points under the root in the test's own namespace.
func (r *fakeRoot) mounts() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var found []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], r.dir) {
			found = append(found, f[4])
		}
	}
	return found
}

// script runs a maintainer script (postinst, prerm, postrm) with arguments
// inside the root and returns its output and error.
func (r *fakeRoot) script(t *testing.T, name string, args ...string) result {
	t.Helper()
	mounts := []string{
		// Read-only: a script that writes to /usr fails instead of
		// changing the host.
		`mount --bind /usr "$R/usr"`, `mount -o remount,ro,bind "$R/usr"`,
		`mount --bind /dev/null "$R/dev/null"`,
	}
	for _, h := range r.hide {
		mounts = append(mounts, fmt.Sprintf(`mount --bind /dev/null "$R%s"`, h))
	}
	inner := "/control/" + name
	for _, a := range args {
		inner += " " + strconv.Quote(a)
	}
	sh := "set -e\n" + strings.Join(mounts, "\n") + "\n" +
		`exec chroot "$R" /usr/bin/env -i PATH=/stubs:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C /bin/sh -c "$1"`
	res := run("", []string{"R=" + r.dir}, "unshare", "--mount", "--propagation", "private", "sh", "-c", sh, "sh", inner)
	if m := r.mounts(); len(m) > 0 {
		t.Fatalf("bind mounts leaked into the host's namespace: %v", m)
	}
	return res
}

func (r *fakeRoot) mustScript(t *testing.T, name string, args ...string) string {
	t.Helper()
	res := r.script(t, name, args...)
	if res.err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), res.err, res.out)
	}
	return res.out
}

// account is a passwd or group line of the fake root.
func (r *fakeRoot) account(t *testing.T, file, name string) (fields []string, n int) {
	t.Helper()
	f, err := os.Open(filepath.Join(r.dir, "etc", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p := strings.Split(sc.Text(), ":"); p[0] == name {
			fields = p
			n++
		}
	}
	return fields, n
}

// systemctlCalls returns and clears what the systemctl stub recorded.
func (r *fakeRoot) systemctlCalls(t *testing.T) string {
	t.Helper()
	p := filepath.Join(r.dir, "systemctl.log")
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	os.Remove(p)
	return string(b)
}

// owner checks a path's mode and numeric owner.
func (r *fakeRoot) owner(t *testing.T, rel string, mode fs.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(r.dir, rel))
	if err != nil {
		t.Errorf("%s: %v", rel, err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("/%s: %v %d:%d, want %v %d:%d", rel, fi.Mode().Perm(), st.Uid, st.Gid, mode, uid, gid)
	}
}

// serviceAccount checks the tokenproxy user and group and returns their ids.
func (r *fakeRoot) serviceAccount(t *testing.T) (uid, gid int) {
	t.Helper()
	pw, n := r.account(t, "passwd", "tokenproxy")
	if n != 1 {
		t.Fatalf("%d tokenproxy lines in /etc/passwd, want 1", n)
	}
	gr, n := r.account(t, "group", "tokenproxy")
	if n != 1 {
		t.Fatalf("%d tokenproxy lines in /etc/group, want 1", n)
	}
	uid, _ = strconv.Atoi(pw[2])
	gid, _ = strconv.Atoi(gr[2])
	if uid == 0 || uid >= 1000 || pw[3] != gr[2] {
		t.Errorf("tokenproxy user %v: want a system uid (1-999) with primary group tokenproxy (%s)", pw, gr[2])
	}
	if pw[5] != "/var/lib/tokenproxy" || pw[6] != "/usr/sbin/nologin" {
		t.Errorf("tokenproxy user %v: want home /var/lib/tokenproxy and shell /usr/sbin/nologin", pw)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "home/tokenproxy")); err == nil {
		t.Error("a home directory was created")
	}
	return uid, gid
}

// TestMaintainerScripts runs the package's postinst, prerm and postrm
// through an install, an upgrade and a purge in a fake root.
func TestMaintainerScripts(t *testing.T) {
	deb, _ := builtDeb(t)
	r := newFakeRoot(t, deb)
	// A credential the administrator left world-readable.
	r.write(t, "etc/tokenproxy/credentials/secret_id", 0o644, "s.example\n")

	// First install: no systemd running in the root, so no systemctl.
	r.mustScript(t, "postinst", "configure")
	uid, gid := r.serviceAccount(t)
	r.owner(t, "etc/tokenproxy", 0o750, 0, gid)
	r.owner(t, "etc/tokenproxy/tokenproxy.yaml", 0o640, 0, gid)
	r.owner(t, "etc/tokenproxy/credentials", 0o700, 0, 0)
	r.owner(t, "etc/tokenproxy/credentials/secret_id", 0o600, 0, 0)
	r.owner(t, "var/lib/tokenproxy", 0o700, uid, gid)
	r.owner(t, "var/log/tokenproxy", 0o700, uid, gid)
	if c := r.systemctlCalls(t); c != "" {
		t.Errorf("systemctl called without systemd running: %q", c)
	}

	// Upgrade with systemd running: same account, reload and restart
	// only if running. An administrator's statoverride is kept.
	if err := os.MkdirAll(filepath.Join(r.dir, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(r.dir, "var/log/tokenproxy"), 0o750); err != nil {
		t.Fatal(err)
	}
	r.write(t, "var/lib/dpkg/statoverride", 0o644, "tokenproxy tokenproxy 0750 /var/log/tokenproxy\n")
	r.mustScript(t, "postinst", "configure", "0.0.0~old")
	if u2, g2 := r.serviceAccount(t); u2 != uid || g2 != gid {
		t.Errorf("upgrade changed the account: %d:%d, was %d:%d", u2, g2, uid, gid)
	}
	r.owner(t, "var/log/tokenproxy", 0o750, uid, gid)
	if c, want := r.systemctlCalls(t), "daemon-reload\ntry-restart tokenproxy.service\n"; c != want {
		t.Errorf("postinst configure OLD: systemctl calls %q, want %q", c, want)
	}

	r.mustScript(t, "prerm", "upgrade", debVersion)
	if c := r.systemctlCalls(t); c != "" {
		t.Errorf("prerm upgrade: systemctl %q; an upgrade must not stop the service", c)
	}
	r.mustScript(t, "prerm", "remove")
	if c, want := r.systemctlCalls(t), "stop tokenproxy.service\ndisable tokenproxy.service\n"; c != want {
		t.Errorf("prerm remove: systemctl calls %q, want %q", c, want)
	}
	r.mustScript(t, "postrm", "remove")
	if c, want := r.systemctlCalls(t), "daemon-reload\n"; c != want {
		t.Errorf("postrm remove: systemctl calls %q, want %q", c, want)
	}

	// Purge: logs and credentials go, the token map and the account stay.
	out := r.mustScript(t, "postrm", "purge")
	for _, gone := range []string{"var/log/tokenproxy", "etc/tokenproxy/credentials"} {
		if _, err := os.Stat(filepath.Join(r.dir, gone)); !os.IsNotExist(err) {
			t.Errorf("purge left /%s (%v)", gone, err)
		}
	}
	r.owner(t, "var/lib/tokenproxy", 0o700, uid, gid)
	r.serviceAccount(t)
	if !strings.Contains(out, "kept /var/lib/tokenproxy") {
		t.Errorf("purge does not say the token map was kept: %q", out)
	}

	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if res := r.script(t, s, "bogus-action"); res.err == nil {
			t.Errorf("%s bogus-action succeeded; unknown actions must fail", s)
		}
	}
}

// TestPostinstWithoutAdduser runs postinst where adduser is not installed
// (it is Priority: important, not required): useradd from passwd does it.
func TestPostinstWithoutAdduser(t *testing.T) {
	deb, _ := builtDeb(t)
	r := newFakeRoot(t, deb)
	r.hide = []string{"/usr/sbin/adduser", "/usr/sbin/addgroup"}
	r.mustScript(t, "postinst", "configure")
	uid, gid := r.serviceAccount(t)
	// adduser would have written the GECOS field through chfn ("...,,,").
	if pw, _ := r.account(t, "passwd", "tokenproxy"); pw[4] != "tokenproxy SMTP proxy" {
		t.Errorf("GECOS %q: useradd was not the one that ran", pw[4])
	}
	r.owner(t, "var/lib/tokenproxy", 0o700, uid, gid)
	r.owner(t, "etc/tokenproxy/tokenproxy.yaml", 0o640, 0, gid)
}
