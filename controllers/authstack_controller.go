// Package controllers holds the AuthStack reconciler: it observes the stack and what it
// references, renders the desired objects with the pure builders of package resources,
// applies them with server-side apply, and writes status.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
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
	// It also reads the AuthStack itself at the start of each reconcile (see reconcile).
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	// AuthServerImage is the image used when spec.authServer.image is empty.
	AuthServerImage string
	// PgBouncerImage and RedisImage are used when the spec names none (empty: the
	// defaults in package resources).
	PgBouncerImage string
	RedisImage     string
	// Tracing makes each reconcile a span (tracing.go); nil: no spans.
	Tracing trace.TracerProvider

	applier *applier
	// monitoring says whether the cluster serves the Prometheus Operator kinds (monitoring.go).
	monitoring *kindProbe
	// gateway says whether the cluster serves the Gateway API's HTTPRoute (gateway.go).
	gateway *kindProbe
	// cnpg says whether the cluster serves CloudNativePG's Cluster (cnpg.go).
	cnpg *kindProbe
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

// observation is what one reconcile learned about a stack before acting, one part per
// component. The data tier's part holds passwords: never log it.
type observation struct {
	// blocker, when set, stops the children from being rendered: applying them would
	// only start pods that cannot run (a missing Secret) or that lock users out (a lost pepper).
	blocker    *blocker
	authServer authServerObservation // authserver.go
	dataTier   dataTierObservation   // datatier.go
	backups    backupObservation     // backup.go
	drills     drillObservation      // drill.go
	gateway    gatewayObservation    // gateway.go
	restore    restoreObservation    // restore.go
	// defaults are the operator defaults the children are rendered with (operatordefaults.go).
	defaults authv1alpha1.OperatorDefaultsStatus
	// currentDefaults are the running operator's, for OperatorDefaultsPending.
	currentDefaults authv1alpha1.OperatorDefaultsStatus
	pepper          pepperObservation // pepperrotation.go
	// dbRotation is the managed database's password rotation (dbrotation.go).
	dbRotation dbRotationObservation
}

// blocker is a reason the stack cannot be rendered, for its conditions: field is the
// spec field it is about (its conditions route on it), reason and message say why.
type blocker struct {
	field, reason, message string
}

// Reconcile brings one AuthStack's children to the desired state and reports it:
// observe every component, render every component (pure), apply every unit on its
// own, then write the status that follows from what was observed and refused.
func (r *AuthStackReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	ctx, span := r.startReconcileSpan(ctx, req) // tracing.go
	defer func() { endReconcileSpan(span, err) }()
	return r.reconcile(ctx, req)
}

func (r *AuthStackReconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// The stack is read from the API server, not the cache: its status records what was
	// already done (a backup-now request handled, a restore finished, a pepper retired,
	// the last transition an event announced), and a reconcile started by a child's event
	// can run before the cache has seen the previous reconcile's status write. Deciding
	// from that stale status ran a handled backup again and repeated events. One GET per
	// reconcile is the price.
	stack := &authv1alpha1.AuthStack{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, stack); err != nil {
		return ctrl.Result{}, countError(errReasonStackRead, client.IgnoreNotFound(err))
	}
	if !stack.DeletionTimestamp.IsZero() {
		// Owned children go with the stack by garbage collection; the pepper stays.
		return ctrl.Result{}, nil
	}

	// Observe: the authserver's Secrets first (their values feed the data tier's URLs),
	// then every component's children.
	current := r.currentDefaults()
	obs := &observation{defaults: chooseDefaults(stack, current), currentDefaults: current}
	values, err := r.observeAuthServer(ctx, stack, obs)
	if namespaceTerminating(err) {
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, countError(errReasonSecretRead, err)
	}
	if err := r.observeChildren(ctx, stack, obs, values); err != nil {
		return ctrl.Result{}, countError(errReasonChildrenRead, err)
	}
	var failures []failure
	if obs.blocker == nil && !paused(stack) { // pause.go
		units := render(stack, obs, r.inputs(stack, obs))
		failures = r.applyUnits(ctx, stack, units)
		traceUnits(ctx, units, failures)
		if f := r.applyGateway(ctx, stack, obs); f != nil {
			failures = append(failures, *f)
		}
	}
	traceBlocker(ctx, obs.blocker)
	var applyErrs []error
	for _, f := range failures {
		if namespaceTerminating(f.err) {
			return ctrl.Result{}, nil
		}
		applyErrs = append(applyErrs, fmt.Errorf("%s: %w", f.field, f.err))
	}
	if err := r.writeStatus(ctx, stack, obs, failures); err != nil {
		return ctrl.Result{}, countError(errReasonStatusWrite, err)
	}
	var monitoringWait bool
	if obs.blocker == nil && !paused(stack) {
		// After status: monitoring objects never decide Ready (monitoring.go).
		wait, err := r.reconcileMonitoring(ctx, stack)
		if err != nil {
			return ctrl.Result{}, countError(errReasonMonitoring, fmt.Errorf("monitoring objects: %w", err))
		}
		monitoringWait = wait
	}
	if len(applyErrs) > 0 {
		return ctrl.Result{}, countError(errReasonApplyFailed, errors.Join(applyErrs...))
	}
	if d := pepperRotationRecheck(obs); d > 0 {
		if stack.Spec.Backup != nil {
			d = min(d, backupRecheck)
		}
		return ctrl.Result{RequeueAfter: d}, nil // the next count of a rotation
	}
	if stack.Spec.Backup != nil {
		return ctrl.Result{RequeueAfter: backupRecheck}, nil // BackupsHealthy notices overdue runs
	}
	if monitoringWait {
		return ctrl.Result{RequeueAfter: monitoringRecheck}, nil // until the monitoring CRDs appear
	}
	if resources.CloudNativePG(stack) != nil && cnpgCondition(stack, &obs.dataTier).Status != metav1.ConditionTrue {
		return ctrl.Result{RequeueAfter: cnpgRecheck}, nil // the Cluster is not watched
	}
	if c := gatewayCondition(stack, obs, nil); c != nil && c.Status != metav1.ConditionTrue {
		return ctrl.Result{RequeueAfter: gatewayRecheck}, nil // until the CRDs appear or a Gateway accepts the route
	}
	return ctrl.Result{}, nil
}

// observeChildren reads the data tier's and the backups' children (values are the
// referenced Secrets' values, nil after a blocker).
func (r *AuthStackReconciler) observeChildren(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation, values map[authv1alpha1.SecretKeyRef][]byte) error {
	if err := r.observeDataTier(ctx, stack, obs, values); err != nil {
		return fmt.Errorf("observing the data tier: %w", err)
	}
	if err := r.ensureBackupSigningKey(ctx, stack, obs); err != nil { // backupsigning.go
		return fmt.Errorf("ensuring the backup signing key: %w", err)
	}
	if err := r.observeRestore(ctx, stack, obs); err != nil {
		return fmt.Errorf("observing the restore: %w", err)
	}
	if err := r.observeBackups(ctx, stack, obs); err != nil {
		return fmt.Errorf("observing the backups: %w", err)
	}
	if err := r.observeDrills(ctx, stack, obs); err != nil {
		return fmt.Errorf("observing the restore drills: %w", err)
	}
	if err := r.observePepperMismatch(ctx, stack, obs); err != nil { // pepper.go
		return fmt.Errorf("observing the authserver pods: %w", err)
	}
	if err := r.observeGateway(ctx, stack, obs); err != nil {
		return fmt.Errorf("observing the gateway route: %w", err)
	}
	if err := r.observePepperRotation(ctx, stack, obs, time.Now()); err != nil {
		return fmt.Errorf("observing the pepper rotation: %w", err)
	}
	// Last: it needs the pods' inputs, and sets the database login they render with.
	if err := r.observeDatabaseRotation(ctx, stack, obs); err != nil {
		return fmt.Errorf("observing the database password rotation: %w", err)
	}
	return nil
}

// inputs are the builders' Inputs: the operator's flags and the observed hash.
func (r *AuthStackReconciler) inputs(stack *authv1alpha1.AuthStack, obs *observation) resources.Inputs {
	dt := obs.dataTier
	pepper := resources.PepperRef(stack)
	if obs.pepper.mounts.Version > 0 { // pepperrotation.go
		pepper = obs.pepper.current.Ref
	}
	return resources.Inputs{
		AuthServerImage: obs.defaults.AuthServerImage,
		Pepper:          pepper,
		PepperMounts:    obs.pepper.mounts,
		ConfigHash:      cnpgConfigHash(stack, obs.authServer.configHash, resources.ConnectionFor(stack, dt.db, dt.redisPassword), dt.rotatedLogin),
		PgBouncerImage:  obs.defaults.PgBouncerImage,
		RedisImage:      obs.defaults.RedisImage,
	}
}

// render is every component's units. It is pure and mutates neither argument.
func render(stack *authv1alpha1.AuthStack, obs *observation, in resources.Inputs) []unit {
	units := dataTierObjects(stack, obs, in)
	units = append(units, restoreObjects(obs)...) // restore.go
	if !obs.restore.restoring() {
		// Backups of a database still being restored would be backups of nothing.
		units = append(units, backupObjects(stack, in)...)
		units = append(units, drillObjects(stack, in)...)
	}
	units = append(units, pepperObjects(obs)...)
	units = append(units, dbRotationObjects(obs)...) // dbrotation.go
	return append(units, authServerObjects(stack, obs, in)...)
}

// namespaceTerminating says whether err is the API server refusing a create because the
// stack's namespace is being deleted. The namespace's deletion removes the stack too, so
// retrying (with backoff, for minutes) would only send doomed writes.
func namespaceTerminating(err error) bool {
	return err != nil && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
}

// SetupWithManager registers the controller: it owns the children and watches the
// metadata of Secrets, to roll the pods when a referenced Secret changes.
func (r *AuthStackReconciler) SetupWithManager(mgr ctrl.Manager) error {
	// Secrets, ConfigMaps and PersistentVolumeClaims are read uncached (apply.go): never cached in full.
	r.applier = newApplier(uncachedConfig{Client: r.Client, reader: r.APIReader}, mgr.GetScheme())
	if r.monitoring == nil {
		r.monitoring = newMonitoringProbe(mgr.GetRESTMapper(), monitoringRecheck)
	}
	if r.gateway == nil {
		r.gateway = newKindProbe(mgr.GetRESTMapper(), gatewayRecheck, resources.HTTPRouteGVK)
	}
	if r.cnpg == nil {
		r.cnpg = newKindProbe(mgr.GetRESTMapper(), cnpgRecheck, resources.CNPGClusterGVK)
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
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(stackOfBackupJob)).    // CronJob-made Jobs (backup.go, drill.go)
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(stackOfAuthServerPod)). // PepperMismatch (pepper.go)
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&corev1.Secret{}, builder.OnlyMetadata).
		Owns(&corev1.ConfigMap{}, builder.OnlyMetadata).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.stacksReferencingSecret), builder.OnlyMetadata).
		Named("authstack").
		Complete(r)
}

// stacksReferencingSecret maps a Secret to the AuthStacks of its namespace that read it.
// secretNames are the Secrets a stack's spec names: the pods' (ReferencedSecrets),
// CloudNativePG's application Secret and the backups'.
func secretNames(stack *authv1alpha1.AuthStack) []string {
	names := []string{resources.CNPGAppSecretName(stack)}
	for _, use := range resources.ReferencedSecrets(stack) {
		names = append(names, use.Ref.Name)
	}
	if b := stack.Spec.Backup; b != nil {
		names = append(names, b.Encryption.PublicKeySecretRef.Name)
		if r := b.Encryption.PrivateKeySecretRef; r != nil {
			names = append(names, r.Name)
		}
		if c := b.Destination.S3.CredentialsSecretRef; c != nil {
			names = append(names, c.Name)
		}
	}
	return names
}

func (r *AuthStackReconciler) stacksReferencingSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var list authv1alpha1.AuthStackList
	if err := r.List(ctx, &list, client.InNamespace(secret.GetNamespace())); err != nil {
		log.FromContext(ctx).Error(err, "listing AuthStacks for a Secret event")
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		stack := &list.Items[i]
		if slices.Contains(secretNames(stack), secret.GetName()) ||
			// The Secrets the operator generates without an owner (pepper versions, the
			// backup signing key, database role passwords) are named after the stack.
			strings.HasPrefix(secret.GetName(), stack.Name+"-") {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: secret.GetNamespace(), Name: stack.Name}})
		}
	}
	return reqs
}
