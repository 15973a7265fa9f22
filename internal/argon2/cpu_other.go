//go:build !linux

package argon2

// threadCPU is 0: no per-thread CPU clock is read here.
func threadCPU() int64 { return 0 }
