package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// waitLogLevel waits until the authserver Deployment runs with LOG_LEVEL level.
func waitLogLevel(t *testing.T, ns, level string) {
	t.Helper()
	eventually(t, "LOG_LEVEL "+level+" reaches the Deployment", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), key(ns, "auth-authserver"), d); err != nil {
			return err
		}
		if e, _ := envValue(d.Spec.Template.Spec.Containers[0], "LOG_LEVEL"); e.Value != level {
			return fmt.Errorf("LOG_LEVEL is %q", e.Value)
		}
		return nil
	})
}

// TestOneFailedChildNeverFreezesTheStack: in Redis cluster mode, a new Redis image
// after the bootstrap Job completed, and a NetworkPolicy an admission policy refuses,
// stop nothing else: a logLevel change still reaches the Deployment, and the refusal
// is reported on the condition of the component it belongs to, with its field.
func TestOneFailedChildNeverFreezesTheStack(t *testing.T) {
	t.Parallel()
	ns, _ := setupStack(t, func(ns string) *authv1alpha1.AuthStack {
		s := dataTierStack(ns)
		s.Spec.Redis = authv1alpha1.RedisSpec{Mode: authv1alpha1.RedisCluster, Shards: 3, ReplicasPerShard: 1}
		return s
	})
	ctx := context.Background()
	job := get(t, ns, resources.RedisBootstrapJobName(getStack(t, ns), resources.Inputs{}), &batchv1.Job{})
	finishJob(t, ns, job, true, "cluster_state:ok")

	// The Job's template is immutable: re-applying it with the new image would be refused.
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.Redis.Image = "example.com/redis:7.4.2" })
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.AuthServer.LogLevel = authv1alpha1.LogLevel("debug") })
	waitLogLevel(t, ns, "debug")
	eventually(t, "the Redis StatefulSet runs the new image", func() error {
		s := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
		if img := s.Spec.Template.Spec.Containers[0].Image; img != "example.com/redis:7.4.2" {
			return fmt.Errorf("image %s", img)
		}
		return nil
	})
	if j, err := getJob(ns, job.Name); err != nil || j.Status.Succeeded != 1 {
		t.Errorf("the completed bootstrap Job was changed or removed before its successor succeeded: %v", err)
	}

	// An admission policy refuses the Redis NetworkPolicy.
	denyNetworkPolicy(t, ns, "auth-redis")
	np := &networkingv1.NetworkPolicy{}
	if err := k8s.Get(ctx, key(ns, "auth-redis"), np); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, np); err != nil {
		t.Fatal(err)
	}
	c := waitConditionReason(t, ns, authv1alpha1.ConditionRedisReady, authv1alpha1.ReasonApplyFailed)
	if !strings.Contains(c.Message, "spec.networkPolicy") || !strings.Contains(c.Message, "no-redis-policy") {
		t.Errorf("RedisReady does not name the field and the reason: %q", c.Message)
	}
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.AuthServer.LogLevel = authv1alpha1.LogLevel("warn") })
	waitLogLevel(t, ns, "warn")
	eventually(t, "Ready names the blocked component", func() error {
		s := getStack(t, ns)
		r := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionReady)
		if r == nil || r.Status != metav1.ConditionFalse || !strings.Contains(r.Message, authv1alpha1.ConditionRedisReady) {
			return fmt.Errorf("Ready is %+v", r)
		}
		return nil
	})
	get(t, ns, "auth-authserver", &networkingv1.NetworkPolicy{}) // the other policies are there
}

// waitConditionReason waits for condition typ to be False with reason.
func waitConditionReason(t *testing.T, ns, typ, reason string) metav1.Condition {
	t.Helper()
	return waitCondition(t, ns, typ, metav1.ConditionFalse, reason)
}

// denyNetworkPolicy makes the API server refuse the NetworkPolicy name in ns, the way
// a cluster's admission policy would (a ValidatingAdmissionPolicy: no webhook needed).
func denyNetworkPolicy(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{"networking.k8s.io"}, APIVersions: []string{"v1"},
						Resources: []string{"networkpolicies"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("object.metadata.name != %q", name),
				Message:    "no-redis-policy: this cluster refuses it",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}},
		},
	}
	for _, obj := range []client.Object{policy, binding} {
		if err := k8s.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T: %v", obj, err)
		}
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), obj) })
	}
	// The policy takes effect once the API server has loaded it: wait until a probe is refused.
	eventually(t, "the admission policy is active", func() error {
		probe := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"probe": "x"}}}}
		err := k8s.Create(ctx, probe, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "no-redis-policy") {
			return fmt.Errorf("a dry-run create was not refused: %v", err)
		}
		return nil
	})
}

// TestStorageGrowsByPatchingTheClaims: a larger spec.redis.storage.size grows the
// existing claim (the StatefulSet's claim template is immutable and keeps its size),
// and the rest of the stack goes on being applied.
func TestStorageGrowsByPatchingTheClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "expandable-" + ns},
		Provisioner: "example.com/none", AllowVolumeExpansion: ptr.To(true)}
	if err := k8s.Create(ctx, class); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), class) })
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	stack := dataTierStack(ns)
	stack.Spec.Redis.Storage = authv1alpha1.StorageSpec{Size: ptr.To(resource.MustParse("1Gi")), StorageClassName: ptr.To(class.Name)}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	// envtest runs no StatefulSet controller: make the claim of pod 0, bound, as it would.
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-auth-redis-0", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(class.Name),
			VolumeName:       "pv-" + ns,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if err := k8s.Create(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
		AccessModes: pvc.Spec.AccessModes, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
	if err := k8s.Status().Update(ctx, pvc); err != nil {
		t.Fatal(err)
	}

	updateStack(t, ns, func(s *authv1alpha1.AuthStack) {
		s.Spec.Redis.Storage.Size = ptr.To(resource.MustParse("2Gi"))
		s.Spec.AuthServer.LogLevel = authv1alpha1.LogLevel("debug")
	})
	waitLogLevel(t, ns, "debug")
	eventually(t, "the claim grows to 2Gi", func() error {
		got := &corev1.PersistentVolumeClaim{}
		if err := k8s.Get(ctx, key(ns, pvc.Name), got); err != nil {
			return err
		}
		if q := got.Spec.Resources.Requests[corev1.ResourceStorage]; q.Cmp(resource.MustParse("2Gi")) != 0 {
			return fmt.Errorf("claim requests %s", q.String())
		}
		return nil
	})
	sts := get(t, ns, "auth-redis", &appsv1.StatefulSet{})
	if q := sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]; q.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("the claim template changed to %s (it is immutable)", q.String())
	}
	if c := meta.FindStatusCondition(getStack(t, ns).Status.Conditions, authv1alpha1.ConditionRedisReady); c != nil && c.Reason == authv1alpha1.ReasonApplyFailed {
		t.Errorf("RedisReady: %s", c.Message)
	}
	settle(t, op, ns)
}
