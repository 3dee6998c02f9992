// Package layers holds the test of the import rules of docs/design.md: which of nodewright's
// packages may import which. It has no code.
package layers
