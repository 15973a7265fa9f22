package authtest

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/leanauth/authstack/internal/testservers"
)

// TestStartTakesOtherPortsWhenOneIsTaken: a port found free can be bound by another
// test before the authserver binds it (CI saw "listening on METRICS_ADDR ...: address
// already in use" in TestServerOnRedisCluster); Start then picks other ports instead
// of failing the test.
func TestStartTakesOtherPortsWhenOneIsTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	calls := 0
	freePort = func(t testing.TB) int {
		calls++
		if calls == 2 { // the first METRICS_ADDR: taken meanwhile
			return taken
		}
		return testservers.FreePort(t)
	}
	t.Cleanup(func() { freePort = testservers.FreePort })
	e := Start(t, Options{})
	if calls != 4 {
		t.Fatalf("ports picked %d times, want 4 (two starts)", calls)
	}
	if strings.HasSuffix(e.Metrics, ":"+strconv.Itoa(taken)+"/metrics") {
		t.Fatalf("metrics on the taken port: %s", e.Metrics)
	}
	if r := e.Do(t, "GET", "/ready", nil); r.Status != 200 {
		t.Fatalf("ready: %d %s", r.Status, r.Body)
	}
}
