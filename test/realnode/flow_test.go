//go:build realnode

package realnode

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// small is a resource request and limit that fits several pods on the 2-core node.
func small(cpu, mem string) *corev1.ResourceRequirements {
	return &corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)},
	}
}

// StartMailpit runs the SMTP catcher as a pod with a Service "mailpit" (SMTP on
// 1025, its HTTP API on 8025).
func StartMailpit(t *testing.T, ns, image string) {
	t.Helper()
	labels := map[string]string{"app": "mailpit"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mailpit", Labels: labels},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext:              resources.RestrictedPodSecurityContext(),
			Containers: []corev1.Container{{
				Name: "mailpit", Image: image, ImagePullPolicy: corev1.PullNever,
				Args:            []string{"--smtp", "0.0.0.0:1025", "--listen", "0.0.0.0:8025"},
				Ports:           []corev1.ContainerPort{{Name: "smtp", ContainerPort: 1025}, {Name: "http", ContainerPort: 8025}},
				SecurityContext: resources.RestrictedContainerSecurityContext(),
				Resources:       *small("20m", "64Mi"),
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(1025)}},
					PeriodSeconds: 2},
				VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
			}},
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mailpit"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "smtp", Port: 1025, TargetPort: intstr.FromInt32(1025)},
			{Name: "http", Port: 8025, TargetPort: intstr.FromInt32(8025)},
		}},
	}
	create(t, ns, pod, svc)
	WaitPodReady(t, ns, "mailpit", 3*time.Minute)
}

// TestRealNodeSignupFlow: one AuthStack with managed PostgreSQL, managed Redis,
// pgbouncer in transaction mode and its NetworkPolicies, on the local images,
// reaches Ready with every pod really running; then a client pod walks signup ->
// verification email (mailpit pod) -> verify -> login -> session -> logout
// through the authserver Service by its DNS name.
func TestRealNodeSignupFlow(t *testing.T) {
	images, err := LocalImages()
	if err != nil {
		t.Fatal(err)
	}
	ns := NewNamespace(t, "flow")
	StartMailpit(t, ns, images["mailpit"])
	StartOperator(t, ns, Images{AuthServer: images["authserver"], PgBouncer: images["pgbouncer"], Redis: images["redis"]})

	const client = "client" // RunClient labels the pod app=client
	stack := &authv1alpha1.AuthStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flow"},
		Spec: authv1alpha1.AuthStackSpec{
			AuthServer: authv1alpha1.AuthServerSpec{
				Replicas: ptr.To[int32](1), Resources: small("100m", "256Mi"),
				FrontendURL: "https://app.example.com", MailFrom: "Flow <noreply@example.com>",
				Autoscaling: authv1alpha1.AutoscalingSpec{Enabled: ptr.To(false)},
			},
			Database: authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{
				Image: images["postgres"], Resources: small("100m", "256Mi"),
				Storage: authv1alpha1.StorageSpec{Size: ptr.To(resource.MustParse("1Gi")), DeleteOnStackDeletion: true},
			}},
			Redis: authv1alpha1.RedisSpec{Resources: small("50m", "64Mi"),
				Storage: authv1alpha1.StorageSpec{Size: ptr.To(resource.MustParse("1Gi")), DeleteOnStackDeletion: true}},
			Pooler: authv1alpha1.PoolerSpec{Enabled: ptr.To(true), PoolMode: authv1alpha1.PoolMode("transaction"),
				Replicas: 1, Resources: small("20m", "32Mi")},
			SMTP: authv1alpha1.SMTPSpec{Host: "mailpit." + ns + ".svc", Port: 1025},
			// The client pod stands in for the ingress controller.
			NetworkPolicy: authv1alpha1.NetworkPolicySpec{
				Enabled:                            ptr.To(true),
				IngressControllerNamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
				IngressControllerPodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": client}},
			},
		},
	}
	if err := env.c.Create(Ctx(t), stack); err != nil {
		t.Fatalf("creating the AuthStack: %v", err)
	}
	WaitStackReady(t, ns, stack.Name, 10*time.Minute)

	script := fmt.Sprintf(`set -eu
A=http://%[1]s:%[2]d
M=http://mailpit:8025
E="flow-$(date +%%s)@example.com"
P="correct horse battery staple"
req() { # METHOD PATH [BODY] [TOKEN]: prints the status; the body goes to /tmp/body
  set -- "$1" "$2" "${3:-}" "${4:-}"
  curl -sS -o /tmp/body -w '%%{http_code}' -X "$1" -H 'Content-Type: application/json' \
    ${4:+-H "Authorization: Bearer $4"} ${3:+--data "$3"} "$A$2"
}
expect() { [ "$1" = "$2" ] || { echo "$3: HTTP $1, want $2: $(cat /tmp/body)"; exit 1; }; echo "$3: $1"; }
expect "$(req POST /auth/signup "{\"email\":\"$E\",\"password\":\"$P\"}")" 202 signup
id=""
for _ in $(seq 1 60); do
  id=$(curl -sS "$M/api/v1/messages" | sed -n 's/^.*"ID":"\([^"]*\)".*$/\1/p' | head -n 1)
  [ -n "$id" ] && break
  sleep 1
done
[ -n "$id" ] || { echo "no email reached mailpit"; exit 1; }
token=$(curl -sS "$M/api/v1/message/$id" | grep -o 'token=[A-Za-z0-9_-]*' | head -n 1 | cut -d= -f2)
[ -n "$token" ] || { echo "no token in the email"; exit 1; }
echo "email: a verification link"
expect "$(req POST /auth/verify-email "{\"token\":\"$token\"}")" 200 verify
expect "$(req POST /auth/login "{\"email\":\"$E\",\"password\":\"$P\"}")" 200 login
session=$(sed -n 's/^.*"token":"\([^"]*\)".*$/\1/p' /tmp/body)
expect "$(req GET /auth/session "" "$session")" 200 session
grep -q "$E" /tmp/body && echo "session: the user's own"
expect "$(req POST /auth/logout "" "$session")" 204 logout
expect "$(req GET /auth/session "" "$session")" 401 "session after logout"
`, resources.AuthServerName(stack), resources.AuthServerHTTPPort)
	log := RunClient(t, ns, client, images["client"], script)
	for _, want := range []string{"signup: 202", "email: a verification link", "verify: 200", "login: 200",
		"session: 200", "session: the user's own", "logout: 204", "session after logout: 401"} {
		if !strings.Contains(log, want) {
			t.Errorf("the client's walk lacks %q:\n%s", want, log)
		}
	}
}
