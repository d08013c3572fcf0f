package etcdstore_test

import (
	"testing"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// TestConformance runs the store suite against a real 3-member cluster,
// each subtest under a prefix of its own.
func TestConformance(t *testing.T) {
	c := etcdtest.Start(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		prefix := freshPrefix()
		return func() tokenize.Store { return openStore(t, c, prefix, "n1") }
	})
}
