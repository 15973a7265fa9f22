// Package softauthn is a software WebAuthn authenticator for tests: ES256
// keys, "none" attestation and assertions built by hand (CBOR with
// fxamacker/cbor, the encoder go-webauthn itself uses), so that tests drive
// go-webauthn's real verification through the real HTTP API. It holds
// discoverable credentials like a platform authenticator and can be told to
// misbehave (another origin, another rpId, no user verification, a counter
// that goes back). Import it from tests and benchmarks only.
package softauthn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Credential is one key pair held by the authenticator.
type Credential struct {
	ID         []byte
	Key        *ecdsa.PrivateKey
	RPID       string
	UserHandle []byte
	// Counter is the signature counter; Get adds one before signing when
	// the authenticator counts.
	Counter uint32
}

// Authenticator is a software authenticator. Its fields say how the next
// ceremony behaves; the zero value of the overrides means "as a browser
// would".
type Authenticator struct {
	// Origin is what the "browser" writes into clientDataJSON.
	Origin string
	// RPID, when set, replaces the rpId whose hash the authenticator signs
	// (a phishing page on another domain gets another rpIdHash).
	RPID string
	// NoUV leaves the user-verified flag unset.
	NoUV bool
	// Counting makes Get advance the counter (a security key); a synced
	// passkey keeps 0.
	Counting bool
	// Type, when set, replaces the clientData type ("webauthn.get" in an
	// assertion, "webauthn.create" in a registration).
	Type string
	// NextID, when set, is the id of the next credential Create makes (a
	// credential id collision).
	NextID []byte

	Credentials []*Credential
}

// New returns an authenticator whose browser runs on origin.
func New(origin string) *Authenticator { return &Authenticator{Origin: origin} }

var b64 = base64.RawURLEncoding

type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		RPID string `json:"rpId"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Allow []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
	} `json:"publicKey"`
}

func parseOptions(js []byte) (options, error) {
	var o options
	if err := json.Unmarshal(js, &o); err != nil {
		return o, fmt.Errorf("options: %w", err)
	}
	if o.PublicKey.Challenge == "" {
		return o, errors.New("options: no publicKey.challenge")
	}
	return o, nil
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	if a.Type != "" {
		typ = a.Type
	}
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

func (a *Authenticator) flags(attested bool) byte {
	f := byte(0x01 | 0x08 | 0x10) // user present, backup eligible, backed up (a synced passkey)
	if !a.NoUV {
		f |= 0x04
	}
	if attested {
		f |= 0x40
	}
	return f
}

func (a *Authenticator) rpHash(rpID string) []byte {
	if a.RPID != "" {
		rpID = a.RPID
	}
	h := sha256.Sum256([]byte(rpID))
	return h[:]
}

var enc, _ = cbor.CoreDetEncOptions().EncMode()

// Create answers navigator.credentials.create: the body of
// {"publicKey": PublicKeyCredentialCreationOptionsJSON} in, the
// RegistrationResponseJSON out. The new credential is kept (discoverable).
func (a *Authenticator) Create(optionsJSON []byte) (json.RawMessage, *Credential, error) {
	o, err := parseOptions(optionsJSON)
	if err != nil {
		return nil, nil, err
	}
	handle, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("options: user.id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	c := &Credential{ID: make([]byte, 32), Key: key, RPID: o.PublicKey.RP.ID, UserHandle: handle}
	_, _ = rand.Read(c.ID)
	if a.NextID != nil {
		c.ID, a.NextID = a.NextID, nil
	}
	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, nil, err
	}
	cose, err := enc.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pub[1:33], -3: pub[33:65]})
	if err != nil {
		return nil, nil, err
	}
	auth := append([]byte{}, a.rpHash(c.RPID)...)
	auth = append(auth, a.flags(true))
	auth = binary.BigEndian.AppendUint32(auth, c.Counter)
	auth = append(auth, make([]byte, 16)...) // AAGUID: none
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(c.ID)))
	auth = append(auth, c.ID...)
	auth = append(auth, cose...)
	att, err := enc.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		return nil, nil, err
	}
	out, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(a.clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal", "hybrid"},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	a.Credentials = append(a.Credentials, c)
	return out, c, nil
}

// Get answers navigator.credentials.get with c, or (c nil) with the first
// credential the options allow: for a discoverable request, the first one
// of the options' rpId.
func (a *Authenticator) Get(optionsJSON []byte, c *Credential) (json.RawMessage, error) {
	o, err := parseOptions(optionsJSON)
	if err != nil {
		return nil, err
	}
	if c == nil {
		for _, cand := range a.Credentials {
			if cand.RPID != o.PublicKey.RPID {
				continue
			}
			ok := len(o.PublicKey.Allow) == 0
			for _, al := range o.PublicKey.Allow {
				ok = ok || al.ID == b64.EncodeToString(cand.ID)
			}
			if ok {
				c = cand
				break
			}
		}
		if c == nil {
			return nil, errors.New("no credential for these options")
		}
	}
	return a.Assert(c, o.PublicKey.Challenge, o.PublicKey.RPID)
}

// Assert signs an assertion of c for a challenge and rpId.
func (a *Authenticator) Assert(c *Credential, challenge, rpID string) (json.RawMessage, error) {
	if a.Counting {
		c.Counter++
	}
	cd := a.clientData("webauthn.get", challenge)
	auth := append([]byte{}, a.rpHash(rpID)...)
	auth = append(auth, a.flags(false))
	auth = binary.BigEndian.AppendUint32(auth, c.Counter)
	cdh := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, auth...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.Key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(auth),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(c.UserHandle),
		},
	})
}
