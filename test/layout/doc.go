// Package layout checks the shape of the module: which of our packages
// may import which (DESIGN.md, "Layout and import rules").
package layout
