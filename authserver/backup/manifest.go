package backup

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/jackc/pgx/v5"
	"github.com/leanauth/authstack/authserver/store"
)

// The manifest records what a PostgreSQL backup holds (the row count of every
// table, counted in the very snapshot pg_dump dumps), so a restore drill can
// check the restored data against it (verify.go). It travels as S3 user
// metadata of the backup object (one object: no orphan, copied with it), as an
// OpenPGP message to the same key as the backup, so a bucket reader learns
// nothing about the stack's size and only the private key's holder reads it.
// Like the backup it is encrypted, not signed (DESIGN.md, "Encryption").

// manifestMeta is the user-metadata key (x-amz-meta-authstack-manifest).
const manifestMeta = "Authstack-Manifest"

// maxManifestMeta stays inside S3's 2 KB limit for all user metadata.
const maxManifestMeta = 1900

// maxManifest caps a manifest's plaintext (a real one is a few KB).
const maxManifest = 1 << 20

// metaValue is the user metadata value name (as S3 or minio-go spells it), "" if none.
func metaValue(meta map[string]string, name string) string {
	var v string
	n := 0
	for k, val := range meta {
		if strings.EqualFold(k, name) || strings.EqualFold(k, "X-Amz-Meta-"+name) {
			v, n = val, n+1
		}
	}
	// A bucket writer can add a second entry that matches too
	// ("x-amz-meta-x-amz-meta-<name>"): which one a map range yields first is
	// random, so a check and a later read could see different values. Two are none.
	if n != 1 {
		return ""
	}
	return v
}

// Manifest is what a backup records about its content.
type Manifest struct {
	Version int `json:"v"`
	// Rows counts the rows of each table ("schema.table"), in pg_dump's snapshot.
	Rows map[string]int64 `json:"rows"`
}

// snapshot is an open REPEATABLE READ transaction whose snapshot pg_dump
// imports (--snapshot), so the counts and the dump see the same data.
type snapshot struct {
	conn *pgx.Conn
	tx   pgx.Tx
	id   string
	rows map[string]int64
}

// openSnapshot exports a snapshot of the database and counts every table in it.
func openSnapshot(ctx context.Context, url string) (*snapshot, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New("DATABASE_URL does not parse (value not shown)")
	}
	cfg.ConnectTimeout = 15 * time.Second
	conn, err := store.Connect(ctx, cfg, nil) // the backup's first connection: waits for the database
	if err != nil {
		return nil, fmt.Errorf("connecting to %s to count rows: %w; check DATABASE_URL (the direct URL, not the pooler)", redactedDB(url), err)
	}
	s := &snapshot{conn: conn}
	fail := func(doing string, err error) (*snapshot, error) {
		s.close()
		return nil, fmt.Errorf("%s in %s: %w; the role must read every table", doing, redactedDB(url), err)
	}
	s.tx, err = conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fail("starting the snapshot", err)
	}
	if err := s.tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&s.id); err != nil {
		return fail("exporting the snapshot", err)
	}
	s.rows, err = countRows(ctx, s.tx)
	if err != nil {
		return fail("counting rows", err)
	}
	return s, nil
}

func (s *snapshot) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.tx != nil {
		_ = s.tx.Rollback(ctx)
	}
	_ = s.conn.Close(ctx)
}

// countRows counts the rows of every ordinary table outside the system schemas.
func countRows(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}) (map[string]int64, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	type table struct{ schema, name string }
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		return t, r.Scan(&t.schema, &t.name)
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(tables))
	for _, t := range tables {
		var n int64
		if err := q.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{t.schema, t.name}.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("counting %s.%s: %w", t.schema, t.name, err)
		}
		out[t.schema+"."+t.name] = n
	}
	return out, nil
}

// sealManifest encrypts m to the backup's recipients, as a metadata value.
func sealManifest(m Manifest, keys openpgp.EntityList) (string, error) {
	plain, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc, err := newEncoder(&buf, keys, "manifest.json")
	if err != nil {
		return "", err
	}
	if _, err := enc.Write(plain); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	v := base64.StdEncoding.EncodeToString(buf.Bytes())
	if len(v) > maxManifestMeta {
		return "", fmt.Errorf("the row-count manifest is %d bytes encrypted, more than S3's metadata allows (%d): the key has too many or too large encryption subkeys", len(v), maxManifestMeta)
	}
	return v, nil
}

// openManifest reads the manifest from an object's user metadata.
func openManifest(meta map[string]string, keys openpgp.EntityList) (Manifest, error) {
	v := metaValue(meta, manifestMeta)
	var m Manifest
	if v == "" {
		return m, errors.New("it has no row-count manifest (x-amz-meta-authstack-manifest): it was not made by an authserver backup that records one; take a new backup")
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return m, errors.New("its row-count manifest is not base64: the object's metadata was changed")
	}
	var plain bytes.Buffer
	if _, err := decode(&plain, bytes.NewReader(raw), keys, maxManifest); err != nil {
		return m, fmt.Errorf("its row-count manifest: %w", err)
	}
	if err := json.Unmarshal(plain.Bytes(), &m); err != nil || m.Version != 1 {
		return m, errors.New("its row-count manifest is not a version 1 manifest")
	}
	return m, nil
}
