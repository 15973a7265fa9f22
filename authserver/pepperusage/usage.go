// Package pepperusage is how many stored secrets each pepper still protects: counted by
// `authserver peppers` (authserver/app/pepper.go), written as one JSON line to the
// container's termination message, and read by the operator
// (controllers/resources/pepperrotation.go) for status.pepper. It also derives a
// pepper's id. It imports only the standard library, so the operator can use it.
package pepperusage

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// ID is a pepper's id, stored in each hash it made (keyid=): base64(SHA-256(key)[:6]).
// Only the id is ever shown, never the key.
func ID(key []byte) string {
	sum := sha256.Sum256(key)
	return base64.RawStdEncoding.EncodeToString(sum[:6])
}

// Usage counts, per pepper id, the stored password hashes and TOTP secrets.
type Usage struct {
	PasswordHashes map[string]int64 `json:"password_hashes"`
	TOTPSecrets    map[string]int64 `json:"totp_secrets"`
	// Other counts password hashes without a pepper id (none in practice).
	Other int64 `json:"other,omitempty"`
}

// MaxIDs bounds the ids kept per map, so the line fits the 4096 bytes the kubelet
// keeps of a termination message (a stack has a handful of peppers).
const MaxIDs = 40

// Line is u as one JSON line.
func (u Usage) Line() []byte {
	b, _ := json.Marshal(u) // cannot fail: strings and numbers
	return append(b, '\n')
}

// Parse reads a usage line from a termination message (its last non-empty line).
func Parse(msg string) (Usage, error) {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	var u Usage
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &u); err != nil {
		return Usage{}, fmt.Errorf("reading the pepper usage: %w", err)
	}
	if u.PasswordHashes == nil || u.TOTPSecrets == nil {
		return Usage{}, fmt.Errorf("reading the pepper usage: counts missing")
	}
	return u, nil
}
