package controllers

// The AuthPolicy controller: one HTTPRoute or Ingress of an app team made to
// require a session of an AuthStack (controllers/DESIGN.md, "Protecting other
// apps"). It observes the policy's AuthStack, its target and which proxy kinds
// the cluster serves; renders (package resources, pure) the object the policy owns
// (an Envoy Gateway SecurityPolicy or a Traefik Middleware, garbage-collected with
// the policy) and the annotations it owns on an Ingress target; and reports Ready.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// +kubebuilder:rbac:groups=auth.leanauth.dev,resources=authpolicies,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=auth.leanauth.dev,resources=authpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=auth.leanauth.dev,resources=authpolicies/finalizers,verbs=update
// +kubebuilder:rbac:groups=gateway.envoyproxy.io,resources=securitypolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=traefik.io,resources=middlewares,verbs=get;list;watch;create;patch;delete

// policyFinalizer gives the annotations a policy set on its Ingress back before the
// policy goes (they are not garbage-collected: the Ingress is not ours).
const policyFinalizer = "auth.leanauth.dev/release-target"

// policyRecheck is how often a policy that is not Ready is looked at again: the
// target, the stack and the proxy kinds are not watched (they may not exist).
const policyRecheck = time.Minute

// AuthPolicyReconciler reconciles AuthPolicy objects.
type AuthPolicyReconciler struct {
	client.Client
	// APIReader reads the stack and the target uncached: they may live in
	// namespaces or kinds the manager does not cache.
	APIReader client.Reader

	applier *applier
	mapper  meta.RESTMapper
}

// policyObservation is what one reconcile learned about a policy.
type policyObservation struct {
	stack   *authv1alpha1.AuthStack // nil: not found
	target  *unstructured.Unstructured
	missing []string // kinds the policy needs that the cluster does not serve
}

// Reconcile wires one policy and reports it.
func (r *AuthPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &authv1alpha1.AuthPolicy{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !p.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.release(ctx, p)
	}
	obs, err := r.observePolicy(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	ready := r.wire(ctx, p, obs)
	if err := r.writePolicyStatus(ctx, p, ready); err != nil {
		return ctrl.Result{}, err
	}
	if ready.Status != metav1.ConditionTrue {
		return ctrl.Result{RequeueAfter: policyRecheck}, nil
	}
	return ctrl.Result{}, nil
}

// requiredKinds are the kinds the policy's wiring needs served.
func requiredKinds(p *authv1alpha1.AuthPolicy) []schema.GroupVersionKind {
	var kinds []schema.GroupVersionKind
	if p.Spec.TargetRef.Kind == resources.HTTPRouteGVK.Kind {
		kinds = append(kinds, resources.HTTPRouteGVK)
	}
	switch p.Spec.Proxy {
	case authv1alpha1.ProxyEnvoyGateway:
		kinds = append(kinds, resources.SecurityPolicyGVK)
	case authv1alpha1.ProxyTraefik:
		kinds = append(kinds, resources.MiddlewareGVK)
	}
	return kinds
}

func (r *AuthPolicyReconciler) observePolicy(ctx context.Context, p *authv1alpha1.AuthPolicy) (*policyObservation, error) {
	obs := &policyObservation{}
	for _, gvk := range requiredKinds(p) {
		if _, err := r.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			if !meta.IsNoMatchError(err) {
				return nil, fmt.Errorf("looking up %s: %w", gvk.Kind, err)
			}
			obs.missing = append(obs.missing, gvk.GroupVersion().String()+" "+gvk.Kind)
		}
	}
	ref := p.Spec.AuthStackRef
	stackNS := ref.Namespace
	if stackNS == "" {
		stackNS = p.Namespace
	}
	stack := &authv1alpha1.AuthStack{}
	switch err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: stackNS, Name: ref.Name}, stack); {
	case err == nil:
		obs.stack = stack
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading AuthStack %s/%s: %w", stackNS, ref.Name, err)
	}
	if len(obs.missing) > 0 {
		return obs, nil
	}
	target := &unstructured.Unstructured{}
	target.SetGroupVersionKind(targetGVK(p))
	switch err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.TargetRef.Name}, target); {
	case err == nil:
		obs.target = target
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading %s %s: %w", p.Spec.TargetRef.Kind, p.Spec.TargetRef.Name, err)
	}
	return obs, nil
}

func targetGVK(p *authv1alpha1.AuthPolicy) schema.GroupVersionKind {
	if p.Spec.TargetRef.Kind == resources.HTTPRouteGVK.Kind {
		return resources.HTTPRouteGVK
	}
	return resources.IngressGVK
}

// wire applies what the policy renders and returns its Ready condition. Nothing is
// written for a policy whose stack is missing or refuses its namespace.
func (r *AuthPolicyReconciler) wire(ctx context.Context, p *authv1alpha1.AuthPolicy, obs *policyObservation) metav1.Condition {
	const typ = authv1alpha1.ConditionReady
	switch {
	case obs.stack == nil:
		return condition(typ, false, authv1alpha1.ReasonStackNotFound, fmt.Sprintf("AuthStack %q not found", p.Spec.AuthStackRef.Name))
	case !resources.PolicyAllowed(obs.stack, p.Namespace):
		return condition(typ, false, authv1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
			"AuthStack %s/%s does not serve policies of namespace %q: add it to the stack's spec.edgeAuth.policyNamespaces", obs.stack.Namespace, obs.stack.Name, p.Namespace))
	case len(obs.missing) > 0:
		return condition(typ, false, authv1alpha1.ReasonKindNotServed, "the cluster does not serve "+strings.Join(obs.missing, ", ")+": install the proxy's CRDs (docs/edge-auth.md)")
	}
	owned, err := resources.AuthPolicyOwned(p, obs.stack)
	if err == nil && owned != nil {
		_, err = r.applier.applyUnstructured(ctx, owned)
	}
	if err != nil {
		return condition(typ, false, authv1alpha1.ReasonApplyFailed, redactedApplyError(err))
	}
	if obs.target == nil {
		return condition(typ, false, authv1alpha1.ReasonTargetNotFound, fmt.Sprintf("%s %q not found in namespace %s", p.Spec.TargetRef.Kind, p.Spec.TargetRef.Name, p.Namespace))
	}
	if ann := resources.TargetAnnotations(p, obs.stack); ann != nil {
		if err := r.ensureFinalizer(ctx, p); err != nil {
			return condition(typ, false, authv1alpha1.ReasonApplyFailed, redactedApplyError(err))
		}
		if err := r.applyTarget(ctx, p, obs.target, resources.TargetPatch(p, ann)); err != nil {
			reason := authv1alpha1.ReasonApplyFailed
			if apierrors.IsConflict(err) {
				reason = authv1alpha1.ReasonTargetConflict
			}
			return condition(typ, false, reason, redactedApplyError(err))
		}
	}
	if want := resources.RouteFilter(p, obs.stack); want != nil {
		route := &gatewayv1.HTTPRoute{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obs.target.Object, route); err != nil {
			return condition(typ, false, authv1alpha1.ReasonApplyFailed, "reading the HTTPRoute: "+err.Error())
		}
		if missing := resources.RouteMissesFilter(route, want); len(missing) > 0 {
			return condition(typ, false, authv1alpha1.ReasonFilterMissing, fmt.Sprintf(
				"HTTPRoute %s: rules %v lack the filter %s; add it to every rule (the operator does not edit your route's rules)", route.Name, missing, resources.DescribeFilter(want)))
		}
	}
	return condition(typ, true, authv1alpha1.ReasonWired, fmt.Sprintf("%s %s requires a session of AuthStack %s/%s through %s",
		p.Spec.TargetRef.Kind, p.Spec.TargetRef.Name, obs.stack.Namespace, obs.stack.Name, p.Spec.Proxy))
}

// applyTarget applies the policy's annotations to the Ingress under the policy's
// own field manager, without force: a key another manager owns is a conflict,
// reported, never taken. At rest (the live object already holds them under our
// manager) nothing is written.
func (r *AuthPolicyReconciler) applyTarget(ctx context.Context, p *authv1alpha1.AuthPolicy, live, body *unstructured.Unstructured) error {
	owner := resources.PolicyFieldOwner(p)
	if ownsAnnotations(live, owner, body.GetAnnotations()) {
		return nil
	}
	body.SetResourceVersion(live.GetResourceVersion())                // never re-create a target deleted since it was read
	return r.Patch(ctx, body, client.Apply, client.FieldOwner(owner)) //nolint:staticcheck // no typed apply configuration for a partial Ingress
}

// ownsAnnotations says whether live holds exactly want as the annotations owner manages.
func ownsAnnotations(live *unstructured.Unstructured, owner string, want map[string]string) bool {
	var owned map[string]any
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == owner && mf.Operation == metav1.ManagedFieldsOperationApply && mf.FieldsV1 != nil {
			var f map[string]any
			if err := json.Unmarshal(mf.FieldsV1.Raw, &f); err != nil {
				return false
			}
			md, _ := f["f:metadata"].(map[string]any)
			owned, _ = md["f:annotations"].(map[string]any)
		}
	}
	if len(owned) != len(want) {
		return false
	}
	have := live.GetAnnotations()
	for k, v := range want {
		if _, ok := owned["f:"+k]; !ok || have[k] != v {
			return false
		}
	}
	return true
}

func (r *AuthPolicyReconciler) ensureFinalizer(ctx context.Context, p *authv1alpha1.AuthPolicy) error {
	if controllerutil.ContainsFinalizer(p, policyFinalizer) {
		return nil
	}
	base := p.DeepCopy()
	controllerutil.AddFinalizer(p, policyFinalizer)
	return r.Patch(ctx, p, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// release gives the target's annotations back (an empty apply under the policy's
// manager removes exactly the keys it owns) and lets the policy go. The owned
// SecurityPolicy or Middleware goes by garbage collection.
func (r *AuthPolicyReconciler) release(ctx context.Context, p *authv1alpha1.AuthPolicy) error {
	if !controllerutil.ContainsFinalizer(p, policyFinalizer) {
		return nil
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(resources.IngressGVK)
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.TargetRef.Name}, live)
	switch {
	case err == nil:
		body := resources.TargetPatch(p, nil)
		body.SetResourceVersion(live.GetResourceVersion())
		if err := r.Patch(ctx, body, client.Apply, client.FieldOwner(resources.PolicyFieldOwner(p))); err != nil && !apierrors.IsNotFound(err) { //nolint:staticcheck // as applyTarget
			return fmt.Errorf("releasing the annotations of Ingress %s: %w", p.Spec.TargetRef.Name, err)
		}
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("reading Ingress %s: %w", p.Spec.TargetRef.Name, err)
	}
	base := p.DeepCopy()
	controllerutil.RemoveFinalizer(p, policyFinalizer)
	return r.Patch(ctx, p, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

func (r *AuthPolicyReconciler) writePolicyStatus(ctx context.Context, p *authv1alpha1.AuthPolicy, ready metav1.Condition) error {
	next := *p.Status.DeepCopy()
	next.ObservedGeneration = p.Generation
	ready.ObservedGeneration = p.Generation
	meta.SetStatusCondition(&next.Conditions, ready)
	if equality.Semantic.DeepEqual(p.Status, next) {
		return nil
	}
	base := client.MergeFrom(p.DeepCopy())
	p.Status = next
	if err := r.Status().Patch(ctx, p, base); err != nil {
		return fmt.Errorf("writing the AuthPolicy status: %w", err)
	}
	return nil
}

// SetupWithManager registers the controller. It watches AuthPolicies only: their
// targets and the proxies' kinds may not exist, so it looks again on a timer.
func (r *AuthPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.applier = newApplier(r.Client, mgr.GetScheme())
	r.mapper = mgr.GetRESTMapper()
	return ctrl.NewControllerManagedBy(mgr).
		For(&authv1alpha1.AuthPolicy{}).
		Named("authpolicy").
		Complete(r)
}
