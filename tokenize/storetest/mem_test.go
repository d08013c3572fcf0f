package storetest

import (
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

func TestMemConformance(t *testing.T) {
	Run(t, func(t *testing.T) Opener {
		s := NewMem()
		s.MaxBatchSize = 16 // batch work must split
		first := true
		return func() tokenize.Store {
			if first {
				first = false
				return s
			}
			s = s.Reopen()
			return s
		}
	})
}
