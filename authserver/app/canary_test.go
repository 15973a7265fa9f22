package app

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/internal/testservers"
)

// TestMigrateWritesTheDrillCanary: migrate writes the restore drills' canary
// with the current pepper, leaves a good one alone, and rewrites it after a
// pepper rotation; the canary is no user.
func TestMigrateWritesTheDrillCanary(t *testing.T) {
	url := testservers.Postgres(t).NewDatabase(t)
	ctx := context.Background()
	canary := func() (hash string, updated time.Time) {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, `SELECT password_hash, updated_at FROM drill_canary`).Scan(&hash, &updated); err != nil {
			t.Fatalf("reading the canary: %v", err)
		}
		var users int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&users); err != nil || users != 0 {
			t.Fatalf("the canary made %d users (%v)", users, err)
		}
		return hash, updated
	}
	verifies := func(pepperHex, hash string) bool {
		key, _ := config.ParsePepper(pepperHex)
		p := config.Pepper{ID: config.PepperID(key), Key: key}
		h, err := password.New(password.CanaryParams, []config.Pepper{p}, 1, -1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r, err := h.Verify(ctx, password.CanaryPassword(p), hash)
		return err == nil && r.OK
	}

	if code, _ := runMigrate(t, map[string]string{"DATABASE_URL": url, "AUTH_PEPPER": pepperA}); code != 0 {
		t.Fatalf("migrate: exit %d", code)
	}
	h1, u1 := canary()
	if !verifies(pepperA, h1) || verifies(pepperB, h1) {
		t.Fatal("the canary does not verify with exactly the pods' pepper")
	}
	if code, _ := runMigrate(t, map[string]string{"DATABASE_URL": url, "AUTH_PEPPER": pepperA}); code != 0 {
		t.Fatalf("second migrate: exit %d", code)
	}
	if h2, u2 := canary(); h2 != h1 || !u2.Equal(u1) {
		t.Fatal("a good canary was rewritten")
	}
	// Rotation: B current, A old. The canary follows the current pepper.
	if code, _ := runMigrate(t, map[string]string{"DATABASE_URL": url, "AUTH_PEPPER": pepperB, "AUTH_OLD_PEPPERS": pepperA}); code != 0 {
		t.Fatalf("migrate after rotation: exit %d", code)
	}
	if h3, _ := canary(); !verifies(pepperB, h3) {
		t.Fatal("after a rotation the canary does not verify with the new pepper")
	}
}
