package config

import (
	"net/url"
	"strings"
	"time"
)

// The environment of `authserver backup` and `authserver restore`
// (authserver/backup), read by the same loader as the server's: the same
// NAME_FILE variants for secrets, the same error shape.

// Backup kinds: what a backup or restore run works on.
const (
	BackupPostgres = "postgres" // needs DATABASE_URL (direct, not pooled)
	BackupRedis    = "redis"    // needs REDIS_URL
)

// S3 says where backups are stored.
type S3 struct {
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

// DefaultMaxExpansion is BACKUP_MAX_EXPANSION's default. The stack's own data
// compresses about 3.6 times (authserver/backup/DESIGN.md, "Measurements"); 100
// leaves room for far more repetitive data and still stops a gzip bomb (up to
// about 1000 times) at a tenth of its size.
const DefaultMaxExpansion = 100

// Backup is the environment of a backup or restore run.
type Backup struct {
	S3 S3

	DatabaseURL string // DATABASE_URL (direct, not pooled)
	RedisURL    string // REDIS_URL

	PublicKeyFile  string // BACKUP_PUBLIC_KEY_FILE (backup)
	PrivateKeyFile string // BACKUP_PRIVATE_KEY_FILE (restore)
	// PassphraseFile holds the private key's passphrase, when it has one.
	PassphraseFile string // BACKUP_PRIVATE_KEY_PASSPHRASE_FILE

	RetentionDays int // BACKUP_RETENTION_DAYS, default 30

	// SigningKeyFile holds the ed25519 private key backups are signed with (backup).
	SigningKeyFile string // BACKUP_SIGNING_KEY_FILE
	// VerifyKeyFile holds its public half, which restores and drills check (restore).
	VerifyKeyFile string // BACKUP_VERIFY_KEY_FILE
	// TrustUnsignedBefore: unsigned backups named before this time are restored
	// (made before backups were signed); zero: none is. BACKUP_TRUST_UNSIGNED_BEFORE, RFC 3339.
	TrustUnsignedBefore time.Time
	// MaxExpansion caps an unsigned backup's decompressed size at this many times
	// its stored size (BACKUP_MAX_EXPANSION, default DefaultMaxExpansion).
	MaxExpansion int
	// ExpectNewest is the object key of the newest backup the stack recorded
	// (BACKUP_EXPECT_NEWEST; the operator sets it from status.backups): "latest"
	// resolving to an older one fails the run instead of silently restoring it.
	ExpectNewest string

	// PgDump and PgRestore are the binaries (PG_DUMP, PG_RESTORE; default from PATH).
	PgDump    string
	PgRestore string
}

// LoadBackup reads the environment of `authserver backup <kind>`.
func LoadBackup(get Getenv, read ReadFile, kind string) (*Backup, error) {
	l := &loader{get: get, read: read}
	c := loadBackupCommon(l)
	switch kind {
	case BackupPostgres:
		c.DatabaseURL = l.required("DATABASE_URL", true)
		checkDBURL(l, "DATABASE_URL", c.DatabaseURL)
	case BackupRedis:
		c.RedisURL = l.required("REDIS_URL", true)
		if c.RedisURL != "" {
			checkRedisURL(l, c.RedisURL)
		}
	default:
		l.fail("kind", "unknown backup kind %q: use %s or %s", kind, BackupPostgres, BackupRedis)
	}
	c.PublicKeyFile = l.required("BACKUP_PUBLIC_KEY_FILE", false)
	c.SigningKeyFile = l.required("BACKUP_SIGNING_KEY_FILE", false)
	c.RetentionDays = l.integer("BACKUP_RETENTION_DAYS", 30, 1, 36500)
	return c, l.err()
}

// LoadRestore reads the environment of `authserver restore <kind>`; the
// database URL is optional there (--target-url may name it).
func LoadRestore(get Getenv, read ReadFile) (*Backup, error) {
	l := &loader{get: get, read: read}
	c := loadBackupCommon(l)
	c.DatabaseURL = l.str("DATABASE_URL", "", true)
	checkDBURL(l, "DATABASE_URL", c.DatabaseURL)
	// REDIS_URL (optional): the session cache a postgres restore flushes.
	c.RedisURL = l.str("REDIS_URL", "", true)
	c.PrivateKeyFile = l.required("BACKUP_PRIVATE_KEY_FILE", false)
	c.PassphraseFile = l.str("BACKUP_PRIVATE_KEY_PASSPHRASE_FILE", "", false)
	c.VerifyKeyFile = l.required("BACKUP_VERIFY_KEY_FILE", false)
	if v := l.str("BACKUP_TRUST_UNSIGNED_BEFORE", "", false); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			l.fail("BACKUP_TRUST_UNSIGNED_BEFORE", "must be an RFC 3339 time such as 2026-11-30T00:00:00Z (the time signing was turned on)")
		}
		c.TrustUnsignedBefore = t
	}
	c.MaxExpansion = l.integer("BACKUP_MAX_EXPANSION", DefaultMaxExpansion, 2, 100000)
	c.ExpectNewest = l.str("BACKUP_EXPECT_NEWEST", "", false)
	return c, l.err()
}

func loadBackupCommon(l *loader) *Backup {
	return &Backup{
		S3:        loadS3(l),
		PgDump:    l.str("PG_DUMP", "pg_dump", false),
		PgRestore: l.str("PG_RESTORE", "pg_restore", false),
	}
}

// loadS3 reads the S3_* and AWS_* settings.
func loadS3(l *loader) S3 {
	c := S3{
		Bucket:         l.required("S3_BUCKET", false),
		Prefix:         strings.Trim(l.str("S3_PREFIX", "", false), "/"),
		Region:         l.str("S3_REGION", "", false),
		ForcePathStyle: l.boolean("S3_FORCE_PATH_STYLE", false),
		AccessKey:      l.str("AWS_ACCESS_KEY_ID", "", true),
		SecretKey:      l.str("AWS_SECRET_ACCESS_KEY", "", true),
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		l.fail("AWS_ACCESS_KEY_ID", "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (to use the pod's IAM role)")
	}
	switch ep := l.str("S3_ENDPOINT", "", false); {
	case ep == "":
		c.Endpoint, c.Secure = "s3.amazonaws.com", true
	case strings.Contains(ep, "://"):
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
			l.fail("S3_ENDPOINT", "must be http(s)://host[:port] or host[:port], with no path")
		} else {
			c.Endpoint, c.Secure = u.Host, u.Scheme == "https"
		}
	default:
		c.Endpoint, c.Secure = ep, true
	}
	return c
}
