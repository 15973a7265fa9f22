package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/leanauth/authstack/internal/procstat"
)

// cpuSnap is the CPU time used so far by each group of processes (groupCPU)
// and by the whole machine, at one moment.
type cpuSnap struct {
	at      time.Time
	groups  map[string]float64
	machine procstat.Machine
}

// snapCPU reads every process's CPU time and the machine's. names labels
// processes by pid (authbench itself, the authserver, the floor); the other
// processes authbench started are labelled by the command name of its child
// they descend from (PostgreSQL's backends are "postgres").
func snapCPU(names map[int]string) cpuSnap {
	m, _ := procstat.MachineCPU()
	return cpuSnap{at: time.Now(), groups: groupCPU(procstat.Procs(), os.Getpid(), names), machine: m}
}

// groupCPU sums the CPU seconds of the processes descending from root (root
// included) by group, as snapCPU describes.
func groupCPU(ps []procstat.Proc, root int, names map[int]string) map[string]float64 {
	byPID := make(map[int]procstat.Proc, len(ps))
	for _, p := range ps {
		byPID[p.PID] = p
	}
	groups := map[string]float64{}
	for _, p := range ps {
		// Walk up to the process named or to root's child.
		q, name := p, ""
		for depth := 0; depth < 64; depth++ {
			if n, ok := names[q.PID]; ok {
				name = n
				break
			}
			if q.PPID == root {
				name = q.Comm
				break
			}
			parent, ok := byPID[q.PPID]
			if !ok {
				break
			}
			q = parent
		}
		if name != "" {
			groups[name] += p.User + p.Sys
		}
	}
	return groups
}

// cpuShare is where the machine's CPUs went between two snapshots, in cores.
type cpuShare struct {
	groups                   map[string]float64
	others, irq, idle, steal float64
}

func shareBetween(a, b cpuSnap) cpuShare {
	el := b.at.Sub(a.at).Seconds()
	s := cpuShare{groups: map[string]float64{}}
	if el <= 0 {
		return s
	}
	var ours float64
	for k, v := range b.groups {
		if d := (v - a.groups[k]) / el; d > 0 {
			s.groups[k] = d
			ours += d
		}
	}
	// The rest of the busy time: other processes on the machine (and ours
	// that ended in between).
	s.others = max(0, (b.machine.Busy-a.machine.Busy)/el-ours)
	s.irq = (b.machine.IRQ - a.machine.IRQ) / el
	s.idle = (b.machine.Idle - a.machine.Idle) / el
	s.steal = (b.machine.Steal - a.machine.Steal) / el
	return s
}

// String lists the groups by cores used, the largest first.
func (s cpuShare) String() string {
	keys := make([]string, 0, len(s.groups))
	for k := range s.groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return s.groups[keys[i]] > s.groups[keys[j]] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, s.groups[k]))
	}
	parts = append(parts, fmt.Sprintf("other processes %.2f", s.others),
		fmt.Sprintf("interrupts (the network stack, ours included) %.2f", s.irq), fmt.Sprintf("idle %.2f", s.idle))
	if s.steal > 0.005 {
		parts = append(parts, fmt.Sprintf("stolen by the hypervisor %.2f", s.steal))
	}
	return strings.Join(parts, ", ")
}
