package testservers

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestS3StoresObjectsAndSurvivesRestart(t *testing.T) {
	t.Parallel()
	s := S3(t)
	s.CreateBucket(t, "bucket-one")
	ctx := context.Background()
	c := s.Client(t)
	if _, err := c.PutObject(ctx, "bucket-one", "dir/k", strings.NewReader("hello"), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// Wrong credentials are refused: the server checks signatures.
	bad, err := minio.New(s.Addr(), &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey(), "wrong", ""), Region: s.Region(), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.StatObject(ctx, "bucket-one", "dir/k", minio.StatObjectOptions{}); err == nil {
		t.Fatal("a wrong secret key was accepted")
	}

	s.Stop(t)
	if _, err := c.BucketExists(ctx, "bucket-one"); err == nil {
		t.Fatal("the stopped server still answers")
	}
	s.Start(t)
	o, err := c.GetObject(ctx, "bucket-one", "dir/k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil || string(b) != "hello" {
		t.Fatalf("after restart: %q, %v", b, err)
	}
}
