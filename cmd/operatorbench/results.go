package main

import (
	"fmt"
	"io"
	"runtime"
	"time"
)

// The targets (docs/benchmarks.md).
const (
	targetRatio       = 1.3
	targetRSS         = 200 << 20
	targetQuietWrites = 0
)

// results is what one run measured. Times are this process's clock, which is the
// API server's too (same machine), so they bound the audit log's windows.
type results struct {
	stacks, namespaces, noise int
	objectsPerStack           int
	loadStart, loadEnd        string

	rawStart, rawApplied, rawEnd time.Time
	opStart, opEnd, quietEnd     time.Time
	touchStart, touchEnd         time.Time

	reconConverge, reconQuiet, reconTouch float64
	cpuConverge, cpuTotal                 float64
	hwm, rssEnd                           int64
	renderCheck                           string

	// From the audit log.
	raw, opConverge, opQuiet, opTouch tally
}

func (r *results) fromAudit(reqs []request) {
	r.raw = count(reqs, agentRaw, r.rawStart, r.rawEnd)
	r.opConverge = count(reqs, agentOperator, r.opStart, r.opEnd)
	r.opQuiet = count(reqs, agentOperator, r.opEnd, r.quietEnd)
	r.opTouch = count(reqs, agentOperator, r.touchStart, r.touchEnd)
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "MISSED"
}

func perReconcile(requests int, reconciles float64) string {
	if reconciles == 0 {
		return "n/a (no reconcile)"
	}
	return fmt.Sprintf("%.1f", float64(requests)/reconciles)
}

func (r *results) print(w io.Writer) {
	raw, op := r.rawEnd.Sub(r.rawStart), r.opEnd.Sub(r.opStart)
	ratio := op.Seconds() / raw.Seconds()
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	quiet := r.quietEnd.Sub(r.opEnd)

	fmt.Fprintf(w, "operatorbench: %d stacks in %d namespaces (%d objects each), %d unrelated Secrets and ConfigMaps; %d CPUs, load average %s at the start, %s at the end\n",
		r.stacks, r.namespaces, r.objectsPerStack, r.noise, runtime.NumCPU(), r.loadStart, r.loadEnd)
	fmt.Fprintf(w, "(a) time until all Ready: operator %.1f s, plain client %.1f s: %.2f× (target ≤ %.1f×: %s)\n",
		op.Seconds(), raw.Seconds(), ratio, targetRatio, verdict(ratio <= targetRatio))
	fmt.Fprintf(w, "    plain client: %d requests (%d writes; API server time %.1f s), all applied after %.1f s: %s\n",
		r.raw.requests, r.raw.writes, r.raw.served.Seconds(), r.rawApplied.Sub(r.rawStart).Seconds(), r.raw.summary())
	fmt.Fprintf(w, "    operator: %d requests (%d writes; API server time %.1f s), %.0f reconciles, %.1f CPU-seconds: %s\n",
		r.opConverge.requests, r.opConverge.writes, r.opConverge.served.Seconds(), r.reconConverge, r.cpuConverge, r.opConverge.summary())
	fmt.Fprintf(w, "    operator events (not in the counts): %d\n", r.opConverge.other)
	fmt.Fprintf(w, "    check: %s\n", r.renderCheck)
	fmt.Fprintf(w, "(b) operator peak RSS (VmHWM): %.1f MiB (target < %d MiB: %s); RSS at the end %.1f MiB; %.1f CPU-seconds in all\n",
		mib(r.hwm), targetRSS>>20, verdict(r.hwm < targetRSS), mib(r.rssEnd), r.cpuTotal)
	fmt.Fprintf(w, "(c) operator writes in the %.0f s after all were Ready: %d (target %d, leases and events left out: %s); %.0f reconciles, %d requests (%s); %d lease/event requests\n",
		quiet.Seconds(), r.opQuiet.writes, targetQuietWrites, verdict(r.opQuiet.writes <= targetQuietWrites), r.reconQuiet, r.opQuiet.requests, r.opQuiet.summary(), r.opQuiet.other)
	fmt.Fprintf(w, "(d) API requests per reconcile at rest: %s (%d requests, %d writes, for %.0f no-op reconciles after touching each stack once): %s\n",
		perReconcile(r.opTouch.requests, r.reconTouch), r.opTouch.requests, r.opTouch.writes, r.reconTouch, r.opTouch.summary())
}
