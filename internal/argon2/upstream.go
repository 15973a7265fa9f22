package argon2

// Upstream is the golang.org/x/crypto version this fork was taken from.
// TestUpstreamIsGoMod fails when go.mod requires another one: on every bump,
// compare x/crypto's argon2 and blake2b at the new version with this folder,
// port what changed, and set Upstream to the new version.
const Upstream = "v0.59.0"

// verbatim are the files copied unchanged from x/crypto/argon2 at Upstream
// (the rest is reduced to Argon2id and reuses its memory).
var verbatim = []string{"blake2b.go", "blamka_amd64.go", "blamka_amd64.s", "blamka_generic.go"}
