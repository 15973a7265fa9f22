package store_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

// Migration 0002 brings emails stored before NFKC normalisation (only
// lower-cased) to the form every flow now looks up, unless that form is
// already another account's.
func TestMigrationNormalisesEmails(t *testing.T) {
	t.Parallel()
	url := testservers.Postgres(t).NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	first := mustMigrations(t)[0]
	if _, err := conn.Exec(ctx, first.SQL, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO schema_migrations (version, name) VALUES (1, '0001_init.sql')`, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{ // as stored before -> after 0002
		"plain@example.com":        "plain@example.com",
		"ｆｕｌｌ@example.com":         "full@example.com",
		"e\u0301lodie@example.com": "\u00e9lodie@example.com",
		"taken@example.com":        "taken@example.com",
		"ｔａｋｅｎ@example.com":        "ｔａｋｅｎ@example.com", // its form is another account's
		"ℌello@example.com":        "hello@example.com",
	}
	for e := range rows {
		if _, err := conn.Exec(ctx, "INSERT INTO users (email, password_hash) VALUES ($1, 'x')", e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	for before, after := range rows {
		var got string
		if err := conn.QueryRow(ctx, "SELECT email FROM users WHERE email = $1", after).Scan(&got); err != nil {
			t.Errorf("%q: no row %q after the migration (%v)", before, after, err)
		}
	}
}
