package procstat

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatusKiB(t *testing.T) {
	status := []byte("Name:\tmanager\nVmPeak:\t 1300000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   70000 kB\n")
	if n, err := ParseStatusKiB(status, "VmHWM"); err != nil || n != 81234 {
		t.Errorf("VmHWM = %d, %v", n, err)
	}
	if _, err := ParseStatusKiB(status, "VmSwap"); err == nil {
		t.Error("no error for a missing field")
	}
	if _, err := ParseStatusKiB([]byte("VmHWM:\t 12 MB\n"), "VmHWM"); err == nil {
		t.Error("no error for a field not in kB")
	}
}

// The readers of this process's own /proc entries: RSS is positive and CPU time grows with work.
func TestOwnProcess(t *testing.T) {
	pid := os.Getpid()
	if kib, err := StatusKiB(pid, "VmRSS"); err != nil || kib <= 0 {
		t.Fatalf("VmRSS = %d, %v", kib, err)
	}
	u0, s0, err := CPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		u, s, _ := CPU(pid)
		if u+s-(u0+s0) >= 0.05 {
			break
		}
		for i := 0; i < 1e6; i++ { //nolint:revive // burn CPU
		}
	}
	if u, s, _ := CPU(pid); u+s-(u0+s0) < 0.05 {
		t.Errorf("CPU time did not grow: %.2f s then %.2f s", u0+s0, u+s)
	}
	if _, _, err := CPU(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
	if la := LoadAvg(); len(strings.Fields(la)) != 3 {
		t.Errorf("LoadAvg() = %q", la)
	}
}

func TestParseStat(t *testing.T) {
	p, err := ParseStat([]byte("4242 (a (weird) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 9 0 1000 0 0"))
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != 4242 || p.PPID != 17 || p.Comm != "a (weird) name" || p.User != 2.5 || p.Sys != 0.37 {
		t.Errorf("ParseStat = %+v", p)
	}
	if _, err := ParseStat([]byte("12 (x) S 1")); err == nil {
		t.Error("no error for a truncated line")
	}
	found := false
	for _, q := range Procs() {
		found = found || q.PID == os.Getpid()
	}
	if !found {
		t.Error("Procs() does not list this process")
	}
}

func TestParseMachine(t *testing.T) {
	m, err := ParseMachine([]byte("cpu  600 100 200 5000 50 0 30 12 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Busy != 9 || m.IRQ != 0.3 || m.Idle != 50.5 || m.Steal != 0.12 {
		t.Errorf("ParseMachine = %+v", m)
	}
	if _, err := ParseMachine([]byte("intr 1 2 3\n")); err == nil {
		t.Error("no error without the cpu line")
	}
	if _, err := MachineCPU(); err != nil {
		t.Error(err)
	}
}
