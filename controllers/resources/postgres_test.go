package resources

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func TestManagedPostgres(t *testing.T) {
	s := sampleStack()
	if PostgresStatefulSet(s) != nil || ManagedDatabase(s) {
		t.Fatal("a PostgreSQL StatefulSet for an external database")
	}
	s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{Version: "16",
		Storage: authv1alpha1.StorageSpec{Size: ptr.To(qty("5Gi"))}}}
	sts := PostgresStatefulSet(s)
	c := container(t, sts.Spec.Template.Spec, ComponentPostgres)
	if c.Image != "docker.io/library/postgres:16-bookworm" || *sts.Spec.Replicas != 1 || sts.Spec.ServiceName != "demo-postgres" {
		t.Errorf("image %q replicas %d service %q", c.Image, *sts.Spec.Replicas, sts.Spec.ServiceName)
	}
	env := envByName(t, c)
	if e := env["POSTGRES_PASSWORD"]; e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "demo-postgres-password" {
		t.Errorf("POSTGRES_PASSWORD %+v: must come from the generated Secret", e)
	}
	if env["POSTGRES_USER"].Value != ManagedDatabaseUser || env["POSTGRES_DB"].Value != ManagedDatabaseName ||
		!strings.HasPrefix(env["PGDATA"].Value, "/var/lib/postgresql/data/") {
		t.Errorf("env %v", env)
	}
	if sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Error("the PostgreSQL volume is not kept by default")
	}
	if !sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().Equal(qty("5Gi")) {
		t.Error("storage size ignored")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.Exec == nil || c.ReadinessProbe.Exec.Command[0] != "pg_isready" {
		t.Errorf("readiness probe %+v", c.ReadinessProbe)
	}
	mounts := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = true
	}
	for _, p := range []string{"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp", "/dev/shm"} {
		if !mounts[p] {
			t.Errorf("no writable mount at %s (the root filesystem is read-only)", p)
		}
	}
	s.Spec.Database.Managed.Image = "registry.example/pg:16"
	if PostgresImage(s) != "registry.example/pg:16" {
		t.Error("image override ignored")
	}
	svc := PostgresService(s)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || svc.Spec.Ports[0].Port != 5432 {
		t.Errorf("service %+v", svc.Spec)
	}
	sec := PostgresPasswordSecret(s, []byte("pw"))
	if len(sec.OwnerReferences) != 0 || sec.Annotations[AnnotationRetain] != "true" {
		t.Error("the PostgreSQL password Secret must not be owned")
	}
	u := ManagedDatabaseURL(s, "pw")
	if got := u.URLWith(u.Host, u.Port, u.SSLMode); got != "postgres://authstack:pw@demo-postgres.team-a.svc:5432/authstack?sslmode=disable" {
		t.Errorf("managed URL %q", got)
	}
	if _, err := ParseDatabaseURL(u.URLWith(u.Host, u.Port, u.SSLMode)); err != nil {
		t.Errorf("the managed URL does not parse back: %v", err)
	}
}
