package testservers

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/leanauth/authstack/internal/servers"
)

// S3Script builds the S3-compatible server (versitygw) S3 starts.
const S3Script = "hack/s3-test-server.sh"

// S3Server is an S3-compatible server (versitygw, posix backend with
// sidecar metadata, so no xattrs are needed) owned by one test.
type S3Server struct {
	bin            string
	dir            string
	port           int
	access, secret string
	proc           *servers.Process
}

// S3 starts an S3-compatible server on a free loopback port with a random
// root access key; its data lives in a temp dir. Stopped at t.Cleanup.
// Create buckets with CreateBucket.
func S3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := servers.CachedBinary("VERSITYGW_BIN", "versitygw", S3Script)
	if err != nil {
		fatal(t, "S3 server", err)
	}
	dir, err := os.MkdirTemp("", "authstack-s3-*")
	if err != nil {
		fatal(t, "S3 server", err)
	}
	for _, d := range []string{"data", "meta"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			fatal(t, "S3 server", err)
		}
	}
	s := &S3Server{bin: bin, dir: dir, access: "AK" + servers.RandomSecret(8), secret: servers.RandomSecret(20)}
	t.Cleanup(func() {
		if s.proc != nil {
			s.proc.Stop()
		}
		os.RemoveAll(dir)
	})
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s.port = FreePort(t)
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	fatal(t, "S3 server", lastErr)
	return nil
}

func (s *S3Server) start() error {
	args := []string{"--access", s.access, "--secret", s.secret, "--region", s.Region(),
		"--port", s.Addr(), "--quiet", "posix", "--sidecar", filepath.Join(s.dir, "meta"), filepath.Join(s.dir, "data")}
	p, err := servers.StartProcess("versitygw", s.bin, args, nil, filepath.Join(s.dir, "versitygw.log"))
	if err != nil {
		return err
	}
	s.proc = p
	client := &http.Client{Timeout: time.Second}
	return p.WaitReady(30*time.Second, func() error {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err != nil {
			return err
		}
		c.Close()
		resp, err := client.Get(s.Endpoint() + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// Addr is 127.0.0.1:port.
func (s *S3Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Endpoint is http://127.0.0.1:port.
func (s *S3Server) Endpoint() string { return "http://" + s.Addr() }

// Region is the server's region ("us-east-1").
func (s *S3Server) Region() string { return "us-east-1" }

// AccessKey and SecretKey are the root account's credentials.
func (s *S3Server) AccessKey() string { return s.access }

// SecretKey is the root account's secret key.
func (s *S3Server) SecretKey() string { return s.secret }

// LogPath is the server's log file.
func (s *S3Server) LogPath() string { return filepath.Join(s.dir, "versitygw.log") }

// Client is a path-style S3 client with the root credentials.
func (s *S3Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Addr(), &minio.Options{Creds: credentials.NewStaticV4(s.access, s.secret, ""),
		Region: s.Region(), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatalf("testservers: S3 client: %v", err)
	}
	return c
}

// CreateBucket creates a bucket through the S3 API.
func (s *S3Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region()}); err != nil {
		t.Fatalf("testservers: creating bucket %s: %v\nlog:\n%s", name, err, servers.LogTail(s.LogPath()))
	}
}

// Stop stops the server (for "S3 down" tests); Start brings it back with
// the same port and data.
func (s *S3Server) Stop(t testing.TB) {
	t.Helper()
	s.proc.Stop()
}

// Start starts the server again on the same port with the same data.
func (s *S3Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		fatal(t, "S3 server again", err)
	}
}
