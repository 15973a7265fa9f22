package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/internal/servers"
	"github.com/leanauth/authstack/internal/testservers"
)

// seedRedis writes strings (some with a TTL), a hash and a set.
func seedRedis(t testing.TB, url string, n int) map[string]string {
	t.Helper()
	ctx := context.Background()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	want := map[string]string{}
	pipe := c.Pipeline()
	for i := 0; i < n; i++ {
		k, v := fmt.Sprintf("session:%05d", i), fmt.Sprintf("user-%d|%s", i, strings.Repeat("v", i%50))
		ttl := time.Duration(0)
		if i%2 == 0 {
			ttl = time.Hour
		}
		pipe.Set(ctx, k, v, ttl)
		want[k] = v
	}
	pipe.HSet(ctx, "ratelimit:h", "a", "1", "b", "2")
	pipe.SAdd(ctx, "user:sessions:1", "s1", "s2")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	return want
}

// loadRDB starts a fresh redis-server with rdb as its dir/dbfilename and
// returns a client to it.
func loadRDB(t testing.TB, rdb []byte) *redis.Client {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dump.rdb"), rdb, 0o600); err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server: %v (run hack/test-deps.sh)", err)
	}
	port := testservers.FreePort(t)
	p, err := servers.StartProcess("redis-server", bin, []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"}, nil, filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	t.Cleanup(func() { c.Close() })
	if err := p.WaitReady(30*time.Second, func() error { return c.Ping(context.Background()).Err() }); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRedisSnapshotRoundTrip(t *testing.T) {
	s3, key := newStorage(t)
	for _, tc := range []struct{ name, conf string }{
		// Redis 7 default: diskless, "$EOF:<mark>" framing.
		{"diskless", ""},
		// Disk-backed sync: "$<length>" framing.
		{"disk", "repl-diskless-sync no\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pw := servers.RandomSecret(16)
			rs := testservers.RedisWithConfig(t, servers.DefaultRedisConf(pw)+tc.conf)
			want := seedRedis(t, rs.URL(), 5000)
			prefix := "r-" + tc.name
			e := s3Env(s3, "backups", prefix, key).with("REDIS_URL", rs.URL())
			r := runCLI(t, e, "backup", "redis")
			if r.code != 0 {
				t.Fatalf("backup redis exit %d", r.code)
			}
			obj, _ := r.log["object"].(string)
			if !strings.HasPrefix(obj, prefix+"/redis/") || !strings.HasSuffix(obj, ".rdb.gz.gpg") {
				t.Fatalf("object %q", obj)
			}
			if strings.Contains(r.stderr, pw) {
				t.Fatal("Redis password in the log")
			}
			// The object decrypts with stock gpg.
			enc := filepath.Join(t.TempDir(), "r.gpg")
			os.WriteFile(enc, download(t, s3.Client(t), "backups", obj), 0o600)
			if out := runGPG(t, key.home, nil, "--decrypt", enc); !bytes.HasPrefix(out, []byte{0x1f, 0x8b}) {
				t.Fatal("gpg output is not gzip")
			}

			out := filepath.Join(t.TempDir(), "dump.rdb")
			r = runCLI(t, e, "restore", "redis", "--out", out)
			if r.code != 0 {
				t.Fatalf("restore redis exit %d", r.code)
			}
			rdb, err := os.ReadFile(out)
			if err != nil || !bytes.HasPrefix(rdb, []byte("REDIS")) {
				t.Fatalf("restored file is not an RDB: %v", err)
			}
			c := loadRDB(t, rdb)
			ctx := context.Background()
			if n := c.DBSize(ctx).Val(); n != int64(len(want))+2 {
				t.Fatalf("loaded %d keys, want %d", n, len(want)+2)
			}
			for k, v := range want {
				if got, err := c.Get(ctx, k).Result(); err != nil || got != v {
					t.Fatalf("%s = %q (%v), want %q", k, got, err, v)
				}
			}
			if ttl := c.TTL(ctx, "session:00000").Val(); ttl <= 0 || ttl > time.Hour {
				t.Fatalf("TTL not kept: %v", ttl)
			}
			if ttl := c.TTL(ctx, "session:00001").Val(); ttl != -1 {
				t.Fatalf("persistent key got TTL %v", ttl)
			}
			if m := c.HGetAll(ctx, "ratelimit:h").Val(); m["a"] != "1" || m["b"] != "2" {
				t.Fatalf("hash %v", m)
			}
			if n := c.SCard(ctx, "user:sessions:1").Val(); n != 2 {
				t.Fatalf("set has %d members", n)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		rs := testservers.Redis(t)
		bad := strings.Replace(rs.URL(), rs.Password(), "wrong", 1)
		r := runCLI(t, s3Env(s3, "backups", "r-bad", key).with("REDIS_URL", bad), "backup", "redis")
		if r.code != 1 || !strings.Contains(r.log["error"].(string), "check the password in REDIS_URL") {
			t.Fatalf("exit %d, %v", r.code, r.log["error"])
		}
		for _, o := range objects(t, s3.Client(t), "backups") {
			if strings.HasPrefix(o.Key, "r-bad/") {
				t.Fatalf("object left by a failed backup: %s", o.Key)
			}
		}
	})
}

func TestCopyUntilMark(t *testing.T) {
	mark := []byte(strings.Repeat("ab01", 10))
	payload := bytes.Repeat([]byte("REDIS0011 payload "), 5000)
	for _, tc := range []struct {
		name  string
		input []byte
		want  []byte
		err   bool
	}{
		{"mark at end", append(append([]byte{}, payload...), mark...), payload, false},
		{"stream after mark", append(append(append([]byte{}, payload...), mark...), []byte("*1\r\n$4\r\nPING\r\n")...), payload, false},
		{"empty payload", append([]byte{}, mark...), nil, false},
		{"truncated", payload, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tc.input), iotest.OneByteReader(bytes.NewReader(tc.input)), iotest.HalfReader(bytes.NewReader(tc.input))} {
				var out bytes.Buffer
				n, err := copyUntilMark(&out, r, mark)
				if tc.err {
					if err == nil {
						t.Fatal("no error for a stream without the end mark")
					}
					continue
				}
				if err != nil || !bytes.Equal(out.Bytes(), tc.want) || n != int64(len(tc.want)) {
					t.Fatalf("err %v, got %d bytes (n=%d), want %d", err, out.Len(), n, len(tc.want))
				}
			}
		})
	}
}

// TestRedisBackupWithACLUser: the documented permissions (+psync +replconf
// +sync) are enough, and a user without them gets a message naming them.
func TestRedisBackupWithACLUser(t *testing.T) {
	s3, key := newStorage(t)
	admin := servers.RandomSecret(16)
	conf := servers.DefaultRedisConf(admin) +
		"user backup on >backup-pw-1 +psync +replconf +sync\n" +
		"user app on >app-pw-1 ~* +@read +@write\n"
	rs := testservers.RedisWithConfig(t, conf)
	seedRedis(t, rs.URL(), 10)
	url := func(user, pw string) string { return "redis://" + user + ":" + pw + "@" + rs.Addr() + "/0" }

	r := runCLI(t, s3Env(s3, "backups", "acl", key).with("REDIS_URL", url("backup", "backup-pw-1")), "backup", "redis")
	if r.code != 0 {
		t.Fatalf("backup with the backup user: exit %d", r.code)
	}
	r = runCLI(t, s3Env(s3, "backups", "acl-denied", key).with("REDIS_URL", url("app", "app-pw-1")), "backup", "redis")
	if r.code != 1 || !strings.Contains(r.log["error"].(string), "+psync +replconf +sync") {
		t.Fatalf("backup with a user lacking permissions: exit %d, %v", r.code, r.log["error"])
	}
	if strings.Contains(r.stderr, "app-pw-1") || strings.Contains(r.stderr, "backup-pw-1") {
		t.Fatal("a password is in the log")
	}
	for _, o := range objects(t, s3.Client(t), "backups") {
		if strings.HasPrefix(o.Key, "acl-denied/") {
			t.Fatalf("object left by a failed backup: %s", o.Key)
		}
	}
}
