package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
)

// TestClusterSurvivesLeaderKill: a write committed before the leader is
// killed is read after a new leader is elected, writes go on, and the
// killed member rejoins with the data.
func TestClusterSurvivesLeaderKill(t *testing.T) {
	c := etcdtest.Start(t)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "before"); err != nil {
		t.Fatal(err)
	}
	leader := c.Leader(t, 5*time.Second)
	c.Members[leader].Kill()
	next := c.Leader(t, 10*time.Second)
	if next == leader {
		t.Fatalf("killed member %d still leads", leader)
	}
	if _, err := cli.Put(ctx, "k2", "after"); err != nil {
		t.Fatal(err)
	}
	c.Restart(t, leader)
	st, err := cli.Status(ctx, c.Members[leader].ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "before" {
		t.Fatalf("Get(k) = %v, %v", resp, err)
	}
	t.Logf("restarted member %d at revision %d", leader, st.Header.Revision)
}
