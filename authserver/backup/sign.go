package backup

// Backups are authenticated, not only encrypted: the public key they are encrypted
// to is no secret, so anyone who may write the bucket could otherwise put a
// well-formed backup there whose SQL a drill or a restore of "latest" runs as the
// database role. Each backup object has a sidecar object "<key>.sig": a short
// statement (its name below the prefix, size, SHA-512 of the stored bytes, size
// after decompression, SHA-512 of its manifest metadata) and an ed25519 signature
// over it, made with a key only the backup Job holds (BACKUP_SIGNING_KEY_FILE).
// Restores and drills verify it with the public half (BACKUP_VERIFY_KEY_FILE)
// before they decrypt, decompress or run anything. See DESIGN.md ("Signatures").

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/leanauth/authstack/authserver/backup/result"
)

// sigSuffix names a backup's signature object: <key>.sig.
const sigSuffix = ".sig"

// maxSidecar bounds what is read of a signature object (a real one is ~400 bytes).
const maxSidecar = 4096

const statementHeader = "authstack-backup-signature v1\n"

// statement is what a backup's signature vouches for.
type statement struct {
	Name     string // <kind>/<UTC time><suffix>: the key below S3_PREFIX (copies to another prefix or bucket still verify)
	Size     int64  // bytes stored
	SHA512   string // hex, of the stored (encrypted) bytes
	RawSize  int64  // bytes after decryption and decompression: the restore's cap
	Manifest string // hex SHA-512 of the manifest metadata value, "-" without one
}

func (s statement) bytes() []byte {
	return fmt.Appendf(nil, "%sobject %s\nsize %d\nsha512 %s\nraw-size %d\nmanifest-sha512 %s\n",
		statementHeader, s.Name, s.Size, s.SHA512, s.RawSize, s.Manifest)
}

// sign is the content of the signature object for s.
func sign(s statement, key ed25519.PrivateKey) []byte {
	b := s.bytes()
	return fmt.Appendf(b, "signature %s\n", base64.StdEncoding.EncodeToString(ed25519.Sign(key, b)))
}

// errForeignSignature: the signature object is well-formed but not made with the verify key's half.
var errForeignSignature = errors.New("its signature does not verify with BACKUP_VERIFY_KEY_FILE: it was not made by this stack's backups (or another stack's backups are restored: give the restore that stack's verify key)")

// openSignature checks the signature first and only then reads the statement.
func openSignature(data []byte, keys []ed25519.PublicKey) (statement, error) {
	var s statement
	i := bytes.LastIndex(data, []byte("signature "))
	if i < 0 || !bytes.HasPrefix(data, []byte(statementHeader)) {
		return s, errors.New("its signature object is not an authstack backup signature")
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data[i+len("signature "):])))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return s, errors.New("its signature object holds no valid signature")
	}
	body := data[:i]
	if !slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool { return ed25519.Verify(k, body, sig) }) {
		return s, errForeignSignature
	}
	lines := strings.Split(strings.TrimSuffix(string(body[len(statementHeader):]), "\n"), "\n")
	field := func(n int, name string) string {
		if n >= len(lines) {
			return ""
		}
		v, _ := strings.CutPrefix(lines[n], name+" ")
		return v
	}
	s.Name, s.SHA512, s.Manifest = field(0, "object"), field(2, "sha512"), field(4, "manifest-sha512")
	s.Size, _ = strconv.ParseInt(field(1, "size"), 10, 64)
	s.RawSize, _ = strconv.ParseInt(field(3, "raw-size"), 10, 64)
	if !bytes.Equal(s.bytes(), body) { // signed, so made by our backups: only a format change gets here
		return s, errors.New("its signature object is of an unknown version: restore it with the authserver release that made it")
	}
	return s, nil
}

// readPEM reads the PEM blocks of a key file.
func readPEM(path, setting string) ([]*pem.Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w; mount the key file and point %s at it", setting, unwrapPath(err), setting)
	}
	var blocks []*pem.Block
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%s holds no PEM key: make one with openssl genpkey -algorithm ed25519 (docs/backup-and-restore.md)", setting)
	}
	return blocks, nil
}

// loadSigningKey reads the backups' ed25519 private key (PKCS #8 PEM, as openssl writes it).
func loadSigningKey(path string) (ed25519.PrivateKey, error) {
	blocks, err := readPEM(path, "BACKUP_SIGNING_KEY_FILE")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(blocks[0].Bytes)
	if err != nil {
		return nil, errors.New("BACKUP_SIGNING_KEY_FILE does not hold a PKCS #8 private key (-----BEGIN PRIVATE KEY-----): make one with openssl genpkey -algorithm ed25519")
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("BACKUP_SIGNING_KEY_FILE holds a private key that is not ed25519: make one with openssl genpkey -algorithm ed25519")
	}
	return priv, nil
}

// loadVerifyKeys reads the public half, or several (one PEM block each: the
// current key and those of earlier signing keys, whose backups still verify).
// A private key is refused: a restore must not be able to sign what it restores.
func loadVerifyKeys(path string) ([]ed25519.PublicKey, error) {
	blocks, err := readPEM(path, "BACKUP_VERIFY_KEY_FILE")
	if err != nil {
		return nil, err
	}
	var keys []ed25519.PublicKey
	for _, b := range blocks {
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, errors.New("BACKUP_VERIFY_KEY_FILE holds something else than public keys (-----BEGIN PUBLIC KEY-----): give the restore only the public half (openssl pkey -pubout)")
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, errors.New("BACKUP_VERIFY_KEY_FILE holds a public key that is not ed25519")
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

// hashSize is the SHA-512 of a stream and its length.
type hashSize struct {
	h hash.Hash
	n int64
}

func newHashSize() *hashSize { return &hashSize{h: sha512.New()} }

func (w *hashSize) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return w.h.Write(p)
}

func (w *hashSize) hex() string { return hex.EncodeToString(w.h.Sum(nil)) }

// manifestDigest is the statement's digest of an object's manifest metadata value.
func manifestDigest(meta map[string]string) string {
	v := metaValue(meta, manifestMeta)
	if v == "" {
		return "-"
	}
	sum := sha512.Sum512([]byte(v))
	return hex.EncodeToString(sum[:])
}

// NotAuthenticError is a backup a restore or drill refuses before reading it:
// no signature, a signature of another key, or bytes other than those signed.
// Object names the object; no key material is ever in the message.
type NotAuthenticError struct {
	Object string
	Why    string
}

func (e *NotAuthenticError) Error() string {
	return fmt.Sprintf("backup %s is not authentic, nothing was decrypted or restored: %s", e.Object, e.Why)
}

// Trust says which backups a restore accepts.
type Trust struct {
	Keys []ed25519.PublicKey // any of them verifies
	// UnsignedBefore: an unsigned object whose name's time and S3 Last-Modified are
	// both before this is accepted (backups made before signatures existed). Zero:
	// none is.
	UnsignedBefore time.Time
	// MaxExpansion caps an unsigned object's decompressed size at this many times
	// its stored size (a signed one is capped at its signed size).
	MaxExpansion int64
}

// authentic is what a restore knows about a backup before downloading it.
type authentic struct {
	key      string
	time     time.Time
	modified time.Time // S3 Last-Modified: the server's clock, one-second resolution
	size     int64
	meta     map[string]string
	signed   *statement // nil: an unsigned object accepted by Trust.UnsignedBefore
	rawLimit int64      // decompressed bytes allowed
}

// authenticate checks key's signature object against its stat (size, manifest
// metadata). Its bytes are checked against the signed digest when downloaded (fetchVerified).
func (s *bucket) authenticate(ctx context.Context, kind, key string, tr Trust) (*authentic, error) {
	t, ok := s.parseKey(kind, key)
	if !ok {
		return nil, &NotAuthenticError{key, fmt.Sprintf("its name is not one authserver backup %s gives (<prefix>/%s/<UTC yyyymmddThhmmssZ>%s)", kind, kind, suffixes[kind])}
	}
	info, err := s.c.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, s.explainFetch(key, err)
	}
	a := &authentic{key: key, time: t, modified: info.LastModified, size: info.Size, meta: info.UserMetadata}
	o, err := s.c.GetObject(ctx, s.cfg.Bucket, key+sigSuffix, minio.GetObjectOptions{})
	var data []byte
	if err == nil {
		data, err = io.ReadAll(io.LimitReader(o, maxSidecar))
		o.Close()
	}
	if isNotFound(err) {
		// Both its name and S3's Last-Modified (set by the server on every write: a
		// bucket writer cannot backdate it, as they can a name) are before the cut-off.
		if !tr.UnsignedBefore.IsZero() && t.Before(tr.UnsignedBefore) && info.LastModified.Before(tr.UnsignedBefore) {
			a.rawLimit = max(info.Size, 1) * tr.MaxExpansion
			return a, nil
		}
		why := "it has no signature object (" + key + sigSuffix + ")"
		if !tr.UnsignedBefore.IsZero() {
			why += "; BACKUP_TRUST_UNSIGNED_BEFORE accepts unsigned backups named and written to the bucket (Last-Modified " + info.LastModified.UTC().Format(time.RFC3339) + ") before " + tr.UnsignedBefore.UTC().Format(time.RFC3339) + " only"
		} else {
			why += "; a backup made before backups were signed is restored only with BACKUP_TRUST_UNSIGNED_BEFORE (docs/backup-and-restore.md)"
		}
		return nil, &NotAuthenticError{key, why}
	}
	if err != nil {
		return nil, s.explain("fetching the signature of "+key, err)
	}
	st, err := openSignature(data, tr.Keys)
	switch {
	case err != nil:
		return nil, &NotAuthenticError{key, err.Error()}
	case st.Name != s.relName(key):
		return nil, &NotAuthenticError{key, fmt.Sprintf("its signature is for %s, not for this name (an older backup copied over a newer name?)", st.Name)}
	case st.Size != info.Size:
		return nil, &NotAuthenticError{key, fmt.Sprintf("it is %d bytes, its signature is for %d: it was replaced or altered after the backup", info.Size, st.Size)}
	case st.Manifest != manifestDigest(info.UserMetadata):
		return nil, &NotAuthenticError{key, "its manifest metadata is not the one signed: it was altered after the backup"}
	}
	a.signed, a.rawLimit = &st, st.RawSize
	return a, nil
}

// maxSkipped bounds how many unverifiable objects resolving the newest backup
// steps over before it gives up (each costs two requests).
const maxSkipped = 50

// MaxFutureSkew: a backup named more than this after the clock of the run that
// resolves "latest" is stepped over like an unverifiable one. A backup made on a
// node whose clock ran ahead is signed like any other, and would otherwise stay
// "latest", hiding every later backup, until real time caught up with its name.
const MaxFutureSkew = time.Hour

// newestAuthentic is the newest backup of kind that authenticate accepts; the
// newer ones it stepped over (unsigned, foreign, altered, or named more than
// MaxFutureSkew ahead) are returned for a warning: an object someone uploaded
// never becomes "latest", and never hides the real latest one either.
//
// floor (the expected backup, authenticated; nil: none) is the result unless an
// authentic backup is named after it and was not written to the bucket before
// it: one written before it (S3 Last-Modified, the server's clock, which no
// node's can skew) but named after it comes from a node whose clock ran ahead
// and holds older data, and is stepped over too.
func (s *bucket) newestAuthentic(ctx context.Context, kind string, tr Trust, floor *authentic) (*authentic, []string, error) {
	objs, err := s.list(ctx, kind)
	if err != nil {
		return nil, nil, err
	}
	if len(objs) == 0 {
		return nil, nil, &noBackupError{fmt.Errorf("no %s backup under s3://%s/%s: check that the backups run and S3_BUCKET/S3_PREFIX", kind, s.cfg.Bucket, s.folder(kind))}
	}
	var skipped []string
	var last error
	ahead := timeNow().Add(MaxFutureSkew)
	for i := len(objs) - 1; i >= 0 && len(skipped) < maxSkipped; i-- {
		if floor != nil && !objs[i].Time.After(floor.time) {
			break
		}
		if objs[i].Time.After(ahead) {
			skipped, last = append(skipped, objs[i].Key), fmt.Errorf("%s is named more than %s after this clock", objs[i].Key, MaxFutureSkew)
			continue
		}
		a, err := s.authenticate(ctx, kind, objs[i].Key, tr)
		var na *NotAuthenticError
		if errors.As(err, &na) {
			skipped, last = append(skipped, objs[i].Key), err
			continue
		}
		if err == nil && floor != nil && a.modified.Before(floor.modified) {
			skipped = append(skipped, objs[i].Key)
			continue
		}
		return a, skipped, err
	}
	if floor != nil {
		return floor, skipped, nil
	}
	return nil, skipped, &NotAuthenticError{s.folder(kind) + "*", fmt.Sprintf("none of the newest %d objects under s3://%s/%s is a backup signed by this stack's key (the newest refused: %v); check BACKUP_VERIFY_KEY_FILE", len(skipped), s.cfg.Bucket, s.folder(kind), last)}
}

// noBackupError: the folder holds no backup at all.
type noBackupError struct{ error }

func (e *noBackupError) Unwrap() error { return e.error }

// relName is a key below the prefix: <kind>/<name>.
func (s *bucket) relName(key string) string {
	if s.cfg.Prefix == "" {
		return key
	}
	return strings.TrimPrefix(key, s.cfg.Prefix+"/")
}

// putSignature stores the signature object of a backup just uploaded.
func (s *bucket) putSignature(ctx context.Context, key string, st statement, priv ed25519.PrivateKey) error {
	b := sign(st, priv)
	_, err := s.c.PutObject(ctx, s.cfg.Bucket, key+sigSuffix, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{ContentType: "text/plain"})
	return err
}

// fetchVerified downloads an authenticated backup into a private file in dir
// and checks its bytes against the signed size and digest before anything
// reads them; it returns the file's path.
func (s *bucket) fetchVerified(ctx context.Context, a *authentic, dir string) (string, error) {
	o, err := s.c.GetObject(ctx, s.cfg.Bucket, a.key, minio.GetObjectOptions{})
	if err != nil {
		return "", s.explainFetch(a.key, err)
	}
	defer o.Close()
	f, err := os.CreateTemp(dir, "authserver-fetch-*")
	if err != nil {
		return "", fmt.Errorf("creating a work file: %w; set TMPDIR to a writable directory with room for the backup", err)
	}
	hs := newHashSize()
	// One byte more than signed: a longer object is told apart from a complete one.
	limit := a.size
	if a.signed != nil {
		limit = a.signed.Size
	}
	_, err = io.Copy(io.MultiWriter(f, hs), io.LimitReader(o, limit+1))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		if isNotFound(err) {
			return "", s.explainFetch(a.key, err)
		}
		return "", fmt.Errorf("downloading backup %s: %w", a.key, err)
	}
	if a.signed != nil && (hs.n != a.signed.Size || hs.hex() != a.signed.SHA512) {
		os.Remove(f.Name())
		return "", &NotAuthenticError{a.key, "its bytes are not the ones signed: it was replaced or altered after the backup"}
	}
	return f.Name(), nil
}

func isNotFound(err error) bool {
	var resp minio.ErrorResponse
	return errors.As(err, &resp) && (resp.Code == "NoSuchKey" || resp.StatusCode == 404)
}

func (s *bucket) explainFetch(key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("fetching backup: object %q not found in bucket %q: list the backups and pass an existing key to --object", key, s.cfg.Bucket)
	}
	return s.explain("fetching backup "+key, err)
}

// TooLargeError: a backup decompresses to more than its cap (a gzip bomb, or a
// legacy backup more compressible than BACKUP_MAX_EXPANSION allows).
type TooLargeError struct {
	Object string
	Limit  int64
	Signed bool
}

func (e *TooLargeError) Error() string {
	if e.Signed {
		return fmt.Sprintf("backup %s decompresses to more than the %d bytes its signature states: stopped there, nothing was restored", e.Object, e.Limit)
	}
	return fmt.Sprintf("backup %s decompresses to more than %d bytes (BACKUP_MAX_EXPANSION times its size): stopped there, nothing was restored; raise BACKUP_MAX_EXPANSION only if you trust this unsigned object", e.Object, e.Limit)
}

// notAuthenticReason is the result reason of a refusal by signature or size, "" otherwise.
func notAuthenticReason(err error) string {
	var na *NotAuthenticError
	var tl *TooLargeError
	switch {
	case errors.As(err, &na):
		return result.ReasonBackupNotAuthentic
	case errors.As(err, &tl):
		return result.ReasonBackupTooLarge
	}
	return ""
}

// trustOf reads what a restore accepts from its configuration.
func trustOf(cfg Config) (Trust, error) {
	keys, err := loadVerifyKeys(cfg.VerifyKeyFile)
	if err != nil {
		return Trust{}, &UsageError{Msg: err.Error()}
	}
	return Trust{Keys: keys, UnsignedBefore: cfg.TrustUnsignedBefore, MaxExpansion: int64(max(cfg.MaxExpansion, 2))}, nil
}
