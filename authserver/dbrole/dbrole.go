// Package dbrole runs the two database steps of the operator's password rotation of a
// managed PostgreSQL (controllers/dbrotation.go): Prepare gives the role the pods do
// not use a new password (creating it the first time, a member of the owner role
// that acts as the owner), Retire takes the previous role's password away once no pod
// uses it. The password reaches the server only as a SCRAM verifier, so no statement
// log ever holds it.
package dbrole

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/leanauth/authstack/authserver/store"
)

// scramIterations is PostgreSQL's default (scram_iterations).
const scramIterations = 4096

// Verifier is the SCRAM-SHA-256 verifier of password (RFC 5802/7677, in the format of
// pg_authid.rolpassword). PostgreSQL stores a verifier it is given as it is.
// Passwords must be ASCII without control characters (SASLprep leaves them unchanged):
// the operator's are hex.
func Verifier(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("deriving the SCRAM key: %w", err)
	}
	mac := func(msg string) []byte {
		h := hmac.New(sha256.New, salted)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac("Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac("Server Key"))), nil
}

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func connect(ctx context.Context, cfg *pgx.ConnConfig, what string) (*pgx.Conn, error) {
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec // pgbouncer-safe, like the authserver
	conn, err := store.Connect(ctx, cfg, nil)        // waits for the database (a new Job pod)
	if err != nil {
		return nil, fmt.Errorf("connecting as %s: %w", what, err)
	}
	return conn, nil
}

// Prepare connects with url (a role that may alter roles: the managed database's
// owner, or a role acting as it) and makes role log in with password. A role other
// than owner is created the first time, made a member of owner, and set to act as
// owner in each session (ALTER ROLE ... SET role), so that the objects migrations
// create are owned by owner whichever role logs in. It then logs in as role (same
// host and database) and checks that the session acts as owner.
func Prepare(ctx context.Context, url, owner, role, password string) error {
	if password == "" || strings.ContainsFunc(password, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return errors.New("the new password must be printable ASCII without spaces")
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return errors.New("parsing the database URL: invalid connection string") // never quote it
	}
	login := cfg.User
	conn, err := connect(ctx, cfg.Copy(), "role "+login)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	id := pgx.Identifier{role}.Sanitize()
	if role != owner {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
			return fmt.Errorf("looking up role %s: %w", role, err)
		}
		if !exists {
			if _, err := conn.Exec(ctx, "CREATE ROLE "+id+" LOGIN"); err != nil {
				return fmt.Errorf("creating role %s: %w", role, err)
			}
		}
		for _, stmt := range []string{
			"GRANT " + pgx.Identifier{owner}.Sanitize() + " TO " + id,
			"ALTER ROLE " + id + " SET role TO " + literal(owner),
		} {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("making role %s act as %s: %w", role, owner, err)
			}
		}
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	v, err := Verifier(password, salt, scramIterations)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "ALTER ROLE "+id+" LOGIN PASSWORD "+literal(v)); err != nil {
		return fmt.Errorf("setting the password of role %s: %w", role, err)
	}
	// The new credential works, and acts as the owner.
	next := cfg.Copy()
	next.User, next.Password = role, password
	nc, err := connect(ctx, next, "role "+role+" with its new password")
	if err != nil {
		return err
	}
	defer nc.Close(context.Background())
	var current string
	if err := nc.QueryRow(ctx, "SELECT current_user").Scan(&current); err != nil {
		return fmt.Errorf("checking the new login of role %s: %w", role, err)
	}
	if current != owner {
		return fmt.Errorf("role %s acts as %s, want %s", role, current, owner)
	}
	return nil
}

// Retire connects with url (the new credential) and removes role's password, so it
// no longer logs in, then ends role's remaining sessions. It refuses to retire the
// role it logs in as.
func Retire(ctx context.Context, url, role string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return errors.New("parsing the database URL: invalid connection string")
	}
	if cfg.User == role {
		return fmt.Errorf("refusing to retire role %s: it is the role this step logs in as", role)
	}
	conn, err := connect(ctx, cfg.Copy(), "role "+cfg.User)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" PASSWORD NULL"); err != nil {
		return fmt.Errorf("removing the password of role %s: %w", role, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()", role); err != nil {
		return fmt.Errorf("ending the sessions of role %s: %w", role, err)
	}
	return nil
}
