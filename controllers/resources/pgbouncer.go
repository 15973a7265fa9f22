package resources

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
	return ptr.Deref(stack.Spec.Pooler.Enabled, true)
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
// for clients). Both go into one Secret.
func PgBouncerConfig(stack *authv1alpha1.AuthStack, db DatabaseURL) (ini, userlist string) {
	p := stack.Spec.Pooler
	poolMode := string(p.PoolMode)
	if poolMode == "" {
		poolMode = "transaction"
	}
	maxClient := p.MaxClientConnections
	if maxClient == 0 {
		maxClient = 1000
	}
	poolSize := p.DefaultPoolSize
	if poolSize == 0 {
		poolSize = 25
	}
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
		{"pool_mode", poolMode},
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
	userlist = fmt.Sprintf("%s %s\n", pgbouncerQuote(db.User), pgbouncerQuote(db.Password))
	return b.String(), userlist
}

// pgbouncerQuote quotes a value of the auth file: double quotes, inner quotes doubled.
func pgbouncerQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// PgBouncerConfigSecret renders the Secret with pgbouncer.ini and the auth file. It is
// owned by the stack and applied on every reconcile (rendered from the database URL).
func PgBouncerConfigSecret(stack *authv1alpha1.AuthStack, db DatabaseURL) *corev1.Secret {
	ini, userlist := PgBouncerConfig(stack, db)
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

// SecretDataHash hashes a Secret's or ConfigMap's data, keys in order, for a pod
// template annotation.
func SecretDataHash(data map[string][]byte) string {
	var uses []SecretUse
	values := map[authv1alpha1.SecretKeyRef][]byte{}
	for _, k := range sortedKeys(data) {
		ref := authv1alpha1.SecretKeyRef{Key: k}
		uses = append(uses, SecretUse{Field: k, Ref: ref})
		values[ref] = data[k]
	}
	return ConfigHash(uses, values)
}

// DefaultPgBouncerResources are the pooler's requests and limits when the spec has none.
func DefaultPgBouncerResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
	}
}

// PgBouncerDeployment renders the pgbouncer Deployment. Its pod template carries the
// hash of the config Secret: a changed database URL or pool setting rolls the pods
// (one at a time, never below the replica count), rather than reloading them; see
// docs/data-tier.md.
func PgBouncerDeployment(stack *authv1alpha1.AuthStack, in Inputs) *appsv1.Deployment {
	p := stack.Spec.Pooler
	image := p.Image
	if image == "" {
		image = in.PgBouncerImage
	}
	if image == "" {
		image = DefaultPgBouncerImage
	}
	replicas := p.Replicas
	if replicas == 0 {
		replicas = 2
	}
	selector := SelectorLabels(stack, ComponentPgBouncer)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(stack, PgBouncerName(stack), ComponentPgBouncer),
		Spec: appsv1.DeploymentSpec{
			Replicas:             ptr.To(replicas),
			RevisionHistoryLimit: ptr.To[int32](5),
			Selector:             &metav1.LabelSelector{MatchLabels: selector},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      Labels(stack, ComponentPgBouncer),
					Annotations: map[string]string{AnnotationConfigHash: in.PoolerConfigHash},
				},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					SecurityContext:               RestrictedPodSecurityContext(),
					TerminationGracePeriodSeconds: ptr.To[int64](45),
					TopologySpreadConstraints:     topologySpread(selector),
					Containers: []corev1.Container{{
						Name:            ComponentPgBouncer,
						Image:           image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Command:         []string{"pgbouncer", PgBouncerConfigDir + "/" + PgBouncerIniKey},
						Ports: []corev1.ContainerPort{
							{Name: PortNamePostgres, ContainerPort: PgBouncerPort, Protocol: corev1.ProtocolTCP},
						},
						Resources:       ptr.Deref(p.Resources.DeepCopy(), DefaultPgBouncerResources()),
						SecurityContext: RestrictedContainerSecurityContext(),
						ReadinessProbe:  tcpProbe(PortNamePostgres, 5, 5, 3),
						LivenessProbe:   tcpProbe(PortNamePostgres, 15, 10, 6),
						// Let the Service drop the pod before pgbouncer stops accepting.
						Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
							Sleep: &corev1.SleepAction{Seconds: 5},
						}},
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: PgBouncerConfigDir, ReadOnly: true},
							{Name: "tmp", MountPath: "/tmp"},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName:  PgBouncerConfigSecretName(stack),
							DefaultMode: ptr.To[int32](0o440),
						}}},
						tmpVolume(),
					},
				},
			},
		},
	}
}

// tmpVolume is a small in-memory /tmp for a read-only root filesystem.
func tmpVolume() corev1.Volume {
	return corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		Medium:    corev1.StorageMediumMemory,
		SizeLimit: ptr.To(resource.MustParse("16Mi")),
	}}}
}

// tcpProbe checks that the named port accepts connections.
func tcpProbe(port string, initialDelay, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(port)}},
		InitialDelaySeconds: initialDelay,
		PeriodSeconds:       period,
		TimeoutSeconds:      3,
		FailureThreshold:    failures,
		SuccessThreshold:    1,
	}
}

// PgBouncerService renders the ClusterIP Service of the pooler.
func PgBouncerService(stack *authv1alpha1.AuthStack) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(stack, PgBouncerName(stack), ComponentPgBouncer),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: SelectorLabels(stack, ComponentPgBouncer),
			Ports: []corev1.ServicePort{{
				Name: PortNamePostgres, Port: PgBouncerPort, TargetPort: intstr.FromString(PortNamePostgres), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// PgBouncerPDB keeps all but one pooler pod up during voluntary disruptions.
func PgBouncerPDB(stack *authv1alpha1.AuthStack) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(stack, PgBouncerName(stack), ComponentPgBouncer),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable:             ptr.To(intstr.FromInt32(1)),
			Selector:                   &metav1.LabelSelector{MatchLabels: SelectorLabels(stack, ComponentPgBouncer)},
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
}
