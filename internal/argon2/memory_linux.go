package argon2

import "syscall"

// adviseHugePages asks for transparent huge pages (where THP is
// "madvise", the common default): argon2 reads its blocks in an
// unpredictable order across m KiB, and with 4 KiB pages most reads miss
// the TLB. 20 to 30 % faster hashes on the benchmark machine
// (docs/benchmarks.md). Without THP it changes nothing.
func adviseHugePages(b []byte) { _ = syscall.Madvise(b, syscall.MADV_HUGEPAGE) }
