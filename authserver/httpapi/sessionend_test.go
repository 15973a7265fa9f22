package httpapi_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/internal/softauthn"
)

// A change of factors made on a session's authority commits only while the
// session exists: a passkey registration that passed authentication just
// before the owner signed out everywhere (or a reset, or factors-reset,
// ended the sessions) is refused, not stored. The finish request is held on
// the ceremony row while the owner's logout-all commits.
func TestEndedSessionCannotFinishAPasskeyRegistration(t *testing.T) {
	e := passkeyEnv(t)
	ctx := context.Background()
	owner := "rt9-race-owner@example.com"
	stolen := e.SignupVerifyLogin(t, owner, "the owners passphrase")
	lr := e.Do(t, "POST", "/auth/login", creds(owner, "the owners passphrase"))
	ownerTok, _ := lr.JSON["token"].(string)
	if lr.Status != 200 || ownerTok == "" {
		t.Fatalf("the owner's login: %d %s", lr.Status, lr.Body)
	}
	a := softauthn.New(pkOrigin)
	r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(stolen)...)
	if r.Status != 200 {
		t.Fatalf("register/begin: %d %s", r.Status, r.Body)
	}
	cred, _, err := a.Create(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	// Hold the ceremony row so that the finish request, once authenticated,
	// waits in takeCeremony.
	tx, err := e.Store.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM webauthn_challenges FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan *authtest.Response, 1)
	go func() {
		done <- e.Do(t, "POST", "/auth/passkeys/register/finish", map[string]any{"name": "thief", "credential": cred}, authtest.Bearer(stolen)...)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := e.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%webauthn_challenges%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the finish request never waited on the ceremony")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The owner, on a session of their own, signs out everywhere meanwhile.
	if r := e.Do(t, "POST", "/auth/logout-all", nil, authtest.Bearer(ownerTok)...); r.Status != 204 {
		t.Fatalf("the owner's logout-all: %d %s", r.Status, r.Body)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	fin := <-done
	var n int
	if err := e.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM passkeys p JOIN users u ON u.id = p.user_id WHERE u.email = $1`, owner).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 || fin.Status != 401 {
		t.Fatalf("after the owner's logout-all (which ended the session) the thief's in-flight registration answered %d and left %d passkey(s)", fin.Status, n)
	}
}

// factors-reset also ends the WebAuthn ceremonies in progress: a
// registration begun before it cannot be finished after it.
func TestFactorsResetEndsCeremoniesInProgress(t *testing.T) {
	t.Parallel()
	e := passkeyEnv(t)
	ctx := context.Background()
	owner := "ceremony-owner@example.com"
	stolen := e.SignupVerifyLogin(t, owner, "the owners passphrase")
	r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(stolen)...)
	if r.Status != 200 {
		t.Fatalf("register/begin: %d %s", r.Status, r.Body)
	}
	cred, _, err := softauthn.New(pkOrigin).Create(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	getenv := databaseEnv(e)
	if err := app.FactorsResetCommand(ctx, getenv, owner, io.Discard); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := e.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM webauthn_challenges`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("ceremonies left after factors-reset: %d (%v)", n, err)
	}
	if fin := e.Do(t, "POST", "/auth/passkeys/register/finish", map[string]any{"name": "thief", "credential": cred}, authtest.Bearer(stolen)...); fin.Status == 201 {
		t.Fatalf("a registration begun before factors-reset finished after it: %d %s", fin.Status, fin.Body)
	}
}
