package backup

// Attacks by someone who may write the bucket (its credentials are often shared
// wider than the database's) and knows the public key the backups are encrypted
// to: none of them may reach pg_restore (sign.go).

import (
	"bytes"
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	"github.com/leanauth/authstack/authserver/backup/result"
	"github.com/leanauth/authstack/internal/testservers"
)

// signedStack is a stack with one good, signed backup of src, and the pepper its drill checks.
type signedStack struct {
	pg   *testservers.PostgresServer
	src  string
	s3   *testservers.S3Server
	c    *minio.Client
	key  *gpgKey
	e    env // the stack's own environment (backup, restore and drill)
	good string
}

func newSignedStack(t *testing.T) *signedStack {
	t.Helper()
	pg := testservers.Postgres(t)
	src := pg.NewDatabase(t)
	seed(t, src, 7)
	writeCanary(t, src, drillPepper)
	s3, key := newStorage(t)
	pepperFile := filepath.Join(t.TempDir(), "pepper")
	if err := os.WriteFile(pepperFile, []byte(drillPepper), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", t.TempDir())
	s := &signedStack{pg: pg, src: src, s3: s3, c: s3.Client(t), key: key,
		e: s3Env(s3, "backups", "prod", key).with("DATABASE_URL", src, "AUTH_PEPPER_FILE", pepperFile)}
	if r := runCLI(t, s.e, "backup", "postgres"); r.code != 0 {
		t.Fatalf("backup: exit %d", r.code)
	}
	s.good = s.backupKeys(t)[0]
	return s
}

// backupKeys are the backup objects (not their signatures), oldest first.
func (s *signedStack) backupKeys(t *testing.T) []string {
	var out []string
	for _, k := range keysOf(objects(t, s.c, "backups")) {
		if strings.HasSuffix(k, ".dump.gz.gpg") {
			out = append(out, k)
		}
	}
	return out
}

// attackerBackup is a well-formed backup of another database ("evil": it holds a
// table pwned), encrypted to the stack's public key with the stack's manifest
// format, stored as the newest backup by `authserver backup` run with the
// attacker's own signing key; unsigned, its signature object is removed.
func (s *signedStack) attackerBackup(t *testing.T, unsigned bool) string {
	t.Helper()
	evil := s.pg.NewDatabase(t)
	seed(t, evil, 2)
	writeCanary(t, evil, drillPepper) // even the canary: as if the pepper had leaked
	conn, err := pgx.Connect(context.Background(), evil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), `CREATE TABLE pwned (x int)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	signing, _ := writeSigningKey(t, t.TempDir())
	before := s.backupKeys(t)
	if r := runCLI(t, s.e.with("DATABASE_URL", evil, "BACKUP_SIGNING_KEY_FILE", signing), "backup", "postgres"); r.code != 0 {
		t.Fatalf("attacker's backup: exit %d", r.code)
	}
	keys := s.backupKeys(t)
	forged := keys[len(keys)-1]
	if len(keys) != len(before)+1 || forged <= s.good {
		t.Fatalf("the attacker's object %s is not the newest: %v", forged, keys)
	}
	if unsigned {
		if err := s.c.RemoveObject(context.Background(), "backups", forged+".sig", minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return forged
}

// restore runs `authserver restore postgres` into a new database and returns its result line.
func (s *signedStack) restore(t *testing.T, e env, args ...string) (result.Result, cliResult, string) {
	t.Helper()
	target := s.pg.NewDatabase(t)
	file := filepath.Join(t.TempDir(), "termination-log")
	r := runCLI(t, e.with("BACKUP_RESULT_FILE", file), append([]string{"restore", "postgres", "--target-url", target}, args...)...)
	b, _ := os.ReadFile(file)
	res, _ := result.Parse(string(b))
	return res, r, target
}

// holds says whether the database at url holds the stack's data (7 users) and nothing of the attacker's.
func holdsStackData(t *testing.T, url string) bool {
	t.Helper()
	rows := tableRows(t, url)
	_, pwned := rows["pwned"]
	return !pwned && len(rows["users"]) == 7
}

func isEmpty(t *testing.T, url string) bool {
	t.Helper()
	n, err := countRelations(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return n == 0
}

// A backup forged by the bucket's writer (encrypted to the public key, signed
// with another key or not at all) is refused by name, before it is decrypted;
// as the newest object it is stepped over: a restore of latest and a drill use
// the stack's own newest backup and warn.
func TestForgedBackupIsRefused(t *testing.T) {
	s := newSignedStack(t)
	for _, unsigned := range []bool{false, true} {
		name := map[bool]string{false: "signed by another key", true: "unsigned"}[unsigned]
		forged := s.attackerBackup(t, unsigned)

		res, r, target := s.restore(t, s.e, "--object", forged)
		if r.code != 4 || res.Reason != result.ReasonBackupNotAuthentic || !isEmpty(t, target) ||
			!strings.Contains(res.Error, forged) || !strings.Contains(res.Error, "nothing was decrypted") {
			t.Errorf("%s, named: exit %d, %+v; the target must stay empty", name, r.code, res)
		}
		res, r, target = s.restore(t, s.e)
		if r.code != 0 || res.Object != s.good || res.Skipped != 1 || !holdsStackData(t, target) || !strings.Contains(r.stderr, "skipped newer objects") {
			t.Errorf("%s, latest: exit %d, %+v: want %s restored and the forged one skipped with a warning", name, r.code, res, s.good)
		}
		dr, r := drill(t, s.e)
		if dr.Reason != result.ReasonDrillSucceeded || dr.Object != s.good || dr.Skipped != 1 {
			t.Errorf("%s, drill: exit %d, %+v: want the stack's own backup verified", name, r.code, dr)
		}
		for _, k := range []string{forged, forged + ".sig"} {
			_ = s.c.RemoveObject(context.Background(), "backups", k, minio.RemoveObjectOptions{})
		}
	}
}

// The stack's own backup re-uploaded with other bytes (another dump encrypted to
// the public key, its manifest kept; or one bit flipped, same size) under its
// name, beside its genuine signature: refused before it is decrypted.
func TestAlteredBackupIsRefused(t *testing.T) {
	s := newSignedStack(t)
	ctx := context.Background()
	stat, err := s.c.StatObject(ctx, "backups", s.good, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	genuine := download(t, s.c, "backups", s.good)
	forged := s.attackerBackup(t, true)
	other := download(t, s.c, "backups", forged)
	flipped := append([]byte(nil), genuine...)
	flipped[len(flipped)/2] ^= 0x01
	for name, body := range map[string][]byte{"another dump": other, "one bit flipped": flipped} {
		if _, err := s.c.PutObject(ctx, "backups", s.good, bytes.NewReader(body), int64(len(body)),
			minio.PutObjectOptions{UserMetadata: stat.UserMetadata}); err != nil {
			t.Fatal(err)
		}
		res, r, target := s.restore(t, s.e, "--object", s.good)
		if r.code != 4 || res.Reason != result.ReasonBackupNotAuthentic || !isEmpty(t, target) || !strings.Contains(res.Error, s.good) {
			t.Errorf("%s: exit %d, %+v; the target must stay empty", name, r.code, res)
		}
		if strings.Contains(r.stderr, "decrypting") {
			t.Errorf("%s: decrypted before the signature was checked: %s", name, r.stderr)
		}
	}
	// Put back, the genuine bytes restore again.
	if _, err := s.c.PutObject(ctx, "backups", s.good, bytes.NewReader(genuine), int64(len(genuine)),
		minio.PutObjectOptions{UserMetadata: stat.UserMetadata}); err != nil {
		t.Fatal(err)
	}
	if res, r, target := s.restore(t, s.e, "--object", s.good); r.code != 0 || !holdsStackData(t, target) {
		t.Errorf("genuine bytes: exit %d, %+v", r.code, res)
	}
}

// An older signed backup copied over a newer name (to make old data "latest")
// is refused: the signature names the object it was made for.
func TestSignedBackupUnderAnotherNameIsRefused(t *testing.T) {
	s := newSignedStack(t)
	ctx := context.Background()
	newer := "prod/postgres/29991231T235959Z.dump.gz.gpg"
	for _, k := range []string{"", ".sig"} {
		if _, err := s.c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "backups", Object: newer + k},
			minio.CopySrcOptions{Bucket: "backups", Object: s.good + k}); err != nil {
			t.Fatal(err)
		}
	}
	res, r, target := s.restore(t, s.e, "--object", newer)
	if r.code != 4 || res.Reason != result.ReasonBackupNotAuthentic || !isEmpty(t, target) || !strings.Contains(res.Error, "signature is for") {
		t.Errorf("copied over a newer name: exit %d, %+v", r.code, res)
	}
}

// Backups made before signatures existed: refused by default, restored when
// BACKUP_TRUST_UNSIGNED_BEFORE is after their name's time, and never an
// unsigned object named after it (which an attacker can still upload).
func TestUnsignedBackupsNeedTheOptIn(t *testing.T) {
	s := newSignedStack(t)
	ctx := context.Background()
	// The stack's only backup, unsigned as an old release made it.
	if err := s.c.RemoveObject(ctx, "backups", s.good+".sig", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	stamp, err := time.Parse(timeLayout, strings.TrimSuffix(path.Base(s.good), ".dump.gz.gpg"))
	if err != nil {
		t.Fatal(err)
	}
	res, r, target := s.restore(t, s.e)
	if r.code != 4 || res.Reason != result.ReasonBackupNotAuthentic || !isEmpty(t, target) || !strings.Contains(res.Error, "BACKUP_TRUST_UNSIGNED_BEFORE") {
		t.Errorf("unsigned, no opt-in: exit %d, %+v", r.code, res)
	}
	// The cut-off: after the backup was named and written (S3's Last-Modified has whole seconds).
	cutoff := time.Now().Truncate(time.Second).Add(time.Second)
	if !stamp.Before(cutoff) {
		t.Fatalf("backup named %s, cut-off %s", stamp, cutoff)
	}
	trusting := s.e.with("BACKUP_TRUST_UNSIGNED_BEFORE", cutoff.UTC().Format(time.RFC3339))
	res, r, target = s.restore(t, trusting)
	if r.code != 0 || res.Object != s.good || !res.Unsigned || !holdsStackData(t, target) || !strings.Contains(r.stderr, "unsigned backup") {
		t.Errorf("unsigned, named and written before the opt-in's time: exit %d, %+v", r.code, res)
	}
	// An unsigned object uploaded after the cut-off: stepped over.
	for time.Now().Before(cutoff) {
		time.Sleep(50 * time.Millisecond) // the cut-off is a wall-clock time: wait for it to pass
	}
	forged := s.attackerBackup(t, true)
	res, r, target = s.restore(t, trusting)
	if r.code != 0 || res.Object != s.good || res.Skipped != 1 || !holdsStackData(t, target) {
		t.Errorf("an unsigned %s after the opt-in's time: exit %d, %+v", forged, r.code, res)
	}
	if dr, r := drill(t, trusting); dr.Reason != result.ReasonDrillSucceeded || dr.Object != s.good || !dr.Unsigned {
		t.Errorf("drill with the opt-in: exit %d, %+v", r.code, dr)
	}
}

// A bucket writer plants an unsigned archive under an old name (before the opt-in's
// cut-off) and overwrites the signed backups: the name is theirs to choose, S3's
// Last-Modified is not, so it is refused and nothing is restored (found by a
// red-team review: before, it was restored as latest).
func TestUnsignedBackupPlantedUnderAnOldName(t *testing.T) {
	s := newSignedStack(t)
	ctx := context.Background()
	trusting := s.e.with("BACKUP_TRUST_UNSIGNED_BEFORE", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	forged := s.attackerBackup(t, true) // unsigned, encrypted to the public key
	legacy := "prod/postgres/20200101T000000Z.dump.gz.gpg"
	if _, err := s.c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "backups", Object: legacy}, minio.CopySrcOptions{Bucket: "backups", Object: forged}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{forged, s.good} { // overwritten, not deleted: PutObject is enough
		if _, err := s.c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "backups", Object: k}, minio.CopySrcOptions{Bucket: "backups", Object: legacy}); err != nil {
			t.Fatal(err)
		}
	}
	res, r, target := s.restore(t, trusting)
	if r.code != 4 || res.Reason != result.ReasonBackupNotAuthentic || !isEmpty(t, target) {
		t.Errorf("restore of latest with a planted old-named archive: exit %d, %+v", r.code, res)
	}
	if dr, r := drill(t, trusting); dr.Reason != result.ReasonBackupNotAuthentic {
		t.Errorf("drill with a planted old-named archive: exit %d, %+v", r.code, dr)
	}
}

// A manifest entry a bucket writer adds beside the genuine one (minio-go reports
// "x-amz-meta-x-amz-meta-authstack-manifest" as a second matching key) makes the
// manifest absent, never one of the two at random (red-team finding).
func TestTwoManifestEntriesAreNone(t *testing.T) {
	meta := map[string]string{"Authstack-Manifest": "genuine", "X-Amz-Meta-Authstack-Manifest": "forged"}
	for range 50 {
		if v := metaValue(meta, manifestMeta); v != "" {
			t.Fatalf("metaValue = %q with two matching entries", v)
		}
	}
	if v := metaValue(map[string]string{"X-Amz-Meta-Authstack-Manifest": "genuine"}, manifestMeta); v != "genuine" {
		t.Fatalf("metaValue = %q with one", v)
	}
}

// A small object that decompresses without bound (a gzip bomb, encrypted to the
// public key, with a valid manifest) is stopped at its cap by a restore and a
// drill, with nothing left in TMPDIR. Here it is an unsigned object the opt-in
// trusts: one signed by the stack is capped at the size its signature states.
func TestGzipBombIsStopped(t *testing.T) {
	s := newSignedStack(t)
	ctx := context.Background()
	keys, err := loadPublicKeys(s.key.publicFile)
	if err != nil {
		t.Fatal(err)
	}
	var enc bytes.Buffer
	w, err := newEncoder(&enc, keys, KindPostgres)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for i := 0; i < 64; i++ { // 64 MiB
		w.Write(zeros)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	manifest, err := sealManifest(Manifest{Version: 1, Rows: map[string]int64{"public.users": 7}}, keys)
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Now().UTC().Add(time.Hour)
	bomb := "prod/postgres/" + stamp.Format(timeLayout) + ".dump.gz.gpg"
	if _, err := s.c.PutObject(ctx, "backups", bomb, bytes.NewReader(enc.Bytes()), int64(enc.Len()),
		minio.PutObjectOptions{UserMetadata: map[string]string{manifestMeta: manifest}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("bomb: %d bytes stored, 64 MiB decompressed", enc.Len())
	trusting := s.e.with("BACKUP_TRUST_UNSIGNED_BEFORE", stamp.Add(time.Second).Format(time.RFC3339))
	tmp := os.Getenv("TMPDIR")
	res, r, target := s.restore(t, trusting, "--object", bomb)
	if r.code != 4 || res.Reason != result.ReasonBackupTooLarge || !isEmpty(t, target) || !strings.Contains(res.Error, bomb) || !strings.Contains(res.Error, "BACKUP_MAX_EXPANSION") {
		t.Errorf("restore: exit %d, %+v", r.code, res)
	}
	dr, r := drill(t, trusting)
	if dr.Reason != result.ReasonBackupTooLarge || dr.Object != bomb {
		t.Errorf("drill: exit %d, %+v", r.code, dr)
	}
	if files, _ := os.ReadDir(tmp); len(files) > 0 {
		t.Errorf("%d work files left in TMPDIR", len(files))
	}
	// Raising the cap is the documented way to accept a trusted, very compressible backup.
	res, r, _ = s.restore(t, trusting.with("BACKUP_MAX_EXPANSION", "100000"), "--object", bomb)
	if res.Reason == result.ReasonBackupTooLarge {
		t.Errorf("BACKUP_MAX_EXPANSION=100000: still capped: exit %d, %+v", r.code, res)
	}
}
