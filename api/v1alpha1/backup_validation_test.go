package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// spec.backup rules. The cases join rejectCases (validation_test.go) so that
// TestRejects runs them and TestEveryRuleIsCovered counts them.

const (
	msgSchedule = `schedule must be a 5-field cron expression (minute hour day-of-month month day-of-week) such as "0 3 * * *", or @daily, @hourly, @weekly, @monthly, @yearly`
	msgEndpoint = "destination.s3.endpoint must be an http(s)://host[:port] URL without a path"
)

func backupSpec() map[string]any {
	return map[string]any{
		"destination": map[string]any{"s3": map[string]any{"bucket": "auth-backups"}},
		"encryption":  map[string]any{"publicKeySecretRef": map[string]any{"name": "backup-key", "key": "public.asc"}},
	}
}

// backupLeaves is a valid spec.backup as leaf paths: TestRejects applies its
// set map in random order, and leaf paths commute.
var backupLeaves = map[string]any{
	"backup.destination.s3.bucket":              "auth-backups",
	"backup.encryption.publicKeySecretRef.name": "backup-key",
	"backup.encryption.publicKeySecretRef.key":  "public.asc",
}

// backupMarker in a case's set is replaced by backupLeaves (minus the
// paths starting with any string in its del list, which spec.backup lacks).
const backupMarker = "__backup"

func init() {
	var cases []rejectCase
	for _, kind := range []string{"postgres", "redis"} {
		p := "backup." + kind + "."
		f := "spec.backup." + kind + "."
		for _, bad := range []string{"0 3 * *", "0 3 * * * *", "60 3 * * *", "0 24 * * *", "0 3 0 * *", "0 3 * 13 *", "0 3 * * 8",
			"daily", "@reboot", "0 3 * * * ; rm", "*/x * * * *", "TZ=UTC 0 3 * * *", ""} {
			cases = append(cases, rejectCase{name: "backup " + kind + " schedule " + bad, set: map[string]any{backupMarker: true, p + "schedule": bad},
				field: f + "schedule", kind: kindCEL, msg: msgSchedule})
		}
		cases = append(cases,
			rejectCase{name: "backup " + kind + " schedule too long", set: map[string]any{backupMarker: true, p + "schedule": "0 3 * * " + strings.Repeat("1,", 60) + "1"},
				field: f + "schedule", kind: kindMaxLength},
			rejectCase{name: "backup " + kind + " retention 0", set: map[string]any{backupMarker: true, p + "retentionDays": 0},
				field: f + "retentionDays", kind: kindMinimum},
			rejectCase{name: "backup " + kind + " retention too long", set: map[string]any{backupMarker: true, p + "retentionDays": 3651},
				field: f + "retentionDays", kind: kindMaximum},
		)
	}
	s3 := "backup.destination.s3."
	fs3 := "spec.backup.destination.s3."
	cases = append(cases,
		rejectCase{name: "backup bucket missing", set: map[string]any{backupMarker: true, s3 + "region": "us-east-1"}, del: []string{s3 + "bucket"}, field: fs3 + "bucket", kind: kindRequired},
		rejectCase{name: "backup bucket too short", set: map[string]any{backupMarker: true, s3 + "bucket": "ab"}, field: fs3 + "bucket", kind: kindMinLength},
		rejectCase{name: "backup bucket too long", set: map[string]any{backupMarker: true, s3 + "bucket": strings.Repeat("a", 64)}, field: fs3 + "bucket", kind: kindMaxLength},
		rejectCase{name: "backup bucket upper case", set: map[string]any{backupMarker: true, s3 + "bucket": "Backups"}, field: fs3 + "bucket", kind: kindPattern},
		rejectCase{name: "backup prefix with space", set: map[string]any{backupMarker: true, s3 + "prefix": "a b"}, field: fs3 + "prefix", kind: kindPattern},
		rejectCase{name: "backup prefix too long", set: map[string]any{backupMarker: true, s3 + "prefix": strings.Repeat("a", 513)}, field: fs3 + "prefix", kind: kindMaxLength},
		rejectCase{name: "backup endpoint not a URL", set: map[string]any{backupMarker: true, s3 + "endpoint": "minio:9000"}, field: fs3 + "endpoint", kind: kindCEL, msg: msgEndpoint},
		rejectCase{name: "backup endpoint ftp", set: map[string]any{backupMarker: true, s3 + "endpoint": "ftp://minio:9000"}, field: fs3 + "endpoint", kind: kindCEL, msg: msgEndpoint},
		rejectCase{name: "backup endpoint with path", set: map[string]any{backupMarker: true, s3 + "endpoint": "https://minio:9000/bucket"}, field: fs3 + "endpoint", kind: kindCEL, msg: msgEndpoint},
		rejectCase{name: "backup endpoint too long", set: map[string]any{backupMarker: true, s3 + "endpoint": "https://" + strings.Repeat("a", 2048) + ".com"}, field: fs3 + "endpoint", kind: kindMaxLength},
		rejectCase{name: "backup region bad", set: map[string]any{backupMarker: true, s3 + "region": "EU West"}, field: fs3 + "region", kind: kindPattern},
		rejectCase{name: "backup region too long", set: map[string]any{backupMarker: true, s3 + "region": strings.Repeat("a", 65)}, field: fs3 + "region", kind: kindMaxLength},
		rejectCase{name: "backup credentials name empty", set: map[string]any{backupMarker: true, s3 + "credentialsSecretRef": map[string]any{"name": ""}}, field: fs3 + "credentialsSecretRef.name", kind: kindMinLength},
		rejectCase{name: "backup credentials name bad", set: map[string]any{backupMarker: true, s3 + "credentialsSecretRef": map[string]any{"name": "Bad_Name"}}, field: fs3 + "credentialsSecretRef.name", kind: kindPattern},
		rejectCase{name: "backup credentials name too long", set: map[string]any{backupMarker: true, s3 + "credentialsSecretRef": map[string]any{"name": strings.Repeat("a", 254)}}, field: fs3 + "credentialsSecretRef.name", kind: kindMaxLength},
		rejectCase{name: "backup destination missing", set: map[string]any{backupMarker: true}, del: []string{"backup.destination"}, field: "spec.backup.destination", kind: kindRequired},
		rejectCase{name: "backup encryption missing", set: map[string]any{backupMarker: true}, del: []string{"backup.encryption"}, field: "spec.backup.encryption", kind: kindRequired},
		rejectCase{name: "backup signing max expansion 1", set: map[string]any{backupMarker: true, "backup.signing.maxExpansion": 1}, field: "spec.backup.signing.maxExpansion", kind: kindMinimum},
		rejectCase{name: "backup signing max expansion too high", set: map[string]any{backupMarker: true, "backup.signing.maxExpansion": 100001}, field: "spec.backup.signing.maxExpansion", kind: kindMaximum},
	)
	// The public key ref is a SecretKeyRef: its name/key rules, at this use.
	pk := "backup.encryption.publicKeySecretRef."
	fpk := "spec.backup.encryption.publicKeySecretRef."
	for _, c := range []struct {
		sub, kind string
		v         any
	}{
		{"name", kindMinLength, ""}, {"name", kindMaxLength, strings.Repeat("a", 254)}, {"name", kindPattern, "Bad_Name"},
		{"key", kindMinLength, ""}, {"key", kindMaxLength, strings.Repeat("a", 254)}, {"key", kindPattern, "bad key"},
	} {
		cases = append(cases, rejectCase{name: "backup public key " + c.sub + " " + c.kind, set: map[string]any{backupMarker: true, pk + c.sub: c.v},
			field: fpk + c.sub, kind: c.kind})
	}
	for i := range cases {
		delete(cases[i].set, backupMarker)
		set := map[string]any{}
	leaves:
		for k, v := range backupLeaves {
			for _, omit := range cases[i].del {
				if strings.HasPrefix(k, omit) {
					continue leaves
				}
			}
			set[k] = v
		}
		for k, v := range cases[i].set {
			set[k] = v
		}
		cases[i].set, cases[i].del = set, nil
	}
	rejectCases = append(rejectCases, cases...)
}

// TestBackupScheduleAccepts: the edges of the rules pass.
func TestBackupScheduleAccepts(t *testing.T) {
	for _, sched := range []string{"0 3 * * *", "*/15 * * * *", "0 0-6/2 * * 1-5", "30 2 1,15 * *", "0 3 * JAN,jul mon",
		"5 4 * * sun", "0 0 31 12 7", "59 23 * * 0", "@daily", "@hourly", "@weekly", "@monthly", "@yearly", "0  3  *  *  *"} {
		t.Run(sched, func(t *testing.T) {
			spec := minimalSpec()
			spec["backup"] = backupSpec()
			setPath(spec, "backup.postgres.schedule", sched)
			setPath(spec, "backup.redis.schedule", sched)
			setPath(spec, "backup.destination.s3.endpoint", "http://minio.backup.svc:9000")
			setPath(spec, "backup.destination.s3.prefix", "stacks/prod")
			setPath(spec, "backup.destination.s3.region", "eu-west-1")
			setPath(spec, "backup.destination.s3.credentialsSecretRef", map[string]any{"name": "s3-creds"})
			if err := k8sClient.Create(context.Background(), authStack("backup-ok", spec), client.DryRunAll); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

func TestBackupDefaults(t *testing.T) {
	spec := minimalSpec()
	spec["backup"] = backupSpec()
	u := authStack("backup-defaults", spec)
	if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatalf("rejected: %v", err)
	}
	var got authv1alpha1.AuthStack
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &got); err != nil {
		t.Fatal(err)
	}
	b := got.Spec.Backup
	if b == nil {
		t.Fatal("spec.backup dropped")
	}
	for name, j := range map[string]authv1alpha1.BackupJobSpec{"postgres": b.Postgres, "redis": b.Redis} {
		if j.Schedule != authv1alpha1.DefaultBackupSchedule || j.RetentionDays != authv1alpha1.DefaultBackupRetentionDays || j.Suspend {
			t.Errorf("backup.%s defaulted to %+v, want schedule \"0 3 * * *\", retentionDays 30, not suspended", name, j)
		}
	}
	// Without spec.backup nothing is defaulted in: backups stay opt-in.
	u = authStack("no-backup", minimalSpec())
	if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if _, found := u.Object["spec"].(map[string]any)["backup"]; found {
		t.Error("spec.backup defaulted on a stack without it")
	}
}

// TestCronSchedulePatternMatchesTheCRD keeps the Go constant (used by the
// operator) and the CEL rule in the CRD the same expression.
func TestCronSchedulePatternMatchesTheCRD(t *testing.T) {
	re := regexp.MustCompile(authv1alpha1.CronSchedulePattern)
	if !re.MatchString("0 3 * * *") || re.MatchString("0 3 * *") {
		t.Fatal("CronSchedulePattern is wrong")
	}
	raw, err := os.ReadFile(filepath.Join(crdDir, "auth.leanauth.dev_authstacks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	want := "self.matches('" + authv1alpha1.CronSchedulePattern + "')"
	for _, kind := range []string{"postgres", "redis"} {
		backup := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["backup"]
		rules := backup.Properties[kind].Properties["schedule"].XValidations
		if len(rules) != 1 || rules[0].Rule != want {
			t.Errorf("the CRD's backup.%s.schedule rule is not CronSchedulePattern: update the marker in backup_types.go and run make manifests", kind)
		}
	}
}

// TestBackupObjectsAreAcceptedByTheAPIServer dry-run creates the rendered
// backup CronJobs and on-demand Jobs: the API server's own validation (names,
// schedule, podFailurePolicy, pod spec) must accept them, also for a stack
// whose name makes the object names hit Kubernetes' length limits.
func TestBackupObjectsAreAcceptedByTheAPIServer(t *testing.T) {
	// 63 characters: the longest name the shared instance label allows.
	for _, name := range []string{"demo", strings.Repeat("long-stack-name-", 3) + strings.Repeat("x", 15)} {
		stack := &authv1alpha1.AuthStack{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, UID: "0b6c7f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"},
			Spec: authv1alpha1.AuthStackSpec{
				Database: authv1alpha1.DatabaseSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "db", Key: "url"}},
				Redis:    authv1alpha1.RedisSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "redis", Key: "url"}},
				Backup: &authv1alpha1.BackupSpec{
					Postgres: authv1alpha1.BackupJobSpec{Schedule: "0 3 * * *", RetentionDays: 30},
					Redis:    authv1alpha1.BackupJobSpec{Schedule: "@hourly", RetentionDays: 7, Suspend: true},
					Destination: authv1alpha1.BackupDestination{S3: authv1alpha1.S3Destination{Bucket: "auth-backups",
						CredentialsSecretRef: &authv1alpha1.SecretNameRef{Name: "s3"}}},
					Encryption: authv1alpha1.BackupEncryption{PublicKeySecretRef: authv1alpha1.SecretKeyRef{Name: "key", Key: "public.asc"},
						PrivateKeySecretRef: &authv1alpha1.SecretKeyRef{Name: "private", Key: "private.asc"},
						PassphraseSecretRef: &authv1alpha1.SecretKeyRef{Name: "pass", Key: "pw"}},
					Verify: &authv1alpha1.DrillSpec{Schedule: "0 5 * * *"},
				},
			},
		}
		src := resources.DefaultBackupSources(stack, resources.Inputs{AuthServerImage: "ghcr.io/leanauth/authserver:test",
			Pepper: authv1alpha1.SecretKeyRef{Name: "pepper", Key: "pepper"}})
		// The restore drill's CronJob too (drill.go).
		if cj := resources.DrillCronJob(stack, src); cj == nil {
			t.Error("no drill CronJob")
		} else if err := k8sClient.Create(context.Background(), cj, client.DryRunAll); err != nil {
			t.Errorf("drill CronJob %s (%d chars) rejected: %v", cj.Name, len(cj.Name), err)
		}
		for _, kind := range []string{resources.BackupKindPostgres, resources.BackupKindRedis} {
			cj := resources.BackupCronJob(stack, kind, src)
			if err := k8sClient.Create(context.Background(), cj, client.DryRunAll); err != nil {
				t.Errorf("CronJob %s (%d chars) rejected: %v", cj.Name, len(cj.Name), err)
			}
			job := resources.OnDemandBackupJob(stack, kind, src, "2026-11-28T10:00:00Z")
			if err := k8sClient.Create(context.Background(), job, client.DryRunAll); err != nil {
				t.Errorf("Job %s (%d chars) rejected: %v", job.Name, len(job.Name), err)
			}
		}
	}
}
