package backup

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPassphraseProtectedPrivateKey: a protected key needs
// BACKUP_PRIVATE_KEY_PASSPHRASE_FILE; the right passphrase decrypts, a wrong
// one or none fails with a message saying what to set.
func TestPassphraseProtectedPrivateKey(t *testing.T) {
	k := newGPGKeyPass(t, "correct horse")
	protected := k.privateFile
	pub, err := loadPublicKeys(k.publicFile)
	if err != nil {
		t.Fatal(err)
	}
	var enc bytes.Buffer
	e, err := newEncoder(&enc, pub, "x")
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("PGDMP payload "), 1000)
	e.Write(payload)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	if _, err := loadPrivateKeys(protected, ""); err == nil || !strings.Contains(err.Error(), "BACKUP_PRIVATE_KEY_PASSPHRASE_FILE") {
		t.Fatalf("no passphrase: %v", err)
	}
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("battery staple\n"), 0o600)
	if _, err := loadPrivateKeys(protected, wrong); err == nil || !strings.Contains(err.Error(), "does not unlock") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	right := filepath.Join(t.TempDir(), "right")
	os.WriteFile(right, []byte("correct horse\n"), 0o600)
	keys, err := loadPrivateKeys(protected, right)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := decode(&out, bytes.NewReader(enc.Bytes()), keys, 1<<20); err != nil || !bytes.Equal(out.Bytes(), payload) {
		t.Fatalf("decode: %v (%d bytes)", err, out.Len())
	}
	// A flipped byte in the ciphertext is caught by the integrity check.
	bad := append([]byte(nil), enc.Bytes()...)
	bad[len(bad)-30] ^= 0x01
	if _, err := decode(&bytes.Buffer{}, bytes.NewReader(bad), keys, 1<<20); err == nil {
		t.Fatal("a damaged backup decoded without error")
	}
}
