package deploy

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
)

// The example three-appliance etcd cluster in deploy/etcd: its
// certificate script, member configurations, RBAC bootstrap, systemd
// units, and the store section of a node's configuration.

// makeCerts runs deploy/etcd/make-certs.sh into a new directory.
func makeCerts(t *testing.T) string {
	t.Helper()
	tool(t, "openssl")
	dir := filepath.Join(t.TempDir(), "pki")
	mustRun(t, "", nil, "sh", repoFile(t, "deploy/etcd/make-certs.sh"), dir)
	return dir
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// TestEtcdMakeCerts checks make-certs.sh's outputs with crypto/x509: each
// certificate chains to the CA for its use (member: server for its IP and
// 127.0.0.1; peer: server and client; node and root: client, CN = etcd
// user), keys are 0600, and a second run reuses the CA.
func TestEtcdMakeCerts(t *testing.T) {
	dir := makeCerts(t)
	ca := readCert(t, filepath.Join(dir, "ca.crt"))
	if !ca.IsCA {
		t.Fatal("ca.crt is not a CA")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	verify := func(name, host string, usage x509.ExtKeyUsage) *x509.Certificate {
		c := readCert(t, filepath.Join(dir, name+".crt"))
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("%s for %s (%v): %v", name, host, usage, err)
		}
		fi, err := os.Stat(filepath.Join(dir, name+".key"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s.key: %v, mode %v; want 0600", name, err, fi.Mode().Perm())
		}
		return c
	}
	for i := 1; i <= 3; i++ {
		m := "etcd-" + strconv.Itoa(i)
		ip := "10.0.0.1" + strconv.Itoa(i)
		verify(m, ip, x509.ExtKeyUsageServerAuth)
		verify(m, "127.0.0.1", x509.ExtKeyUsageServerAuth)
		verify(m+"-peer", ip, x509.ExtKeyUsageServerAuth)
		verify(m+"-peer", ip, x509.ExtKeyUsageClientAuth)
		if c := readCert(t, filepath.Join(dir, m+"-peer.crt")); c.VerifyHostname("10.0.0.99") == nil {
			t.Errorf("%s-peer is valid for another appliance's address", m)
		}
	}
	for _, user := range []string{"tp-1", "tp-2", "tp-3", "root"} {
		if c := verify(user, "", x509.ExtKeyUsageClientAuth); c.Subject.CommonName != user {
			t.Errorf("%s.crt: CN %q, want %q (the etcd user)", user, c.Subject.CommonName, user)
		}
	}
	mustRun(t, "", []string{"NODES=tp-4"}, "sh", repoFile(t, "deploy/etcd/make-certs.sh"), dir)
	if again := readCert(t, filepath.Join(dir, "ca.crt")); !again.Equal(ca) {
		t.Error("a second run replaced the CA")
	}
	verify("tp-4", "", x509.ExtKeyUsageClientAuth)
}

// TestEtcdMemberConfigs loads each deploy/etcd/etcd-N.conf.yml with etcd
// 3.7's own loader and validation (test/etcddev -check-config), with the
// certificates make-certs.sh wrote, and checks the settings the cluster
// depends on as etcd read them (its loader ignores unknown keys).
func TestEtcdMemberConfigs(t *testing.T) {
	pki := makeCerts(t)
	bin := etcdtest.Binary(t)
	for i := 1; i <= 3; i++ {
		name := "etcd-" + strconv.Itoa(i) + ".conf.yml"
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(repoFile(t, "deploy/etcd/"+name))
			if err != nil {
				t.Fatal(err)
			}
			conf := strings.ReplaceAll(string(b), "/etc/etcd/pki", pki)
			// No journal in a test container; the rest as written.
			conf = strings.ReplaceAll(conf, "[systemd/journal]", "[stderr]")
			path := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			out := mustRun(t, "", nil, bin, "-check-config", path)
			for _, want := range []string{"CONFIG_OK name=etcd-" + strconv.Itoa(i),
				"client-cert-auth=true", "client-tls=true", "peer-client-cert-auth=true", "peer-tls=true",
				"auto-compaction=periodic/1h", "quota-backend-bytes=8589934592", "max-txn-ops=128",
				"snapshot-count=10000", "max-wals=5"} {
				if !strings.Contains(out, want) {
					t.Errorf("%s as etcd reads it lacks %q:\n%s", name, want, out)
				}
			}
			for _, url := range regexp.MustCompile(`(?m)^[a-z-]*urls?: (.*)$`).FindAllStringSubmatch(conf, -1) {
				if strings.Contains(url[1], "http://") {
					t.Errorf("%s: plain http in %q", name, url[0])
				}
			}
		})
	}
}

// TestEtcdBootstrapRBAC runs deploy/etcd/bootstrap-rbac.sh with etcdctl of
// the members' release against a real TLS cluster, twice (idempotent; the
// second run adds a node), and checks with clientv3 what each user may do.
func TestEtcdBootstrapRBAC(t *testing.T) {
	ca := etcdtest.NewCA(t, "cluster-ca")
	cl := etcdtest.StartWith(t, etcdtest.Options{TLS: ca})
	rootCert, rootKey := ca.Issue(t, etcdtest.RootCN)
	env := []string{"ETCDCTL=" + etcdtest.Etcdctl(t), "ETCD_ENDPOINTS=" + strings.Join(cl.Endpoints(), ","),
		"ETCD_CACERT=" + ca.CertFile, "ETCD_CERT=" + rootCert, "ETCD_KEY=" + rootKey, "PREFIX=tp/"}
	script := repoFile(t, "deploy/etcd/bootstrap-rbac.sh")
	t.Log(mustRun(t, "", env, "sh", script, "tp-1", "tp-2"))
	t.Log(mustRun(t, "", env, "sh", script, "tp-1", "tp-2", "tp-3"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	as := func(cn string) *clientv3.Client {
		cli, err := clientv3.New(clientv3.Config{Endpoints: cl.Endpoints(), TLS: ca.ClientTLS(t, cn),
			DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	for _, node := range []string{"tp-1", "tp-3"} {
		cli := as(node)
		if _, err := cli.Put(ctx, "tp/acme/t/x", node); err != nil {
			t.Errorf("%s writes in its prefix: %v", node, err)
		}
		for what, op := range map[string]func() error{
			"read outside":  func() error { _, err := cli.Get(ctx, "tq/x"); return err },
			"write outside": func() error { _, err := cli.Put(ctx, "other", "v"); return err },
			"compact":       func() error { _, err := cli.Compact(ctx, 1); return err },
			"add a user":    func() error { _, err := cli.UserAdd(ctx, "mallory", "pw"); return err },
		} {
			if err := op(); !errors.Is(err, rpctypes.ErrPermissionDenied) {
				t.Errorf("%s: %s: %v, want permission denied", node, what, err)
			}
		}
	}
	if _, err := as("stranger").Get(ctx, "tp/acme/t/x"); err == nil {
		t.Error("a certificate whose CN is no user read the map")
	}
	if _, err := cl.Client(t).Get(ctx, "anything"); err != nil {
		t.Errorf("root: %v", err)
	}
}

// TestEtcdUnits rates the etcd member's unit and the maintenance job's
// with systemd-analyze security (the bound of our other units) and
// verifies them with the timer in a throwaway root.
func TestEtcdUnits(t *testing.T) {
	sa := systemdAnalyze(t)
	for _, unit := range []string{"deploy/etcd/etcd.service", "deploy/etcd/etcd-maintain.service"} {
		r := run(repoRoot(t), nil, sa, "security", "--offline=true", "--no-pager", unit)
		m := exposureRE.FindStringSubmatch(r.out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s: no exposure level (%v):\n%s", unit, r.err, r.out)
		}
		level, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("%s: overall exposure level %.1f (at most %.1f accepted)", unit, level, maxExposure)
		if level > maxExposure {
			t.Errorf("%s: exposure %.1f > %.1f; the findings:\n%s", unit, level, maxExposure, findings(r.out))
		}
	}

	root := t.TempDir()
	mustRun(t, "", nil, "mkdir", "-p", root+"/lib/systemd", root+"/etc/systemd/system", root+"/usr/bin", root+"/usr/lib/tokenproxy")
	mustRun(t, "", nil, "cp", "-a", "/lib/systemd/system", root+"/lib/systemd/")
	for _, bin := range []string{"/usr/bin/etcd", "/usr/lib/tokenproxy/etcd-maintain.sh"} {
		if err := os.WriteFile(root+bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"etcd.service", "etcd-maintain.service", "etcd-maintain.timer"} {
		copyFile(t, repoFile(t, "deploy/etcd/"+u), root+"/etc/systemd/system/"+u)
	}
	for _, u := range []string{"etcd.service", "etcd-maintain.service", "etcd-maintain.timer"} {
		r := run("", nil, sa, "verify", "--root="+root, "--man=no", "/etc/systemd/system/"+u)
		if r.err != nil || strings.TrimSpace(r.out) != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, r.err, r.out)
		}
	}
	s := unitSettings(t, repoFile(t, "deploy/etcd/etcd.service"))
	for k, v := range map[string]string{"User": "etcd", "ExecStart": "/usr/bin/etcd --config-file /etc/etcd/etcd.conf.yml",
		"NoNewPrivileges": "yes", "PrivateUsers": "yes", "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/etcd"} {
		if got := s[k]; len(got) != 1 || got[0] != v {
			t.Errorf("etcd.service: %s = %q, want %q", k, got, v)
		}
	}
}

// TestClusterStoreConfigChecks appends deploy/etcd/tokenproxy-store.yaml
// to the packaged configuration and runs check-config: a production node
// of the example cluster loads.
func TestClusterStoreConfigChecks(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tokenproxy")
	mustRun(t, repoRoot(t), nil, "go", "build", "-o", bin, "./cmd/proxy")
	base, err := os.ReadFile(repoFile(t, "deploy/package/tokenproxy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := os.ReadFile(repoFile(t, "deploy/etcd/tokenproxy-store.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(base), "\nstore:") {
		t.Fatal("deploy/package/tokenproxy.yaml has a store: section already; the example would duplicate it")
	}
	conf := filepath.Join(t.TempDir(), "tokenproxy.yaml")
	if err := os.WriteFile(conf, append(append(base, '\n'), store...), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "", nil, bin, "--config", conf, "check-config")
	for _, want := range []string{"backend: etcd", "https://10.0.0.11:2379", "node_id: tp-1",
		"cert_file: /run/credentials/tokenproxy.service/etcd-client.crt"} {
		if !strings.Contains(out, want) {
			t.Errorf("check-config output lacks %q:\n%s", want, out)
		}
	}
	for _, l := range regexp.MustCompile(`https://([0-9.]+):`).FindAllStringSubmatch(string(store), -1) {
		if net.ParseIP(l[1]) == nil {
			t.Errorf("endpoint host %s is not an IP: the member certificates hold IP SANs", l[1])
		}
	}
}
