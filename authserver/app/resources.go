package app

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leanauth/authstack/authserver/config"
)

// Resources are the CPU and memory numbers serve runs with.
type Resources struct {
	GOMAXPROCS      int    `json:"gomaxprocs"`       // the runtime's: follows the cgroup CPU quota (Go 1.25+) unless GOMAXPROCS is set
	HashConcurrency int    `json:"hash_concurrency"` // AUTH_HASH_CONCURRENCY, default GOMAXPROCS
	CgroupMemory    int64  `json:"cgroup_memory"`    // the cgroup's memory limit, 0 when none
	MemoryLimit     int64  `json:"memory_limit"`     // the Go soft memory limit in force
	MemoryFrom      string `json:"memory_from"`      // GOMEMLIMIT, hashing (32 MiB beside the slots' argon2 memory) or cgroup (90 % of it less that memory)
	GCPercent       int    `json:"gc_percent"`       // GOGC; unset: 400 under the limit set here, Go's 100 under GOMEMLIMIT
	// The soft memory limit while password hashes run and for a second
	// after (Hashing); 0 under GOMEMLIMIT, which then holds at all times.
	MemoryLimitHashing int64 `json:"memory_limit_hashing"`
	// Heap profiling (runtime.MemProfileRate) stays on only with
	// AUTH_DEBUG_PPROF, the only way to read the profile: its bucket table
	// alone takes 1.4 MiB of the limit.
	HeapProfiling bool `json:"heap_profiling"`
}

// Soft memory limit of the Go runtime (heap and stacks; the hashing slots'
// memory is outside it): 32 MiB, less when the cgroup is small, never below
// 16 MiB. And the GC percentage under that limit when GOGC is unset: the
// live heap is only a few MiB (the argon2 memory is outside it), so at Go's
// default of 100 the collector ran after every few MiB allocated, 5 to 6
// times as often as when the argon2 memory was on the heap
// (docs/benchmarks.md, "Session 5: the session path's loss, and the
// storm's memory"). Under an explicit GOMEMLIMIT (which the operator does not
// set for serve) GOGC stays Go's default.
//
// While password hashes run (and for hashingLinger after the last one),
// the limit is hashingHeapLimit instead: the slots' argon2 memory is then
// in use, and the requests that hash come at most at the hash rate, so the
// heap is kept small where the process is at its largest: in the login
// storm the heap arena holds about 12 MiB instead of 23; the session path,
// which allocates the most, keeps its room when no hash runs. 16 MiB was too
// little: stacks and runtime metadata take about 13 MiB of the limit under
// a storm's 500 connections, and the GC ran every few milliseconds
// (docs/benchmarks.md, "Session 6").
const (
	heapLimit        = 32 << 20
	hashingHeapLimit = 20 << 20
	minHeapLimit     = 16 << 20
	gcPercent        = 400
	hashingLinger    = time.Second
)

// hashingMemory is the argon2 memory of all hashing slots.
func hashingMemory(c *config.Config) int64 {
	return int64(c.HashConcurrency) * int64(c.Argon2.MemoryKiB) * 1024
}

// SetResources gives the Go runtime a soft memory limit, unless GOMEMLIMIT
// is set: 32 MiB for the heap and stacks beside the hashing slots (each owns
// MemoryKiB of argon2 memory, mapped outside the Go heap), so that a burst
// makes the GC work harder rather than RSS grow, and never more than 90 %
// of the cgroup's memory limit (read under cgroupRoot, normally
// /sys/fs/cgroup) minus the slots' memory, so that the pod is not
// OOM-killed. With that limit, and unless GOGC is set, the GC percentage
// is 400: the limit, not GOGC, then bounds the heap. Heap profiling is
// switched off unless AUTH_DEBUG_PPROF is set. It returns what was chosen.
func SetResources(c *config.Config, cgroupRoot string) Resources {
	r := Resources{GOMAXPROCS: runtime.GOMAXPROCS(0), HashConcurrency: c.HashConcurrency, CgroupMemory: CgroupMemoryLimit(cgroupRoot), HeapProfiling: c.Pprof}
	if !c.Pprof {
		runtime.MemProfileRate = 0
	}
	r.GCPercent = debug.SetGCPercent(-1)
	debug.SetGCPercent(r.GCPercent)
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		r.MemoryLimit, r.MemoryFrom = debug.SetMemoryLimit(-1), "GOMEMLIMIT"
		return r
	}
	if _, ok := os.LookupEnv("GOGC"); !ok {
		r.GCPercent = gcPercent
		debug.SetGCPercent(gcPercent)
	}
	// The slots' argon2 memory is mapped outside the Go heap
	// (internal/argon2), so the limit is what the heap and stacks may use
	// beside it.
	hashing := hashingMemory(c)
	r.MemoryLimit, r.MemoryFrom = heapLimit, "hashing"
	if r.CgroupMemory > 0 && r.CgroupMemory/10*9-hashing < r.MemoryLimit {
		r.MemoryLimit, r.MemoryFrom = max(r.CgroupMemory/10*9-hashing, minHeapLimit), "cgroup"
	}
	r.MemoryLimitHashing = max(min(r.MemoryLimit, hashingHeapLimit), minHeapLimit)
	debug.SetMemoryLimit(r.MemoryLimit)
	return r
}

// Hashing is what serve gives password.Hasher.OnHashing: it sets the soft
// memory limit to MemoryLimitHashing when hashes start and back to
// MemoryLimit once none ran for hashingLinger (in a storm the slots are
// free for a moment between two hashes; the limit stays put then). When it
// lowers the limit (at the first request admitted to hash: before a
// storm's burst of connections) it also drops the executable's pages
// (dropExecutablePages) and returns the heap's free memory to the OS (a
// GC), at most once every dropEvery: what the requests since the last drop
// touched of the binary (the session path, the operator's API calls, ...)
// and the heap room the higher limit let them keep leave the RSS just as
// the slots' argon2 memory enters it; what hashing requests use faults
// back in (docs/benchmarks.md, "Session 7"). nil under GOMEMLIMIT.
func (r Resources) Hashing(log *slog.Logger) func(hashing bool) {
	var last time.Time
	return r.hashing(hashingLinger, func() {
		if time.Since(last) < dropEvery {
			return
		}
		last = time.Now()
		// At once (a read of pagemap and a few madvise calls: well under a
		// millisecond), before the burst of connections that may follow
		// this first request.
		if _, err := dropExecutablePages(); err != nil {
			log.Warn("dropping the executable's pages", "error", err.Error())
		}
		// What the heap holds free under the higher limit goes back now,
		// not as the scavenger gets to it (a GC: off this request's path).
		go debug.FreeOSMemory()
	})
}

// dropEvery bounds how often Hashing drops the executable's pages.
const dropEvery = 10 * time.Second

// hashing is Hashing with its linger time; lowered is called (under its
// lock) each time it lowers the limit.
func (r Resources) hashing(linger time.Duration, lowered func()) func(hashing bool) {
	if r.MemoryLimitHashing == 0 {
		return nil
	}
	var mu sync.Mutex
	busy, low := false, false
	raise := time.AfterFunc(time.Hour, func() {
		mu.Lock()
		defer mu.Unlock()
		if !busy {
			debug.SetMemoryLimit(r.MemoryLimit)
			low = false
		}
	})
	raise.Stop()
	return func(hashing bool) {
		mu.Lock()
		defer mu.Unlock()
		busy = hashing
		if !hashing {
			raise.Reset(linger)
			return
		}
		raise.Stop()
		if !low {
			debug.SetMemoryLimit(r.MemoryLimitHashing)
			low = true
			lowered()
		}
	}
}

// CgroupMemoryLimit returns the memory limit of this process's cgroup and
// its ancestors (the smallest), 0 when there is none or it cannot be read.
// cgroup v2: <root>/<path>/memory.max; v1: <root>/memory/<path>/memory.limit_in_bytes.
// The path comes from /proc/self/cgroup; without a cgroup namespace it may
// not exist inside a container, whose own cgroup is then mounted at the root.
func CgroupMemoryLimit(root string) int64 {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	return cgroupMemoryLimit(root, self)
}

// cgroupMemoryLimit is CgroupMemoryLimit with /proc/self/cgroup's content.
func cgroupMemoryLimit(root string, self []byte) int64 {
	var limit int64
	take := func(file string) {
		b, err := os.ReadFile(file)
		if err != nil {
			return
		}
		// v2 says "max" and v1 ~2^63 for no limit.
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && n < 1<<60 && (limit == 0 || n < limit) {
			limit = n
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "": // v2 unified hierarchy
			dir, file = root, "memory.max"
		case hasController(parts[1], "memory"): // v1
			dir, file = filepath.Join(root, "memory"), "memory.limit_in_bytes"
		default:
			continue
		}
		// The cgroup and its ancestors; the last is the mount's root, which
		// is the container's own cgroup when the host path is not mounted.
		for p := path.Clean("/" + parts[2]); ; p = path.Dir(p) {
			take(filepath.Join(dir, p, file))
			if p == "/" {
				break
			}
		}
	}
	return limit
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
