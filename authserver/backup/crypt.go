package backup

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// readKeyRing reads an armored (or binary) OpenPGP key file.
func readKeyRing(path, setting string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w; mount the key file and point %s at it", setting, unwrapPath(err), setting)
	}
	var keys openpgp.EntityList
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		keys, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		keys, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("reading the OpenPGP key in %s: %w; export it with gpg --export --armor (public) or gpg --export-secret-keys --armor (private)", setting, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no OpenPGP key", setting)
	}
	return keys, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// loadPublicKeys reads the recipients of the backups. A private key is
// refused: the backup pod must never hold what decrypts the backups.
func loadPublicKeys(path string) (openpgp.EntityList, error) {
	keys, err := readKeyRing(path, "BACKUP_PUBLIC_KEY_FILE")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.PrivateKey != nil {
			return nil, errors.New("BACKUP_PUBLIC_KEY_FILE holds a private key: give the backup job only the public key (gpg --export --armor KEYID) and keep the private key offline")
		}
		if _, ok := k.EncryptionKey(timeNow()); !ok {
			return nil, fmt.Errorf("the key %X in BACKUP_PUBLIC_KEY_FILE has no valid encryption subkey (expired or revoked?); add one (gpg --quick-add-key FPR cv25519 encr) and export again", k.PrimaryKey.Fingerprint)
		}
	}
	return keys, nil
}

// loadPrivateKeys reads the private key(s) for restore, decrypting them with
// the passphrase file when they are protected.
func loadPrivateKeys(path, passphraseFile string) (openpgp.EntityList, error) {
	keys, err := readKeyRing(path, "BACKUP_PRIVATE_KEY_FILE")
	if err != nil {
		return nil, err
	}
	var pass []byte
	if passphraseFile != "" {
		p, err := os.ReadFile(passphraseFile)
		if err != nil {
			return nil, fmt.Errorf("reading BACKUP_PRIVATE_KEY_PASSPHRASE_FILE: %w", unwrapPath(err))
		}
		pass = bytes.TrimRight(p, "\r\n")
	}
	havePrivate := false
	for _, k := range keys {
		if k.PrivateKey == nil {
			continue
		}
		havePrivate = true
		if k.PrivateKey.Encrypted || anySubkeyEncrypted(k) {
			if pass == nil {
				return nil, errors.New("the private key in BACKUP_PRIVATE_KEY_FILE is passphrase-protected: put the passphrase in a file and set BACKUP_PRIVATE_KEY_PASSPHRASE_FILE")
			}
			if err := k.DecryptPrivateKeys(pass); err != nil {
				return nil, errors.New("the passphrase in BACKUP_PRIVATE_KEY_PASSPHRASE_FILE does not unlock the private key")
			}
		}
	}
	if !havePrivate {
		return nil, errors.New("BACKUP_PRIVATE_KEY_FILE holds only a public key: export the private key with gpg --export-secret-keys --armor KEYID")
	}
	return keys, nil
}

func anySubkeyEncrypted(e *openpgp.Entity) bool {
	for _, s := range e.Subkeys {
		if s.PrivateKey != nil && s.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}

// pgpConfig produces messages stock gpg (2.2 and later) decrypts: AES-256,
// SEIPD v1 with MDC (v4 keys made by gpg do not advertise AEAD), no
// compression inside OpenPGP (the payload is already gzip).
func pgpConfig() *packet.Config {
	return &packet.Config{DefaultCipher: packet.CipherAES256, DefaultHash: crypto.SHA256, Time: timeNow}
}

// encoder is gzip inside OpenPGP encryption; Close flushes both trailers.
type encoder struct {
	enc io.WriteCloser
	gz  *gzip.Writer
	n   int64 // bytes before compression
}

func newEncoder(dst io.Writer, recipients openpgp.EntityList, name string) (*encoder, error) {
	enc, err := openpgp.Encrypt(dst, recipients, nil, &openpgp.FileHints{IsBinary: true, FileName: name}, pgpConfig())
	if err != nil {
		return nil, fmt.Errorf("starting OpenPGP encryption: %w", err)
	}
	gz, err := gzip.NewWriterLevel(enc, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	return &encoder{enc: enc, gz: gz}, nil
}

func (e *encoder) Write(p []byte) (int, error) {
	n, err := e.gz.Write(p)
	e.n += int64(n)
	return n, err
}

// Close ends the gzip stream and the OpenPGP message (MDC packet).
func (e *encoder) Close() error {
	if err := e.gz.Close(); err != nil {
		return fmt.Errorf("compressing: %w", err)
	}
	if err := e.enc.Close(); err != nil {
		return fmt.Errorf("encrypting: %w", err)
	}
	return nil
}

// errTooLarge: the plaintext would exceed decode's limit.
var errTooLarge = errors.New("decompressed size over the limit")

// decode decrypts and decompresses src into dst and verifies both integrity
// checks (OpenPGP MDC, gzip CRC-32); it returns the plaintext size. It stops
// with errTooLarge after limit plaintext bytes (a gzip bomb).
func decode(dst io.Writer, src io.Reader, keys openpgp.EntityList, limit int64) (int64, error) {
	md, err := openpgp.ReadMessage(src, keys, nil, pgpConfig())
	if err != nil {
		if errors.Is(err, pgperrors.ErrKeyIncorrect) || strings.Contains(err.Error(), "key") {
			return 0, fmt.Errorf("decrypting: %w; the backup is not encrypted to the key in BACKUP_PRIVATE_KEY_FILE (check the key ids: gpg --list-packets on the object)", err)
		}
		return 0, fmt.Errorf("decrypting: %w; the object is not an OpenPGP message made by authserver backup", err)
	}
	gz, err := gzip.NewReader(md.UnverifiedBody)
	if err != nil {
		return 0, fmt.Errorf("decompressing: %w; the backup is damaged", err)
	}
	n, err := io.Copy(dst, io.LimitReader(gz, limit+1))
	if n > limit {
		return n, errTooLarge
	}
	if err != nil {
		return n, fmt.Errorf("decrypting and decompressing: %w; the backup is damaged or truncated, try an older one", err)
	}
	// Drain to the end so that the MDC is checked even after gzip's end.
	if _, err := io.Copy(io.Discard, md.UnverifiedBody); err != nil {
		return n, fmt.Errorf("verifying the OpenPGP integrity check: %w; the backup is damaged, try an older one", err)
	}
	if md.SignatureError != nil {
		return n, fmt.Errorf("verifying: %w", md.SignatureError)
	}
	return n, nil
}
