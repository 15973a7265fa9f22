//go:build !unix

package argon2

// allocBlocks allocates n blocks on the Go heap.
func allocBlocks(n int) ([]block, func()) { return make([]block, n), nil }
