//go:build realnode

package realnode

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// small is what each container of the e2e stacks may take (2 cores, 24 GiB).
func small() *corev1.ResourceRequirements {
	return &corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
}

// StartMailpit runs the SMTP catcher (the mailpit image) as a pod with a
// Service "smtp" on port 1025 (SMTP) and 8025 (HTTP API).
func StartMailpit(t *testing.T, ns, image string) {
	t.Helper()
	labels := map[string]string{"app": "smtp"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "smtp", Labels: labels},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext:              resources.RestrictedPodSecurityContext(),
			Containers: []corev1.Container{{
				Name: "mailpit", Image: image, ImagePullPolicy: corev1.PullNever,
				Ports:           []corev1.ContainerPort{{ContainerPort: 1025}, {ContainerPort: 8025}},
				SecurityContext: resources.RestrictedContainerSecurityContext(),
				VolumeMounts:    []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
			}},
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "smtp"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "smtp", Port: 1025}, {Name: "http", Port: 8025},
		}},
	}
	for _, o := range []client.Object{pod, svc} {
		if err := env.c.Create(Ctx(t), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	WaitPodReady(t, ns, "smtp", 3*time.Minute)
}

// ManagedStack is a small AuthStack with every tier the operator runs itself:
// managed PostgreSQL, managed Redis, the pgbouncer pooler, NetworkPolicies on,
// mail to the "smtp" Service of its namespace.
func ManagedStack(ns, name string, images map[string]string) *authv1alpha1.AuthStack {
	size := resource.MustParse("256Mi")
	return &authv1alpha1.AuthStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: authv1alpha1.AuthStackSpec{
			AuthServer: authv1alpha1.AuthServerSpec{
				FrontendURL: "https://app.example.com", Replicas: ptr.To[int32](1), Resources: small(),
				Autoscaling: authv1alpha1.AutoscalingSpec{Enabled: ptr.To(false)},
			},
			Database: authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{
				Image: images["postgres"], Resources: small(), Storage: authv1alpha1.StorageSpec{Size: &size},
			}},
			Redis:         authv1alpha1.RedisSpec{Resources: small(), Storage: authv1alpha1.StorageSpec{Size: &size}},
			Pooler:        authv1alpha1.PoolerSpec{Enabled: ptr.To(true), PoolMode: authv1alpha1.PoolMode("transaction"), Replicas: 1, Resources: small()},
			NetworkPolicy: authv1alpha1.NetworkPolicySpec{Enabled: ptr.To(true)},
			SMTP:          authv1alpha1.SMTPSpec{Host: "smtp", Port: 1025},
		},
	}
}

// The operator's whole stack on the real node: the AuthStack reaches Ready with
// every container of every pod really running (under Pod Security
// "restricted"), and each NetworkPolicy holds against real traffic: the
// authserver's pods reach pgbouncer, Redis, DNS and SMTP; a pod outside the
// stack reaches none of Redis, pgbouncer and PostgreSQL; pgbouncer's pods
// cannot reach Redis. The probes are agents carrying a component's labels,
// which the policies select exactly as they select that component's pods.
func TestRealNodeStackReadyAndNetworkPolicies(t *testing.T) {
	images, err := LocalImages()
	if err != nil {
		t.Fatal(err)
	}
	ns := NewNamespace(t, "stack")
	StartMailpit(t, ns, images["mailpit"])
	StartOperator(t, ns, Images{AuthServer: images["authserver"], PgBouncer: images["pgbouncer"], Redis: images["redis"]})
	stack := ManagedStack(ns, "rn", images)
	if err := env.c.Create(Ctx(t), stack); err != nil {
		t.Fatalf("creating the AuthStack: %v", err)
	}
	WaitStackReady(t, ns, stack.Name, 10*time.Minute)

	var pods corev1.PodList
	if err := env.c.List(Ctx(t), &pods, client.InNamespace(ns), client.MatchingLabels{resources.LabelInstance: stack.Name}); err != nil {
		t.Fatal(err)
	}
	components := map[string]bool{}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded { // a finished Job's pod
			continue
		}
		WaitPodReady(t, ns, p.Name, time.Minute)
		if procs := HostProcesses(string(p.UID)); len(procs) < 2 { // the sandbox and at least one container
			t.Errorf("pod %s: host processes in its cgroups %q", p.Name, procs)
		}
		components[p.Labels[resources.LabelComponent]] = true
	}
	for _, c := range []string{resources.ComponentAuthServer, resources.ComponentPgBouncer, resources.ComponentRedis, resources.ComponentPostgres} {
		if !components[c] {
			t.Errorf("no running pod of %s; components running: %v", c, components)
		}
	}

	as := func(component string) map[string]string { return resources.SelectorLabels(stack, component) }
	redisAddr := fmt.Sprintf("%s:%d", resources.RedisName(stack), resources.RedisPort)
	bouncerAddr := fmt.Sprintf("%s:%d", resources.PgBouncerName(stack), resources.PgBouncerPort)
	pgAddr := fmt.Sprintf("%s:%d", resources.PostgresName(stack), resources.PostgresPort)

	auth := StartAgent(t, ns, "as-authserver", as(resources.ComponentAuthServer))
	bouncer := StartAgent(t, ns, "as-pgbouncer", as(resources.ComponentPgBouncer))
	outsider := StartAgent(t, ns, "outsider", map[string]string{"app": "outsider"})

	for _, addr := range []string{bouncerAddr, redisAddr, "smtp:1025"} {
		auth.ExpectReach(t, addr)
	}
	if _, err := auth.Resolve(resources.RedisName(stack)); err != nil {
		t.Errorf("the authserver's DNS: %v", err)
	}
	for _, addr := range []string{redisAddr, bouncerAddr, pgAddr} {
		outsider.ExpectBlocked(t, addr)
	}
	bouncer.ExpectReach(t, pgAddr)
	bouncer.ExpectBlocked(t, redisAddr)
	// Egress too: the authserver may not reach what its policy does not list.
	auth.ExpectBlocked(t, fmt.Sprintf("%s:%d", outsider.Pod.Status.PodIP, AgentPort))
}
