// Package procstat reads what the benchmarks measure of a process from
// Linux's /proc: memory fields of /proc/<pid>/status, CPU time of
// /proc/<pid>/stat, and the load average.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// StatusKiB reads a "Field:   N kB" line (VmHWM, VmRSS, ...) of /proc/<pid>/status, in KiB.
func StatusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return ParseStatusKiB(b, field)
}

// ParseStatusKiB reads a "Field:   N kB" line of the text of a /proc/<pid>/status, in KiB.
func ParseStatusKiB(status []byte, field string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected %s line %q", field, sc.Text())
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}

// CPU is the user and the system CPU time, in seconds, used by pid so far
// (fields 14 and 15 of /proc/<pid>/stat).
func CPU(pid int) (user, sys float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces: count fields after its ')'.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	return ut / 100, st / 100, nil // USER_HZ is 100 on Linux
}

// LoadAvg is the 1, 5 and 15 minute load averages as /proc/loadavg writes them, or "?".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
