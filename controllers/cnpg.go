package controllers

// A CloudNativePG Cluster as the stack's database (spec.database.cloudNativePG): what
// the reconciler observes (the Cluster's status, the <cluster>-app Secret) and reports
// (DatabaseReady). It never writes either; see docs/data-tier.md, "CloudNativePG".

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// +kubebuilder:rbac:groups=postgresql.cnpg.io,resources=clusters,verbs=get

// cnpgRecheck is how often a stack whose Cluster is not ready (or not served) looks
// again: the Cluster is not watched (its kind may not exist; the manager cannot watch it).
const cnpgRecheck = 30 * time.Second

// cnpgObservation is what one reconcile learned about the CloudNativePG Cluster.
type cnpgObservation struct {
	// served says the cluster serves postgresql.cnpg.io/v1 Cluster.
	served bool
	// cluster is the live Cluster (only spec.instances and status are read), or nil.
	cluster *unstructured.Unstructured
	// reason and problem say why no connection can be composed ("" when it can): the
	// authserver's connection Secret and Deployment and the pooler wait, nothing else.
	reason, problem string
}

// observeCloudNativePG reads the Cluster and its application Secret, and parses the
// connection into dt.db. A missing kind, Cluster or Secret is reported, never an error.
func (r *AuthStackReconciler) observeCloudNativePG(ctx context.Context, stack *authv1alpha1.AuthStack, dt *dataTierObservation) error {
	spec := resources.CloudNativePG(stack)
	obs := &dt.cnpg
	if r.cnpg != nil && r.cnpg.available(ctx) {
		obs.served = true
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(resources.CNPGClusterGVK)
		err := r.Get(ctx, client.ObjectKey{Namespace: stack.Namespace, Name: spec.Cluster}, live)
		switch {
		case meta.IsNoMatchError(err): // the CRD went away since the probe looked
			r.cnpg.forget()
			obs.served = false
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("reading CloudNativePG Cluster %q: %w", spec.Cluster, err)
		default:
			obs.cluster = live
		}
	}
	name := resources.CNPGAppSecretName(stack)
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		obs.reason, obs.problem = authv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"Secret %q, which CloudNativePG generates for the application user of Cluster %q named by spec.database.cloudNativePG.cluster, does not exist", name, spec.Cluster)
		return nil
	case err != nil:
		return fmt.Errorf("reading Secret %q of CloudNativePG Cluster %q: %w", name, spec.Cluster, err)
	}
	db, err := resources.CNPGDatabaseURL(secret.Data)
	if err != nil { // the errors never quote a value
		obs.reason, obs.problem = authv1alpha1.ReasonInvalidURL, fmt.Sprintf("Secret %q of CloudNativePG Cluster %q: %v", name, spec.Cluster, err)
		return nil
	}
	dt.db = db
	return nil
}

// cnpgHeld says why the objects that need the database connection wait ("" when they don't).
func cnpgHeld(stack *authv1alpha1.AuthStack, obs *observation) string {
	if resources.CloudNativePG(stack) == nil {
		return ""
	}
	return obs.dataTier.cnpg.problem
}

// cnpgConfigHash adds the composed connection to the pods' hash: the pods read it from
// the connection Secret at start, so a rotated <cluster>-app password, or a login of
// the managed database other than its first one (rotated: dbrotation.go), rolls them.
// Other stacks keep their hash as it was.
func cnpgConfigHash(stack *authv1alpha1.AuthStack, base string, c resources.Connection, rotated bool) string {
	if resources.CloudNativePG(stack) == nil && !rotated {
		return base
	}
	return resources.SecretDataHash(map[string][]byte{"config": []byte(base),
		resources.ConnectionDatabaseURLKey: []byte(c.DatabaseURL), resources.ConnectionDatabaseDirectURLKey: []byte(c.DatabaseDirectURL)})
}

// cnpgCondition is DatabaseReady for a CloudNativePG Cluster: the Secret's problem
// first (nothing can connect), then the Cluster's own readiness.
func cnpgCondition(stack *authv1alpha1.AuthStack, dt *dataTierObservation) metav1.Condition {
	const typ = authv1alpha1.ConditionDatabaseReady
	spec, obs := resources.CloudNativePG(stack), &dt.cnpg
	switch {
	case obs.problem != "":
		return condition(typ, false, obs.reason, obs.problem)
	case !obs.served:
		return condition(typ, false, authv1alpha1.ReasonCloudNativePGNotServed,
			"the cluster does not serve postgresql.cnpg.io/v1 Cluster: install CloudNativePG")
	case obs.cluster == nil:
		return condition(typ, false, authv1alpha1.ReasonClusterNotFound,
			fmt.Sprintf("CloudNativePG Cluster %q named by spec.database.cloudNativePG.cluster does not exist", spec.Cluster))
	}
	instances, _, _ := unstructured.NestedInt64(obs.cluster.Object, "spec", "instances")
	ready, _, _ := unstructured.NestedInt64(obs.cluster.Object, "status", "readyInstances")
	phase, _, _ := unstructured.NestedString(obs.cluster.Object, "status", "phase")
	msg := fmt.Sprintf("CloudNativePG Cluster %q: %d of %d instances ready, phase %q", spec.Cluster, ready, instances, phase)
	if !serving(int32(ready), int32(max(instances, 1))) {
		return condition(typ, false, authv1alpha1.ReasonWaitingForPods, msg)
	}
	return condition(typ, true, authv1alpha1.ReasonAvailable, msg)
}
