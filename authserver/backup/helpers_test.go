package backup

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/internal/testservers"
)

// gpgKey is a throw-away OpenPGP key made by the real gpg, in its own GNUPGHOME.
type gpgKey struct {
	home        string
	fingerprint string
	publicFile  string
	privateFile string
	// The backups' ed25519 signing key (PEM, as openssl genpkey writes it) and its public half.
	signingFile string
	verifyFile  string
}

// writeSigningKey makes an ed25519 key pair in dir, as PKCS #8 and PKIX PEM files.
func writeSigningKey(t testing.TB, dir string) (signing, verify string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	signing, verify = filepath.Join(dir, "signing.pem"), filepath.Join(dir, "verify.pem")
	if err := os.WriteFile(signing, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(verify, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return signing, verify
}

func runGPG(t testing.TB, home string, stdin io.Reader, args ...string) []byte {
	t.Helper()
	return runGPGPass(t, home, "", stdin, args...)
}

func runGPGPass(t testing.TB, home, passphrase string, stdin io.Reader, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", passphrase}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes()
}

// newGPGKey makes an ed25519 key with a cv25519 encryption subkey and exports
// it (public and, unprotected, private) to files.
func newGPGKey(t testing.TB) *gpgKey {
	t.Helper()
	return newGPGKeyPass(t, "")
}

// newGPGKeyPass is newGPGKey with the private key protected by passphrase.
func newGPGKeyPass(t testing.TB, passphrase string) *gpgKey {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatalf("gpg is required by this test (apt-get install gnupg): %v", err)
	}
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	t.Cleanup(func() {
		c := exec.Command("gpgconf", "--kill", "all")
		c.Env = append(os.Environ(), "GNUPGHOME="+home)
		c.Run()
		os.RemoveAll(home)
	})
	uid := "AuthStack Backup Test <backup-test@example.invalid>"
	runGPGPass(t, home, passphrase, nil, "--quick-gen-key", uid, "ed25519", "cert", "never")
	var fpr string
	for _, line := range strings.Split(string(runGPGPass(t, home, passphrase, nil, "--with-colons", "--list-keys", uid)), "\n") {
		if strings.HasPrefix(line, "fpr:") && fpr == "" {
			fpr = strings.Split(line, ":")[9]
		}
	}
	if fpr == "" {
		t.Fatal("no fingerprint from gpg")
	}
	runGPGPass(t, home, passphrase, nil, "--quick-add-key", fpr, "cv25519", "encr", "never")
	k := &gpgKey{home: home, fingerprint: fpr, publicFile: filepath.Join(home, "public.asc"), privateFile: filepath.Join(home, "private.asc")}
	if err := os.WriteFile(k.publicFile, runGPGPass(t, home, passphrase, nil, "--armor", "--export", fpr), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.privateFile, runGPGPass(t, home, passphrase, nil, "--armor", "--export-secret-keys", fpr), 0o600); err != nil {
		t.Fatal(err)
	}
	k.signingFile, k.verifyFile = writeSigningKey(t, home)
	return k
}

// env is a fake environment for run().
type env map[string]string

func (e env) get(k string) (string, bool) { v, ok := e[k]; return v, ok }

func (e env) with(kv ...string) env {
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// loadBackup and loadRestore read the run's Config from e the way run() does.
func loadBackup(t testing.TB, e env, kind string) Config {
	t.Helper()
	c, err := config.LoadBackup(e.get, os.ReadFile, kind)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Backup: *c}
}

func loadRestore(t testing.TB, e env) Config {
	t.Helper()
	c, err := config.LoadRestore(e.get, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Backup: *c}
}

// newStorage starts an S3 server with the bucket "backups" and makes the key
// backups are encrypted to.
func newStorage(t testing.TB) (*testservers.S3Server, *gpgKey) {
	t.Helper()
	s3 := testservers.S3(t)
	s3.CreateBucket(t, "backups")
	return s3, newGPGKey(t)
}

func s3Env(s3 *testservers.S3Server, bucket, prefix string, key *gpgKey) env {
	return env{
		"S3_ENDPOINT": s3.Endpoint(), "S3_BUCKET": bucket, "S3_PREFIX": prefix, "S3_REGION": s3.Region(),
		"S3_FORCE_PATH_STYLE": "true", "AWS_ACCESS_KEY_ID": s3.AccessKey(), "AWS_SECRET_ACCESS_KEY": s3.SecretKey(),
		"BACKUP_PUBLIC_KEY_FILE": key.publicFile, "BACKUP_PRIVATE_KEY_FILE": key.privateFile,
		"BACKUP_SIGNING_KEY_FILE": key.signingFile, "BACKUP_VERIFY_KEY_FILE": key.verifyFile,
	}
}

var userinfo = regexp.MustCompile(`://([^:/@\s]*):[^@\s]*@`)

// cliResult is the outcome of one run of the subcommand.
type cliResult struct {
	code   int
	stderr string
	log    map[string]any // the last JSON log line
}

func runCLI(t testing.TB, e env, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, "v0.0.0-test", e.get, os.ReadFile, &out, &errb)
	r := cliResult{code: code, stderr: errb.String()}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if last := lines[len(lines)-1]; strings.HasPrefix(last, "{") {
		if err := json.Unmarshal([]byte(last), &r.log); err != nil {
			t.Fatalf("log line is not JSON: %q", last)
		}
	}
	t.Logf("authserver %s: exit %d: %s", userinfo.ReplaceAllString(strings.Join(args, " "), "://$1:***@"), code, strings.TrimSpace(errb.String()))
	return r
}

// objects lists every completed object in the bucket.
func objects(t testing.TB, c *minio.Client, bucket string) []minio.ObjectInfo {
	t.Helper()
	var out []minio.ObjectInfo
	for o := range c.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("listing %s: %v", bucket, o.Err)
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func keysOf(objs []minio.ObjectInfo) []string {
	var k []string
	for _, o := range objs {
		k = append(k, o.Key)
	}
	return k
}

// incompleteUploads lists the multipart uploads that were neither completed nor aborted.
func incompleteUploads(t testing.TB, c *minio.Client, bucket string) []string {
	t.Helper()
	var out []string
	for u := range c.ListIncompleteUploads(context.Background(), bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("listing multipart uploads: %v", u.Err)
		}
		out = append(out, u.Key)
	}
	return out
}

func download(t testing.TB, c *minio.Client, bucket, key string) []byte {
	t.Helper()
	o, err := c.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("downloading %s: %v", key, err)
	}
	return b
}

// tableRows returns every row of every table in schema public, as text, sorted.
func tableRows(t testing.TB, url string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, tbl := range tables {
		rows, err := conn.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{tbl}.Sanitize()+` t ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out[tbl] = vals
	}
	return out
}

// WriteSigningKey is writeSigningKey for the package's external tests.
var WriteSigningKey = writeSigningKey
