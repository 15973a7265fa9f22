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
	p, err := ParseStat(b)
	return p.User, p.Sys, err
}

// Proc is what /proc/<pid>/stat says of one process.
type Proc struct {
	PID, PPID int
	Comm      string  // the command name (at most 15 bytes)
	User, Sys float64 // CPU seconds used so far
}

// ParseStat reads the text of a /proc/<pid>/stat.
func ParseStat(b []byte) (Proc, error) {
	// The command name (field 2) may hold spaces and parentheses: it runs
	// from the first '(' to the last ')'.
	i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if i < 0 || j < i {
		return Proc{}, fmt.Errorf("unreadable /proc stat %.40q", b)
	}
	f := strings.Fields(string(b[j+1:]))
	pid, err0 := strconv.Atoi(strings.TrimSpace(string(b[:i])))
	if len(f) < 13 || err0 != nil {
		return Proc{}, fmt.Errorf("unreadable /proc stat %.40q", b)
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseFloat(f[11], 64)
	st, err3 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Proc{}, fmt.Errorf("unreadable /proc stat %.40q", b)
	}
	const userHZ = 100 // USER_HZ is 100 on Linux
	return Proc{PID: pid, PPID: ppid, Comm: string(b[i+1 : j]), User: ut / userHZ, Sys: st / userHZ}, nil
}

// Procs reads /proc/<pid>/stat of every process (those that end while it
// reads are left out).
func Procs() []Proc {
	ents, _ := os.ReadDir("/proc")
	var ps []Proc
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if p, err := ParseStat(b); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Machine is the CPU time of all CPUs since boot, from the first line of
// /proc/stat, in seconds.
type Machine struct {
	Busy  float64 // user, nice, system: the processes'
	IRQ   float64 // irq and softirq (the network stack's receive work, loopback included)
	Idle  float64 // idle and iowait
	Steal float64 // taken by the hypervisor from this virtual machine
}

// MachineCPU reads /proc/stat.
func MachineCPU() (Machine, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return Machine{}, err
	}
	return ParseMachine(b)
}

// ParseMachine reads the "cpu" line of the text of /proc/stat.
func ParseMachine(b []byte) (Machine, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return Machine{}, fmt.Errorf("unreadable /proc/stat line %.60q", line)
	}
	var v [8]float64
	for k := range v {
		n, err := strconv.ParseFloat(f[k+1], 64)
		if err != nil {
			return Machine{}, fmt.Errorf("unreadable /proc/stat line %.60q", line)
		}
		v[k] = n / 100 // USER_HZ
	}
	return Machine{Busy: v[0] + v[1] + v[2], IRQ: v[5] + v[6], Idle: v[3] + v[4], Steal: v[7]}, nil
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
