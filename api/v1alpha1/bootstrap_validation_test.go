package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// spec.bootstrap (the declared restore) and the backups' private key. The reject
// cases join rejectCases (TestRejects, TestEveryRuleIsCovered); the transitions
// run in TestBootstrapTransitions.

const (
	msgBootstrapAdd    = "spec.bootstrap cannot be added or removed after creation: to restore into an existing stack follow the runbook in docs/backup-and-restore.md"
	msgBootstrapImmut  = "spec.bootstrap is immutable: a declared restore runs once, when the stack is created"
	msgFromBackupKey   = "spec.bootstrap.fromBackup needs spec.backup with encryption.privateKeySecretRef: the restore decrypts the backup with it"
	msgBackupObject    = `bootstrap.fromBackup.object must be "latest" or the key of a PostgreSQL backup, such as prod/team-a/postgres/20261128T030000Z.dump.gz.gpg`
	msgPassphraseAlone = "encryption.passphraseSecretRef needs encryption.privateKeySecretRef"
)

// restoreLeaves is a valid declared restore (with backupLeaves).
var restoreLeaves = map[string]any{
	"backup.encryption.privateKeySecretRef.name": "backup-private",
	"backup.encryption.privateKeySecretRef.key":  "private.asc",
	"bootstrap.fromBackup.object":                "latest",
}

func restoreSpec(extra map[string]any) map[string]any {
	return with(backupLeaves, restoreLeaves, extra)
}

func init() {
	obj := "bootstrap.fromBackup.object"
	fobj := "spec.bootstrap.fromBackup.object"
	cases := []rejectCase{
		{name: "fromBackup without the private key", set: with(backupLeaves, map[string]any{obj: "latest"}), field: "spec", kind: kindCEL, msg: msgFromBackupKey},
		{name: "fromBackup without spec.backup", set: map[string]any{obj: "latest"}, field: "spec", kind: kindCEL, msg: msgFromBackupKey},
		{name: "passphrase without private key", set: with(backupLeaves, map[string]any{"backup.encryption.passphraseSecretRef": map[string]any{"name": "pp", "key": "passphrase"}}),
			field: "spec.backup.encryption", kind: kindCEL, msg: msgPassphraseAlone},
		{name: "fromBackup object too long", set: restoreSpec(map[string]any{obj: strings.Repeat("a/", 510) + "postgres/20261128T030000Z.dump.gz.gpg"}), field: fobj, kind: kindMaxLength},
	}
	for _, bad := range []string{"", "newest", "prod/postgres/20261128T030000Z.dump.gz", "prod/redis/20261128T030000Z.rdb.gz.gpg",
		"prod/postgres/2026-11-28.dump.gz.gpg", "prod/postgres/20261128T030000Z.dump.gz.gpg/../x", "s3://b/prod/postgres/20261128T030000Z.dump.gz.gpg"} {
		cases = append(cases, rejectCase{name: "fromBackup object " + bad, set: restoreSpec(map[string]any{obj: bad}), field: fobj, kind: kindCEL, msg: msgBackupObject})
	}
	// The verify key ref is a SecretKeyRef: its name/key rules, at this use.
	vk := "bootstrap.fromBackup.verifyKeySecretRef."
	for _, c := range []struct {
		sub, kind string
		v         any
	}{
		{"name", kindMinLength, ""}, {"name", kindMaxLength, strings.Repeat("a", 254)}, {"name", kindPattern, "Bad_Name"},
		{"key", kindMinLength, ""}, {"key", kindMaxLength, strings.Repeat("a", 254)}, {"key", kindPattern, "bad key"},
	} {
		other := map[string]string{"name": "key", "key": "name"}[c.sub]
		cases = append(cases, rejectCase{name: "fromBackup verify key " + c.sub + " " + c.kind,
			set: restoreSpec(map[string]any{vk + c.sub: c.v, vk + other: "verify.pem"}), field: "spec." + vk + c.sub, kind: c.kind})
	}
	rejectCases = append(rejectCases, cases...)
}

// TestBootstrapAccepts: "latest", a key with and without a prefix, another bucket.
func TestBootstrapAccepts(t *testing.T) {
	for i, extra := range []map[string]any{
		{},
		{"bootstrap.fromBackup.object": "prod/team-a/postgres/20261128T030000Z.dump.gz.gpg"},
		{"bootstrap.fromBackup.object": "postgres/20261128T030000Z.dump.gz.gpg"},
		{"bootstrap.fromBackup.source.s3.bucket": "old-cluster-backups", "bootstrap.fromBackup.source.s3.prefix": "prod",
			"backup.encryption.passphraseSecretRef.name": "pp", "backup.encryption.passphraseSecretRef.key": "passphrase",
			"bootstrap.fromBackup.verifyKeySecretRef.name": "old-stack-backup-verify", "bootstrap.fromBackup.verifyKeySecretRef.key": "verify.pem",
			"backup.signing.trustUnsignedBefore": "2026-11-30T00:00:00Z", "backup.signing.maxExpansion": 1000},
	} {
		spec := minimalSpec()
		applyPaths(spec, restoreSpec(extra))
		if err := k8sClient.Create(context.Background(), authStack(fmt.Sprintf("bootstrap-accepts-%d", i), spec), client.DryRunAll); err != nil {
			t.Errorf("%v rejected: %v", extra, err)
		}
	}
}

var bootstrapTransitions = []specTransition{
	{name: "bootstrap added", create: with(backupLeaves, map[string]any{"backup.encryption.privateKeySecretRef.name": "p", "backup.encryption.privateKeySecretRef.key": "k"}),
		update: map[string]any{"bootstrap.fromBackup.object": "latest"}, field: "spec", msg: msgBootstrapAdd},
	{name: "bootstrap removed", create: restoreSpec(nil), update: map[string]any{"bootstrap": nil}, field: "spec", msg: msgBootstrapAdd},
	{name: "another backup", create: restoreSpec(nil), update: map[string]any{"bootstrap.fromBackup.object": "p/postgres/20261128T030000Z.dump.gz.gpg"},
		field: "spec.bootstrap", msg: msgBootstrapImmut},
	{name: "another source bucket", create: restoreSpec(nil), update: map[string]any{"bootstrap.fromBackup.source.s3.bucket": "other"},
		field: "spec.bootstrap", msg: msgBootstrapImmut},
	{name: "other field changed, bootstrap kept", create: restoreSpec(nil), update: map[string]any{"backup.postgres.schedule": "0 4 * * *"}},
}

// TestBootstrapTransitions: a declared restore is set at creation only and never changes.
func TestBootstrapTransitions(t *testing.T) {
	for i, tc := range bootstrapTransitions {
		t.Run(tc.name, func(t *testing.T) {
			spec := minimalSpec()
			applyPaths(spec, tc.create)
			checkTransition(t, fmt.Sprintf("bootstrap-transition-%d", i), spec,
				func(spec map[string]any) { applyPaths(spec, tc.update) }, tc.field, tc.msg)
		})
	}
}

// TestDeclareARestoreDocIsAccepted: the AuthStack of docs/backup-and-restore.md,
// "Declare a restore", is accepted as written, and its restore Job by the API server.
func TestDeclareARestoreDocIsAccepted(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "backup-and-restore.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i := strings.Index(doc, "## 3. Declare a restore")
	if i < 0 {
		t.Fatal(`docs/backup-and-restore.md has no "## 3. Declare a restore"`)
	}
	block := doc[i:]
	start := strings.Index(block, "```yaml\n")
	end := strings.Index(block[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no yaml block in the section")
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(block[start+8:start+8+end]), &u.Object); err != nil {
		t.Fatalf("the doc's YAML: %v", err)
	}
	u.SetNamespace(testNamespace)
	if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatalf("the doc's AuthStack is rejected: %v", err)
	}

	var stack authv1alpha1.AuthStack
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &stack); err != nil {
		t.Fatal(err)
	}
	stack.UID = "0b6c7f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"
	stack.Spec.Bootstrap.FromBackup.Object = "latest" // the API server's default
	for _, name := range []string{"demo", strings.Repeat("long-stack-name-", 3) + strings.Repeat("x", 15)} {
		stack.Name = name
		in := resources.Inputs{AuthServerImage: "ghcr.io/leanauth/authserver:test", Pepper: resources.PepperRef(&stack)}
		job := resources.RestoreJob(&stack, resources.DefaultBackupSources(&stack, in), in)
		if err := k8sClient.Create(context.Background(), job, client.DryRunAll); err != nil {
			t.Errorf("restore Job %s (%d chars) rejected: %v", job.Name, len(job.Name), err)
		}
	}
}
