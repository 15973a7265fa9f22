//go:build unix

package argon2

import (
	"syscall"
	"unsafe"
)

// allocBlocks maps n zeroed blocks outside the Go heap (anonymous, private
// memory; no pointers in it, so the collector need not see it) and returns
// the function that unmaps them. Should mmap fail, the blocks come from the
// heap.
func allocBlocks(n int) ([]block, func()) {
	raw, err := syscall.Mmap(-1, 0, n*blockLength*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]block, n), nil
	}
	adviseHugePages(raw)
	return unsafe.Slice((*block)(unsafe.Pointer(unsafe.SliceData(raw))), n), func() { _ = syscall.Munmap(raw) }
}
