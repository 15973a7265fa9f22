package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/store"
)

// ExitPepperMismatch is the exit code of `authserver migrate` when the stored
// password hashes use none of the configured peppers. The operator recognises it
// on the migrate init container (controllers/resources.PepperMismatchExitCode).
const ExitPepperMismatch = 3

// terminationLog is where Kubernetes reads a container's termination message.
var terminationLog = "/dev/termination-log"

// checkPeppers runs store.CheckPeppers when a pepper is configured; hashes made with a
// retired pepper id pass too.
func checkPeppers(ctx context.Context, directURL string, peppers []config.Pepper, retired []string, secret string) error {
	if len(peppers) == 0 {
		return nil
	}
	ids := make([]string, len(peppers))
	for i, p := range peppers {
		ids[i] = p.ID
	}
	return store.CheckPeppers(ctx, directURL, append(ids, retired...), secret)
}

// migrateExitCode is the exit code for a failed migrate. A pepper mismatch also
// writes its message (pepper ids and a Secret name, nothing secret) as the
// container's termination message, where the operator reads it.
func migrateExitCode(err error) int {
	var pm *store.PepperMismatchError
	if !errors.As(err, &pm) {
		return 1
	}
	// Only an existing file: outside a pod there is none, and none is created.
	if f, ferr := os.OpenFile(terminationLog, os.O_WRONLY|os.O_TRUNC, 0); ferr == nil {
		_, _ = f.WriteString(pm.Error())
		_ = f.Close()
	}
	return ExitPepperMismatch
}

// ensureDrillCanary writes the restore drills' canary hash (store migration
// 0006) with the current pepper when it is missing or made with another one,
// so that every backup carries a hash the drill can check against the
// stack's pepper (authserver/backup/verify.go). It runs after checkPeppers:
// a mismatched pepper never reaches it.
func ensureDrillCanary(ctx context.Context, directURL string, peppers []config.Pepper) error {
	if len(peppers) == 0 {
		return nil
	}
	h, err := password.New(password.CanaryParams, peppers[:1], 1, -1, time.Minute)
	if err != nil {
		return err
	}
	conn, err := store.ConnectURL(ctx, directURL, nil)
	if err != nil {
		return fmt.Errorf("connecting to write the restore-drill canary: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	pw := password.CanaryPassword(peppers[0])
	hash, ok, err := store.DrillCanaryHash(ctx, conn)
	if err != nil {
		return fmt.Errorf("reading the restore-drill canary: %w", err)
	}
	if ok {
		if r, err := h.Verify(ctx, pw, hash); err == nil && r.OK {
			return nil
		}
	}
	if hash, err = h.Hash(ctx, pw); err != nil {
		return fmt.Errorf("hashing the restore-drill canary: %w", err)
	}
	if err := store.SetDrillCanaryHash(ctx, conn, hash); err != nil {
		return fmt.Errorf("writing the restore-drill canary: %w", err)
	}
	return nil
}

// connectDatabase connects to DATABASE_DIRECT_URL, else DATABASE_URL, for
// a command that needs nothing else (what: for the error).
func connectDatabase(ctx context.Context, get config.Getenv, what string) (*pgx.Conn, error) {
	url, err := config.LoadDatabase(get, os.ReadFile)
	if err != nil {
		return nil, err
	}
	conn, err := store.ConnectURL(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", what, err)
	}
	return conn, nil
}

// PeppersCommand counts what each pepper still protects (store.CountPeppers) and writes
// the counts as one JSON line to out and to the container's termination message, where
// the operator reads them during a pepper rotation. It needs only DATABASE_URL (or
// DATABASE_DIRECT_URL): never a pepper.
func PeppersCommand(ctx context.Context, get config.Getenv, out io.Writer) error {
	conn, err := connectDatabase(ctx, get, "count the peppers in use")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	u, err := store.CountPeppers(ctx, conn)
	if err != nil {
		return err
	}
	line := u.Line()
	if f, ferr := os.OpenFile(terminationLog, os.O_WRONLY|os.O_TRUNC, 0); ferr == nil {
		_, _ = f.Write(line)
		_ = f.Close()
	}
	_, err = out.Write(line)
	return err
}

func peppersCommand(stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := PeppersCommand(ctx, os.LookupEnv, stdout); err != nil {
		fmt.Fprintln(stderr, "authserver peppers:", err)
		return 1
	}
	return 0
}
