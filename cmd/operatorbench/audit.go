package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// auditPolicy logs every request once (when its response is complete), without
// bodies. Leases and events are logged too; the counting leaves them out.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
`

// request is one API request from the audit log.
type request struct {
	at        time.Time     // when the API server received it
	took      time.Duration // until its response was complete
	userAgent string
	verb      string // get, list, watch, create, update, patch, delete, deletecollection
	group     string
	resource  string // with the subresource: "authstacks/status"
	namespace string
	name      string
	code      int32
}

// isWrite says whether the request changes state.
func (r request) isWrite() bool {
	switch r.verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// leaseOrEvent says whether the request is about a Lease or an Event, which the
// targets leave out (leader election and events are expected at rest).
func (r request) leaseOrEvent() bool {
	base, _, _ := strings.Cut(r.resource, "/")
	return (base == "leases" && r.group == "coordination.k8s.io") ||
		(base == "events" && (r.group == "" || r.group == "events.k8s.io"))
}

// readAuditLogs reads every audit log file in dir (audit.log and the files the API
// server rotated it into), in time order.
func readAuditLogs(dir string) ([]request, error) {
	files, err := filepath.Glob(filepath.Join(dir, "audit*.log"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no audit log in %s", dir)
	}
	var all []request
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		reqs, err := parseAuditLog(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		all = append(all, reqs...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	return all, nil
}

// parseAuditLog reads JSON-lines audit events and keeps one entry per request: the
// ResponseComplete (or Panic) stage. Other stages are skipped, so a wider policy
// that logs them does not count a request twice.
func parseAuditLog(r io.Reader) ([]request, error) {
	var out []request
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var ev auditv1.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if ev.Stage != auditv1.StageResponseComplete && ev.Stage != auditv1.StagePanic {
			continue
		}
		req := request{at: ev.RequestReceivedTimestamp.Time, took: ev.StageTimestamp.Sub(ev.RequestReceivedTimestamp.Time),
			userAgent: ev.UserAgent, verb: ev.Verb}
		if o := ev.ObjectRef; o != nil {
			req.group, req.resource, req.namespace, req.name = o.APIGroup, o.Resource, o.Namespace, o.Name
			if o.Subresource != "" {
				req.resource += "/" + o.Subresource
			}
		}
		if ev.ResponseStatus != nil {
			req.code = ev.ResponseStatus.Code
		}
		out = append(out, req)
	}
	return out, sc.Err()
}

// tally counts the requests of one client in a time window.
type tally struct {
	requests int                      // every request but watches, leases and events
	writes   int                      // of which writes
	served   time.Duration            // the API server's time on them (received to response complete)
	watches  int                      // watch requests (long-running; not in requests)
	other    int                      // leases and events
	byKind   map[string]int           // "verb resource" -> count, over requests
	kindTime map[string]time.Duration // "verb resource" -> the API server's time
}

// count tallies the requests whose user agent starts with agent and that the API
// server received in [from, to).
func count(reqs []request, agent string, from, to time.Time) tally {
	t := tally{byKind: map[string]int{}, kindTime: map[string]time.Duration{}}
	for _, r := range reqs {
		if !strings.HasPrefix(r.userAgent, agent) || r.at.Before(from) || !r.at.Before(to) {
			continue
		}
		switch {
		case r.leaseOrEvent():
			t.other++
		case r.verb == "watch":
			t.watches++
		default:
			t.requests++
			t.served += r.took
			if r.isWrite() {
				t.writes++
			}
			what := r.resource
			if what == "" {
				what = "(discovery or another non-resource path)"
			}
			t.byKind[r.verb+" "+what]++
			t.kindTime[r.verb+" "+what] += r.took
		}
	}
	return t
}

// summary lists the kinds of request, most frequent first, with the API server's
// time on them: where a client's time went, for the report.
func (t tally) summary() string {
	keys := make([]string, 0, len(t.byKind))
	for k := range t.byKind {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if t.byKind[keys[i]] != t.byKind[keys[j]] {
			return t.byKind[keys[i]] > t.byKind[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d (%.1f s)", k, t.byKind[k], t.kindTime[k].Seconds())
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
