package controllers

// The authserver component: what the reconciler observes (the pepper, every Secret the
// pods read, the Deployment), renders (the connection Secret, Service, PDB, Deployment,
// HPA, Ingress) and reports (AuthServerAvailable) for it.

import (
	"cmp"
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// authServerObservation is what one reconcile learned about the authserver.
type authServerObservation struct {
	// configHash is resources.ConfigHash over the referenced Secret values.
	configHash string
	// deployment is the authserver Deployment as last seen, or nil.
	deployment *appsv1.Deployment
	// pepperMismatch says why the authserver pods refuse the pepper (pepper.go).
	pepperMismatch string
}

// observeAuthServer makes sure the pepper exists, reads every referenced Secret (their
// values go to the data tier's observation, their hash to the pods) and the Deployment.
// A missing Secret, key or pepper is a blocker: nothing is rendered.
func (r *AuthStackReconciler) observeAuthServer(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) (map[authv1alpha1.SecretKeyRef][]byte, error) {
	if err := getIfExists(ctx, r, stack, resources.AuthServerName(stack), &appsv1.Deployment{}, &obs.authServer.deployment); err != nil {
		return nil, err
	}
	// Paused, nothing is generated: a missing Secret is reported like any other (pause.go).
	if stack.Spec.Pepper == nil && !paused(stack) {
		b, err := r.ensureGeneratedPepper(ctx, stack)
		if err != nil || b != nil {
			obs.blocker = b
			return nil, err
		}
	}
	if !paused(stack) {
		if b, err := r.ensureDataTierSecrets(ctx, stack); err != nil || b != nil { // datatier.go
			obs.blocker = b
			return nil, err
		}
	}
	uses := resources.ReferencedSecrets(stack)
	values := map[authv1alpha1.SecretKeyRef][]byte{}
	secrets := map[string]*corev1.Secret{}
	for _, use := range uses {
		secret, ok := secrets[use.Ref.Name]
		if !ok {
			secret = &corev1.Secret{}
			err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: use.Ref.Name}, secret)
			if apierrors.IsNotFound(err) {
				obs.blocker = &blocker{use.Field, authv1alpha1.ReasonSecretNotFound,
					fmt.Sprintf("Secret %q named by %s does not exist", use.Ref.Name, use.Field)}
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("reading Secret %q named by %s: %w", use.Ref.Name, use.Field, err)
			}
			secrets[use.Ref.Name] = secret
		}
		v, ok := secret.Data[use.Ref.Key]
		if !ok || len(v) == 0 {
			obs.blocker = &blocker{use.Field, authv1alpha1.ReasonSecretKeyMissing,
				fmt.Sprintf("Secret %q named by %s has no key %q", use.Ref.Name, use.Field, use.Ref.Key)}
			return nil, nil
		}
		values[use.Ref] = v
	}
	if ref := resources.PepperRef(stack); !resources.ValidPepper(values[ref]) {
		obs.blocker = &blocker{"spec.pepper.secretRef", authv1alpha1.ReasonInvalidPepper,
			fmt.Sprintf("the pepper in Secret %q key %q must be %d bytes written as %d hex characters", ref.Name, ref.Key, resources.PepperBytes, 2*resources.PepperBytes)}
		return nil, nil
	}
	obs.authServer.configHash = resources.ConfigHash(uses, values)
	return values, nil
}

// ensureGeneratedPepper creates the pepper Secret once. It never updates or deletes it.
// If the Secret is gone after the stack already used one, it refuses to make a new one:
// a new pepper silently locks every user out, so that must be a person's decision.
func (r *AuthStackReconciler) ensureGeneratedPepper(ctx context.Context, stack *authv1alpha1.AuthStack) (*blocker, error) {
	key := types.NamespacedName{Namespace: stack.Namespace, Name: resources.PepperSecretName(stack)}
	err := r.APIReader.Get(ctx, key, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}})
	if err == nil {
		return nil, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading the pepper Secret %q: %w", key.Name, err)
	}
	if stack.Status.PepperSecretName != "" {
		return &blocker{"spec.pepper", authv1alpha1.ReasonPepperMissing, fmt.Sprintf(
			"the pepper Secret %q of this stack was deleted; restore it from a backup. The operator does not generate a new pepper for a stack that had one, because a new pepper makes every stored password unusable", key.Name)}, nil
	}
	pepper, err := resources.NewPepper()
	if err != nil {
		return nil, err
	}
	if err := r.Create(ctx, resources.PepperSecret(stack, pepper)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("creating the pepper Secret %q: %w", key.Name, err)
	}
	r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, "PepperGenerated", "Generate",
		"generated the password pepper into Secret %q; it is kept when the AuthStack is deleted", key.Name)
	return nil, nil
}

// authServerObjects renders the authserver's unit. The connection Secret comes first
// (the pods read it), the Deployment after what it needs. The HPA and Ingress the spec
// turned off are absent.
func authServerObjects(stack *authv1alpha1.AuthStack, obs *observation, in resources.Inputs) []unit {
	u := unit{condition: authv1alpha1.ConditionAuthServerAvailable, field: "spec.authServer"}
	dt := obs.dataTier
	// Without a database connection to give them (a CloudNativePG Secret missing), the
	// connection Secret and the Deployment stay as they are; the rest is applied (cnpg.go).
	held := cnpgHeld(stack, obs) != ""
	switch sec := resources.ConnectionSecret(stack, resources.ConnectionFor(stack, dt.db, dt.redisPassword)); {
	case held:
	case sec != nil:
		u.desired = append(u.desired, sec)
	default:
		u.absent = append(u.absent, metaOnly(stack, "Secret", resources.ConnectionSecretName(stack)))
	}
	u.desired = append(u.desired, resources.AuthServerService(stack), resources.AuthServerPDB(stack))
	if dep := resources.AuthServerDeployment(stack, in); !held {
		if dep.Spec.Replicas == nil {
			if h := replicasHandOver(obs.authServer.deployment); h != nil {
				u.handOver = append(u.handOver, h)
			}
		}
		u.desired = append(u.desired, dep)
	}
	name := resources.AuthServerName(stack)
	if hpa := resources.AuthServerHPA(stack); hpa != nil {
		u.desired = append(u.desired, hpa)
	} else {
		u.absent = append(u.absent, named(stack, &autoscalingv2.HorizontalPodAutoscaler{}, name))
	}
	if ing := resources.AuthServerIngress(stack); ing != nil {
		u.desired = append(u.desired, ing)
	} else {
		u.absent = append(u.absent, named(stack, &networkingv1.Ingress{}, name))
	}
	return []unit{u}
}

// replicasHandOver hands spec.replicas over to the HPA without a drop. With autoscaling
// on the operator stops rendering the field, but if it owned it alone (autoscaling was
// off), not rendering it would remove it and the API server would reset it to 1. So the
// current count is first applied under a second field manager, without force and at
// the resourceVersion it was read at: if the HPA already took the field or the read was
// stale, that conflicts, nothing changes and the reconcile retries; once it succeeded
// the operator's own apply drops the field and the count stays until the HPA scales.
func replicasHandOver(live *appsv1.Deployment) *unstructured.Unstructured {
	if live == nil || live.Spec.Replicas == nil {
		return nil
	}
	replicas := fieldpath.MakePathOrDie("spec", "replicas")
	ours, others := false, false
	for _, mf := range live.ManagedFields {
		if mf.FieldsV1 == nil {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(mf.FieldsV1.GetRawReader()); err != nil || !set.Has(replicas) {
			continue
		}
		if mf.Manager == resources.FieldOwner && mf.Operation == metav1.ManagedFieldsOperationApply && mf.Subresource == "" {
			ours = true
		} else {
			others = true
		}
	}
	if !ours || others {
		return nil
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"replicas": int64(*live.Spec.Replicas)}}}
	u.SetAPIVersion("apps/v1")
	u.SetKind("Deployment")
	u.SetName(live.Name)
	u.SetNamespace(live.Namespace)
	u.SetResourceVersion(live.ResourceVersion)
	return u
}

// authServerConditions reports AuthServerAvailable: a blocker or a refused apply, else
// the Deployment's own availability.
func authServerConditions(stack *authv1alpha1.AuthStack, obs *observation, failures []failure) []metav1.Condition {
	const typ = authv1alpha1.ConditionAuthServerAvailable
	if b := obs.blocker; b != nil {
		return []metav1.Condition{condition(typ, false, b.reason, b.message)}
	}
	if f := failureOf(failures, typ); f != nil {
		return []metav1.Condition{condition(typ, false, authv1alpha1.ReasonApplyFailed, f.message())}
	}
	if msg := obs.authServer.pepperMismatch; msg != "" {
		return []metav1.Condition{condition(typ, false, authv1alpha1.ReasonPepperMismatch, msg)}
	}
	d := obs.authServer.deployment
	if held := cnpgHeld(stack, obs); d == nil && held != "" {
		return []metav1.Condition{condition(typ, false, obs.dataTier.cnpg.reason, "waiting for the database connection: "+held)}
	}
	if d == nil {
		return []metav1.Condition{condition(typ, false, authv1alpha1.ReasonProgressing, "the authserver Deployment does not exist yet")}
	}
	if d.Status.ObservedGeneration == 0 {
		return []metav1.Condition{condition(typ, false, authv1alpha1.ReasonProgressing, "waiting for the authserver Deployment to report")}
	}
	// Serving is measured against the stack's minimum (not the HPA's current count),
	// so a scale-up never makes the authserver look unavailable.
	want := min(minimumReplicas(stack), ptr.Deref(d.Spec.Replicas, 1))
	msg := fmt.Sprintf("%d of %d replicas available", d.Status.AvailableReplicas, ptr.Deref(d.Spec.Replicas, 1))
	if !serving(d.Status.AvailableReplicas, want) {
		return []metav1.Condition{condition(typ, false, authv1alpha1.ReasonUnavailable, msg)}
	}
	return []metav1.Condition{condition(typ, true, authv1alpha1.ReasonAvailable, msg)}
}

// minimumReplicas is the fewest authserver pods the spec asks for: autoscaling's
// minimum, or the fixed count.
func minimumReplicas(stack *authv1alpha1.AuthStack) int32 {
	as := stack.Spec.AuthServer
	if resources.AutoscalingEnabled(stack) {
		return cmp.Or(as.Autoscaling.MinReplicas, 1)
	}
	return ptr.Deref(as.Replicas, authv1alpha1.DefaultAuthServerReplicas)
}

// serving is the availability rule of every workload: all but one of want pods are
// available, and at least one. It is the tolerance of the PodDisruptionBudgets (one pod
// down), so a single pod restart or a node drain never turns a component unready.
func serving(available, want int32) bool { return available >= max(1, want-1) }

// getIfExists reads the child name of the stack into obj and stores it in *into, or
// leaves *into nil when it does not exist.
func getIfExists[T client.Object](ctx context.Context, r *AuthStackReconciler, stack *authv1alpha1.AuthStack, name string, obj T, into *T) error {
	err := r.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %T %q: %w", obj, name, err)
	}
	*into = obj
	return nil
}
