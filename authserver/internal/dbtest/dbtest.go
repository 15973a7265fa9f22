// Package dbtest gives tests a migrated store on a fresh database of the shared real
// PostgreSQL server (internal/testservers).
package dbtest

import (
	"context"
	"testing"

	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

// Store returns a store on a new, migrated database, closed when the test ends.
func Store(t testing.TB) *store.Store {
	t.Helper()
	_, st := On(t, testservers.Postgres(t))
	return st
}

// On is Store on a new database of pg, with the database's URL.
func On(t testing.TB, pg *testservers.PostgresServer) (string, *store.Store) {
	t.Helper()
	url := pg.NewDatabase(t)
	ctx := context.Background()
	if _, err := store.Migrate(ctx, url); err != nil {
		t.Fatalf("migrating the test database: %v", err)
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("opening the test database: %v", err)
	}
	t.Cleanup(st.Close)
	return url, st
}
