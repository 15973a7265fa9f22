package app

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// dropExecutablePages unmaps this process's read-only pages of its own
// executable (madvise MADV_DONTNEED; they stay in the page cache, and the
// ones still used fault back in). Package initialisation and start-up touch
// code and tables of every package linked in, and the kernel maps 64 KiB
// around each touched page (fault-around), so after start-up the binary
// holds about 28 MiB of the process's RSS, of which serving uses 21 to 22
// (docs/benchmarks.md, "Session 6"). Mappings with copied-on-write
// (anonymous) pages are left alone: dropping those would lose the writes.
// The mappings are found once (in /proc/self/smaps, which takes the kernel
// milliseconds to write); later calls only advise them again, in
// microseconds. It returns the bytes of the mappings advised.
func dropExecutablePages() (int64, error) {
	exeMappings.once.Do(func() { exeMappings.ranges, exeMappings.err = readExecutableMappings() })
	if exeMappings.err != nil {
		return 0, exeMappings.err
	}
	var total int64
	for _, r := range exeMappings.ranges {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_DONTNEED); errno != 0 {
			return total, errno
		}
		total += int64(r[1] - r[0])
	}
	return total, nil
}

// exeMappings is what readExecutableMappings found, once.
var exeMappings struct {
	once   sync.Once
	ranges [][2]uintptr
	err    error
}

// readExecutableMappings lists the start and end of this process's
// read-only mappings of its executable that hold no anonymous page.
func readExecutableMappings() ([][2]uintptr, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	var ranges [][2]uintptr
	var start, end uintptr
	var ours bool
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4:
			// A mapping's header: address perms offset dev inode [path].
			lo, hi, _ := strings.Cut(f[0], "-")
			s, err1 := strconv.ParseUint(lo, 16, 64)
			e, err2 := strconv.ParseUint(hi, 16, 64)
			start, end = uintptr(s), uintptr(e)
			ours = err1 == nil && err2 == nil && len(f) == 6 && f[5] == exe && f[1][1] == '-'
		case ours && len(f) == 3 && f[0] == "Anonymous:":
			ours = false
			if f[1] == "0" {
				ranges = append(ranges, [2]uintptr{start, end})
			}
		}
	}
	return ranges, sc.Err()
}
