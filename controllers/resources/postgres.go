package resources

import (
	"cmp"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The managed PostgreSQL: one instance, for evaluation and development. It is not
// highly available (no replica, no failover); production uses an external database.
const (
	ComponentPostgres = "postgres"
	PostgresPort      = 5432
	// ManagedDatabaseUser and ManagedDatabaseName are the role and database initdb creates.
	ManagedDatabaseUser = "authstack"
	ManagedDatabaseName = "authstack"
	PostgresPasswordKey = "password"
	postgresDataDir     = "/var/lib/postgresql/data"
	// postgresPGData is a subdirectory of the volume, so a lost+found at its root
	// does not stop initdb.
	postgresPGData = postgresDataDir + "/pgdata"
)

// ManagedDatabase says whether the operator runs PostgreSQL.
func ManagedDatabase(stack *authv1alpha1.AuthStack) bool { return stack.Spec.Database.Managed != nil }

// PostgresName names the managed PostgreSQL StatefulSet, its headless Service and NetworkPolicy.
func PostgresName(stack *authv1alpha1.AuthStack) string { return stack.Name + "-postgres" }

// PostgresPasswordSecretName names the generated password Secret (not owned: kept with the volume).
func PostgresPasswordSecretName(stack *authv1alpha1.AuthStack) string {
	return stack.Name + "-postgres-password"
}

// PostgresPasswordRef is the Secret key with the managed database's password.
func PostgresPasswordRef(stack *authv1alpha1.AuthStack) authv1alpha1.SecretKeyRef {
	return authv1alpha1.SecretKeyRef{Name: PostgresPasswordSecretName(stack), Key: PostgresPasswordKey}
}

// PostgresHost is the managed database's address (the headless Service resolves to the pod).
func PostgresHost(stack *authv1alpha1.AuthStack) string {
	return PostgresName(stack) + "." + stack.Namespace + ".svc"
}

// ManagedDatabaseURL is the managed database as a DatabaseURL. In-cluster, no TLS:
// the NetworkPolicy confines who reaches it.
func ManagedDatabaseURL(stack *authv1alpha1.AuthStack, password string) DatabaseURL {
	return DatabaseURL{Host: PostgresHost(stack), Port: PostgresPort, DBName: ManagedDatabaseName,
		User: ManagedDatabaseUser, Password: password, SSLMode: "disable"}
}

// NewPostgresPassword returns a fresh random password, hex-encoded.
func NewPostgresPassword() ([]byte, error) { return randomHex(24) }

// PostgresPasswordSecret renders the generated password Secret: created once, never
// updated, not owned (the volume outlives the stack by default, and so must its password).
// PostgreSQL reads it only when it initialises an empty volume.
func PostgresPasswordSecret(stack *authv1alpha1.AuthStack, password []byte) *corev1.Secret {
	return generatedSecret(stack, PostgresPasswordSecretName(stack), ComponentPostgres,
		"The password of the managed PostgreSQL of AuthStack "+stack.Name+" (role "+ManagedDatabaseUser+
			"). Used when the volume is initialised; changing it later does not change the role's password.",
		map[string][]byte{PostgresPasswordKey: password})
}

// PostgresImage is the image of the managed PostgreSQL.
func PostgresImage(stack *authv1alpha1.AuthStack) string {
	m := stack.Spec.Database.Managed
	if m == nil {
		return ""
	}
	if m.Image != "" {
		return m.Image
	}
	v := cmp.Or(m.Version, authv1alpha1.DefaultPostgresVersion)
	// The Debian variant: its entrypoint runs as an arbitrary non-root uid (nss_wrapper).
	return fmt.Sprintf("docker.io/library/postgres:%s-bookworm", v)
}

// PostgresStatefulSet renders the managed PostgreSQL, or nil when the database is external.
func PostgresStatefulSet(stack *authv1alpha1.AuthStack) *appsv1.StatefulSet {
	m := stack.Spec.Database.Managed
	if m == nil {
		return nil
	}
	selector := SelectorLabels(stack, ComponentPostgres)
	ready := &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{
			"pg_isready", "-h", "127.0.0.1", "-p", fmt.Sprint(PostgresPort), "-U", ManagedDatabaseUser, "-d", ManagedDatabaseName}}},
		InitialDelaySeconds: 5, PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 3, SuccessThreshold: 1,
	}
	live := ready.DeepCopy()
	live.InitialDelaySeconds, live.FailureThreshold = 30, 6
	env := []corev1.EnvVar{
		{Name: "PGDATA", Value: postgresPGData},
		{Name: "POSTGRES_DB", Value: ManagedDatabaseName},
		{Name: "POSTGRES_INITDB_ARGS", Value: "--auth-host=scram-sha-256 --auth-local=scram-sha-256"},
		secretEnv("POSTGRES_PASSWORD", PostgresPasswordRef(stack)),
		{Name: "POSTGRES_USER", Value: ManagedDatabaseUser},
	}
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: objectMeta(stack, PostgresName(stack), ComponentPostgres),
		Spec: appsv1.StatefulSetSpec{
			Replicas:                             ptr.To[int32](1),
			ServiceName:                          PostgresName(stack),
			Selector:                             &metav1.LabelSelector{MatchLabels: selector},
			RevisionHistoryLimit:                 ptr.To[int32](5),
			UpdateStrategy:                       appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			PersistentVolumeClaimRetentionPolicy: pvcRetention(m.Storage),
			VolumeClaimTemplates:                 []corev1.PersistentVolumeClaim{volumeClaim(m.Storage)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: Labels(stack, ComponentPostgres),
				},
				Spec: restrictedPod(corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](60),
					Containers: []corev1.Container{{
						Name:  ComponentPostgres,
						Image: PostgresImage(stack),
						Env:   env,
						Ports: []corev1.ContainerPort{
							{Name: PortNamePostgres, ContainerPort: PostgresPort, Protocol: corev1.ProtocolTCP},
						},
						Resources:      ptr.Deref(m.Resources.DeepCopy(), authv1alpha1.DefaultPostgresResources()),
						ReadinessProbe: ready,
						LivenessProbe:  live,
						VolumeMounts: []corev1.VolumeMount{
							{Name: DataVolumeName, MountPath: postgresDataDir},
							{Name: "run", MountPath: "/var/run/postgresql"},
							{Name: "shm", MountPath: "/dev/shm"},
							tmpMount,
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
							Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("1Mi"))}}},
						{Name: "shm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
							Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("256Mi"))}}},
					},
				}),
			},
		},
	}
}

// PostgresService renders the headless Service of the managed database.
func PostgresService(stack *authv1alpha1.AuthStack) *corev1.Service {
	return service(stack, PostgresName(stack), ComponentPostgres, true, servicePort(PortNamePostgres, PostgresPort))
}
