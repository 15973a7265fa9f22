package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
)

// Result describes a finished backup.
type Result struct {
	Kind     string
	Object   string        // the key written
	Size     int64         // bytes stored (compressed and encrypted)
	RawSize  int64         // bytes of the dump before compression
	Duration time.Duration // dump + upload
	Expired  []string      // keys deleted by retention
}

// producer writes a dump to w and returns nil only when the dump is complete.
type producer func(ctx context.Context, w io.Writer) error

// errUploadFailed stops a producer whose output nobody reads any more.
var errUploadFailed = errors.New("upload to S3 failed")

// Backup takes a backup of kind ("postgres" or "redis") as configured.
func Backup(ctx context.Context, cfg Config, kind string) (Result, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	start := time.Now()
	res := Result{Kind: kind}
	var prod producer
	var snap *snapshot // postgres: the counts for the manifest, in pg_dump's snapshot
	switch kind {
	case KindPostgres:
		p, err := pgDumpProducer(cfg, func() string { return snap.id })
		if err != nil {
			return res, err
		}
		prod = p
	case KindRedis:
		p, err := redisProducer(cfg.RedisURL)
		if err != nil {
			return res, err
		}
		prod = p
	default:
		return res, fmt.Errorf("unknown backup kind %q: use postgres or redis", kind)
	}
	keys, err := loadPublicKeys(cfg.PublicKeyFile)
	if err != nil {
		return res, err
	}
	signer, err := loadSigningKey(cfg.SigningKeyFile)
	if err != nil {
		return res, err
	}
	st, err := newStore(cfg.S3)
	if err != nil {
		return res, err
	}
	if err := st.check(ctx); err != nil {
		return res, err
	}
	meta := map[string]string{}
	if kind == KindPostgres {
		if snap, err = openSnapshot(ctx, cfg.DatabaseURL); err != nil {
			return res, err
		}
		defer snap.close() // after pg_dump: it imports the snapshot when it starts
		if meta[manifestMeta], err = sealManifest(Manifest{Version: 1, Rows: snap.rows}, keys); err != nil {
			return res, err
		}
	}
	// Two runs in the same second (a scheduled and an on-demand one) must not
	// overwrite each other: take the next free second.
	t := now()
	res.Object = st.keyFor(kind, t)
	for i := 0; i < 10 && st.exists(ctx, res.Object); i++ {
		t = t.Add(time.Second)
		res.Object = st.keyFor(kind, t)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var uploadFailed atomic.Bool
	done := make(chan error, 1)
	var raw int64
	go func() {
		err := func() error {
			enc, err := newEncoder(pw, keys, kind)
			if err != nil {
				return err
			}
			if err := prod(ctx, enc); err != nil {
				return err
			}
			raw = enc.n
			return enc.Close()
		}()
		// EOF (err == nil) reaches the uploader only after the dump succeeded:
		// only then is the multipart upload completed.
		pw.CloseWithError(err)
		done <- err
	}()
	// The digest of exactly the bytes uploaded, for the signature.
	stored := newHashSize()
	size, upErr := st.put(ctx, res.Object, io.TeeReader(pr, stored), meta)
	if upErr != nil {
		uploadFailed.Store(true)
		pr.CloseWithError(errUploadFailed)
		cancel()
	}
	prodErr := <-done
	res.Duration = time.Since(start)
	switch {
	case prodErr != nil && !uploadFailed.Load():
		return res, prodErr
	case prodErr != nil && upErr != nil && errors.Is(upErr, prodErr):
		return res, prodErr // the producer failed first; the upload only passed it on
	case upErr != nil:
		return res, st.explain("uploading "+res.Object, upErr)
	}
	res.Size, res.RawSize = size, raw
	sig := statement{Name: st.relName(res.Object), Size: stored.n, SHA512: stored.hex(), RawSize: raw, Manifest: manifestDigest(meta)}
	if size != stored.n {
		err = fmt.Errorf("uploading %s: S3 stored %d bytes, %d were sent", res.Object, size, stored.n)
	} else {
		err = st.putSignature(ctx, res.Object, sig, signer)
	}
	if err != nil {
		// An unsigned backup is never restored: do not leave it looking like one.
		_ = st.c.RemoveObject(context.WithoutCancel(ctx), st.cfg.Bucket, res.Object, minio.RemoveObjectOptions{})
		return res, st.explain("storing the signature of "+res.Object, err)
	}

	expired, err := st.expire(ctx, kind, cfg.RetentionDays, now())
	res.Expired = expired
	if err != nil {
		return res, &RetentionError{Err: err}
	}
	return res, nil
}

// RetentionError means the backup was stored but old backups could not be deleted.
type RetentionError struct{ Err error }

func (e *RetentionError) Error() string {
	return "backup stored, but retention failed: " + e.Err.Error() + "; old backups stay until the next successful run (grant s3:DeleteObject and s3:ListBucket)"
}

func (e *RetentionError) Unwrap() error { return e.Err }
