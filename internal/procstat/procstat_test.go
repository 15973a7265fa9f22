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
