package app

import (
	"context"
	"errors"
	"os"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/store"
)

// ExitPepperMismatch is the exit code of `authserver migrate` when the stored
// password hashes use none of the configured peppers. The operator recognises it
// on the migrate init container (controllers/resources.PepperMismatchExitCode).
const ExitPepperMismatch = 3

// terminationLog is where Kubernetes reads a container's termination message.
var terminationLog = "/dev/termination-log"

// checkPeppers runs store.CheckPeppers when a pepper is configured.
func checkPeppers(ctx context.Context, directURL string, peppers []config.Pepper, secret string) error {
	if len(peppers) == 0 {
		return nil
	}
	ids := make([]string, len(peppers))
	for i, p := range peppers {
		ids[i] = p.ID
	}
	return store.CheckPeppers(ctx, directURL, ids, secret)
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
