package etcdstore_test

import (
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// TestConformance runs the store suite against a real 3-member cluster,
// each subtest under a prefix of its own. The suite is about behaviour,
// not timing: each etcd call and the freshness of the caches get 5 s, so
// a loaded machine (CI shared with other work saw 0.8-1.1 s per etcd
// call) does not read as a lost quorum; the production bounds have tests
// of their own (fresh_test.go, faults_test.go).
func TestConformance(t *testing.T) {
	c := etcdtest.Start(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		prefix := freshPrefix()
		return func() tokenize.Store {
			return openStoreOpts(t, c, etcdstore.Options{Prefix: prefix, NodeID: "n1",
				RequestTimeout: 5 * time.Second, Freshness: 5 * time.Second})
		}
	})
}
