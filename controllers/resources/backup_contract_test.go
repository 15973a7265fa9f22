package resources

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/leanauth/authstack/authserver/backup"
)

// The contract between `authserver backup`, which writes its result line to
// the container's termination message, and the operator, which reads it for
// status.backups: the writer's own output, read by BackupRunFromJob.
func TestBackupStatusReadsWhatTheBackupWrites(t *testing.T) {
	const object = "stacks/prod/postgres/20261128T030000Z.dump.gz.gpg"
	stored := backup.Result{Kind: BackupKindPostgres, Object: object, Size: 1234, RawSize: 5678, Duration: 2 * time.Second}
	cases := []struct {
		name       string
		res        backup.Result
		err        error
		jobOK      bool // exit 0 completes the Job; any other exit fails it
		wantStored bool
		wantObject string
		wantSize   int64
		wantMsg    string
	}{
		{"stored", stored, nil, true, true, object, 1234, ""},
		{"failed", backup.Result{Kind: BackupKindPostgres, Duration: time.Second},
			errors.New("pg_dump of db failed: password authentication failed; check DATABASE_URL"), false, false, "", 0, "check DATABASE_URL"},
		{"stored, retention failed (exit 3)", stored, &backup.RetentionError{Err: errors.New("AccessDenied")}, false, true, object, 1234, "retention failed: AccessDenied"},
		{"failed with a long message", backup.Result{Kind: BackupKindRedis}, errors.New(strings.Repeat("x", 10000)), false, false, "", 0, "xxxx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			line := backup.ResultOf(tc.res.Kind, tc.res, tc.err).Line()
			if len(line) > 4096 {
				t.Fatalf("result line of %d bytes: the kubelet keeps 4096 of a termination message", len(line))
			}
			job := finishedJob("demo-backup-1", tc.jobOK, backupT0, "BackoffLimitExceeded")
			pod := podWithResult("log output before the result\n"+string(line), backupT0)
			run, stored, finished := BackupRunFromJob(&job, []corev1.Pod{pod})
			if !finished || stored != tc.wantStored || run.Object != tc.wantObject || run.SizeBytes != tc.wantSize {
				t.Fatalf("read %+v stored %v finished %v from %s", run, stored, finished, line)
			}
			if !strings.Contains(run.Message, tc.wantMsg) || (tc.wantMsg == "") != (run.Message == "") || len(run.Message) > 1024 {
				t.Fatalf("message %q, want one with %q", run.Message, tc.wantMsg)
			}
		})
	}
}

// TestBackupStatusIgnoresAHalfDecodedResult: a termination message that is not
// a whole result line (cut, or garbled) says nothing: a failed Job stays a failure.
func TestBackupStatusIgnoresAHalfDecodedResult(t *testing.T) {
	bad := finishedJob("demo-backup-1", false, backupT0, "BackoffLimitExceeded")
	run, stored, _ := BackupRunFromJob(&bad, []corev1.Pod{podWithResult(`{"stored":true,"object":"k","size_bytes":"many"}`, backupT0)})
	if stored || run.Object != "" || !strings.HasPrefix(run.Message, "BackoffLimitExceeded") {
		t.Fatalf("a half-decoded line counted: %+v stored %v", run, stored)
	}
}
