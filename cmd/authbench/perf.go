package main

// CPU profiles of the serving process under each measured load (-perf
// DIR): Linux perf samples the process from outside, so the authserver needs
// no profiling endpoint and the profile shows the kernel's share (the
// loopback TCP stack) beside Go's. Each load writes NAME.perf.data (for
// `perf report -i`) and NAME.txt, each function's share of the samples with
// its callees ("children") and without ("self"), down to 1 %, and ends with
// the share of tracing in the samples (perfshare.go), also printed.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// perfRecorder records one load's profile; a nil *perfRecorder records nothing.
type perfRecorder struct {
	dir  string
	name string
	cmd  *exec.Cmd
}

// startPerf samples pid (999 Hz, with call graphs) until stop; dir ""
// returns nil.
func startPerf(dir, name string, pid int) *perfRecorder {
	if dir == "" || pid <= 0 {
		return nil
	}
	name = strings.NewReplacer(" ", "-", "/", "-", "(", "", ")", "").Replace(name)
	p := &perfRecorder{dir: dir, name: name}
	p.cmd = exec.Command("perf", "record", "-q", "-F", "999", "-g", "-p", strconv.Itoa(pid),
		"-o", filepath.Join(dir, name+".perf.data"))
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "authbench: perf record (apt-get install linux-perf):", err)
		return nil
	}
	return p
}

// stop ends the recording and writes the flat profile beside it.
func (p *perfRecorder) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	_ = p.cmd.Wait()
	out, err := os.Create(filepath.Join(p.dir, p.name+".txt"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "authbench:", err)
		return
	}
	defer out.Close()
	rep := exec.Command("perf", "report", "--stdio", "--children", "--sort", "symbol", "-g", "none",
		"--percent-limit", "1", "-i", filepath.Join(p.dir, p.name+".perf.data"))
	rep.Stdout, rep.Stderr = out, os.Stderr
	if err := rep.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "authbench: perf report:", err)
	}
	script := exec.Command("perf", "script", "-i", filepath.Join(p.dir, p.name+".perf.data"))
	script.Stderr = io.Discard
	stdout, err := script.StdoutPipe()
	if err == nil {
		err = script.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "authbench: perf script:", err)
		return
	}
	shares, err := perfTracingShares(stdout)
	if werr := script.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "authbench: perf script:", err)
		return
	}
	fmt.Printf("perf %s: %s\n", p.name, shares)
	fmt.Fprintf(out, "\n# Samples by the first tracing or working frame from the leaf (perfshare.go): %s\n", shares)
}
