// Package backup implements `authserver backup` and `authserver restore`:
// PostgreSQL dumps (pg_dump -Fc) and Redis RDB snapshots (fetched over the
// replication protocol), gzip-compressed, OpenPGP-encrypted to a public key
// and streamed to S3 with a multipart upload; retention; and the restore
// path. See DESIGN.md beside this file and docs/backup-and-restore.md.
package backup

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Getenv looks up an environment variable (os.LookupEnv in production).
type Getenv func(string) (string, bool)

// S3Config says where backups are stored.
type S3Config struct {
	// Endpoint is host[:port] of the S3 API, without scheme.
	Endpoint string
	// Secure is true for https (the default when S3_ENDPOINT has no scheme).
	Secure         bool
	Bucket         string
	Prefix         string // without leading or trailing slash; may be empty
	Region         string
	ForcePathStyle bool
	AccessKey      string
	SecretKey      string
}

// Config is the environment of a backup or restore run.
type Config struct {
	S3 S3Config

	DatabaseURL string // DATABASE_URL (direct, not pooled)
	RedisURL    string // REDIS_URL

	PublicKeyFile  string // BACKUP_PUBLIC_KEY_FILE (backup)
	PrivateKeyFile string // BACKUP_PRIVATE_KEY_FILE (restore)
	// PassphraseFile holds the private key's passphrase, when it has one.
	PassphraseFile string // BACKUP_PRIVATE_KEY_PASSPHRASE_FILE

	RetentionDays int // BACKUP_RETENTION_DAYS, default 30

	// PgDump and PgRestore are the binaries (PG_DUMP, PG_RESTORE; default from PATH).
	PgDump    string
	PgRestore string

	// Now is the clock (tests inject one); defaults to time.Now.
	Now func() time.Time
}

// ConfigError is a missing or malformed setting; its message says what to set.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

type loader struct {
	get  Getenv
	errs []string
}

func (l *loader) str(name string) string {
	v, _ := l.get(name)
	return strings.TrimSpace(v)
}

func (l *loader) required(name, what string) string {
	v := l.str(name)
	if v == "" {
		l.errs = append(l.errs, fmt.Sprintf("%s is not set (%s)", name, what))
	}
	return v
}

// LoadS3 reads the S3_* and AWS_* settings.
func loadS3(l *loader) S3Config {
	c := S3Config{
		Bucket:    l.required("S3_BUCKET", "the bucket backups are stored in"),
		Prefix:    strings.Trim(l.str("S3_PREFIX"), "/"),
		Region:    l.str("S3_REGION"),
		AccessKey: l.str("AWS_ACCESS_KEY_ID"),
		SecretKey: l.str("AWS_SECRET_ACCESS_KEY"),
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		l.errs = append(l.errs, "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (to use the pod's IAM role)")
	}
	ep := l.str("S3_ENDPOINT")
	switch {
	case ep == "":
		c.Endpoint, c.Secure = "s3.amazonaws.com", true
	case strings.Contains(ep, "://"):
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
			l.errs = append(l.errs, "S3_ENDPOINT must be http(s)://host[:port] or host[:port], with no path")
		} else {
			c.Endpoint, c.Secure = u.Host, u.Scheme == "https"
		}
	default:
		c.Endpoint, c.Secure = ep, true
	}
	if v := l.str("S3_FORCE_PATH_STYLE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			l.errs = append(l.errs, "S3_FORCE_PATH_STYLE must be true or false")
		}
		c.ForcePathStyle = b
	}
	return c
}

func (l *loader) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return &ConfigError{Msg: "configuration: " + strings.Join(l.errs, "; ")}
}

func loadCommon(l *loader) Config {
	c := Config{S3: loadS3(l), PgDump: l.str("PG_DUMP"), PgRestore: l.str("PG_RESTORE"), Now: time.Now}
	if c.PgDump == "" {
		c.PgDump = "pg_dump"
	}
	if c.PgRestore == "" {
		c.PgRestore = "pg_restore"
	}
	return c
}

// LoadBackup reads the environment of `authserver backup <kind>`; kind is
// "postgres" (needs DATABASE_URL) or "redis" (needs REDIS_URL).
func LoadBackup(get Getenv, kind string) (Config, error) {
	l := &loader{get: get}
	c := loadCommon(l)
	switch kind {
	case KindPostgres:
		c.DatabaseURL = l.required("DATABASE_URL", "the direct PostgreSQL URL, not the pooler's")
	case KindRedis:
		c.RedisURL = l.required("REDIS_URL", "redis://[user:password@]host:port")
	}
	c.PublicKeyFile = l.required("BACKUP_PUBLIC_KEY_FILE", "path of the armored OpenPGP public key backups are encrypted to")
	c.RetentionDays = 30
	if v := l.str("BACKUP_RETENTION_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 36500 {
			l.errs = append(l.errs, "BACKUP_RETENTION_DAYS must be a whole number of days from 1 to 36500")
		}
		c.RetentionDays = n
	}
	return c, l.err()
}

// LoadRestore reads the environment of `authserver restore <kind>`.
func LoadRestore(get Getenv, kind string) (Config, error) {
	l := &loader{get: get}
	c := loadCommon(l)
	c.DatabaseURL = l.str("DATABASE_URL")
	c.PrivateKeyFile = l.required("BACKUP_PRIVATE_KEY_FILE", "path of the OpenPGP private key the backups are encrypted to")
	c.PassphraseFile = l.str("BACKUP_PRIVATE_KEY_PASSPHRASE_FILE")
	return c, l.err()
}
