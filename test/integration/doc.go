// Package integration holds end-to-end tests of tokenproxy against real
// components: a Vault dev server, bbolt files, and the proxy binary.
package integration
