package main

import (
	"strings"
	"testing"
)

// Each sample is counted once, by the first tracing or working frame from
// the leaf: an allocation under the SDK is tracing, one under the handler
// work, the Redis GET under redisotel's hook work, a write syscall the
// caller's (the exporter's HTTP client, the server's response).
func TestPerfTracingShares(t *testing.T) {
	const script = `authserver 1 1.0:    1001001 cpu-clock:pppH: 
	   1 runtime.mallocgc+0xa5 (/bin/authserver)
	   2 go.opentelemetry.io/otel/sdk/trace.(*tracer).newRecordingSpan+0x10 (/bin/authserver)
	   3 github.com/leanauth/authstack/authserver/httpapi.(*requestTracer).start+0x1 (/bin/authserver)
	   4 github.com/leanauth/authstack/authserver/httpapi.(*Server).instrument.func1+0x1 (/bin/authserver)

authserver 1 1.1:    1001001 cpu-clock:pppH: 
	   1 runtime.mallocgc+0xa5 (/bin/authserver)
	   2 github.com/leanauth/authstack/authserver/session.(*Manager).validateHash+0x1 (/bin/authserver)
	   3 github.com/leanauth/authstack/authserver/httpapi.(*Server).instrument.func1+0x1 (/bin/authserver)

authserver 1 1.2:    1001001 cpu-clock:pppH: 
	   1 tcp_sendmsg+0x1 ([kernel.kallsyms])
	   2 syscall.Syscall+0x1 (/bin/authserver)
	   3 github.com/redis/go-redis/v9.(*baseClient).process+0x1 (/bin/authserver)
	   4 github.com/redis/go-redis/extra/redisotel/v9.(*tracingHook).ProcessHook.func1+0x1 (/bin/authserver)

authserver 1 1.3:    1001001 cpu-clock:pppH: 
	   1 go.opentelemetry.io/otel/sdk/trace.(*tracer).Start+0x1 (/bin/authserver)
	   2 github.com/redis/go-redis/extra/redisotel/v9.(*tracingHook).ProcessHook.func1+0x1 (/bin/authserver)

authserver 1 1.4:    1001001 cpu-clock:pppH: 
	   1 google.golang.org/protobuf/proto.Marshal+0x1 (/bin/authserver)
	   2 go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp.(*client).UploadTraces+0x1 (/bin/authserver)
	   3 go.opentelemetry.io/otel/sdk/trace.(*batchSpanProcessor).processQueue+0x1 (/bin/authserver)

authserver 1 1.41:    1001001 cpu-clock:pppH: 
	   1 tcp_sendmsg+0x1 ([kernel.kallsyms])
	   2 syscall.Syscall+0x1 (/bin/authserver)
	   3 net.(*conn).Write+0x1 (/bin/authserver)
	   4 net/http.(*persistConn).writeLoop+0x1 (/bin/authserver)

authserver 1 1.42:    1001001 cpu-clock:pppH: 
	   1 syscall.Syscall+0x1 (/bin/authserver)
	   2 bufio.(*Writer).Flush+0x1 (/bin/authserver)
	   3 net/http.(*response).finishRequest+0x1 (/bin/authserver)
	   4 net/http.(*conn).serve+0x1 (/bin/authserver)

authserver 1 1.5:    1001001 cpu-clock:pppH: 
	   1 runtime.scanobject+0x1 (/bin/authserver)
	   2 runtime.gcBgMarkWorker+0x1 (/bin/authserver)

authserver 1 1.6:    1001001 cpu-clock:pppH: 
	   1 runtime.findRunnable+0x1 (/bin/authserver)
	   2 runtime.schedule+0x1 (/bin/authserver)
`
	s, err := perfTracingShares(strings.NewReader(script))
	if err != nil {
		t.Fatal(err)
	}
	want := perfShares{samples: 9, work: 3, requestSpan: 1, redisSpan: 1, export: 2, gcWorkers: 1, runtime: 1}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if got := s.String(); !strings.Contains(got, "tracing 44.4 % (request span 11.1, Redis span 11.1, export 22.2, other 0.0)") {
		t.Fatalf("summary: %s", got)
	}
}
