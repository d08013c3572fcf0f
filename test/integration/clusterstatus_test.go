package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
)

// TestClusterStatus runs `proxy cluster status` on a 3-member cluster:
// all members and the leader are listed, exit 0; with two members stopped
// (no quorum) it still lists them, says who is unreachable, and exits 1;
// on the bbolt backend it says the node is alone.
func TestClusterStatus(t *testing.T) {
	cl := etcdtest.Start(t)
	sv := migrateNode(t, cl.Endpoints())
	rewriteConfig(t, sv.config, "backend: bbolt", "backend: etcd")
	leader := cl.Members[cl.Leader(t, 10*time.Second)].Name

	r := runProxyBounded(t, time.Minute, sv.config, "cluster", "status")
	if r.code != 0 {
		t.Fatalf("cluster status: exit %d\n%s%s", r.code, r.stdout, r.log)
	}
	for _, want := range []string{"members:    3", "leader:     " + leader, "result:     healthy", "node:       node-a",
		"nodes:      none registered"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("cluster status lacks %q:\n%s", want, r.stdout)
		}
	}
	t.Logf("healthy:\n%s", r.stdout)

	cl.Members[1].Stop()
	cl.Members[2].Stop()
	start := time.Now()
	r = runProxyBounded(t, time.Minute, sv.config, "cluster", "status")
	if r.code != 1 || strings.Count(r.stdout, "unreachable") != 2 || !strings.Contains(r.stdout, "NOT HEALTHY") {
		t.Fatalf("cluster status without quorum: exit %d, want 1 with two members unreachable\n%s%s", r.code, r.stdout, r.log)
	}
	t.Logf("without quorum (%s):\n%s", time.Since(start).Round(time.Millisecond), r.stdout)

	rewriteConfig(t, sv.config, "backend: etcd", "backend: bbolt")
	r = runProxyBounded(t, time.Minute, sv.config, "cluster", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "single node (bbolt") {
		t.Fatalf("cluster status on bbolt: exit %d\n%s%s", r.code, r.stdout, r.log)
	}
}
