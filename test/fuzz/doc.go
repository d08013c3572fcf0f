// Package fuzz runs the module's fuzz targets for a bounded time from go
// test, through test/fuzz.sh, so that `go test ./...` (and CI) fuzzes every
// target a little on every run. Long runs: test/fuzz.sh 2m.
package fuzz
