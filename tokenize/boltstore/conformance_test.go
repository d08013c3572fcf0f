package boltstore_test

import (
	"path/filepath"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "map.db")
		return func() tokenize.Store {
			s, err := boltstore.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
