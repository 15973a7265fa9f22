//go:build !linux

package app

// dropExecutablePages does nothing outside Linux (exepages_linux.go).
func dropExecutablePages() (int64, error) { return 0, nil }
