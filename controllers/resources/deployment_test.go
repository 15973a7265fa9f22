package resources

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func renderDeployment(s *authv1alpha1.AuthStack) *appsv1.Deployment {
	return AuthServerDeployment(s, sampleInputs(s))
}

func TestDeploymentMetadata(t *testing.T) {
	s := sampleStack()
	d := renderDeployment(s)
	if d.Name != "demo-authserver" || d.Namespace != testNamespace {
		t.Errorf("name/namespace = %s/%s, want %s/demo-authserver", d.Namespace, d.Name, testNamespace)
	}
	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
		t.Errorf("type = %s %s, want apps/v1 Deployment (server-side apply needs it)", d.APIVersion, d.Kind)
	}
	if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update maxUnavailable = %+v, want 0 (never drop below capacity on a rollout)", d.Spec.Strategy.RollingUpdate)
	}
}

func TestDeploymentEnvSortedAndComplete(t *testing.T) {
	s := sampleStack()
	s.Spec.AuthServer.SessionTTL.Duration = 12 * time.Hour
	s.Spec.AuthServer.PasswordHashing = authv1alpha1.PasswordHashingSpec{MemoryKiB: 65536, Iterations: 3, Parallelism: 4}
	s.Spec.AuthServer.LogLevel = "debug"
	c := container(t, renderDeployment(s).Spec.Template.Spec, ComponentAuthServer)

	if !slices.IsSortedFunc(c.Env, func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("env not sorted by name: %v", envNames(c.Env))
	}
	want := map[string]string{
		"AUTH_ARGON2_ITERATIONS":  "3",
		"AUTH_ARGON2_MEMORY_KIB":  "65536",
		"AUTH_ARGON2_PARALLELISM": "4",
		"AUTH_PEPPER_FILE":        PepperMountPath + "/" + PepperFileName,
		"AUTH_GRPC_PORT":          "9191",
		"AUTH_SESSION_TTL":        "12h0m0s",
		"FRONTEND_URL":            "https://app.example.com",
		"LOG_LEVEL":               "debug",
		"MAIL_FROM":               "Example <noreply@example.com>",
		"METRICS_ADDR":            ":9090",
		"PORT":                    "3000",
		"SMTP_HOST":               "smtp.example.com",
		"SMTP_PORT":               "587",
		"SMTP_USER":               "mailer",
		"DATABASE_URL":            "",
		"REDIS_URL":               "",
		"SMTP_PASS":               "",
		"GOMAXPROCS":              "",
	}
	env := envByName(t, c)
	if got, w := slices.Sorted(maps.Keys(env)), slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
		t.Errorf("env names = %v\nwant        %v", got, w)
	}
	for name, value := range want {
		if e, ok := env[name]; ok && e.Value != value {
			t.Errorf("env %s = %q, want %q", name, e.Value, value)
		}
	}
	if d, err := time.ParseDuration(env["AUTH_SESSION_TTL"].Value); err != nil || d != 12*time.Hour {
		t.Errorf("AUTH_SESSION_TTL %q does not parse back to 12h: %v %v", env["AUTH_SESSION_TTL"].Value, d, err)
	}
}

func TestDeploymentEnvOmitsUnsetOptionals(t *testing.T) {
	s := sampleStack()
	s.Spec.SMTP.Username, s.Spec.SMTP.PasswordSecretRef = "", nil
	s.Spec.AuthServer.SessionTTL = nil
	s.Spec.AuthServer.PasswordHashing = authv1alpha1.PasswordHashingSpec{}
	s.Spec.AuthServer.MailFrom = ""
	env := envByName(t, container(t, renderDeployment(s).Spec.Template.Spec, ComponentAuthServer))
	for _, name := range []string{"SMTP_USER", "SMTP_PASS", "AUTH_SESSION_TTL", "AUTH_ARGON2_MEMORY_KIB", "AUTH_ARGON2_ITERATIONS", "AUTH_ARGON2_PARALLELISM"} {
		if e, ok := env[name]; ok {
			t.Errorf("env %s = %+v rendered although the spec leaves it unset (the authserver default applies)", name, e)
		}
	}
	// The authserver requires MAIL_FROM: without one in the spec, it is noreply at the frontend's host.
	if got, want := env["MAIL_FROM"].Value, "noreply@"+mustHost(t, s.Spec.AuthServer.FrontendURL); got != want {
		t.Errorf("MAIL_FROM = %q, want the default %q", got, want)
	}
}

func mustHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		t.Fatalf("frontend URL %q: %v", raw, err)
	}
	return u.Hostname()
}

func TestMailFromDefaultsToTheFrontendHost(t *testing.T) {
	s := sampleStack()
	s.Spec.AuthServer.MailFrom = "Example <hello@example.org>"
	if got := MailFrom(s); got != "Example <hello@example.org>" {
		t.Errorf("MailFrom with a spec value = %q", got)
	}
	s.Spec.AuthServer.MailFrom = ""
	s.Spec.AuthServer.FrontendURL = "http://localhost:8080/app"
	if got := MailFrom(s); got != "noreply@localhost" {
		t.Errorf("MailFrom for localhost = %q", got)
	}
}

func TestDeploymentSecretsReferencedNeverInlined(t *testing.T) {
	s := sampleStack()
	d := renderDeployment(s)
	wantRefs := map[string]authv1alpha1.SecretKeyRef{
		"DATABASE_URL": *s.Spec.Database.URLSecretRef,
		"REDIS_URL":    *s.Spec.Redis.URLSecretRef,
		"SMTP_PASS":    *s.Spec.SMTP.PasswordSecretRef,
	}
	for _, c := range append(append([]corev1.Container{}, d.Spec.Template.Spec.InitContainers...), d.Spec.Template.Spec.Containers...) {
		for _, e := range c.Env {
			if e.Name == "AUTH_PEPPER" || e.Name == "AUTH_OLD_PEPPERS" {
				t.Errorf("container %s: the pepper is passed as env %s; it must only be a mounted file", c.Name, e.Name)
			}
			ref, secret := wantRefs[e.Name]
			if !secret {
				if e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef == nil {
					t.Errorf("container %s: env %s unexpectedly from %+v", c.Name, e.Name, e.ValueFrom)
				}
				continue
			}
			if e.Value != "" {
				t.Errorf("container %s: secret env %s is inlined as a value", c.Name, e.Name)
			}
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("container %s: env %s is not a secretKeyRef: %+v", c.Name, e.Name, e.ValueFrom)
				continue
			}
			got := e.ValueFrom.SecretKeyRef
			if got.Name != ref.Name || got.Key != ref.Key || ptr.Deref(got.Optional, false) {
				t.Errorf("container %s: env %s refers to %s/%s (optional=%v), want %s/%s required", c.Name, e.Name, got.Name, got.Key, got.Optional, ref.Name, ref.Key)
			}
		}
	}
	// Whatever the hash was computed from, no secret value reaches the object.
	in := sampleInputs(s)
	in.ConfigHash = ConfigHash(ReferencedSecrets(s), testSecretValues)
	raw := mustJSON(t, AuthServerDeployment(s, in))
	for ref, v := range testSecretValues {
		if bytes.Contains(raw, v) {
			t.Errorf("the Deployment contains the value of Secret %s key %s", ref.Name, ref.Key)
		}
	}
	if bytes.Contains(raw, []byte("SECRET")) {
		t.Error("the Deployment contains a secret marker")
	}
}

func TestDeploymentPepperMount(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stack *authv1alpha1.AuthStack
		want  authv1alpha1.SecretKeyRef
	}{
		{"generated", sampleStack(), authv1alpha1.SecretKeyRef{Name: "demo-pepper", Key: "pepper"}},
		{"own", withOwnPepper(sampleStack()), authv1alpha1.SecretKeyRef{Name: "byo-pepper", Key: "current"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PepperRef(tc.stack); got != tc.want {
				t.Fatalf("PepperRef = %+v, want %+v", got, tc.want)
			}
			spec := renderDeployment(tc.stack).Spec.Template.Spec
			c := container(t, spec, ComponentAuthServer)
			file := envByName(t, c)["AUTH_PEPPER_FILE"].Value

			var vol *corev1.Volume
			for i := range spec.Volumes {
				if spec.Volumes[i].Secret != nil && spec.Volumes[i].Secret.SecretName == tc.want.Name {
					vol = &spec.Volumes[i]
				}
			}
			if vol == nil {
				t.Fatalf("no Secret volume of %q in %+v", tc.want.Name, spec.Volumes)
			}
			if len(vol.Secret.Items) != 1 || vol.Secret.Items[0].Key != tc.want.Key {
				t.Fatalf("pepper volume items = %+v, want only key %q", vol.Secret.Items, tc.want.Key)
			}
			if m := ptr.Deref(vol.Secret.DefaultMode, 0o644); m&0o007 != 0 {
				t.Errorf("pepper file mode %o is world-readable", m)
			}
			var mount *corev1.VolumeMount
			for i := range c.VolumeMounts {
				if c.VolumeMounts[i].Name == vol.Name {
					mount = &c.VolumeMounts[i]
				}
			}
			if mount == nil {
				t.Fatalf("pepper volume %q not mounted", vol.Name)
			}
			if !mount.ReadOnly {
				t.Error("pepper mount is not read-only")
			}
			if want := path.Join(mount.MountPath, vol.Secret.Items[0].Path); file != want {
				t.Errorf("AUTH_PEPPER_FILE = %q, but the pepper is mounted at %q", file, want)
			}
			if !strings.HasPrefix(file, PepperMountPath+"/") {
				t.Errorf("AUTH_PEPPER_FILE = %q, not under %s", file, PepperMountPath)
			}
			// The migrations check the same pepper against the stored hashes.
			migrate := container(t, spec, MigrateContainerName)
			if got := envByName(t, migrate)["AUTH_PEPPER_FILE"].Value; got != file {
				t.Errorf("migrate AUTH_PEPPER_FILE = %q, the server's is %q", got, file)
			}
			if got := envByName(t, migrate)["AUTH_PEPPER_SOURCE"].Value; got != tc.want.Name {
				t.Errorf("migrate AUTH_PEPPER_SOURCE = %q, want %q", got, tc.want.Name)
			}
		})
	}
}

func TestDeploymentProbesAndPorts(t *testing.T) {
	c := container(t, renderDeployment(sampleStack()).Spec.Template.Spec, ComponentAuthServer)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
		if p.Protocol != corev1.ProtocolTCP {
			t.Errorf("port %s protocol %s", p.Name, p.Protocol)
		}
	}
	if !reflect.DeepEqual(ports, map[string]int32{"http": 3000, "metrics": 9090, "grpc-authz": 9191}) {
		t.Errorf("container ports = %v, want http 3000, metrics 9090 and grpc-authz 9191", ports)
	}
	for _, tc := range []struct {
		name                                   string
		probe                                  *corev1.Probe
		path                                   string
		initialDelay, period, timeout, failure int32
	}{
		{"liveness", c.LivenessProbe, "/health", 60, 30, 5, 3},
		{"readiness", c.ReadinessProbe, "/ready", 10, 5, 3, 3},
	} {
		p := tc.probe
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe = %+v, want an HTTP GET", tc.name, p)
			continue
		}
		if p.HTTPGet.Path != tc.path {
			t.Errorf("%s path = %q, want %q", tc.name, p.HTTPGet.Path, tc.path)
		}
		port := p.HTTPGet.Port
		if port.Type == intstr.String {
			port = intstr.FromInt32(ports[port.StrVal])
		}
		if port.IntValue() != 3000 {
			t.Errorf("%s probes port %s, want 3000", tc.name, p.HTTPGet.Port.String())
		}
		got := [4]int32{p.InitialDelaySeconds, p.PeriodSeconds, p.TimeoutSeconds, p.FailureThreshold}
		if want := [4]int32{tc.initialDelay, tc.period, tc.timeout, tc.failure}; got != want {
			t.Errorf("%s delay/period/timeout/failures = %v, want %v", tc.name, got, want)
		}
	}
}

func TestDeploymentReplicas(t *testing.T) {
	for _, tc := range []struct {
		name     string
		enabled  *bool
		replicas *int32
		want     *int32
	}{
		{"autoscaling on: HPA owns replicas", ptr.To(true), ptr.To[int32](7), nil},
		{"autoscaling unset means on", nil, ptr.To[int32](7), nil},
		{"autoscaling off: spec.replicas", ptr.To(false), ptr.To[int32](7), ptr.To[int32](7)},
		{"autoscaling off, replicas unset: 3", ptr.To(false), nil, ptr.To[int32](3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sampleStack()
			s.Spec.AuthServer.Autoscaling.Enabled = tc.enabled
			s.Spec.AuthServer.Replicas = tc.replicas
			d := renderDeployment(s)
			if !reflect.DeepEqual(d.Spec.Replicas, tc.want) {
				t.Errorf("replicas = %v, want %v", ptr.Deref(d.Spec.Replicas, -1), ptr.Deref(tc.want, -1))
			}
			if (tc.want == nil) != (AuthServerHPA(s) != nil) {
				t.Error("exactly one of the Deployment and the HPA must own the replica count")
			}
			if tc.want == nil && bytes.Contains(mustJSON(t, d.Spec), []byte(`"replicas"`)) {
				t.Error(`"replicas" is serialized while the HPA owns it: server-side apply would fight the HPA`)
			}
		})
	}
}

func TestDeploymentConfigHashAnnotation(t *testing.T) {
	s := sampleStack()
	in := sampleInputs(s)
	d := AuthServerDeployment(s, in)
	if got := d.Spec.Template.Annotations[AnnotationConfigHash]; got != testHash {
		t.Errorf("pod template %s = %q, want %q", AnnotationConfigHash, got, testHash)
	}
	in.ConfigHash = "ffffffffffffffffffffffffffffffff"
	if got := AuthServerDeployment(s, in).Spec.Template.Annotations[AnnotationConfigHash]; got != in.ConfigHash {
		t.Errorf("after a Secret change the pod template hash = %q, want %q", got, in.ConfigHash)
	}
	// A user annotation of the same key never overrides the operator's hash.
	withPodTemplate(s).Spec.AuthServer.PodTemplate.Annotations[AnnotationConfigHash] = "user-value"
	if got := renderDeployment(s).Spec.Template.Annotations[AnnotationConfigHash]; got != testHash {
		t.Errorf("podTemplate annotation overrode the config hash: %q", got)
	}
}

func TestDeploymentResources(t *testing.T) {
	s := sampleStack()
	s.Spec.AuthServer.Resources = nil
	got := container(t, renderDeployment(s).Spec.Template.Spec, ComponentAuthServer).Resources
	want := map[string]string{"requests.cpu": "250m", "requests.memory": "256Mi", "limits.cpu": "500m", "limits.memory": "512Mi"}
	checkResources(t, "default", got, want)

	s.Spec.AuthServer.Resources = &corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: qty("1"), corev1.ResourceMemory: qty("1Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: qty("2"), corev1.ResourceMemory: qty("2Gi")},
	}
	d := renderDeployment(s)
	checkResources(t, "override", container(t, d.Spec.Template.Spec, ComponentAuthServer).Resources,
		map[string]string{"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi"})
	// The rendered object must not alias the spec: the reconciler may not mutate the cache.
	d.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = qty("64")
	if c := s.Spec.AuthServer.Resources.Limits[corev1.ResourceCPU]; c.String() != "2" {
		t.Errorf("mutating the rendered resources changed the AuthStack spec to %s", c.String())
	}
	// Every container has requests and limits (quota-friendly).
	for _, c := range append(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers...) {
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("container %s lacks requests or limits: %+v", c.Name, c.Resources)
		}
	}
}

// The Go runtime is sized to the container, not the node: GOMAXPROCS from
// limits.cpu through the downward API (rounded up), none without a limit; never
// GOMEMLIMIT (serve derives it from its cgroup less the argon2 memory outside the
// heap: 90 % of limits.memory would leave that memory no room).
func TestDeploymentRuntimeSizedToContainer(t *testing.T) {
	s := sampleStack()
	for _, tc := range []struct {
		name     string
		res      *corev1.ResourceRequirements
		gomaxref bool
	}{
		{"default 500m/512Mi", nil, true},
		{"2 CPUs, 2Gi", &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: qty("2"), corev1.ResourceMemory: qty("2Gi")}}, true},
		{"no limits", &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: qty("1")}}, false},
	} {
		s.Spec.AuthServer.Resources = tc.res
		env := envByName(t, container(t, renderDeployment(s).Spec.Template.Spec, ComponentAuthServer))
		g, ok := env["GOMAXPROCS"]
		if ok != tc.gomaxref {
			t.Errorf("%s: GOMAXPROCS rendered %v, want %v", tc.name, ok, tc.gomaxref)
		} else if ok {
			r := g.ValueFrom.ResourceFieldRef
			if g.Value != "" || r == nil || r.Resource != "limits.cpu" || r.ContainerName != ComponentAuthServer || r.Divisor.String() != "1" {
				t.Errorf("%s: GOMAXPROCS = %+v, want the downward API's limits.cpu with divisor 1", tc.name, g)
			}
		}
		if e, ok := env["GOMEMLIMIT"]; ok {
			t.Errorf("%s: GOMEMLIMIT = %+v: serve sets its own limit", tc.name, e)
		}
	}
}

func checkResources(t *testing.T, what string, got corev1.ResourceRequirements, want map[string]string) {
	t.Helper()
	have := map[string]string{}
	for k, v := range got.Requests {
		have["requests."+string(k)] = v.String()
	}
	for k, v := range got.Limits {
		have["limits."+string(k)] = v.String()
	}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("%s resources = %v, want %v", what, have, want)
	}
}

func TestDeploymentPodTemplateOverrides(t *testing.T) {
	s := withPodTemplate(sampleStack())
	o := s.Spec.AuthServer.PodTemplate
	// Attempts to move the pods out of the selector must lose.
	o.Labels[LabelInstance] = "other"
	o.Labels[LabelName] = "other"
	o.Labels[LabelComponent] = "other"
	d := renderDeployment(s)
	tpl := d.Spec.Template

	if !reflect.DeepEqual(tpl.Spec.NodeSelector, map[string]string{"pool": "auth", "kubernetes.io/arch": "arm64"}) {
		t.Errorf("nodeSelector = %v", tpl.Spec.NodeSelector)
	}
	if !reflect.DeepEqual(tpl.Spec.Tolerations, o.Tolerations) {
		t.Errorf("tolerations = %+v, want %+v", tpl.Spec.Tolerations, o.Tolerations)
	}
	if !reflect.DeepEqual(tpl.Spec.Affinity, o.Affinity) {
		t.Errorf("affinity = %+v, want %+v", tpl.Spec.Affinity, o.Affinity)
	}
	if tpl.Spec.PriorityClassName != "auth-critical" {
		t.Errorf("priorityClassName = %q", tpl.Spec.PriorityClassName)
	}
	for k, v := range map[string]string{"prometheus.io/scrape": "true", "team": "identity", AnnotationConfigHash: testHash} {
		if tpl.Annotations[k] != v {
			t.Errorf("pod annotation %s = %q, want %q", k, tpl.Annotations[k], v)
		}
	}
	for k, v := range map[string]string{"cost-center": "cc-42", "team": "identity", LabelInstance: testName, LabelName: ComponentAuthServer, LabelComponent: ComponentAuthServer} {
		if tpl.Labels[k] != v {
			t.Errorf("pod label %s = %q, want %q", k, tpl.Labels[k], v)
		}
	}
	if !reflect.DeepEqual(d.Spec.Selector.MatchLabels, SelectorLabels(s, ComponentAuthServer)) {
		t.Errorf("selector = %v, changed by podTemplate labels", d.Spec.Selector.MatchLabels)
	}
	sel, err := metav1LabelSelector(d)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(tpl.Labels)) {
		t.Errorf("selector %v does not match the pod template labels %v", sel, tpl.Labels)
	}
	// The overrides never reach the object's own labels.
	if _, ok := d.Labels["cost-center"]; ok {
		t.Error("pod labels leaked onto the Deployment's own labels")
	}
}

func TestDeploymentWithoutPodTemplate(t *testing.T) {
	s := sampleStack()
	s.Spec.AuthServer.PodTemplate = nil
	tpl := renderDeployment(s).Spec.Template
	if tpl.Spec.NodeSelector != nil || tpl.Spec.Tolerations != nil || tpl.Spec.Affinity != nil {
		t.Errorf("scheduling set without overrides: %v %v %v", tpl.Spec.NodeSelector, tpl.Spec.Tolerations, tpl.Spec.Affinity)
	}
	if !reflect.DeepEqual(tpl.Labels, Labels(s, ComponentAuthServer)) {
		t.Errorf("pod labels = %v, want %v", tpl.Labels, Labels(s, ComponentAuthServer))
	}
	if !reflect.DeepEqual(tpl.Annotations, map[string]string{AnnotationConfigHash: testHash}) {
		t.Errorf("pod annotations = %v", tpl.Annotations)
	}
}

func TestDeploymentMigrateInitContainer(t *testing.T) {
	s := sampleStack()
	spec := renderDeployment(s).Spec.Template.Spec
	if len(spec.InitContainers) != 1 {
		t.Fatalf("init containers = %d, want 1 (migrate)", len(spec.InitContainers))
	}
	m := spec.InitContainers[0]
	main := container(t, spec, ComponentAuthServer)
	if !reflect.DeepEqual(m.Args, []string{"migrate"}) || len(m.Command) != 0 {
		t.Errorf("migrate command/args = %v %v, want the image entrypoint with [migrate]", m.Command, m.Args)
	}
	if !reflect.DeepEqual(main.Args, []string{"serve"}) {
		t.Errorf("authserver args = %v, want [serve]", main.Args)
	}
	if m.Image != main.Image {
		t.Errorf("migrate image %q differs from the authserver image %q: the schema would not match the code", m.Image, main.Image)
	}
	env := envByName(t, m)
	db, ok := env["DATABASE_URL"]
	if !ok || db.ValueFrom == nil || db.ValueFrom.SecretKeyRef == nil || db.ValueFrom.SecretKeyRef.Name != "demo-db" {
		t.Errorf("migrate DATABASE_URL = %+v, want the demo-db secretKeyRef", db)
	}
	for name, e := range env {
		switch name {
		case "DATABASE_URL":
		case "LOG_LEVEL":
			if e.Value != "info" {
				t.Errorf("migrate LOG_LEVEL = %q", e.Value)
			}
		case "AUTH_PEPPER_FILE":
			if e.Value != PepperMountPath+"/"+PepperFileName {
				t.Errorf("migrate AUTH_PEPPER_FILE = %q", e.Value)
			}
		case "AUTH_PEPPER_SOURCE":
			if e.Value != PepperSecretName(s) {
				t.Errorf("migrate AUTH_PEPPER_SOURCE = %q, want the pepper Secret's name", e.Value)
			}
		default:
			t.Errorf("migrate container gets env %s; it needs only the database and the pepper", name)
		}
	}
	if len(m.VolumeMounts) != 1 || m.VolumeMounts[0].Name != "pepper" || !m.VolumeMounts[0].ReadOnly {
		t.Errorf("migrate container mounts %+v; it needs the pepper only, read-only", m.VolumeMounts)
	}
}

func TestDeploymentTopologySpread(t *testing.T) {
	s := sampleStack()
	d := renderDeployment(s)
	keys := map[string]bool{}
	for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
		keys[c.TopologyKey] = true
		if c.MaxSkew != 1 {
			t.Errorf("%s maxSkew = %d, want 1", c.TopologyKey, c.MaxSkew)
		}
		if c.WhenUnsatisfiable != corev1.ScheduleAnyway {
			t.Errorf("%s whenUnsatisfiable = %s: a small cluster could not schedule every replica", c.TopologyKey, c.WhenUnsatisfiable)
		}
		if c.LabelSelector == nil || !reflect.DeepEqual(c.LabelSelector.MatchLabels, SelectorLabels(s, ComponentAuthServer)) {
			t.Errorf("%s selects %+v, want this stack's authserver pods", c.TopologyKey, c.LabelSelector)
		}
	}
	if !keys[corev1.LabelHostname] {
		t.Errorf("no spread over nodes (%s): %v", corev1.LabelHostname, keys)
	}
}

func TestDeploymentImage(t *testing.T) {
	s := sampleStack()
	s.Spec.AuthServer.Image = ""
	for _, c := range append(renderDeployment(s).Spec.Template.Spec.InitContainers, renderDeployment(s).Spec.Template.Spec.Containers...) {
		if c.Image != testOpImage {
			t.Errorf("container %s image = %q, want the operator default %q", c.Name, c.Image, testOpImage)
		}
	}
	s.Spec.AuthServer.Image = testImage
	for _, c := range append(renderDeployment(s).Spec.Template.Spec.InitContainers, renderDeployment(s).Spec.Template.Spec.Containers...) {
		if c.Image != testImage {
			t.Errorf("container %s image = %q, want the spec's %q", c.Name, c.Image, testImage)
		}
	}
}

func TestDeploymentTmpIsTheOnlyWritablePath(t *testing.T) {
	spec := renderDeployment(sampleStack()).Spec.Template.Spec
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	for _, c := range spec.Containers {
		for _, m := range c.VolumeMounts {
			v, ok := vols[m.Name]
			if !ok {
				t.Errorf("container %s mounts undefined volume %q", c.Name, m.Name)
				continue
			}
			if !m.ReadOnly && (v.EmptyDir == nil || m.MountPath != "/tmp") {
				t.Errorf("container %s: writable mount %s at %s", c.Name, m.Name, m.MountPath)
			}
		}
	}
	if ptr.Deref(spec.AutomountServiceAccountToken, true) {
		t.Error("the authserver pods get a service account token they never use")
	}
}

// TestDeploymentDeterministic renders the same stack twice (and from a deep copy) and
// requires deeply equal objects and byte-identical JSON, with many map keys.
func TestDeploymentDeterministic(t *testing.T) {
	s := withPodTemplate(sampleStack())
	o := s.Spec.AuthServer.PodTemplate
	for i := range 64 {
		o.Annotations[fmt.Sprintf("example.com/annotation-%02d", i)] = fmt.Sprint(i)
		o.Labels[fmt.Sprintf("label-%02d", i)] = fmt.Sprint(i)
		o.NodeSelector[fmt.Sprintf("node.example.com/key-%02d", i)] = fmt.Sprint(i)
	}
	a := renderDeployment(s)
	b := renderDeployment(s.DeepCopy())
	if !reflect.DeepEqual(a, b) {
		t.Error("two renders of the same stack differ")
	}
	ja, jb := mustJSON(t, a), mustJSON(t, b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("two renders serialize differently:\n%s\n%s", ja, jb)
	}
	for range 20 {
		if !bytes.Equal(mustJSON(t, renderDeployment(s)), ja) {
			t.Fatal("a later render serializes differently")
		}
	}
}

// TestEnvOrderIndependentOfInput: whatever order the env is built in, sortEnv gives one order.
func TestEnvOrderIndependentOfInput(t *testing.T) {
	c := container(t, renderDeployment(sampleStack()).Spec.Template.Spec, ComponentAuthServer)
	want := slices.Clone(c.Env)
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		shuffled := slices.Clone(want)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := sortEnv(shuffled); !reflect.DeepEqual(got, want) {
			t.Fatalf("sortEnv(%v) = %v, want %v", envNames(shuffled), envNames(got), envNames(want))
		}
	}
	// Toggling optional inputs keeps the env sorted.
	s := sampleStack()
	s.Spec.SMTP.Username = ""
	s.Spec.AuthServer.SessionTTL = nil
	got := container(t, renderDeployment(s).Spec.Template.Spec, ComponentAuthServer).Env
	if !slices.IsSortedFunc(got, func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("env not sorted: %v", envNames(got))
	}
}

func envNames(env []corev1.EnvVar) []string {
	out := make([]string, len(env))
	for i, e := range env {
		out[i] = e.Name
	}
	return out
}

func metav1LabelSelector(d *appsv1.Deployment) (labels.Selector, error) {
	return labels.ValidatedSelectorFromSet(d.Spec.Selector.MatchLabels)
}

func TestDeploymentTrustedProxies(t *testing.T) {
	s := sampleStack()
	s.Spec.AuthServer.TrustedProxies = []string{"10.0.0.0/8", "192.168.1.7"}
	env := envByName(t, container(t, renderDeployment(s).Spec.Template.Spec, ComponentAuthServer))
	if got := env["AUTH_TRUSTED_PROXIES"].Value; got != "10.0.0.0/8,192.168.1.7" {
		t.Errorf("AUTH_TRUSTED_PROXIES = %q", got)
	}
	if e, ok := env["AUTH_TRUSTED_PROXY_HOPS"]; ok {
		t.Errorf("AUTH_TRUSTED_PROXY_HOPS rendered without trustedProxyHops: %+v", e)
	}
	hops := int32(2)
	s.Spec.AuthServer.TrustedProxyHops = &hops
	env = envByName(t, container(t, renderDeployment(s).Spec.Template.Spec, ComponentAuthServer))
	if got := env["AUTH_TRUSTED_PROXY_HOPS"].Value; got != "2" {
		t.Errorf("AUTH_TRUSTED_PROXY_HOPS = %q", got)
	}
	s.Spec.AuthServer.TrustedProxies = nil
	env = envByName(t, container(t, renderDeployment(s).Spec.Template.Spec, ComponentAuthServer))
	if e, ok := env["AUTH_TRUSTED_PROXIES"]; ok {
		t.Errorf("AUTH_TRUSTED_PROXIES rendered without trusted proxies: %+v", e)
	}
}
