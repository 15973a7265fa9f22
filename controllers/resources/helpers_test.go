package resources

import (
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// Shared fixtures for the builder tests: one fully specified AuthStack, the way the API
// server hands it to the operator after CRD defaulting, and the Inputs the reconciler
// would pass for it.

const (
	testName      = "demo"
	testNamespace = "team-a"
	testUID       = types.UID("0b6c7f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f")
	testImage     = "ghcr.io/leanauth/authserver:v1.2.3"
	testOpImage   = "ghcr.io/leanauth/authserver:operator-default"
	testHash      = "0123456789abcdef0123456789abcdef"
)

// Distinctive Secret values: they must never appear in anything rendered.
var testSecretValues = map[authv1alpha1.SecretKeyRef][]byte{
	{Name: "demo-db", Key: "url"}:        []byte("postgres://auth:db-SECRET-pw@pg.team-a.svc:5432/auth?sslmode=require"),
	{Name: "demo-redis", Key: "url"}:     []byte("redis://:redis-SECRET-pw@redis.team-a.svc:6379/0"),
	{Name: "demo-smtp", Key: "password"}: []byte("smtp-SECRET-pw"),
	{Name: "demo-pepper", Key: "pepper"}: []byte("6a1f0c3e9b2d4f5a7c8e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a"),
}

// sampleStack is a defaulted AuthStack with every optional feature turned on.
func sampleStack() *authv1alpha1.AuthStack {
	return &authv1alpha1.AuthStack{
		TypeMeta:   metav1.TypeMeta{APIVersion: authv1alpha1.GroupVersion.String(), Kind: "AuthStack"},
		ObjectMeta: metav1.ObjectMeta{Name: testName, Namespace: testNamespace, UID: testUID, Generation: 4},
		Spec: authv1alpha1.AuthStackSpec{
			AuthServer: authv1alpha1.AuthServerSpec{
				Replicas:    ptr.To(authv1alpha1.DefaultAuthServerReplicas),
				Resources:   ptr.To(authv1alpha1.DefaultAuthServerResources()),
				LogLevel:    "info",
				FrontendURL: "https://app.example.com",
				MailFrom:    "Example <noreply@example.com>",
				SessionTTL:  &metav1.Duration{Duration: 24 * time.Hour},
				PasswordHashing: authv1alpha1.PasswordHashingSpec{
					MemoryKiB: 19456, Iterations: 2, Parallelism: 1,
				},
				Autoscaling: authv1alpha1.AutoscalingSpec{
					Enabled: ptr.To(true), MinReplicas: 3, MaxReplicas: 20,
					TargetCPUUtilization: 70, TargetMemoryUtilization: 80,
				},
			},
			Database: authv1alpha1.DatabaseSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "demo-db", Key: "url"}},
			Redis:    authv1alpha1.RedisSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "demo-redis", Key: "url"}},
			// The authserver's own tests see the database directly; the pooler (on by
			// default) has its tests in pgbouncer_test.go and connection_test.go.
			Pooler: authv1alpha1.PoolerSpec{Enabled: ptr.To(false)},
			SMTP: authv1alpha1.SMTPSpec{
				Host: "smtp.example.com", Port: 587, Username: "mailer",
				PasswordSecretRef: &authv1alpha1.SecretKeyRef{Name: "demo-smtp", Key: "password"},
			},
			Ingress: authv1alpha1.IngressSpec{
				Enabled: true, Host: "auth.example.com", Path: "/auth", ClassName: "nginx",
				TLS: &authv1alpha1.IngressTLS{ClusterIssuer: "letsencrypt"},
			},
		},
	}
}

// withPodTemplate adds every kind of pod template override.
func withPodTemplate(s *authv1alpha1.AuthStack) *authv1alpha1.AuthStack {
	s.Spec.AuthServer.PodTemplate = &authv1alpha1.PodTemplateOverrides{
		NodeSelector: map[string]string{"pool": "auth", "kubernetes.io/arch": "arm64"},
		Tolerations: []corev1.Toleration{
			{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "auth", Effect: corev1.TaintEffectNoSchedule},
			{Key: "spot", Operator: corev1.TolerationOpExists},
		},
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone-class", Operator: corev1.NodeSelectorOpIn, Values: []string{"gold"}}},
			}}},
		}},
		Annotations:       map[string]string{"prometheus.io/scrape": "true", "team": "identity"},
		Labels:            map[string]string{"cost-center": "cc-42", "team": "identity"},
		PriorityClassName: "auth-critical",
	}
	return s
}

// withOwnPepper makes the stack bring its own pepper.
func withOwnPepper(s *authv1alpha1.AuthStack) *authv1alpha1.AuthStack {
	s.Spec.Pepper = &authv1alpha1.PepperSpec{SecretRef: authv1alpha1.SecretKeyRef{Name: "byo-pepper", Key: "current"}}
	return s
}

// sampleInputs are the Inputs the reconciler passes for stack.
func sampleInputs(stack *authv1alpha1.AuthStack) Inputs {
	return Inputs{AuthServerImage: testOpImage, Pepper: PepperRef(stack), ConfigHash: testHash}
}

// mustJSON marshals v or fails the test.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshalling %T: %v", v, err)
	}
	return b
}

// ownedObjects renders every object the stack owns (the pepper Secret is not owned).
func ownedObjects(stack *authv1alpha1.AuthStack) map[string]metav1.Object {
	out := map[string]metav1.Object{
		"Deployment":          AuthServerDeployment(stack, sampleInputs(stack)),
		"Service":             AuthServerService(stack),
		"PodDisruptionBudget": AuthServerPDB(stack),
	}
	if h := AuthServerHPA(stack); h != nil {
		out["HorizontalPodAutoscaler"] = h
	}
	if i := AuthServerIngress(stack); i != nil {
		out["Ingress"] = i
	}
	return out
}

// envByName indexes a container's env.
func envByName(t *testing.T, c corev1.Container) map[string]corev1.EnvVar {
	t.Helper()
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		if _, dup := m[e.Name]; dup {
			t.Errorf("container %s: env %s set twice", c.Name, e.Name)
		}
		m[e.Name] = e
	}
	return m
}

// container returns the named container (init or regular) of a pod spec.
func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q in pod spec", name)
	return corev1.Container{}
}

func qty(s string) resource.Quantity { return resource.MustParse(s) }
