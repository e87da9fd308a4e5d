//go:build !linux

package store

// lockHolder cannot identify lock holders outside Linux; the error then
// says "another process".
func lockHolder(string) int { return 0 }
