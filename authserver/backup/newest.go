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
	"slices"
	"time"
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
		"restore a copy of it (bucket versioning), or name an older backup explicitly (--object, spec.bootstrap.fromBackup.object) to accept the loss",
		e.Expected, e.How, latest)
}

// newestExpected is newestAuthentic checked against expect, the key of the newest
// backup the stack recorded ("" checks nothing). A newer backup than expect is
// fine (one finished after the Job was made); an older one, or none, is a
// *NewestMissingError.
func (s *bucket) newestExpected(ctx context.Context, kind, expect string, tr Trust) (*authentic, []string, error) {
	a, skipped, err := s.newestAuthentic(ctx, kind, tr)
	if expect == "" {
		return a, skipped, err
	}
	want, ok := s.parseKey(kind, expect)
	if !ok {
		return nil, skipped, &UsageError{Msg: fmt.Sprintf("BACKUP_EXPECT_NEWEST %q is not the key of a %s backup under s3://%s/%s", expect, kind, s.cfg.Bucket, s.folder(kind))}
	}
	var nb *noBackupError
	var na *NotAuthenticError
	switch {
	case err == nil && !a.time.Before(want):
		return a, skipped, nil
	case err == nil, errors.As(err, &nb), errors.As(err, &na):
		e := &NewestMissingError{Expected: expect, How: "is not in the bucket: someone deleted it"}
		switch now := timeNow(); {
		case want.After(now.Add(MaxFutureSkew)):
			e.How = fmt.Sprintf("is named more than %s after this pod's clock (%s): the clock of the node that made it, or of this one, is wrong", MaxFutureSkew, now.UTC().Format(time.RFC3339))
		case slices.Contains(skipped, expect):
			e.How = "is in the bucket but not authentic: someone replaced or altered it"
		}
		if a != nil {
			e.Latest = a.key
		}
		return nil, skipped, e
	}
	return nil, skipped, err
}
