package console

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/policy"
)

// TestConsoleClusterMembers: on etcd the overview lists the members with
// their state and the leader, and says when the cluster is not healthy
// or cannot be read, without the cause (it goes to the log).
func TestConsoleClusterMembers(t *testing.T) {
	h := newHarness(t)
	healthy := Cluster{Node: "node-a", RaftTerm: 3, Revision: 42, Healthy: true, Nodes: []string{"node-a", "node-b"},
		Members: []ClusterMember{
			{Name: "m0", Endpoint: "http://127.0.0.1:2379", Reachable: true, Leader: true, Revision: 42},
			{Name: "m1", Endpoint: "http://127.0.0.1:2479", Reachable: true, Revision: 42},
			{Name: "m2", Endpoint: "http://127.0.0.1:2579"},
		}}
	for _, c := range []struct {
		name string
		st   Cluster
		err  error
		want []string
		not  []string
	}{
		{"healthy", healthy, nil,
			[]string{"<strong class=\"node\">node-a</strong>", "<strong>healthy</strong>", "revision 42", "3 etcd members",
				"<td>m0</td><td class=\"wrap\">http://127.0.0.1:2379</td><td>leader</td>", "<td>m1</td>", "follower",
				"<td>m2</td><td class=\"wrap\">http://127.0.0.1:2579</td><td><strong>unreachable</strong>", "node-a, node-b"},
			[]string{"NOT HEALTHY", "could not be read"}},
		{"no quorum", Cluster{Node: "node-a", Members: healthy.Members[2:]}, nil,
			[]string{"NOT HEALTHY", "1 etcd member<", "Proxy nodes registered: none"}, nil},
		{"unreadable", Cluster{}, errors.New("etcd 10.0.0.9:2379: context deadline exceeded"), []string{"could not be read", "<strong>fresh</strong>"},
			[]string{"10.0.0.9", "etcd members"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			con, err := New(Options{Service: h.svc, Fresh: func() error { return nil },
				Cluster: func(ctx context.Context) (Cluster, error) {
					if _, ok := ctx.Deadline(); !ok {
						t.Error("the cluster read has no deadline")
					}
					return c.st, c.err
				},
				Config: policy.Console{IdleTimeout: time.Minute}})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			con.Register(mux)
			srv := httptest.NewTLSServer(mux)
			defer srv.Close()
			defer con.Close()
			jar, _ := cookiejar.New(nil)
			cl := *srv.Client()
			cl.Jar = jar
			cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			b := &browser{h: &harness{t: t, srv: srv, tokens: h.tokens}, c: &cl}
			b.signIn("otto")
			p := b.do("GET", "/console/overview", nil)
			for _, w := range c.want {
				if !strings.Contains(p.body, w) {
					t.Errorf("overview lacks %q", w)
				}
			}
			for _, w := range c.not {
				if strings.Contains(p.body, w) {
					t.Errorf("overview shows %q", w)
				}
			}
			if t.Failed() {
				t.Logf("%s", p.body)
			}
		})
	}
}
