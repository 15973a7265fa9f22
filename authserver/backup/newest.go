package backup

// Deleted backups: signatures stop a bucket writer from planting a backup, not
// from deleting the newest ones, after which "latest" is an older genuine backup
// and a restore of it loses what was written since. The operator records each
// successful backup (status.backups.<kind>.lastSuccess) and passes its key to
// the Jobs that resolve "latest" (BACKUP_EXPECT_NEWEST): resolving to anything
// older fails the run. See DESIGN.md ("Signatures").

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"
)

// NewestMissingError: "latest" resolved to a backup older than the newest one
// the stack recorded, or to none. Nothing was decrypted or restored.
type NewestMissingError struct {
	Expected string // BACKUP_EXPECT_NEWEST
	Latest   string // what "latest" would be; "" when no backup is usable
	How      string // what became of Expected
}

func (e *NewestMissingError) Error() string {
	latest := "no usable backup is left"
	if e.Latest != "" {
		latest = "latest would be " + e.Latest + ", which loses the data written since"
	}
	return fmt.Sprintf("the newest backup this stack recorded, %s, %s; %s. Nothing was restored: "+
		"restore a copy of it (bucket versioning) and run again; or, to accept the loss, restore an older backup by name "+
		"(authserver restore --object; spec.bootstrap.fromBackup cannot change: re-create the AuthStack naming it in spec.bootstrap.fromBackup.object)",
		e.Expected, e.How, latest)
}

// newestExpected is newestAuthentic checked against expect, the key of the newest
// backup the stack recorded ("" checks nothing). The expected backup is
// authenticated itself (never inferred from a later name, which a node whose
// clock ran ahead gives to older data, nor hidden by junk named in the
// future); a newer one is used instead when one finished after the Job was
// made (see newestAuthentic's floor). Expected missing, not authentic or named
// in the future is a *NewestMissingError.
func (s *bucket) newestExpected(ctx context.Context, kind, expect string, tr Trust) (*authentic, []string, error) {
	if expect == "" {
		return s.newestAuthentic(ctx, kind, tr, nil)
	}
	want, ok := s.parseKey(kind, expect)
	if !ok {
		return nil, nil, &UsageError{Msg: fmt.Sprintf("BACKUP_EXPECT_NEWEST %q is not the key of a %s backup under s3://%s/%s", expect, kind, s.cfg.Bucket, s.folder(kind))}
	}
	e := &NewestMissingError{Expected: expect}
	if now := timeNow(); want.After(now.Add(MaxFutureSkew)) {
		e.How = fmt.Sprintf("is named more than %s after this pod's clock (%s): the clock of the node that made it, or of this one, is wrong", MaxFutureSkew, now.UTC().Format(time.RFC3339))
	} else if _, err := s.c.StatObject(ctx, s.cfg.Bucket, expect, minio.StatObjectOptions{}); isNotFound(err) {
		e.How = "is not in the bucket: someone deleted it"
	} else if err != nil {
		return nil, nil, s.explain("checking the expected backup "+expect, err)
	} else {
		exp, err := s.authenticate(ctx, kind, expect, tr)
		var na *NotAuthenticError
		switch {
		case err == nil:
			return s.newestAuthentic(ctx, kind, tr, exp)
		case !errors.As(err, &na):
			return nil, nil, err
		}
		e.How = "is in the bucket but not authentic: someone replaced or altered it"
	}
	a, skipped, err := s.newestAuthentic(ctx, kind, tr, nil)
	var nb *noBackupError
	var na *NotAuthenticError
	if err != nil && !errors.As(err, &nb) && !errors.As(err, &na) {
		return nil, skipped, err
	}
	if a != nil {
		e.Latest = a.key
	}
	return nil, skipped, e
}
