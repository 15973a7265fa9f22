package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// perfShares is where a profile's samples went, each sample counted once by
// the first frame from the leaf that is either tracing (the OpenTelemetry
// SDK and exporter, go-redis's redisotel hook, the request span of
// authserver/httpapi, and the HTTP client's connection goroutines, which on
// the session and check paths only the OTLP exporter uses) or the server's
// own work (its handlers, go-redis, pgx, the HTTP server): an allocation
// made by the SDK counts as tracing, one made by the handler as work, the
// Redis GET under redisotel's hook as work. Frames of shared libraries
// (syscalls, bufio, net, the runtime, the kernel) are skipped over to their
// caller. Samples under neither are the GC's background workers or the rest
// of the runtime and kernel (scheduler, idle).
type perfShares struct {
	samples                                       int
	work, requestSpan, redisSpan, export, tracing int // tracing: the other tracing frames
	gcWorkers, runtime                            int
}

var workPrefixes = []string{"github.com/leanauth/", "github.com/redis/go-redis/v9", "github.com/jackc/",
	"github.com/prometheus/", "log/slog", "google.golang.org/grpc", "net/http.(*conn)", "net/http.(*response)",
	"net/http.(*chunkWriter)", "net/http.(*ServeMux)", "net/http.serverHandler", "net/http.HandlerFunc",
	"net/http.(*Server)", "net/http.(*http2serverConn)"}

// perfTracingShares reads `perf script` output (one sample: a header line,
// then one indented line per frame, leaf first; a blank line after it).
func perfTracingShares(r io.Reader) (perfShares, error) {
	var s perfShares
	var frames []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			s.add(frames)
			frames = frames[:0]
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			continue // the sample's header
		}
		if f := strings.Fields(line); len(f) >= 2 {
			sym, _, _ := strings.Cut(f[1], "+0x")
			frames = append(frames, sym)
		}
	}
	s.add(frames)
	return s, sc.Err()
}

func isTracing(sym string) bool {
	return strings.HasPrefix(sym, "go.opentelemetry.io/") ||
		strings.HasPrefix(sym, "github.com/redis/go-redis/extra/redisotel") ||
		strings.Contains(sym, "httpapi.(*requestTracer)") ||
		strings.HasPrefix(sym, "net/http.(*persistConn)")
}

func (s *perfShares) add(frames []string) {
	if len(frames) == 0 {
		return
	}
	s.samples++
	has := func(sub string) bool {
		for _, f := range frames {
			if strings.Contains(f, sub) {
				return true
			}
		}
		return false
	}
	for _, f := range frames {
		if isTracing(f) {
			switch {
			case has("batchSpanProcessor") || has("/otlptrace") || has("net/http.(*persistConn)"):
				s.export++
			case has("redisotel"):
				s.redisSpan++
			case has("(*requestTracer)"):
				s.requestSpan++
			default:
				s.tracing++
			}
			return
		}
		for _, p := range workPrefixes {
			if strings.HasPrefix(f, p) {
				s.work++
				return
			}
		}
	}
	if has("runtime.gcBgMarkWorker") || has("runtime.bgsweep") || has("runtime.bgscavenge") {
		s.gcWorkers++
	} else {
		s.runtime++
	}
}

func (s perfShares) String() string {
	if s.samples == 0 {
		return "no samples"
	}
	pc := func(n int) float64 { return 100 * float64(n) / float64(s.samples) }
	tr := s.requestSpan + s.redisSpan + s.export + s.tracing
	return fmt.Sprintf("%d samples: work %.1f %%, tracing %.1f %% (request span %.1f, Redis span %.1f, export %.1f, other %.1f), GC workers %.1f %%, other runtime and kernel %.1f %%",
		s.samples, pc(s.work), pc(tr), pc(s.requestSpan), pc(s.redisSpan), pc(s.export), pc(s.tracing), pc(s.gcWorkers), pc(s.runtime))
}
