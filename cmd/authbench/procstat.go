package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leanauth/authstack/internal/procstat"
)

// resetPeakRSS makes VmHWM start again from the current RSS (Linux
// clear_refs "5"); it reports whether that worked.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// cpuSeconds is the user+system CPU time used by pid so far.
func cpuSeconds(pid int) float64 {
	u, s := cpuSplit(pid)
	return u + s
}

// cpuSplit is the user and the system CPU time used by pid so far (0 if unreadable).
func cpuSplit(pid int) (user, sys float64) {
	user, sys, _ = procstat.CPU(pid)
	return user, sys
}

// rssWatch samples VmRSS of pid while a phase runs and keeps its maximum, as
// a cross-check of VmHWM.
type rssWatch struct {
	pid   int
	stop  chan struct{}
	done  sync.WaitGroup
	maxKB int64
	user0 float64
	sys0  float64
	wait0 float64
	t0    time.Time
}

func watchRSS(pid int) *rssWatch {
	w := &rssWatch{pid: pid, stop: make(chan struct{}), t0: time.Now()}
	w.user0, w.sys0 = cpuSplit(pid)
	w.wait0 = runqueueWait(pid)
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := procstat.StatusKiB(pid, "VmRSS"); err == nil && v > w.maxKB {
				w.maxKB = v
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// phaseMem is what a phase cost the measured process.
type phaseMem struct {
	PeakKiB    int64   // VmHWM since the reset (or since start when reset failed)
	SampledKiB int64   // max of VmRSS sampled every 20 ms
	Cores      float64 // average CPU cores used during the phase
	SysCores   float64 // the part of Cores spent in the kernel
	// Starved is the average number of the process's threads that were
	// runnable but waiting for a CPU: CPU starvation, from other processes.
	Starved float64
}

func (w *rssWatch) finish() phaseMem {
	close(w.stop)
	w.done.Wait()
	hwm, _ := procstat.StatusKiB(w.pid, "VmHWM")
	el := time.Since(w.t0).Seconds()
	u, s := cpuSplit(w.pid)
	return phaseMem{PeakKiB: hwm, SampledKiB: w.maxKB, Cores: (u + s - w.user0 - w.sys0) / el, SysCores: (s - w.sys0) / el,
		Starved: (runqueueWait(w.pid) - w.wait0) / el}
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// scrapeCounter reads one unlabelled sample of a Prometheus text endpoint
// (like go_gc_duration_seconds_count); -1 when absent.
func scrapeCounter(metricsURL, name string) float64 {
	return scrapeCounters(metricsURL, name)[0]
}

// scrapeCounters reads unlabelled samples of a Prometheus text endpoint in
// one scrape; -1 for each absent one.
func scrapeCounters(metricsURL string, names ...string) []float64 {
	vals := make([]float64, len(names))
	for i := range vals {
		vals[i] = -1
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(metricsURL)
	if err != nil {
		return vals
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for i, name := range names {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					vals[i] = f
				}
			}
		}
	}
	return vals
}

// hashWork is the authserver's password hashing counters at one moment
// (metrics.WatchHashing).
type hashWork struct{ n, wall, cpu float64 }

func scrapeHashWork(metricsURL string) hashWork {
	v := scrapeCounters(metricsURL, "password_hashes_total", "password_hash_seconds_total", "password_hash_cpu_seconds_total")
	return hashWork{v[0], v[1], v[2]}
}

// hashesBetween is the hashes run between two scrapes and their mean wall
// and CPU time; ok is false when the counters are missing or no hash ran.
func hashesBetween(a, b hashWork) (n float64, wall, cpu time.Duration, ok bool) {
	n = b.n - a.n
	if a.n < 0 || b.n < 0 || a.cpu < 0 || b.cpu < 0 || n <= 0 {
		return 0, 0, 0, false
	}
	return n, time.Duration((b.wall - a.wall) / n * 1e9), time.Duration((b.cpu - a.cpu) / n * 1e9), true
}

// runqueueWait is the total time pid's threads have spent runnable but
// waiting for a CPU (field 2 of /proc/<pid>/task/*/schedstat), in seconds.
// It grows fast when the machine, not the program, is the bottleneck.
func runqueueWait(pid int) float64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var total float64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) >= 2 {
			ns, _ := strconv.ParseFloat(f[1], 64)
			total += ns / 1e9
		}
	}
	return total
}
