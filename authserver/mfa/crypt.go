package mfa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// hkdfInfo labels the key derived from a pepper for TOTP secrets: the same
// pepper keys password hashes (HMAC) and this, never with the same key.
const hkdfInfo = "authstack/totp-secret/v1"

// ErrUnknownKey: a secret was encrypted with a pepper no longer configured.
var ErrUnknownKey = errors.New("TOTP secret encrypted with a pepper that is not configured")

// Keyring encrypts TOTP secrets at rest with AES-256-GCM under a key derived
// (HKDF-SHA256) from each configured pepper; the first encrypts, all decrypt.
// A ciphertext names its pepper by id (the pepper's own id, as in PHC
// strings) and is bound to its user (additional data), so a row copied to
// another user does not decrypt.
type Keyring struct {
	ids   []string
	aeads map[string]cipher.AEAD
}

// NewKeyring derives the keys of the peppers (id → key), current first.
func NewKeyring(ids []string, peppers [][]byte) (*Keyring, error) {
	if len(ids) == 0 || len(ids) != len(peppers) {
		return nil, errors.New("TOTP keyring: no pepper configured")
	}
	k := &Keyring{ids: ids, aeads: map[string]cipher.AEAD{}}
	for i, p := range peppers {
		key, err := hkdf.Key(sha256.New, p, nil, hkdfInfo, 32)
		if err != nil {
			return nil, fmt.Errorf("deriving TOTP key: %w", err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("TOTP key: %w", err)
		}
		if k.aeads[ids[i]], err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("TOTP key: %w", err)
		}
	}
	return k, nil
}

// Current is the id of the key that encrypts.
func (k *Keyring) Current() string { return k.ids[0] }

// Seal encrypts secret for userID with the current key: nonce || ciphertext.
func (k *Keyring) Seal(userID, secret string) (enc []byte, keyID string) {
	a := k.aeads[k.ids[0]]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(secret)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return a.Seal(nonce, nonce, []byte(secret), []byte(userID)), k.ids[0]
}

// Open decrypts a secret sealed for userID under keyID.
func (k *Keyring) Open(keyID, userID string, enc []byte) (string, error) {
	a, ok := k.aeads[keyID]
	if !ok {
		return "", ErrUnknownKey
	}
	if len(enc) < a.NonceSize() {
		return "", errors.New("TOTP secret: ciphertext too short")
	}
	pt, err := a.Open(nil, enc[:a.NonceSize()], enc[a.NonceSize():], []byte(userID))
	if err != nil {
		return "", errors.New("TOTP secret: decryption failed")
	}
	return string(pt), nil
}
