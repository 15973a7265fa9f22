package backup

import (
	"context"
	"net"
	"time"

	"github.com/leanauth/authstack/authserver/store"
)

// awaitReachable waits until addr (host:port) accepts a TCP connection, the
// context ends or store.ConnectWait passes; it reports nothing itself (the real
// connection that follows does). It is store.Connect's wait for a server that is
// not PostgreSQL (Redis): a new Job pod may be refused until the NetworkPolicy
// engine has admitted its address (authserver/store/connect.go).
func awaitReachable(ctx context.Context, addr string) {
	deadline := time.Now().Add(store.ConnectWait)
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
