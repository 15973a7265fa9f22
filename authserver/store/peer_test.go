//go:build unix

package store

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/internal/testservers"
)

// TestPeekWhileAReaderWaits: pgconn starts a background reader when a write takes
// over 15 ms (a loaded machine) and that reader can stay in a read on the idle
// connection the pool then holds. The pool's check of an idle connection must not
// wait for that read (it did: Acquire, the query and the server's shutdown hung for
// good, in CI's TestCheck and TestTimingTellsNothing), and still sees a connection
// the server ended.
func TestPeekWhileAReaderWaits(t *testing.T) {
	t.Parallel()
	url := testservers.Postgres(t).NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var pid int32
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	nc := conn.PgConn().Conn()
	readerDone := make(chan error, 1)
	go func() { // the background reader: waits for the server, holding the read side
		_, err := nc.Read(make([]byte, 1))
		readerDone <- err
	}()
	time.Sleep(100 * time.Millisecond) // let it block in its read (nothing to order: it only has to be waiting)

	peek := func() bool {
		got := make(chan bool, 1)
		go func() { got <- unsolicited(nc) }()
		select {
		case v := <-got:
			return v
		case <-time.After(5 * time.Second):
			t.Fatal("the check of an idle connection waited for the reader's read")
			return false
		}
	}
	if peek() {
		t.Fatal("an idle connection the server has not written to was reported as unsolicited")
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1, 5000)", pid); err != nil {
		t.Fatal(err)
	}
	// The reader takes the server's farewell; the check then sees the closed socket.
	deadline := time.Now().Add(10 * time.Second)
	for !peek() {
		if time.Now().After(deadline) {
			t.Fatal("a connection the server ended is not seen while a reader waits on it")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = nc.SetReadDeadline(time.Now())
	if err := <-readerDone; err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Logf("the reader ended with %v", err)
	}
}
