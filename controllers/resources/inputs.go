package resources

import (
	"crypto/sha256"
	"encoding/hex"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// Inputs is what the builders need beyond the AuthStack: what the operator was told
// (flags) and what the reconciler observed in the cluster.
type Inputs struct {
	// AuthServerImage is the operator's default authserver image.
	AuthServerImage string
	// Pepper is the Secret key holding the pepper that hashes: the spec's, or the
	// generated one, or the current version of a rotation.
	Pepper authv1alpha1.SecretKeyRef
	// PepperMounts are the pepper versions the pods get (pepperrotation.go).
	PepperMounts PepperMounts
	// ConfigHash is ConfigHash over every referenced Secret value.
	ConfigHash string

	// Data tier (docs/data-tier.md).
	// PgBouncerImage and RedisImage are the operator's default images.
	PgBouncerImage string
	RedisImage     string
	// PoolerConfigHash is SecretDataHash of the pgbouncer config Secret.
	PoolerConfigHash string
	// RedisConfigHash hashes redis.conf and the Redis auth include.
	RedisConfigHash string
}

// PepperRef is the pepper the stack uses: the one the spec brings, else the generated one.
func PepperRef(stack *authv1alpha1.AuthStack) authv1alpha1.SecretKeyRef {
	if stack.Spec.Pepper != nil {
		return stack.Spec.Pepper.SecretRef
	}
	return authv1alpha1.SecretKeyRef{Name: PepperSecretName(stack), Key: PepperSecretKey}
}

// ReferencedSecrets lists every Secret key the authserver pods read, the pepper included,
// each with the spec field that names it (for error messages).
func ReferencedSecrets(stack *authv1alpha1.AuthStack) []SecretUse {
	uses := []SecretUse{{Field: "spec.pepper.secretRef", Ref: PepperRef(stack)}}
	if r := stack.Spec.Database.URLSecretRef; r != nil {
		uses = append(uses, SecretUse{Field: "spec.database.urlSecretRef", Ref: *r})
	}
	if r := stack.Spec.Redis.URLSecretRef; r != nil {
		uses = append(uses, SecretUse{Field: "spec.redis.urlSecretRef", Ref: *r})
	}
	// The generated passwords of the managed data tier: the connection Secret the pods
	// read is composed from them, so they are part of the pods' hash.
	if ManagedRedis(stack) {
		uses = append(uses, SecretUse{Field: "spec.redis (generated password)", Ref: RedisPasswordRef(stack)})
	}
	if ManagedDatabase(stack) {
		uses = append(uses, SecretUse{Field: "spec.database.managed (generated password)", Ref: PostgresPasswordRef(stack)})
	}
	if r := stack.Spec.SMTP.PasswordSecretRef; r != nil {
		uses = append(uses, SecretUse{Field: "spec.smtp.passwordSecretRef", Ref: *r})
	}
	return append(uses, observabilitySecrets(stack)...)
}

// SecretUse is one Secret key that a stack reads, and the field that says so.
type SecretUse struct {
	Field string
	Ref   authv1alpha1.SecretKeyRef
}

// ConfigHash hashes the values of the referenced Secret keys, in the order given
// (ReferencedSecrets' order is fixed). Values are hashed, never stored or logged.
func ConfigHash(uses []SecretUse, values map[authv1alpha1.SecretKeyRef][]byte) string {
	h := sha256.New()
	for _, u := range uses {
		v := sha256.Sum256(values[u.Ref])
		h.Write([]byte(u.Field + "\x00" + u.Ref.Name + "\x00" + u.Ref.Key + "\x00"))
		h.Write(v[:])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
