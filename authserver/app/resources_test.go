package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/config"
)

// TestMain lets a test run this binary as the authserver: with
// AUTHSERVER_MAIN=1 it runs app.Main with its arguments instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("AUTHSERVER_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// baseEnv is a minimal valid configuration.
func baseEnv() []string {
	return []string{
		"AUTHSERVER_MAIN=1", "PATH=" + os.Getenv("PATH"),
		"DATABASE_URL=postgres://authstack:pw@db:5432/auth?sslmode=disable", "REDIS_URL=redis://:pw@redis:6379/0",
		"AUTH_PEPPER=" + strings.Repeat("ab", 32), "SMTP_HOST=smtp.example.com", "MAIL_FROM=App <noreply@example.com>",
		"FRONTEND_URL=https://app.example.com/",
	}
}

const mib = 1 << 20

// cgroupDirs creates a memory cgroup (limit memBytes) and a CPU cgroup
// (quota cpuMilli) below this process's own, or returns an error when this
// host does not let the test (not root, cgroup v2 without delegation...).
func cgroupDirs(t *testing.T, memBytes int64, cpuMilli int) (memDir, cpuDir string, err error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", "", err
	}
	name := fmt.Sprintf("authserver-test-%d", os.Getpid())
	for _, l := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case hasController(parts[1], "memory"):
			memDir = filepath.Join("/sys/fs/cgroup/memory", parts[2], name)
		case hasController(parts[1], "cpu"):
			cpuDir = filepath.Join("/sys/fs/cgroup", parts[1], parts[2], name)
		}
	}
	if memDir == "" || cpuDir == "" {
		return "", "", fmt.Errorf("no cgroup v1 memory and cpu controllers in /proc/self/cgroup")
	}
	for _, d := range []string{memDir, cpuDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", "", err
		}
		t.Cleanup(func() { _ = os.Remove(d) }) // rmdir of an empty cgroup
	}
	if err := os.WriteFile(filepath.Join(memDir, "memory.limit_in_bytes"), []byte(fmt.Sprint(memBytes)), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(cpuDir, "cpu.cfs_quota_us"), []byte(fmt.Sprint(cpuMilli*100)), 0o644); err != nil {
		return "", "", err
	}
	return memDir, cpuDir, nil
}

// runResources runs "authserver resources" (this binary) inside the
// cgroups with env added to baseEnv, and decodes what it chose.
func runResources(t *testing.T, memDir, cpuDir string, env ...string) Resources {
	t.Helper()
	script := `echo $$ > "$1/cgroup.procs" && echo $$ > "$2/cgroup.procs" && exec "$3" resources`
	cmd := exec.Command("/bin/sh", "-c", script, "sh", memDir, cpuDir, os.Args[0])
	cmd.Env = append(baseEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("authserver resources in a cgroup: %v\n%s", err, errb.String())
	}
	var r Resources
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("decoding %q: %v", out.String(), err)
	}
	return r
}

// Memory and concurrency follow the pod, not the node: the
// authserver runs in a real cgroup with a 256 MiB memory limit and half a
// CPU, and reports what it chose.
func TestResourcesFollowTheCgroup(t *testing.T) {
	memDir, cpuDir, err := cgroupDirs(t, 256*mib, 500)
	if err != nil {
		t.Logf("NOTE: cannot create a real cgroup here (%v): checking the same code path with a simulated cgroup tree instead", err)
		simulatedCgroup(t)
		return
	}
	// No GOMEMLIMIT: 11 slots of 19 MiB take 209 MiB of the 90 % of the
	// 256 MiB cgroup, which leaves the heap less than its 32 MiB.
	r := runResources(t, memDir, cpuDir, "AUTH_HASH_CONCURRENCY=11")
	if r.CgroupMemory != 256*mib || r.MemoryLimit != 256*mib/10*9-11*19456*1024 || r.MemoryFrom != "cgroup" || r.GCPercent != 400 || r.MemoryLimitHashing != 20*mib {
		t.Errorf("in a 256 MiB cgroup: %+v", r)
	}
	// Defaults: the hash concurrency is the runtime's GOMAXPROCS (which Go
	// derives from the CPU quota, never below 2), and the hashing memory fits.
	r = runResources(t, memDir, cpuDir)
	if r.HashConcurrency != r.GOMAXPROCS || r.GOMAXPROCS > runtime.NumCPU() || r.MemoryLimit != 32*mib || r.MemoryFrom != "hashing" || r.GCPercent != 400 ||
		r.MemoryLimitHashing != 20*mib || r.HeapProfiling {
		t.Errorf("defaults in a cgroup: %+v", r)
	}
	if r = runResources(t, memDir, cpuDir, "AUTH_DEBUG_PPROF=true"); !r.HeapProfiling {
		t.Errorf("with AUTH_DEBUG_PPROF: %+v", r)
	}
	if r = runResources(t, memDir, cpuDir, "GOGC=150"); r.GCPercent != 150 || r.MemoryLimit != 32*mib {
		t.Errorf("with GOGC=150: %+v", r)
	}
	// What the operator passes (GOMAXPROCS from limits.cpu rounded up,
	// GOMEMLIMIT from limits.memory) wins.
	r = runResources(t, memDir, cpuDir, "GOMAXPROCS=1", "GOMEMLIMIT=230686720")
	// GOGC then stays Go's default: that limit does not leave out the slots' memory.
	if r.GOMAXPROCS != 1 || r.HashConcurrency != 1 || r.MemoryLimit != 230686720 || r.MemoryFrom != "GOMEMLIMIT" || r.GCPercent != 100 || r.MemoryLimitHashing != 0 {
		t.Errorf("with the operator's GOMAXPROCS and GOMEMLIMIT: %+v", r)
	}
}

// simulatedCgroup runs SetResources over a cgroup tree made in a temp dir
// for this process's own /proc/self/cgroup paths.
func simulatedCgroup(t *testing.T) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, l := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = filepath.Join(root, parts[2]), "memory.max"
		case hasController(parts[1], "memory"):
			dir, file = filepath.Join(root, "memory", parts[2]), "memory.limit_in_bytes"
		default:
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(fmt.Sprint(256*mib)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Fatal("GOMEMLIMIT is set in the test environment")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	cfg := &config.Config{HashConcurrency: 11, Argon2: config.Argon2{MemoryKiB: 19456}}
	if r := SetResources(cfg, root); r.CgroupMemory != 256*mib || r.MemoryLimit != 256*mib/10*9-11*19456*1024 || debug.SetMemoryLimit(-1) != r.MemoryLimit ||
		r.MemoryLimitHashing != 20*mib || runtime.MemProfileRate != 0 {
		t.Errorf("in a simulated 256 MiB cgroup: %+v", r)
	}
}

// The cgroup memory limit is read from v2 and v1 layouts, the smallest of
// the cgroup and its ancestors, with "max"/unlimited as no limit and the
// container's root cgroup when the host path is not mounted.
func TestCgroupMemoryLimitLayouts(t *testing.T) {
	write := func(root, rel, v string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v2 := t.TempDir()
	write(v2, "kubepods/pod1/c1/memory.max", "536870912")
	write(v2, "kubepods/pod1/memory.max", "max")
	if got := cgroupMemoryLimit(v2, []byte("0::/kubepods/pod1/c1\n")); got != 512*mib {
		t.Errorf("v2: %d", got)
	}
	if got := cgroupMemoryLimit(v2, []byte("0::/kubepods/pod1\n")); got != 0 {
		t.Errorf("v2 max: %d", got)
	}
	v1 := t.TempDir()
	write(v1, "memory/docker/abc/memory.limit_in_bytes", "9223372036854771712")
	write(v1, "memory/docker/memory.limit_in_bytes", "268435456")
	if got := cgroupMemoryLimit(v1, []byte("4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/\n")); got != 256*mib {
		t.Errorf("v1 with a limited parent: %d", got)
	}
	ns := t.TempDir() // no cgroup namespace: the host path is not mounted, the container's cgroup is the root
	write(ns, "memory/memory.limit_in_bytes", "134217728")
	if got := cgroupMemoryLimit(ns, []byte("4:memory:/kubepods/burstable/pod9/xyz\n")); got != 128*mib {
		t.Errorf("v1 container root: %d", got)
	}
}

// While hashes run the soft limit is the hashing one; it goes back once
// none ran for the linger time, and down again with the next hash. Under
// GOMEMLIMIT nothing changes it.
func TestHashingMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	r := Resources{MemoryLimit: 32 * mib, MemoryLimitHashing: 20 * mib}
	debug.SetMemoryLimit(r.MemoryLimit)
	limit := func() int64 { return debug.SetMemoryLimit(-1) }

	var lowered atomic.Int32
	slow := r.hashing(time.Hour, func() { lowered.Add(1) })
	if slow(true); limit() != 20*mib || lowered.Load() != 1 {
		t.Fatalf("hashing: limit %d, lowered %d times", limit(), lowered.Load())
	}
	if slow(false); limit() != 20*mib {
		t.Fatalf("raised within the linger time: %d", limit())
	}
	if slow(true); lowered.Load() != 1 {
		t.Fatalf("lowered again while low: %d times", lowered.Load())
	}

	lowered.Store(0)
	fast := r.hashing(time.Millisecond, func() { lowered.Add(1) })
	fast(true)
	fast(false)
	for deadline := time.Now().Add(10 * time.Second); limit() != 32*mib; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("limit %d 10 s after the last hash", limit())
		}
	}
	if fast(true); limit() != 20*mib || lowered.Load() != 2 {
		t.Fatalf("hashing again: limit %d, lowered %d times", limit(), lowered.Load())
	}
	if f := (Resources{MemoryLimit: 230686720, MemoryFrom: "GOMEMLIMIT"}).Hashing(slog.Default()); f != nil {
		t.Fatal("a hashing limit under GOMEMLIMIT")
	}
}

// The pages of its own executable drop out of the process: right after,
// its read-only mappings hold far less (what runs refaults at once).
func TestDropExecutablePages(t *testing.T) {
	before := exeResident(t)
	n, err := dropExecutablePages()
	after := exeResident(t)
	if err != nil || n == 0 {
		t.Fatalf("dropExecutablePages: %d bytes, %v", n, err)
	}
	t.Logf("resident: %d KiB before, %d KiB after", before>>10, after>>10)
	if before < 2*mib || after > before/2 {
		t.Fatalf("resident pages of the executable: %d KiB before, %d KiB after dropping %d bytes", before>>10, after>>10, n)
	}
	// Again (the mappings found the first time): what ran since leaves too.
	debug.FreeOSMemory()
	_ = fmt.Sprintf("%v %x", time.Now(), []byte("touch some code"))
	n2, err := dropExecutablePages()
	if again := exeResident(t); err != nil || n2 != n || again > before/2 {
		t.Fatalf("second drop: %d bytes (first %d), %v; resident %d KiB", n2, n, err, again>>10)
	}
}

// exeResident sums Rss of this process's read-only mappings of its executable.
func exeResident(t *testing.T) int64 {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ours := false
	for _, l := range strings.Split(string(smaps), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4:
			ours = len(f) == 6 && f[5] == exe && f[1][1] == '-'
		case ours && len(f) == 3 && f[0] == "Rss:":
			var kib int64
			fmt.Sscan(f[1], &kib)
			total += kib << 10
		}
	}
	return total
}
