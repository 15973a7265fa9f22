package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// shouldPing pings a pooled connection before it is handed out when it was idle for
// over a second (pgxpool's default) or when the server has already written to it or
// closed it while it sat idle: a pgbouncer pod stopping in a rollout (every credential
// rotation or pool setting change rolls them) or an administrator ending the session.
// The ping then fails, pgxpool drops the connection and takes another, and the query
// never sees the dead one. The check is one non-blocking peek, no round trip.
func shouldPing(_ context.Context, p pgxpool.ShouldPingParams) bool {
	return p.IdleDuration > time.Second || unsolicited(p.Conn.PgConn().Conn())
}
