//go:build unix && !linux

package argon2

func adviseHugePages([]byte) {}
