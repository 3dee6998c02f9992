// Package agreement holds tests that feed the same objects through several of nodewright's
// packages and check that they agree on a fact each of them computes for itself: the labels
// a planned node carries in the plan, in its NodeClaim, on its Node and in its kubelet's
// flags. The tests use only the packages' exported functions and need no control plane.
package agreement
