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
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(metricsURL)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
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
