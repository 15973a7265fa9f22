package resources

import (
	"cmp"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// pgbouncer: the connection pooler between the authserver and PostgreSQL.
const (
	ComponentPgBouncer = "pgbouncer"
	// PgBouncerPort is where pgbouncer listens.
	PgBouncerPort = 6432
	// PortNamePostgres names the PostgreSQL protocol port of pgbouncer and PostgreSQL.
	PortNamePostgres = "postgres"
	// PgBouncerConfigDir is where the config Secret is mounted.
	PgBouncerConfigDir = "/etc/pgbouncer"
	// Keys of the pgbouncer config Secret.
	PgBouncerIniKey      = "pgbouncer.ini"
	PgBouncerUserlistKey = "userlist.txt"
	// DefaultPgBouncerImage is the default of the operator's --pgbouncer-image flag.
	DefaultPgBouncerImage = "ghcr.io/cloudnative-pg/pgbouncer:1.24.1"
	// systemCABundle validates the server certificate for sslmode verify-ca/verify-full.
	systemCABundle = "/etc/ssl/certs/ca-certificates.crt"
)

// PoolerEnabled says whether pgbouncer runs (the default).
func PoolerEnabled(stack *authv1alpha1.AuthStack) bool {
	return ptr.Deref(stack.Spec.Pooler.Enabled, authv1alpha1.DefaultPoolerEnabled)
}

// PgBouncerName names the pgbouncer Deployment, Service, PDB and NetworkPolicy.
func PgBouncerName(stack *authv1alpha1.AuthStack) string { return stack.Name + "-pgbouncer" }

// PgBouncerConfigSecretName names the Secret holding pgbouncer.ini and the auth file.
func PgBouncerConfigSecretName(stack *authv1alpha1.AuthStack) string {
	return stack.Name + "-pgbouncer-config"
}

// PgBouncerHost is the pooler's address inside the cluster.
func PgBouncerHost(stack *authv1alpha1.AuthStack) string {
	return PgBouncerName(stack) + "." + stack.Namespace + ".svc"
}

// PooledDatabaseURL is the URL the authserver uses with the pooler on: db's user,
// password and database at the pgbouncer Service. The hop from the authserver to
// pgbouncer is in-cluster plaintext (confined by the NetworkPolicies); pgbouncer's hop
// to PostgreSQL follows the database URL's sslmode.
func PooledDatabaseURL(stack *authv1alpha1.AuthStack, db DatabaseURL) string {
	return db.URLWith(PgBouncerHost(stack), PgBouncerPort, "disable")
}

// PgBouncerConfig renders pgbouncer.ini and its auth file for the database db.
// The ini holds no secret; the auth file holds db's password in plain text, which
// pgbouncer needs to log in to PostgreSQL with SCRAM (a SCRAM verifier would only do
// for clients). Both go into one Secret. also are further logins (their User and
// Password) the auth file accepts: during a password rotation, the role the
// authserver pods switch to, or the one they switch from (controllers/dbrotation.go).
// pgbouncer logs in to PostgreSQL as the client's user, so each login has its pool.
func PgBouncerConfig(stack *authv1alpha1.AuthStack, db DatabaseURL, also ...DatabaseURL) (ini, userlist string) {
	p := stack.Spec.Pooler
	poolMode := cmp.Or(p.PoolMode, authv1alpha1.DefaultPoolMode)
	maxClient := cmp.Or(p.MaxClientConnections, authv1alpha1.DefaultPoolerMaxClientConnections)
	poolSize := cmp.Or(p.DefaultPoolSize, authv1alpha1.DefaultPoolerPoolSize)
	var b strings.Builder
	b.WriteString("; Rendered by the authstack operator for AuthStack " + stack.Namespace + "/" + stack.Name + ". Do not edit: changes are reverted.\n")
	b.WriteString("[databases]\n")
	// Only the stack's database is served: a client asking for another gets an error
	// from pgbouncer instead of a connection to some other database.
	fmt.Fprintf(&b, "%s = host=%s port=%d dbname=%s\n\n", db.DBName, db.Host, db.Port, db.DBName)
	b.WriteString("[pgbouncer]\n")
	settings := [][2]string{
		{"listen_addr", "*"},
		{"listen_port", fmt.Sprint(PgBouncerPort)},
		// No unix socket, pid file or log file: the root filesystem is read-only and
		// the log goes to stderr.
		{"unix_socket_dir", ""},
		{"pidfile", ""},
		{"logfile", ""},
		{"auth_type", "scram-sha-256"},
		{"auth_file", PgBouncerConfigDir + "/" + PgBouncerUserlistKey},
		{"pool_mode", string(poolMode)},
		{"max_client_conn", fmt.Sprint(maxClient)},
		{"default_pool_size", fmt.Sprint(poolSize)},
		{"min_pool_size", "0"},
		{"reserve_pool_size", "5"},
		{"reserve_pool_timeout", "3"},
		{"server_tls_sslmode", db.SSLMode},
		{"server_idle_timeout", "300"},
		{"server_connect_timeout", "5"},
		{"query_wait_timeout", "30"},
		{"client_tls_sslmode", "disable"},
		// JDBC and some drivers send extra_float_digits; pgbouncer cannot pool on it.
		{"ignore_startup_parameters", "extra_float_digits"},
		{"log_connections", "0"},
		{"log_disconnections", "0"},
		{"log_pooler_errors", "1"},
		{"stats_period", "60"},
	}
	if db.SSLMode == "verify-ca" || db.SSLMode == "verify-full" {
		settings = append(settings, [2]string{"server_tls_ca_file", systemCABundle})
	}
	for _, kv := range settings {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
	}
	var u strings.Builder
	for _, l := range append([]DatabaseURL{db}, also...) {
		fmt.Fprintf(&u, "%s %s\n", pgbouncerQuote(l.User), pgbouncerQuote(l.Password))
	}
	return b.String(), u.String()
}

// pgbouncerQuote quotes a value of the auth file: double quotes, inner quotes doubled.
func pgbouncerQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// PgBouncerConfigSecret renders the Secret with pgbouncer.ini and the auth file. It is
// owned by the stack and applied on every reconcile (rendered from the database URL).
func PgBouncerConfigSecret(stack *authv1alpha1.AuthStack, db DatabaseURL, also ...DatabaseURL) *corev1.Secret {
	ini, userlist := PgBouncerConfig(stack, db, also...)
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: objectMeta(stack, PgBouncerConfigSecretName(stack), ComponentPgBouncer),
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			PgBouncerIniKey:      []byte(ini),
			PgBouncerUserlistKey: []byte(userlist),
		},
	}
}

// PgBouncerDeployment renders the pgbouncer Deployment. Its pod template carries the
// hash of the config Secret: a changed database URL or pool setting rolls the pods
// (one at a time, never below the replica count), rather than reloading them; see
// docs/data-tier.md.
func PgBouncerDeployment(stack *authv1alpha1.AuthStack, in Inputs) *appsv1.Deployment {
	p := stack.Spec.Pooler
	replicas := cmp.Or(p.Replicas, authv1alpha1.DefaultPoolerReplicas)
	selector := SelectorLabels(stack, ComponentPgBouncer)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(stack, PgBouncerName(stack), ComponentPgBouncer),
		Spec: appsv1.DeploymentSpec{
			Replicas:             ptr.To(replicas),
			RevisionHistoryLimit: ptr.To[int32](5),
			Selector:             &metav1.LabelSelector{MatchLabels: selector},
			Strategy:             rollingDeployment(intstr.FromInt32(1)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: podMeta(stack, ComponentPgBouncer, in.PoolerConfigHash),
				Spec: restrictedPod(corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](45),
					TopologySpreadConstraints:     topologySpread(selector),
					Containers: []corev1.Container{{
						Name:    ComponentPgBouncer,
						Image:   image(p.Image, in.PgBouncerImage, DefaultPgBouncerImage),
						Command: []string{"pgbouncer", PgBouncerConfigDir + "/" + PgBouncerIniKey},
						Ports: []corev1.ContainerPort{
							{Name: PortNamePostgres, ContainerPort: PgBouncerPort, Protocol: corev1.ProtocolTCP},
						},
						Resources:      ptr.Deref(p.Resources.DeepCopy(), authv1alpha1.DefaultPgBouncerResources()),
						ReadinessProbe: tcpProbe(PortNamePostgres, 5, 5, 3),
						LivenessProbe:  tcpProbe(PortNamePostgres, 15, 10, 6),
						Lifecycle:      leaveServiceFirst(),
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: PgBouncerConfigDir, ReadOnly: true},
							tmpMount,
						},
					}},
					Volumes: []corev1.Volume{secretVolume("config", PgBouncerConfigSecretName(stack))},
				}),
			},
		},
	}
}

// PgBouncerService renders the ClusterIP Service of the pooler.
func PgBouncerService(stack *authv1alpha1.AuthStack) *corev1.Service {
	return service(stack, PgBouncerName(stack), ComponentPgBouncer, false, servicePort(PortNamePostgres, PgBouncerPort))
}

// PgBouncerPDB keeps all but one pooler pod up during voluntary disruptions.
func PgBouncerPDB(stack *authv1alpha1.AuthStack) *policyv1.PodDisruptionBudget {
	return podDisruptionBudget(stack, PgBouncerName(stack), ComponentPgBouncer)
}
