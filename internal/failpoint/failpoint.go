//go:build !failpoints

// Package failpoint kills the process at named points of its work, for the
// crash tests: a binary built with -tags failpoints reads
// SCOPEWATCH_FAILPOINTS ("commit=3,evict=2": the third time the point
// named commit is reached, and the second time evict is) and sends itself
// SIGKILL there. In every other build Hit does nothing and costs nothing.
package failpoint

// Hit marks that the point name is reached.
func Hit(name string) {}
