package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/store"
)

// FactorsReset is what factors-reset did, printed as one JSON line.
type FactorsReset struct {
	UserID string `json:"user_id"`
	store.FactorsRemoved
	SessionsEnded int `json:"sessions_ended"`
}

// FactorsResetCommand removes every second factor of the account with the
// address email (TOTP, passkeys, recovery codes) and ends its sessions, in
// one transaction under the user's row lock, with a MFA_RESET audit row. It
// is the administrator's way out when the only factors of an account are
// not its owner's (registered with a stolen session: docs/security.md) or
// are lost with the recovery codes; the owner then logs in with the
// password and enrols again. It needs only DATABASE_URL (or
// DATABASE_DIRECT_URL); every pod refuses the ended sessions, cached in
// Redis or not, after its next revocation sync (about a second: the
// revocations are written with the deletion). Errors: a
// malformed address, no account with it, or the database's.
func FactorsResetCommand(ctx context.Context, get config.Getenv, email string, out io.Writer) error {
	norm, ok := service.NormalizeEmail(email)
	if !ok {
		return errors.New("not an email address")
	}
	conn, err := connectDatabase(ctx, get, "reset the factors")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var res FactorsReset
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		u, err := store.UserByEmail(ctx, tx, norm)
		if err != nil {
			return err
		}
		if _, err := store.LockUser(ctx, tx, u.ID); err != nil {
			return err
		}
		res.UserID = u.ID
		if res.FactorsRemoved, err = store.ResetFactors(ctx, tx, u.ID); err != nil {
			return err
		}
		hs, err := store.DeleteUserSessions(ctx, tx, u.ID, "")
		if err != nil {
			return err
		}
		res.SessionsEnded = len(hs)
		return store.InsertAudit(ctx, tx, store.AuditEntry{UserID: u.ID, Kind: audit.MFAReset, Details: map[string]any{
			"totp": res.TOTP, "passkeys": res.Passkeys, "recovery_codes": res.RecoveryCodes, "sessions": res.SessionsEnded}})
	})
	if errors.Is(err, store.ErrNotFound) {
		return errors.New("no account with that address")
	}
	if err != nil {
		return fmt.Errorf("resetting the factors: %w", err)
	}
	return json.NewEncoder(out).Encode(res)
}

func factorsResetCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := FactorsResetCommand(ctx, os.LookupEnv, args[0], stdout); err != nil {
		fmt.Fprintln(stderr, "authserver factors-reset:", err)
		return 1
	}
	return 0
}
