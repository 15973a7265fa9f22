package backup

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// connectWait is how long a backup, a restore or a restore drill waits for its database or Redis
// to accept a TCP connection before it tries for real (and reports that
// attempt's error). A Job's pod can start before the network lets it through:
// NetworkPolicy engines such as kube-router add a new pod's address to the
// policy a moment after the pod starts, and reject until then ("connection
// refused"), which would spend one of the Job's two attempts; the database may
// also still be starting. `authserver migrate` waits the same way.
var connectWait = time.Minute

// awaitReachable waits until addr (host:port) accepts a TCP connection, the
// context ends or connectWait passes; it reports nothing itself.
func awaitReachable(ctx context.Context, addr string) {
	deadline := time.Now().Add(connectWait)
	d := net.Dialer{Timeout: 5 * time.Second}
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if !time.Now().Before(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// pgAddr is the host:port a PostgreSQL URL connects to first ("" for a Unix
// socket or a URL that does not parse: the real connection reports those).
func pgAddr(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil || cfg.Host == "" || cfg.Host[0] == '/' {
		return ""
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}
