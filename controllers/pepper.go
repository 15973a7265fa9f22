package controllers

// A restore never silently gets a new pepper (issue 10): `authserver migrate`, in the
// authserver pods' init container, refuses to start when the stored password hashes
// use none of the pods' peppers (authserver/store/peppers.go), and exits with
// resources.PepperMismatchExitCode. The reconciler reads that from the pods and
// reports PepperMismatch on AuthServerAvailable (and so Ready and Degraded).

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=list;watch

// observePepperMismatch looks for an authserver pod whose migrate init container
// refused the pepper. The message leaves the pod's name out, so that pods coming and
// going do not rewrite the status.
func (r *AuthStackReconciler) observePepperMismatch(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) error {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(stack.Namespace),
		client.MatchingLabels(resources.SelectorLabels(stack, resources.ComponentAuthServer))); err != nil {
		return fmt.Errorf("listing the authserver pods: %w", err)
	}
	if _, msg, ok := resources.PepperMismatch(pods.Items, resources.AuthServerName(stack)); ok {
		if len(msg) > 1024 {
			msg = msg[:1024] + "..."
		}
		obs.authServer.pepperMismatch = "the authserver pods refuse to start: " + msg
	}
	return nil
}

// stackOfAuthServerPod maps a pod of a stack's authserver to the stack, so that a
// migrate init container's exit is noticed at once.
func stackOfAuthServerPod(_ context.Context, pod client.Object) []reconcile.Request {
	l := pod.GetLabels()
	if l[resources.LabelComponent] != resources.ComponentAuthServer || l[resources.LabelManagedBy] != resources.FieldOwner || l[resources.LabelInstance] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: pod.GetNamespace(), Name: l[resources.LabelInstance]}}}
}
