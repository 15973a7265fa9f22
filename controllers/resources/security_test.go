package resources

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// podRenderer is one builder that renders a PodSpec. Builders of later issues
// (pgbouncer, redis, postgres, backup CronJobs) add a row to podRenderers.
type podRenderer struct {
	name   string
	render func(*authv1alpha1.AuthStack, Inputs) (metav1.ObjectMeta, corev1.PodSpec)
}

var podRenderers = []podRenderer{
	{"authserver Deployment", func(s *authv1alpha1.AuthStack, in Inputs) (metav1.ObjectMeta, corev1.PodSpec) {
		d := AuthServerDeployment(s, in)
		return d.Spec.Template.ObjectMeta, d.Spec.Template.Spec
	}},
}

// stackVariants are the spec shapes every pod renderer is checked against.
var stackVariants = []struct {
	name  string
	stack func() *authv1alpha1.AuthStack
}{
	{"full", sampleStack},
	{"pod template overrides", func() *authv1alpha1.AuthStack { return withPodTemplate(sampleStack()) }},
	{"own pepper", func() *authv1alpha1.AuthStack { return withOwnPepper(sampleStack()) }},
	{"autoscaling off, no ingress", func() *authv1alpha1.AuthStack {
		s := sampleStack()
		s.Spec.AuthServer.Autoscaling.Enabled = ptr.To(false)
		s.Spec.Ingress = authv1alpha1.IngressSpec{}
		return s
	}},
	{"minimal (no SMTP auth, no optional fields)", func() *authv1alpha1.AuthStack {
		s := sampleStack()
		s.Spec.SMTP.Username, s.Spec.SMTP.PasswordSecretRef = "", nil
		s.Spec.AuthServer.Resources, s.Spec.AuthServer.SessionTTL = nil, nil
		s.Spec.AuthServer.PasswordHashing = authv1alpha1.PasswordHashingSpec{}
		return s
	}},
}

var restrictedLatest = api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}

// evaluateRestricted runs the Pod Security Admission checks of "restricted" at the
// latest version and returns the failures, each as "reason: detail".
func evaluateRestricted(t *testing.T, meta metav1.ObjectMeta, spec corev1.PodSpec) []string {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatalf("building the pod security evaluator: %v", err)
	}
	results := ev.EvaluatePod(restrictedLatest, &meta, &spec)
	if len(results) == 0 {
		t.Fatal("the pod security evaluator ran no checks")
	}
	var failed []string
	for _, r := range results {
		if !r.Allowed {
			failed = append(failed, r.ForbiddenReason+": "+r.ForbiddenDetail)
		}
	}
	return failed
}

func TestPodSpecsPassPodSecurityRestricted(t *testing.T) {
	for _, r := range podRenderers {
		for _, v := range stackVariants {
			t.Run(r.name+"/"+v.name, func(t *testing.T) {
				s := v.stack()
				meta, spec := r.render(s, sampleInputs(s))
				if failed := evaluateRestricted(t, meta, spec); len(failed) > 0 {
					t.Errorf("Pod Security %q rejects the pod:\n  %s", restrictedLatest, strings.Join(failed, "\n  "))
				}
			})
		}
	}
}

// TestPodSecurityNegativeControl proves the check can fail: a privileged pod, and the
// operator's own pod with one field weakened (in an init container), are rejected.
func TestPodSecurityNegativeControl(t *testing.T) {
	privileged := corev1.PodSpec{
		HostNetwork: true,
		Containers: []corev1.Container{{
			Name: "root", Image: "busybox",
			SecurityContext: &corev1.SecurityContext{
				Privileged:   ptr.To(true),
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}},
			},
		}},
	}
	if failed := evaluateRestricted(t, metav1.ObjectMeta{Name: "bad"}, privileged); len(failed) == 0 {
		t.Error("a privileged host-network pod passed Pod Security restricted: the check is not checking")
	}

	s := sampleStack()
	d := AuthServerDeployment(s, sampleInputs(s))
	spec := *d.Spec.Template.Spec.DeepCopy()
	spec.InitContainers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
	failed := evaluateRestricted(t, d.Spec.Template.ObjectMeta, spec)
	if len(failed) == 0 {
		t.Fatal("allowPrivilegeEscalation=true in the init container passed Pod Security restricted")
	}
	if !strings.Contains(strings.Join(failed, " "), "allowPrivilegeEscalation") {
		t.Errorf("expected an allowPrivilegeEscalation failure, got %v", failed)
	}

	spec = *d.Spec.Template.Spec.DeepCopy()
	spec.SecurityContext.SeccompProfile = nil
	spec.Containers[0].SecurityContext.SeccompProfile = nil
	if failed := evaluateRestricted(t, d.Spec.Template.ObjectMeta, spec); len(failed) == 0 {
		t.Error("a pod without any seccomp profile passed Pod Security restricted")
	}
}

// TestContainerSecurityContexts asserts the exact hardening of every container, init
// containers included, beyond what Pod Security requires (uid 1001, read-only root).
func TestContainerSecurityContexts(t *testing.T) {
	for _, r := range podRenderers {
		for _, v := range stackVariants {
			t.Run(r.name+"/"+v.name, func(t *testing.T) {
				s := v.stack()
				_, spec := r.render(s, sampleInputs(s))
				psc := spec.SecurityContext
				if psc == nil {
					t.Fatal("no pod securityContext")
				}
				if !ptr.Deref(psc.RunAsNonRoot, false) || ptr.Deref(psc.RunAsUser, 0) != NonRootUID {
					t.Errorf("pod securityContext runAsNonRoot=%v runAsUser=%v, want true/%d", psc.RunAsNonRoot, psc.RunAsUser, NonRootUID)
				}
				if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("pod seccompProfile = %+v, want RuntimeDefault", psc.SeccompProfile)
				}
				all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
				if len(all) == 0 {
					t.Fatal("no containers")
				}
				for _, c := range all {
					sc := c.SecurityContext
					if sc == nil {
						t.Errorf("container %s: no securityContext", c.Name)
						continue
					}
					if !ptr.Deref(sc.RunAsNonRoot, false) {
						t.Errorf("container %s: runAsNonRoot = %v, want true", c.Name, sc.RunAsNonRoot)
					}
					if ptr.Deref(sc.RunAsUser, 0) != 1001 {
						t.Errorf("container %s: runAsUser = %v, want 1001", c.Name, sc.RunAsUser)
					}
					if !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
						t.Errorf("container %s: readOnlyRootFilesystem = %v, want true", c.Name, sc.ReadOnlyRootFilesystem)
					}
					if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
						t.Errorf("container %s: allowPrivilegeEscalation = %v, want false", c.Name, sc.AllowPrivilegeEscalation)
					}
					if ptr.Deref(sc.Privileged, false) {
						t.Errorf("container %s: privileged", c.Name)
					}
					if sc.Capabilities == nil || len(sc.Capabilities.Add) != 0 ||
						len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
						t.Errorf("container %s: capabilities = %+v, want drop [ALL] and no add", c.Name, sc.Capabilities)
					}
					if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
						t.Errorf("container %s: seccompProfile = %+v, want RuntimeDefault", c.Name, sc.SeccompProfile)
					}
				}
			})
		}
	}
}

// TestSecurityContextsAreFresh guards against a shared pointer: hardening one
// container's context must not be able to weaken another's.
func TestSecurityContextsAreFresh(t *testing.T) {
	a, b := RestrictedContainerSecurityContext(), RestrictedContainerSecurityContext()
	*a.AllowPrivilegeEscalation = true
	a.Capabilities.Drop[0] = "NET_RAW"
	if *b.AllowPrivilegeEscalation || b.Capabilities.Drop[0] != "ALL" {
		t.Error("RestrictedContainerSecurityContext returns shared state")
	}
	p, q := RestrictedPodSecurityContext(), RestrictedPodSecurityContext()
	*p.RunAsNonRoot = false
	if !*q.RunAsNonRoot {
		t.Error("RestrictedPodSecurityContext returns shared state")
	}
}
