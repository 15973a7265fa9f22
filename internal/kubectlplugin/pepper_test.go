package kubectlplugin

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// markAvailable reports the authserver Deployment rolled out, as the Deployment
// controller would (envtest runs none).
func markAvailable(t *testing.T, ns string) {
	t.Helper()
	eventually(t, "the authserver Deployment marked available", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "auth-authserver"}, d); err != nil {
			return err
		}
		n := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
				Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}}}
		return k8s.Status().Update(context.Background(), d)
	})
}

// TestRotatePepper: rotate-pepper raises spec.pepperRotation.version from the
// current version, waits until the operator lists the new version and prints the
// versions; a second rotation is refused while the first rolls out, and accepted
// once the new version is current; status shows the rotation.
func TestRotatePepper(t *testing.T) {
	ns := newStack(t)
	markAvailable(t, ns)
	out, code := run(t, ns, "rotate-pepper", "auth", "--timeout", "90s")
	if code != 0 {
		t.Fatalf("rotate-pepper: exit %d\n%s", code, out)
	}
	if v := getStack(t, ns).Spec.PepperRotation; v == nil || v.Version != 2 {
		t.Fatalf("spec.pepperRotation %+v", v)
	}
	wantLines(t, out,
		"pepper rotation to version 2 requested for AuthStack "+ns+"/auth",
		"current version 1, counted never",
		"VERSION ID STATE PASSWORD HASHES TOTP SECRETS",
		"2 Accepted - -", "1 Current - -",
		"condition PepperRotated=False (RotationInProgress)",
		"follow with kubectl authstack status")

	if out, code := run(t, ns, "rotate-pepper", "auth"); code != 1 || !containsLine(out, "the rotation to version 2 is still rolling out (status.pepper.currentVersion 1)") {
		t.Errorf("a second rotation while the first rolls out: exit %d\n%s", code, out)
	}

	markAvailable(t, ns) // the pods accept version 2: it becomes current
	eventually(t, "version 2 current", func() error {
		if p := getStack(t, ns).Status.Pepper; p == nil || p.CurrentVersion != 2 {
			return fmt.Errorf("status.pepper %+v", p)
		}
		return nil
	})
	out, _ = run(t, ns, "status", "auth")
	wantLines(t, out, "Pepper rotation:", "current version 2", "2 Current", "1 Accepted", "PepperRotated False")

	out, code = run(t, ns, "rotate-pepper", "auth", "--timeout", "90s")
	if code != 0 {
		t.Fatalf("the next rotation: exit %d\n%s", code, out)
	}
	wantLines(t, out, "pepper rotation to version 3 requested", "3 Accepted", "2 Current")
}
