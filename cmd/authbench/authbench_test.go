package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/internal/procstat"
	"github.com/leanauth/authstack/internal/testservers"
)

func TestPercentile(t *testing.T) {
	var xs []time.Duration
	for i := 1; i <= 100; i++ {
		xs = append(xs, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(xs, 0.5); p != 50*time.Millisecond {
		t.Errorf("p50 = %s", p)
	}
	if p := percentile(xs, 0.99); p != 99*time.Millisecond {
		t.Errorf("p99 = %s", p)
	}
	if p := percentile(nil, 0.5); p != 0 {
		t.Errorf("empty p50 = %s", p)
	}
	if m := median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}

func TestRunLoadCountsStatusesAndKeepsConnectionsAlive(t *testing.T) {
	var n, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == "POST" && !strings.Contains(string(b), `"email"`) {
			w.WriteHeader(400)
			return
		}
		if n.Add(1)%4 == 0 {
			w.WriteHeader(503)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	res := runLoad(context.Background(), loadSpec{name: "t", addr: addr, conns: 4, dur: 300 * time.Millisecond, okStatus: 200,
		request: func(int) []byte { return postJSON("/auth/login", `{"email":"a@b.c","password":"x"}`) }})
	total := res.Statuses[200] + res.Statuses[503]
	if res.OK == 0 || res.Statuses[503] == 0 || res.Statuses[400] != 0 || res.Errors != 0 {
		t.Fatalf("unexpected result %s", res)
	}
	if int64(total) != n.Load() {
		t.Fatalf("counted %d answers, server saw %d", total, n.Load())
	}
	if ratio := float64(res.Statuses[503]) / float64(total); ratio < 0.2 || ratio > 0.3 {
		t.Fatalf("503 share %.2f, want about 0.25", ratio)
	}
	if conns.Load() != 4 {
		t.Fatalf("%d connections opened, want 4 kept alive", conns.Load())
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.RPS() <= 0 || res.Elapsed < 300*time.Millisecond {
		t.Fatalf("bad stats %s elapsed %s", res, res.Elapsed)
	}
}

func TestRunLoadRecordsTransportErrors(t *testing.T) {
	port := testservers.FreePort(t) // nothing listens there
	res := runLoad(context.Background(), loadSpec{name: "down", addr: "127.0.0.1:" + strconv.Itoa(port), conns: 2, dur: 100 * time.Millisecond, okStatus: 200,
		request: func(int) []byte { return getRequest("/", "") }})
	if res.OK != 0 || res.Errors == 0 {
		t.Fatalf("want only errors against a closed port, got %s", res)
	}
}

func TestFloorHandler(t *testing.T) {
	r := testservers.Redis(t)
	rdb, err := app.NewRedis(r.URL()) // as runFloor
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := seedFloor(context.Background(), r.URL(), []string{"tok1"}, []byte(`{"user":{}}`)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(floorHandler(rdb))
	defer srv.Close()
	get := func(tok string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/floor", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("tok1"); code != 200 || body != `{"user":{}}` {
		t.Fatalf("known token: %d %s", code, body)
	}
	if code, _ := get("nope"); code != 401 {
		t.Fatalf("unknown token: %d", code)
	}
	if code, _ := get(""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	r.Stop(t)
	if code, _ := get("tok1"); code != 503 {
		t.Fatalf("Redis down: %d", code)
	}
}

func TestProcStats(t *testing.T) {
	pid := os.Getpid()
	hwm, err := procstat.StatusKiB(pid, "VmHWM")
	if err != nil || hwm <= 0 {
		t.Fatalf("VmHWM %d %v", hwm, err)
	}
	if !resetPeakRSS(pid) {
		t.Fatal("cannot reset VmHWM of our own process")
	}
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = 1
	}
	after, _ := procstat.StatusKiB(pid, "VmHWM")
	if after < 64*1024 {
		t.Fatalf("VmHWM %d KiB after touching 64 MiB", after)
	}
	_ = big[len(big)-1]
	start := cpuSeconds(pid)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && cpuSeconds(pid)-start < 0.05 {
	}
	if cpuSeconds(pid) <= start {
		t.Fatal("CPU time did not grow while spinning")
	}
}
