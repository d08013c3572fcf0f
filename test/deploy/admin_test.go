package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminWrapper runs deploy/systemd/tokenproxy-admin with stand-ins for
// systemctl and systemd-run (no systemd runs here): the stand-in records
// the transient unit's properties and runs the command as systemd would,
// with $CREDENTIALS_DIRECTORY set. The real binary's check-config then shows
// that the configuration's credential paths were rewritten to that
// directory's tokenproxy_<file> credentials.
func TestAdminWrapper(t *testing.T) {
	deb, binary := builtDeb(t)
	data := t.TempDir()
	mustRun(t, "", nil, tool(t, "dpkg-deb"), "-x", deb, data)
	dir := t.TempDir()
	stubs, creds, tmp := filepath.Join(dir, "stubs"), filepath.Join(dir, "creds"), filepath.Join(dir, "tmp")
	for _, d := range []string{stubs, creds, tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(stubs, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("systemd-run", `#!/bin/sh
printf '%s\n' "$@" > "$STUB_LOG"
while [ $# -gt 0 ] && [ "$1" != /bin/sh ]; do shift; done
exec env CREDENTIALS_DIRECTORY="$STUB_CREDS" "$@"
`)
	write("systemctl", "#!/bin/sh\nexit \"${STUB_ACTIVE:-3}\"\n")
	log := filepath.Join(dir, "systemd-run.log")
	env := []string{
		"PATH=" + stubs + ":" + os.Getenv("PATH"),
		"STUB_LOG=" + log, "STUB_CREDS=" + creds, "TMPDIR=" + tmp,
		"TOKENPROXY_CONFIG=" + filepath.Join(data, "etc/tokenproxy/tokenproxy.yaml"),
		"TOKENPROXY_BIN=" + binary,
	}
	admin := filepath.Join(data, "usr/sbin/tokenproxy-admin")

	out := mustRun(t, dir, env, admin, "check-config")
	for _, want := range []string{
		"role_id_file: " + creds + "/tokenproxy_role_id",
		"secret_id_file: " + creds + "/tokenproxy_secret_id",
		"cert_file: " + creds + "/tokenproxy_inbound.crt",
		"key_file: " + creds + "/tokenproxy_outbound.key",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check-config through tokenproxy-admin lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "/run/credentials/tokenproxy.service/") {
		t.Errorf("a credential path was not rewritten:\n%s", out)
	}
	props, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"User=tokenproxy", "LoadCredential=tokenproxy:/etc/tokenproxy/credentials",
		"ReadWritePaths=/var/lib/tokenproxy", "PrivateTmp=yes", "--wait", "--pipe"} {
		if !strings.Contains(string(props), want+"\n") {
			t.Errorf("systemd-run lacks %s:\n%s", want, props)
		}
	}

	// The map is locked while the service runs: refuse rather than wait.
	r := run(dir, append(env, "STUB_ACTIVE=0"), admin, "keys", "status")
	if r.err == nil || !strings.Contains(r.out, "stop it first") {
		t.Errorf("keys status with the service running: %v\n%s", r.err, r.out)
	}
}
