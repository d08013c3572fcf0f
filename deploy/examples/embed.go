// Package examples embeds the example configurations, so the binary runs
// on the quickstart configuration with no file at hand.
package examples

import _ "embed"

// Quickstart is deploy/examples/quickstart.yaml.
//
//go:embed quickstart.yaml
var Quickstart []byte
