//go:build realnode

package realnode

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// S3 credentials of the test's object store (versitygw's root account).
const s3Access, s3Secret, s3Region, s3Bucket = "authstack-e2e", "authstack-e2e-secret", "us-east-1", "auth-backups"

// StartS3 runs versitygw (posix backend on an emptyDir) as a pod with a
// Service "s3" on port 7070, creates the bucket s3Bucket from the host, and
// returns the pod.
func StartS3(t *testing.T, ns, image string) *corev1.Pod {
	t.Helper()
	labels := map[string]string{"app": "s3"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3", Labels: labels},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext:              resources.RestrictedPodSecurityContext(),
			Containers: []corev1.Container{{
				Name: "versitygw", Image: image, ImagePullPolicy: corev1.PullNever,
				Args: []string{"--access", s3Access, "--secret", s3Secret, "--region", s3Region, "--port", ":7070",
					"posix", "--sidecar", "/meta", "/buckets"},
				Ports:           []corev1.ContainerPort{{ContainerPort: 7070}},
				SecurityContext: resources.RestrictedContainerSecurityContext(),
				VolumeMounts:    []corev1.VolumeMount{{Name: "buckets", MountPath: "/buckets"}, {Name: "meta", MountPath: "/meta"}},
			}},
			Volumes: []corev1.Volume{
				{Name: "buckets", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "meta", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "s3", Port: 7070}}},
	}
	for _, o := range []client.Object{pod, svc} {
		if err := env.c.Create(Ctx(t), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	pod = WaitPodReady(t, ns, "s3", 3*time.Minute)
	mc := s3Client(t, pod)
	Eventually(t, time.Minute, "the bucket created", func() error {
		return mc.MakeBucket(Ctx(t), s3Bucket, minio.MakeBucketOptions{Region: s3Region})
	})
	return pod
}

// s3Client talks to the S3 pod from the host (its address on the pod network).
func s3Client(t *testing.T, pod *corev1.Pod) *minio.Client {
	t.Helper()
	mc, err := minio.New(fmt.Sprintf("%s:7070", pod.Status.PodIP), &minio.Options{
		Creds: credentials.NewStaticV4(s3Access, s3Secret, ""), Region: s3Region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// backupKeys makes an OpenPGP key pair and returns both halves armored.
func backupKeys(t *testing.T) (public, private []byte) {
	t.Helper()
	e, err := openpgp.NewEntity("AuthStack e2e backups", "", "backup-e2e@example.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	armored := func(typ string, write func(w *bytes.Buffer) error) []byte {
		var b bytes.Buffer
		w, err := armor.Encode(&b, typ, nil)
		if err != nil {
			t.Fatal(err)
		}
		var raw bytes.Buffer
		if err := write(&raw); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(raw.Bytes()); err != nil {
			t.Fatal(err)
		}
		w.Close()
		return b.Bytes()
	}
	public = armored(openpgp.PublicKeyType, func(w *bytes.Buffer) error { return e.Serialize(w) })
	private = armored(openpgp.PrivateKeyType, func(w *bytes.Buffer) error { return e.SerializePrivate(w, nil) })
	return public, private
}

// TestRealNodeBackupAndRestore: the PostgreSQL backup CronJob's Job runs for
// real (pg_dump in the authserver image, encrypted to the stack's public key)
// to an S3 server running as a pod; the operator reports it in
// status.backups; then `authserver restore postgres` in a pod of the same
// image restores it into a new database, which holds what the source held.
func TestRealNodeBackupAndRestore(t *testing.T) {
	images, err := LocalImages()
	if err != nil {
		t.Fatal(err)
	}
	ns := NewNamespace(t, "backup")
	s3pod := StartS3(t, ns, images["versitygw"])
	public, private := backupKeys(t)
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "backup-s3"}, StringData: map[string]string{"AWS_ACCESS_KEY_ID": s3Access, "AWS_SECRET_ACCESS_KEY": s3Secret}},
		{ObjectMeta: metav1.ObjectMeta{Name: "backup-key"}, Data: map[string][]byte{"public.asc": public, "private.asc": private}},
	} {
		s.Namespace = ns
		if err := env.c.Create(Ctx(t), s); err != nil {
			t.Fatal(err)
		}
	}
	StartMailpit(t, ns, images["mailpit"])
	StartOperator(t, ns, Images{AuthServer: images["authserver"], PgBouncer: images["pgbouncer"], Redis: images["redis"]})
	stack := ManagedStack(ns, "bk", images)
	const prefix = "e2e/bk"
	stack.Spec.Backup = &authv1alpha1.BackupSpec{
		Postgres: authv1alpha1.BackupJobSpec{Schedule: "0 3 * * *"},
		Redis:    authv1alpha1.BackupJobSpec{Schedule: "0 4 * * *", Suspend: true},
		Destination: authv1alpha1.BackupDestination{S3: authv1alpha1.S3Destination{
			Bucket: s3Bucket, Prefix: prefix, Endpoint: "http://s3:7070", Region: s3Region, ForcePathStyle: true,
			CredentialsSecretRef: &authv1alpha1.SecretNameRef{Name: "backup-s3"}}},
		Encryption: authv1alpha1.BackupEncryption{PublicKeySecretRef: authv1alpha1.SecretKeyRef{Name: "backup-key", Key: "public.asc"}},
	}
	if err := env.c.Create(Ctx(t), stack); err != nil {
		t.Fatalf("creating the AuthStack: %v", err)
	}
	WaitStackReady(t, ns, stack.Name, 10*time.Minute)

	var secret corev1.Secret
	if err := env.c.Get(Ctx(t), client.ObjectKey{Namespace: ns, Name: resources.PostgresPasswordSecretName(stack)}, &secret); err != nil {
		t.Fatal(err)
	}
	dbURL := func(db string) string {
		return fmt.Sprintf("postgresql://%s:%s@%s:%d/%s?sslmode=disable", resources.ManagedDatabaseUser,
			secret.Data[resources.PostgresPasswordKey], resources.PostgresHost(stack), resources.PostgresPort, db)
	}
	// The backup Jobs' labels: PostgreSQL's policy admits them.
	pgPeer := resources.BackupJobLabels(stack, "postgres")
	psql := func(name, db, sql string) string {
		return WaitClient(t, StartClient(t, ns, name, images["client"], pgPeer,
			waitPostgres(dbURL(db))+fmt.Sprintf("\npsql '%s' -v ON_ERROR_STOP=1 -qAt -c %q", dbURL(db), sql)), 3*time.Minute)
	}
	const marker = "written before the backup"
	psql("seed", resources.ManagedDatabaseName, "create table e2e_marker (v text); insert into e2e_marker values ('"+marker+"')")

	// The CronJob's Job, as `kubectl create job --from=cronjob/...` makes it.
	var cj batchv1.CronJob
	if err := env.c.Get(Ctx(t), client.ObjectKey{Namespace: ns, Name: resources.BackupCronJobName(stack, "postgres")}, &cj); err != nil {
		t.Fatalf("the postgres backup CronJob: %v", err)
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cj.Name + "-e2e", Labels: cj.Spec.JobTemplate.Labels,
			Annotations:     map[string]string{"cronjob.kubernetes.io/instantiate": "manual"},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(&cj, batchv1.SchemeGroupVersion.WithKind("CronJob"))}},
		Spec: cj.Spec.JobTemplate.Spec,
	}
	if err := env.c.Create(Ctx(t), job); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 5*time.Minute, "the backup Job succeeded", func() error {
		if err := env.c.Get(Ctx(t), client.ObjectKeyFromObject(job), job); err != nil {
			return err
		}
		if job.Status.Succeeded > 0 {
			return nil
		}
		if job.Status.Failed > 0 {
			t.Fatalf("the backup Job failed: %s", jobPodLogs(t, job))
		}
		return fmt.Errorf("active %d", job.Status.Active)
	})
	var objects []string
	for o := range s3Client(t, s3pod).ListObjects(Ctx(t), s3Bucket, minio.ListObjectsOptions{Prefix: prefix + "/postgres/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		objects = append(objects, o.Key)
	}
	// The backup and its signature (docs/backup-and-restore.md, "Signed backups").
	if len(objects) != 2 || !strings.HasSuffix(objects[0], ".dump.gz.gpg") || objects[1] != objects[0]+".sig" {
		t.Fatalf("objects in the bucket: %q, want one <prefix>/postgres/<time>.dump.gz.gpg and its .sig", objects)
	}
	Eventually(t, 2*time.Minute, "status.backups.postgres.lastSuccess", func() error {
		var s authv1alpha1.AuthStack
		if err := env.c.Get(Ctx(t), client.ObjectKeyFromObject(stack), &s); err != nil {
			return err
		}
		if s.Status.Backups == nil || s.Status.Backups.Postgres.LastSuccess == nil {
			return fmt.Errorf("status.backups %+v", s.Status.Backups)
		}
		return nil
	})

	// The runbook's restore: into a new, empty database.
	psql("create-db", resources.ManagedDatabaseName, "create database auth_restored owner "+resources.ManagedDatabaseUser)
	restore := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "restore", Labels: pgPeer},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext:              resources.RestrictedPodSecurityContext(),
			// The authserver image has no shell: the client image waits until
			// the policy admits this new pod (see waitPostgres).
			InitContainers: []corev1.Container{{
				Name: "wait", Image: images["client"], ImagePullPolicy: corev1.PullNever,
				Command:         []string{"sh", "-c", waitPostgres(dbURL("auth_restored"))},
				SecurityContext: resources.RestrictedContainerSecurityContext(),
				VolumeMounts:    []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
			}},
			Containers: []corev1.Container{{
				Name: "client", Image: images["authserver"], ImagePullPolicy: corev1.PullNever,
				Args: []string{"restore", "postgres", "--object", objects[0]},
				Env: []corev1.EnvVar{
					{Name: "DATABASE_URL", Value: dbURL("auth_restored")},
					{Name: "S3_ENDPOINT", Value: "http://s3:7070"}, {Name: "S3_BUCKET", Value: s3Bucket},
					{Name: "S3_PREFIX", Value: prefix}, {Name: "S3_REGION", Value: s3Region}, {Name: "S3_FORCE_PATH_STYLE", Value: "true"},
					{Name: "AWS_ACCESS_KEY_ID", Value: s3Access}, {Name: "AWS_SECRET_ACCESS_KEY", Value: s3Secret},
					{Name: "BACKUP_PRIVATE_KEY_FILE", Value: "/key/private.asc"}, {Name: "TMPDIR", Value: "/tmp"},
					{Name: "BACKUP_VERIFY_KEY_FILE", Value: "/verify/" + resources.BackupVerifyKeyKey},
				},
				SecurityContext: resources.RestrictedContainerSecurityContext(),
				VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"},
					{Name: "key", MountPath: "/key", ReadOnly: true}, {Name: "verify", MountPath: "/verify", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "key", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "backup-key",
					Items: []corev1.KeyToPath{{Key: "private.asc", Path: "private.asc"}}}}},
				// The stack's public signing key: the restore checks the backup's signature first.
				{Name: "verify", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: resources.BackupSigningSecretName(stack),
					Items: []corev1.KeyToPath{{Key: resources.BackupVerifyKeyKey, Path: resources.BackupVerifyKeyKey}}}}},
			},
		},
	}
	if err := env.c.Create(Ctx(t), restore); err != nil {
		t.Fatal(err)
	}
	t.Logf("restore: %s", strings.TrimSpace(WaitClient(t, restore, 5*time.Minute)))
	if got := psql("check", "auth_restored", "select v from e2e_marker"); !strings.Contains(got, marker) {
		t.Errorf("the restored database's marker table: %q, want %q", got, marker)
	}
	if got := psql("check-schema", "auth_restored", "select count(*) > 0 from schema_migrations"); !strings.Contains(got, "t") {
		t.Errorf("the restored database has no migrations: %q", got)
	}
}

// jobPodLogs is what the pods of a Job wrote.
func jobPodLogs(t *testing.T, job *batchv1.Job) string {
	var pods corev1.PodList
	if err := env.c.List(Ctx(t), &pods, client.InNamespace(job.Namespace), client.MatchingLabels{"job-name": job.Name}); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			fmt.Fprintf(&b, "\n--- %s/%s:\n%s", p.Name, c.Name, ContainerLog(p.Namespace, p.Name, c.Name))
		}
	}
	return b.String()
}
