package main

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/internal/procstat"
)

// Processes are grouped by the name given to them or to an ancestor, else by
// the command of root's child they descend from; others are left out.
func TestGroupCPU(t *testing.T) {
	ps := []procstat.Proc{
		{PID: 10, PPID: 1, Comm: "authbench", User: 1},
		{PID: 11, PPID: 10, Comm: "postgres", User: 2, Sys: 1},
		{PID: 12, PPID: 11, Comm: "postgres", User: 0.5},   // a backend
		{PID: 13, PPID: 10, Comm: "authserver", User: 4},   // named
		{PID: 14, PPID: 10, Comm: "authbench", User: 0.25}, // the floor, named
		{PID: 15, PPID: 10, Comm: "redis-server", Sys: 0.75},
		{PID: 20, PPID: 1, Comm: "go", User: 9}, // not ours
		{PID: 21, PPID: 20, Comm: "compile", User: 9},
	}
	got := groupCPU(ps, 10, map[int]string{10: "authbench", 13: "authserver", 14: "floor"})
	want := map[string]float64{"authbench": 1, "postgres": 3.5, "authserver": 4, "floor": 0.25, "redis-server": 0.75}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("groupCPU = %v, want %v", got, want)
	}
}

// The machine's busy time not used by our groups is the other processes'.
func TestShareBetween(t *testing.T) {
	t0 := time.Now()
	a := cpuSnap{at: t0, groups: map[string]float64{"authserver": 10, "postgres": 1}, machine: procstat.Machine{Busy: 100, Idle: 50, Steal: 1}}
	b := cpuSnap{at: t0.Add(2 * time.Second), groups: map[string]float64{"authserver": 13, "postgres": 1.5, "redis-server": 0.2},
		machine: procstat.Machine{Busy: 103.9, IRQ: 0.4, Idle: 50.1, Steal: 1}}
	s := shareBetween(a, b)
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	if !near(s.groups["authserver"], 1.5) || !near(s.groups["postgres"], 0.25) || !near(s.groups["redis-server"], 0.1) ||
		!near(s.others, 0.1) || !near(s.irq, 0.2) || !near(s.idle, 0.05) || s.steal != 0 {
		t.Errorf("shareBetween = %+v", s)
	}
	if str := s.String(); !strings.HasPrefix(str, "authserver 1.50, postgres 0.25, redis-server 0.10, other processes 0.10") {
		t.Errorf("String() = %q", str)
	}
}

// A process authbench starts, busy, shows in its group with the CPU it used.
func TestSnapCPUSeesChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	a := snapCPU(map[int]string{os.Getpid(): "authbench"})
	var s cpuShare
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if s = shareBetween(a, snapCPU(map[int]string{os.Getpid(): "authbench"})); s.groups["sh"] > 0 {
			break
		}
	}
	if s.groups["sh"] <= 0 {
		t.Errorf("the busy child is not seen: %v", s)
	}
}

// The hashing counters are read in one scrape and turned into the mean
// CPU and wall time of the hashes in between.
func TestHashWork(t *testing.T) {
	n := 10.0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# HELP password_hashes_total x\npassword_hashes_total %g\npassword_hash_seconds_total %g\npassword_hash_cpu_seconds_total %g\ngo_goroutines 7\n",
			n, n*0.03, n*0.02)
	}))
	defer srv.Close()
	a := scrapeHashWork(srv.URL)
	n = 30
	b := scrapeHashWork(srv.URL)
	got, wall, cpu, ok := hashesBetween(a, b)
	if !ok || got != 20 || wall.Round(time.Microsecond) != 30*time.Millisecond || cpu.Round(time.Microsecond) != 20*time.Millisecond {
		t.Errorf("hashesBetween = %v %s %s %v", got, wall, cpu, ok)
	}
	if _, _, _, ok := hashesBetween(b, b); ok {
		t.Error("ok without a hash in between")
	}
	if _, _, _, ok := hashesBetween(hashWork{-1, -1, -1}, b); ok {
		t.Error("ok without the counters")
	}
}
