package password

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"

	"github.com/leanauth/authstack/authserver/config"
)

// CanaryParams are the argon2id parameters of the restore drills' canary hash
// (store migration 0006): the OWASP minimum, so that `authserver migrate`,
// which writes it, and the drill, which verifies it, stay small.
var CanaryParams = config.Argon2{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}

// CanaryPassword is the drills' canary password for a pepper:
// hex(HMAC-SHA256(pepper, label)). It is derived, never stored: only a holder
// of the pepper (the authserver pods, the drill) can compute it, and the
// canary is no account (it lives outside the users table), so knowing it
// signs nobody in. A hash of it that verifies proves the pepper matches the data.
func CanaryPassword(p config.Pepper) string {
	m := hmac.New(sha256.New, p.Key)
	m.Write([]byte("authstack restore-drill canary v1"))
	return hex.EncodeToString(m.Sum(nil))
}
