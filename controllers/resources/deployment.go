package resources

import (
	"net/url"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// AuthServerDeployment renders the authserver Deployment.
//
// Migrations run in an init container (`authserver migrate`), so a pod of a new
// version never serves before its schema is in place; see controllers/DESIGN.md.
func AuthServerDeployment(stack *authv1alpha1.AuthStack, in Inputs) *appsv1.Deployment {
	spec := stack.Spec.AuthServer
	image := AuthServerImage(stack, in)
	// A copy: the Deployment must never share maps or slices with the AuthStack.
	overrides := spec.PodTemplate.DeepCopy()
	if overrides == nil {
		overrides = &authv1alpha1.PodTemplateOverrides{}
	}

	var replicas *int32
	if !AutoscalingEnabled(stack) {
		replicas = ptr.To(ptr.Deref(spec.Replicas, authv1alpha1.DefaultAuthServerReplicas))
	}
	selector := SelectorLabels(stack, ComponentAuthServer)

	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(stack, AuthServerName(stack), ComponentAuthServer),
		Spec: appsv1.DeploymentSpec{
			Replicas:             replicas,
			RevisionHistoryLimit: ptr.To[int32](5),
			Selector:             &metav1.LabelSelector{MatchLabels: selector},
			Strategy:             rollingDeployment(intstr.FromString("25%")),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      merged(overrides.Labels, Labels(stack, ComponentAuthServer)),
					Annotations: merged(overrides.Annotations, map[string]string{AnnotationConfigHash: in.ConfigHash}),
				},
				Spec: restrictedPod(corev1.PodSpec{
					// The preStop delay, then AUTH_SHUTDOWN_TIMEOUT (20 s) of draining, and a margin.
					TerminationGracePeriodSeconds: ptr.To[int64](PreStopDelaySeconds + 20 + 5),
					NodeSelector:                  overrides.NodeSelector,
					Tolerations:                   overrides.Tolerations,
					Affinity:                      overrides.Affinity,
					PriorityClassName:             overrides.PriorityClassName,
					TopologySpreadConstraints:     topologySpread(selector),
					InitContainers: []corev1.Container{{
						Name:      MigrateContainerName,
						Image:     image,
						Args:      []string{"migrate"},
						Env:       migrateEnv(stack, in),
						Resources: migrateResources(),
						// The pepper, to refuse data hashed with another one (PepperMismatch).
						VolumeMounts: []corev1.VolumeMount{{Name: "pepper", MountPath: PepperMountPath, ReadOnly: true}},
					}},
					Containers: []corev1.Container{{
						Name:  ComponentAuthServer,
						Image: image,
						Args:  []string{"serve"},
						Env:   authServerEnv(stack),
						Ports: []corev1.ContainerPort{
							{Name: PortNameHTTP, ContainerPort: AuthServerHTTPPort, Protocol: corev1.ProtocolTCP},
							{Name: PortNameMetrics, ContainerPort: AuthServerMetricsPort, Protocol: corev1.ProtocolTCP},
							{Name: PortNameGRPCAuthz, ContainerPort: AuthServerGRPCAuthzPort, Protocol: corev1.ProtocolTCP},
						},
						Resources:      authServerResources(stack),
						LivenessProbe:  httpProbe("/health", 60, 30, 5),
						ReadinessProbe: httpProbe("/ready", 10, 5, 3),
						Lifecycle:      leaveServiceFirst(),
						VolumeMounts: []corev1.VolumeMount{
							{Name: "pepper", MountPath: PepperMountPath, ReadOnly: true},
							tmpMount,
						},
					}},
					Volumes: []corev1.Volume{
						secretVolume("pepper", in.Pepper.Name, corev1.KeyToPath{Key: in.Pepper.Key, Path: PepperFileName}),
					},
				}),
			},
		},
	}
	withPepperMounts(&dep.Spec.Template, in.PepperMounts) // pepperrotation.go
	return dep
}

// authServerResources are the authserver container's: the spec's, else the defaults.
func authServerResources(stack *authv1alpha1.AuthStack) corev1.ResourceRequirements {
	return ptr.Deref(stack.Spec.AuthServer.Resources.DeepCopy(), authv1alpha1.DefaultAuthServerResources())
}

func migrateResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
	}
}

// AutoscalingEnabled says whether the HPA owns the replica count.
func AutoscalingEnabled(stack *authv1alpha1.AuthStack) bool {
	return ptr.Deref(stack.Spec.AuthServer.Autoscaling.Enabled, authv1alpha1.DefaultAutoscalingEnabled)
}

// authServerEnv is the environment of the authserver container, sorted by name.
// Secret values are referenced, never inlined.
func authServerEnv(stack *authv1alpha1.AuthStack) []corev1.EnvVar {
	spec := stack.Spec.AuthServer
	env := dataTierEnv(stack, true) // DATABASE_URL, DATABASE_DIRECT_URL, REDIS_URL: connection.go
	add := func(name, value string) {
		if value != "" {
			env = append(env, corev1.EnvVar{Name: name, Value: value})
		}
	}
	add("SMTP_HOST", stack.Spec.SMTP.Host)
	if p := stack.Spec.SMTP.Port; p > 0 {
		add("SMTP_PORT", strconv.Itoa(int(p)))
	}
	add("SMTP_USER", stack.Spec.SMTP.Username)
	if r := stack.Spec.SMTP.PasswordSecretRef; r != nil {
		env = append(env, secretEnv("SMTP_PASS", *r))
	}
	add("MAIL_FROM", MailFrom(stack))
	add("AUTH_TRUSTED_PROXIES", strings.Join(spec.TrustedProxies, ","))
	if h := spec.TrustedProxyHops; h != nil {
		add("AUTH_TRUSTED_PROXY_HOPS", strconv.Itoa(int(*h)))
	}
	add("FRONTEND_URL", spec.FrontendURL)
	add("AUTH_SIGNIN_URL", stack.Spec.EdgeAuth.SignInURL)
	add("AUTH_REDIRECT_HOSTS", strings.Join(stack.Spec.EdgeAuth.RedirectHosts, ","))
	add("LOG_LEVEL", string(spec.LogLevel))
	add("AUTH_PEPPER_FILE", PepperMountPath+"/"+PepperFileName)
	add("PORT", strconv.Itoa(AuthServerHTTPPort))
	add("AUTH_GRPC_PORT", strconv.Itoa(AuthServerGRPCAuthzPort))
	add("METRICS_ADDR", ":"+strconv.Itoa(AuthServerMetricsPort))
	if spec.SessionTTL != nil {
		add("AUTH_SESSION_TTL", spec.SessionTTL.Duration.String())
	}
	env = append(env, mfaEnv(spec.MFA)...)
	add("AUTH_WEBAUTHN_RP_ID", spec.Passkeys.RPID) // unset: FRONTEND_URL's host
	add("AUTH_WEBAUTHN_ORIGINS", strings.Join(spec.Passkeys.Origins, ","))
	env = append(env, uiEnv(spec.UI)...)
	ph := spec.PasswordHashing
	if ph.MemoryKiB > 0 {
		add("AUTH_ARGON2_MEMORY_KIB", strconv.Itoa(int(ph.MemoryKiB)))
	}
	if ph.Iterations > 0 {
		add("AUTH_ARGON2_ITERATIONS", strconv.Itoa(int(ph.Iterations)))
	}
	if ph.Parallelism > 0 {
		add("AUTH_ARGON2_PARALLELISM", strconv.Itoa(int(ph.Parallelism)))
	}
	env = append(env, observabilityEnv(stack)...) // observability.go
	// No GOMEMLIMIT: `serve` derives its soft limit from the container's cgroup less
	// the hashing slots' argon2 memory, which lives outside the Go heap
	// (authserver/app/resources.go); 90 % of limits.memory would leave no room for it.
	env = append(env, cpuEnv(ComponentAuthServer, authServerResources(stack))...)
	return sortEnv(env)
}

// mfaEnv renders spec.authServer.mfa; what it leaves unset keeps the
// authserver's default (the CRD's defaults are the same).
func mfaEnv(m authv1alpha1.MFASpec) []corev1.EnvVar {
	var env []corev1.EnvVar
	if m.Methods != nil {
		v := "none"
		if len(m.Methods) > 0 {
			names := make([]string, len(m.Methods))
			for i, x := range m.Methods {
				names[i] = string(x)
			}
			v = strings.Join(names, ",")
		}
		env = append(env, corev1.EnvVar{Name: "AUTH_MFA_METHODS", Value: v})
	}
	if m.Mode != "" {
		env = append(env, corev1.EnvVar{Name: "AUTH_MFA_MODE", Value: string(m.Mode)})
	}
	if m.StepUpWindow != nil {
		env = append(env, corev1.EnvVar{Name: "AUTH_STEPUP_WINDOW", Value: m.StepUpWindow.Duration.String()})
	}
	return env
}

// uiEnv renders spec.authServer.ui; what it leaves unset keeps the
// authserver's default.
func uiEnv(u authv1alpha1.UISpec) []corev1.EnvVar {
	var env []corev1.EnvVar
	add := func(name, v string) {
		if v != "" {
			env = append(env, corev1.EnvVar{Name: name, Value: v})
		}
	}
	if u.Enabled {
		add("AUTH_UI_ENABLED", "true")
	}
	if u.EmailLinks {
		add("AUTH_UI_EMAIL_LINKS", "true")
	}
	b := u.Branding
	add("AUTH_UI_PRODUCT_NAME", b.ProductName)
	add("AUTH_UI_LOGO_URL", b.LogoURL)
	add("AUTH_UI_PRIMARY_COLOR", b.PrimaryColor)
	add("AUTH_UI_BACKGROUND_COLOR", b.BackgroundColor)
	return env
}

// runtimeEnv sizes the Go runtime of an authserver-image Job's container (backup,
// drill, restore) to its resources, not the node's: cpuEnv, and GOMEMLIMIT 90 % of
// limits.memory, leaving room for what the Go heap does not count.
func runtimeEnv(container string, res corev1.ResourceRequirements) []corev1.EnvVar {
	env := cpuEnv(container, res)
	if m := res.Limits.Memory(); !m.IsZero() {
		env = append(env, corev1.EnvVar{Name: "GOMEMLIMIT", Value: strconv.FormatInt(m.Value()/10*9>>20, 10) + "MiB"})
	}
	return env
}

// cpuEnv sets GOMAXPROCS to limits.cpu rounded up (the downward API rounds up with
// divisor 1); nothing without a CPU limit (the Go runtime then reads its cgroup). The
// authserver's default hash concurrency is GOMAXPROCS.
func cpuEnv(container string, res corev1.ResourceRequirements) []corev1.EnvVar {
	if res.Limits.Cpu().IsZero() {
		return nil
	}
	return []corev1.EnvVar{{Name: "GOMAXPROCS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
		ContainerName: container, Resource: "limits.cpu", Divisor: resource.MustParse("1"),
	}}}}
}

// migrateEnv is the environment of the migration init container: the database, the
// pepper with its Secret's name, which `authserver migrate` checks against the
// stored password hashes (authserver/store/peppers.go), and where to report failures.
func migrateEnv(stack *authv1alpha1.AuthStack, in Inputs) []corev1.EnvVar {
	env := append(dataTierEnv(stack, false),
		corev1.EnvVar{Name: "AUTH_PEPPER_FILE", Value: PepperMountPath + "/" + PepperFileName},
		corev1.EnvVar{Name: "AUTH_PEPPER_SOURCE", Value: in.Pepper.Name})
	if lvl := stack.Spec.AuthServer.LogLevel; lvl != "" {
		env = append(env, corev1.EnvVar{Name: "LOG_LEVEL", Value: string(lvl)})
	}
	return sortEnv(append(env, sentryEnv(stack)...))
}

// AuthServerImage is the authserver's image (the backup Jobs run it too).
func AuthServerImage(stack *authv1alpha1.AuthStack, in Inputs) string {
	return image(stack.Spec.AuthServer.Image, in.AuthServerImage, "")
}

// MailFrom is the sender of the stack's emails: the spec's, else noreply at the frontend's host.
func MailFrom(stack *authv1alpha1.AuthStack) string {
	if from := stack.Spec.AuthServer.MailFrom; from != "" {
		return from
	}
	host := "localhost"
	if u, err := url.Parse(stack.Spec.AuthServer.FrontendURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return "noreply@" + host
}
