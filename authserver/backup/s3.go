package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// PartSize is the multipart part size. Parts are buffered in memory (one at a
// time), so it bounds the job's memory; 10000 parts make the largest backup
// 160 GiB.
const PartSize = 16 << 20

// Kinds of backup; each has its folder under S3_PREFIX.
const (
	KindPostgres = config.BackupPostgres
	KindRedis    = config.BackupRedis
)

// timeLayout names the objects: <prefix>/<kind>/<UTC time><suffix>.
const timeLayout = "20060102T150405Z"

var suffixes = map[string]string{KindPostgres: ".dump.gz.gpg", KindRedis: ".rdb.gz.gpg"}

var timeNow = time.Now

// bucket is where the backups are stored.
type bucket struct {
	c   *minio.Client
	cfg config.S3
}

func newStore(cfg config.S3) (*bucket, error) {
	var creds *credentials.Credentials
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.IAM{}})
	}
	lookup := minio.BucketLookupAuto
	if cfg.ForcePathStyle {
		lookup = minio.BucketLookupPath
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, err
	}
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = 2 * time.Minute
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds: creds, Secure: cfg.Secure, Region: cfg.Region, BucketLookup: lookup,
		Transport: tr, MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w; check S3_ENDPOINT", cfg.Endpoint, err)
	}
	return &bucket{c: c, cfg: cfg}, nil
}

// folder is "<prefix>/<kind>/" (or "<kind>/" without prefix).
func (s *bucket) folder(kind string) string {
	if s.cfg.Prefix == "" {
		return kind + "/"
	}
	return s.cfg.Prefix + "/" + kind + "/"
}

func (s *bucket) keyFor(kind string, t time.Time) string {
	return s.folder(kind) + t.UTC().Format(timeLayout) + suffixes[kind]
}

// parseKey returns the time in the name of a backup object of kind, and
// false for any other object (never touched by retention).
func (s *bucket) parseKey(kind, key string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(key, s.folder(kind))
	if !ok {
		return time.Time{}, false
	}
	stamp, ok := strings.CutSuffix(rest, suffixes[kind])
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(timeLayout, stamp)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// s3Hint turns an S3 error into advice.
func (s *bucket) explain(doing string, err error) error {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case "NoSuchBucket":
			return fmt.Errorf("%s: bucket %q does not exist at %s: create it or fix S3_BUCKET", doing, s.cfg.Bucket, s.cfg.Endpoint)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
			return fmt.Errorf("%s: S3 refused the credentials (%s): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket policy", doing, resp.Code)
		case "NoSuchKey":
			return fmt.Errorf("%s: no such object in bucket %q: list the backups and pass an existing key to --object", doing, s.cfg.Bucket)
		}
		return fmt.Errorf("%s: S3 error %s (HTTP %d): %s", doing, resp.Code, resp.StatusCode, resp.Message)
	}
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%s: cannot reach S3 at %s: %w; check S3_ENDPOINT, DNS and the NetworkPolicy egress", doing, s.cfg.Endpoint, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// check fails fast (before any dump starts) when the bucket is unreachable.
func (s *bucket) check(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.cfg.Bucket)
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && resp.StatusCode == http.StatusForbidden {
		// A policy that grants s3:ListBucket only under the prefix refuses
		// HeadBucket; the upload itself says whether writing is allowed.
		return nil
	}
	if err != nil {
		return s.explain("checking the S3 bucket", err)
	}
	if !ok {
		return fmt.Errorf("checking the S3 bucket: bucket %q does not exist at %s: create it or fix S3_BUCKET", s.cfg.Bucket, s.cfg.Endpoint)
	}
	return nil
}

// put streams r to key with a multipart upload of unknown length, with the
// user metadata meta. On any
// error (including an error returned by r) the multipart upload is aborted,
// so no object appears under key.
func (s *bucket) put(ctx context.Context, key string, r io.Reader, meta map[string]string) (int64, error) {
	info, err := s.c.PutObject(ctx, s.cfg.Bucket, key, r, -1, minio.PutObjectOptions{
		PartSize:     PartSize,
		ContentType:  "application/pgp-encrypted",
		UserMetadata: meta,
	})
	if err != nil {
		return 0, err
	}
	return info.Size, nil
}

// exists reports whether key is there (false on any error: the upload decides).
func (s *bucket) exists(ctx context.Context, key string) bool {
	_, err := s.c.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{})
	return err == nil
}

// object is one backup in the bucket.
type object struct {
	Key  string
	Time time.Time // from the name
	Size int64
}

// list returns the backups of kind, oldest first.
func (s *bucket) list(ctx context.Context, kind string) ([]object, error) {
	var out []object
	for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.folder(kind), Recursive: true}) {
		if o.Err != nil {
			return nil, s.explain("listing backups", o.Err)
		}
		if t, ok := s.parseKey(kind, o.Key); ok {
			out = append(out, object{Key: o.Key, Time: t, Size: o.Size})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// expire deletes the backups of kind whose name time is more than days days
// before now, and returns their keys. Objects not named by this tool are kept.
func (s *bucket) expire(ctx context.Context, kind string, days int, now time.Time) ([]string, error) {
	limit := time.Duration(days) * 24 * time.Hour
	var deleted []string
	// Listed by name, a backup comes just before its signature object ("<key>.sig"),
	// which goes with it (also when the backup itself is already gone).
	for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.folder(kind), Recursive: true}) {
		if o.Err != nil {
			return deleted, s.explain("listing backups", o.Err)
		}
		backup, isSig := strings.CutSuffix(o.Key, sigSuffix)
		t, ok := s.parseKey(kind, backup)
		if !ok || now.Sub(t) <= limit {
			continue
		}
		if err := s.c.RemoveObject(ctx, s.cfg.Bucket, o.Key, minio.RemoveObjectOptions{}); err != nil {
			return deleted, s.explain("deleting expired backup "+o.Key, err)
		}
		if !isSig {
			deleted = append(deleted, o.Key)
		}
	}
	return deleted, nil
}
