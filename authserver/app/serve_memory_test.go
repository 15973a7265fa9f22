package app_test

import (
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/authtest"
)

// serve drops its executable's start-up pages once listening, and its soft
// memory limit is the hashing one while passwords hash and the full one
// again after (docs/benchmarks.md, "Session 6"). Serve runs in this test's
// process, so its limit is ours to read.
func TestServeMemoryWhileHashing(t *testing.T) {
	e := authtest.Start(t, authtest.Options{})
	var started struct {
		Dropped      int64 `json:"executable_pages_dropped_bytes"`
		Limit        int64 `json:"memory_limit_bytes"`
		HashingLimit int64 `json:"memory_limit_hashing_bytes"`
	}
	for _, line := range strings.Split(e.Logs(), "\n") {
		if strings.Contains(line, `"msg":"authserver started"`) {
			if err := json.Unmarshal([]byte(line), &started); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
		}
	}
	if started.Dropped <= 0 || started.HashingLimit <= 0 || started.HashingLimit > started.Limit {
		t.Fatalf("started with %+v; logs:\n%s", started, e.Logs())
	}
	sawLow := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			if debug.SetMemoryLimit(-1) == started.HashingLimit {
				close(sawLow)
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	e.SignupVerifyLogin(t, "hashing@example.com", "correct horse battery staple")
	select {
	case <-sawLow:
	case <-time.After(30 * time.Second):
		t.Fatalf("the soft limit never was %d while the signup and the login hashed", started.HashingLimit)
	}
	for deadline := time.Now().Add(30 * time.Second); debug.SetMemoryLimit(-1) != started.Limit; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("soft limit %d 30 s after the last hash, want %d", debug.SetMemoryLimit(-1), started.Limit)
		}
	}
}
