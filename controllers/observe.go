package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// observation is what one reconcile learned about a stack before acting.
type observation struct {
	// blocker, when set, stops the children from being applied: applying them would
	// only start pods that cannot run (a missing Secret) or that lock users out (a lost pepper).
	blocker *blocker
	// configHash is resources.ConfigHash over the referenced Secret values.
	configHash string
	// deployment is the authserver Deployment as last seen, or nil.
	deployment *appsv1.Deployment
	// dataTier is what was learned about pgbouncer, Redis and PostgreSQL (datatier.go).
	dataTier *dataTierObservation
	// backups is what was learned about the backup Jobs (backup.go).
	backups *backupObservation
}

// blocker is a reason the stack cannot be rendered, for its conditions.
type blocker struct {
	reason, message string
}

func (b *blocker) Error() string { return b.reason + ": " + b.message }

// observe makes sure the pepper exists and reads every referenced Secret.
func (r *AuthStackReconciler) observe(ctx context.Context, stack *authv1alpha1.AuthStack) (*observation, error) {
	obs := &observation{}
	if stack.Spec.Pepper == nil {
		b, err := r.ensureGeneratedPepper(ctx, stack)
		if err != nil {
			return nil, err
		}
		if b != nil {
			obs.blocker = b
			return obs, nil
		}
	}
	if b, err := r.ensureDataTierSecrets(ctx, stack); err != nil || b != nil {
		obs.blocker = b
		return obs, err
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
				obs.blocker = &blocker{authv1alpha1.ReasonSecretNotFound,
					fmt.Sprintf("Secret %q named by %s does not exist", use.Ref.Name, use.Field)}
				return obs, nil
			}
			if err != nil {
				return nil, fmt.Errorf("reading Secret %q named by %s: %w", use.Ref.Name, use.Field, err)
			}
			secrets[use.Ref.Name] = secret
		}
		v, ok := secret.Data[use.Ref.Key]
		if !ok || len(v) == 0 {
			obs.blocker = &blocker{authv1alpha1.ReasonSecretKeyMissing,
				fmt.Sprintf("Secret %q named by %s has no key %q", use.Ref.Name, use.Field, use.Ref.Key)}
			return obs, nil
		}
		values[use.Ref] = v
	}
	if !resources.ValidPepper(values[resources.PepperRef(stack)]) {
		ref := resources.PepperRef(stack)
		obs.blocker = &blocker{authv1alpha1.ReasonInvalidPepper,
			fmt.Sprintf("the pepper in Secret %q key %q must be %d bytes written as %d hex characters", ref.Name, ref.Key, resources.PepperBytes, 2*resources.PepperBytes)}
		return obs, nil
	}
	r.observeDataTier(stack, obs, values)
	obs.configHash = resources.ConfigHash(uses, values)
	return obs, nil
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
		return &blocker{authv1alpha1.ReasonPepperMissing, fmt.Sprintf(
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

// observeChildren reads the children whose status the stack reports.
func (r *AuthStackReconciler) observeChildren(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) error {
	if err := r.observeDataTierChildren(ctx, stack, obs); err != nil {
		return err
	}
	if err := r.observeBackups(ctx, stack, obs); err != nil {
		return err
	}
	dep := &appsv1.Deployment{}
	err := r.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: resources.AuthServerName(stack)}, dep)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the authserver Deployment: %w", err)
	}
	obs.deployment = dep
	return nil
}
