// Package controllers holds the AuthStack reconciler: it observes the stack and what it
// references, renders the desired objects with the pure builders of package resources,
// applies them with server-side apply, and writes status.
package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// AuthStackReconciler reconciles AuthStack objects.
type AuthStackReconciler struct {
	client.Client
	// APIReader reads Secrets straight from the API server: the manager caches only
	// their metadata, so the operator never holds every Secret of the cluster in memory.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	// AuthServerImage is the image used when spec.authServer.image is empty.
	AuthServerImage string
	// PgBouncerImage and RedisImage are used when the spec names none (empty: the
	// defaults in package resources).
	PgBouncerImage string
	RedisImage     string

	applier *applier
	// monitoring says whether the cluster serves the Prometheus Operator kinds (monitoring.go).
	monitoring *monitoringProbe
}

// +kubebuilder:rbac:groups=auth.leanauth.dev,resources=authstacks,verbs=get;list;watch
// +kubebuilder:rbac:groups=auth.leanauth.dev,resources=authstacks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=auth.leanauth.dev,resources=authstacks/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one AuthStack's children to the desired state and reports it.
func (r *AuthStackReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	stack := &authv1alpha1.AuthStack{}
	if err := r.Get(ctx, req.NamespacedName, stack); err != nil {
		return ctrl.Result{}, countError(errReasonStackRead, client.IgnoreNotFound(err))
	}
	if !stack.DeletionTimestamp.IsZero() {
		// Owned children go with the stack by garbage collection; the pepper stays.
		return ctrl.Result{}, nil
	}

	obs, err := r.observe(ctx, stack)
	if namespaceTerminating(err) {
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, countError(errReasonSecretRead, err)
	}
	var applyErr error
	if obs.blocker == nil {
		applyErr = r.applyAll(ctx, stack, obs)
	}
	if namespaceTerminating(applyErr) {
		return ctrl.Result{}, nil
	}
	if err := r.observeChildren(ctx, stack, obs); err != nil {
		return ctrl.Result{}, countError(errReasonChildrenRead, err)
	}
	if err := r.writeStatus(ctx, stack, obs, applyErr); err != nil {
		return ctrl.Result{}, countError(errReasonStatusWrite, err)
	}
	var monitoringWait bool
	if applyErr == nil && obs.blocker == nil {
		// After status: monitoring objects never decide Ready (monitoring.go).
		wait, err := r.reconcileMonitoring(ctx, stack)
		if err != nil {
			return ctrl.Result{}, countError(errReasonMonitoring, fmt.Errorf("monitoring objects: %w", err))
		}
		monitoringWait = wait
	}
	if stack.Spec.Backup != nil && applyErr == nil {
		return ctrl.Result{RequeueAfter: backupRecheck}, nil // BackupsHealthy notices overdue runs
	}
	if monitoringWait {
		return ctrl.Result{RequeueAfter: monitoringRecheck}, nil // until the monitoring CRDs appear
	}
	return ctrl.Result{}, countError(errReasonApplyFailed, applyErr)
}

// applyAll applies every child object, and deletes the optional ones the spec turned off.
func (r *AuthStackReconciler) applyAll(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) error {
	in := resources.Inputs{
		AuthServerImage: r.AuthServerImage,
		Pepper:          resources.PepperRef(stack),
		ConfigHash:      obs.configHash,
		PgBouncerImage:  r.PgBouncerImage,
		RedisImage:      r.RedisImage,
	}
	// The data tier first: the authserver's pods read its connection Secret.
	desired, absent := dataTierObjects(stack, obs, &in)
	backups, noBackups := backupObjects(stack, in) // backup.go
	desired, absent = append(desired, backups...), append(absent, noBackups...)
	// The Deployment after what it needs, so "the Deployment exists" implies the rest does.
	desired = append(desired,
		resources.AuthServerService(stack),
		resources.AuthServerPDB(stack),
		resources.AuthServerDeployment(stack, in),
	)
	for _, obj := range absent {
		if err := r.deleteOwned(ctx, stack, obj); err != nil {
			return err
		}
	}
	optional := []struct {
		obj   client.Object
		empty client.Object
	}{
		{nilIfNil(resources.AuthServerHPA(stack)), &autoscalingv2.HorizontalPodAutoscaler{}},
		{nilIfNil(resources.AuthServerIngress(stack)), &networkingv1.Ingress{}},
	}
	for _, o := range optional {
		if o.obj != nil {
			desired = append(desired, o.obj)
			continue
		}
		o.empty.SetName(resources.AuthServerName(stack))
		o.empty.SetNamespace(stack.Namespace)
		if err := r.deleteOwned(ctx, stack, o.empty); err != nil {
			return err
		}
	}
	for _, obj := range desired {
		wrote, err := r.applier.apply(ctx, obj)
		if err != nil {
			return err
		}
		if wrote {
			log.FromContext(ctx).V(1).Info("applied", "kind", fmt.Sprintf("%T", obj), "name", obj.GetName())
		}
	}
	return r.createOnDemandBackups(ctx, stack, in) // backup.go
}

// namespaceTerminating says whether err is the API server refusing a create because the
// stack's namespace is being deleted. The namespace's deletion removes the stack too, so
// retrying (with backoff, for minutes) would only send doomed writes.
func namespaceTerminating(err error) bool {
	return err != nil && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
}

// nilIfNil turns a typed nil pointer into a nil interface.
func nilIfNil[T any, P interface {
	*T
	client.Object
}](p P) client.Object {
	if p == nil {
		return nil
	}
	return p
}

// deleteOwned deletes obj if it exists and this stack controls it.
func (r *AuthStackReconciler) deleteOwned(ctx context.Context, stack *authv1alpha1.AuthStack, obj client.Object) error {
	if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.UID != stack.UID {
		return nil
	}
	if err := r.Delete(ctx, obj, client.Preconditions{UID: ptr.To(obj.GetUID())}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

// SetupWithManager registers the controller: it owns the children and watches the
// metadata of Secrets, to roll the pods when a referenced Secret changes.
func (r *AuthStackReconciler) SetupWithManager(mgr ctrl.Manager) error {
	// Secrets and ConfigMaps are read uncached (datatier.go): never cached in full.
	r.applier = newApplier(uncachedConfig{Client: r.Client, reader: r.APIReader}, mgr.GetScheme())
	if r.monitoring == nil {
		r.monitoring = newMonitoringProbe(mgr.GetRESTMapper(), monitoringRecheck)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&authv1alpha1.AuthStack{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.Ingress{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&batchv1.Job{}).
		Owns(&batchv1.CronJob{}).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(stackOfBackupJob)). // CronJob-made Jobs (backup.go)
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&corev1.Secret{}, builder.OnlyMetadata).
		Owns(&corev1.ConfigMap{}, builder.OnlyMetadata).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.stacksReferencingSecret), builder.OnlyMetadata).
		Named("authstack").
		Complete(r)
}

// stacksReferencingSecret maps a Secret to the AuthStacks of its namespace that read it.
func (r *AuthStackReconciler) stacksReferencingSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var list authv1alpha1.AuthStackList
	if err := r.List(ctx, &list, client.InNamespace(secret.GetNamespace())); err != nil {
		log.FromContext(ctx).Error(err, "listing AuthStacks for a Secret event")
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		for _, use := range resources.ReferencedSecrets(&list.Items[i]) {
			if use.Ref.Name == secret.GetName() {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: secret.GetNamespace(), Name: list.Items[i].Name}})
				break
			}
		}
	}
	return reqs
}
