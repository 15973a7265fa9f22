package controllers

// The gateway component: spec.gateway's HTTPRoute. It observes whether the cluster
// serves the Gateway API's HTTPRoute and, if so, the route (its status says whether
// the Gateways accepted it); renders the route (pure); reports GatewayRouteReady.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes;referencegrants,verbs=get;list;watch;create;patch;delete

// gatewayRecheck is how often a stack whose route is not ready yet is looked at
// again: the operator watches neither the HTTPRoute kind (it may not exist) nor
// the route's status (the Gateway's controller writes it).
const gatewayRecheck = time.Minute

// gatewayObservation is what one reconcile learned about the HTTPRoute.
type gatewayObservation struct {
	// served says the cluster serves gateway.networking.k8s.io/v1 HTTPRoute.
	served bool
	// route is the live HTTPRoute (its status), or nil.
	route *gatewayv1.HTTPRoute
}

// observeGateway asks whether the kind is served and reads the route.
func (r *AuthStackReconciler) observeGateway(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) error {
	obs.gateway = gatewayObservation{}
	if r.gateway == nil || !r.gateway.available(ctx) {
		return nil
	}
	obs.gateway.served = true
	if !resources.GatewayEnabled(stack) {
		return nil
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(resources.HTTPRouteGVK)
	err := r.Get(ctx, client.ObjectKey{Namespace: stack.Namespace, Name: resources.AuthServerName(stack)}, live)
	switch {
	case meta.IsNoMatchError(err): // the CRD went away since the probe looked
		r.gateway.forget()
		obs.gateway.served = false
		return nil
	case client.IgnoreNotFound(err) != nil:
		return fmt.Errorf("reading the HTTPRoute: %w", err)
	case err == nil:
		route := &gatewayv1.HTTPRoute{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(live.Object, route); err != nil {
			return fmt.Errorf("reading the HTTPRoute: %w", err)
		}
		obs.gateway.route = route
	}
	return nil
}

// gatewayObjects renders the gateway component: the HTTPRoute, and the
// ReferenceGrant that lets the routes and SecurityPolicies of
// edgeAuth.policyNamespaces reference the authserver Service (authpolicy.go); each
// to apply, or to delete when the spec no longer asks for it. Pure.
func gatewayObjects(stack *authv1alpha1.AuthStack) (desired, absent []*unstructured.Unstructured, err error) {
	for _, o := range []struct {
		gvk   schema.GroupVersionKind
		build func(*authv1alpha1.AuthStack) (*unstructured.Unstructured, error)
	}{{resources.HTTPRouteGVK, resources.AuthServerHTTPRoute}, {resources.ReferenceGrantGVK, resources.StackReferenceGrant}} {
		obj, err := o.build(stack)
		if err != nil {
			return nil, nil, err
		}
		if obj != nil {
			desired = append(desired, obj)
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(o.gvk)
		u.SetName(resources.AuthServerName(stack))
		u.SetNamespace(stack.Namespace)
		absent = append(absent, u)
	}
	return desired, absent, nil
}

// applyGateway applies or deletes the route when the kind is served. Its failure is
// reported on GatewayRouteReady; it never stops the other components.
func (r *AuthStackReconciler) applyGateway(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) *failure {
	if !obs.gateway.served {
		return nil
	}
	desired, absent, err := gatewayObjects(stack)
	if err == nil {
		for _, obj := range absent {
			if err = r.deleteOwned(ctx, stack, obj); err != nil {
				break
			}
		}
	}
	if err == nil {
		for _, obj := range desired {
			var wrote bool
			if wrote, err = r.applier.applyUnstructured(ctx, obj); err != nil {
				break
			}
			if wrote {
				log.FromContext(ctx).V(1).Info("applied", "kind", obj.GetKind(), "name", obj.GetName())
			}
		}
	}
	if err == nil {
		return nil
	}
	if meta.IsNoMatchError(err) {
		r.gateway.forget()
		obs.gateway.served = false
		return nil
	}
	return &failure{condition: authv1alpha1.ConditionGatewayRouteReady, field: "spec.gateway", err: err}
}

// gatewayCondition is GatewayRouteReady, or nil when spec.gateway is off (the
// condition is then removed). True once every Gateway of parentRefs accepted the
// route. It never decides Ready (whether a Gateway accepts a route is the platform
// team's business), but a kind that is not served or a refusal makes the stack
// Degraded: both need a person.
func gatewayCondition(stack *authv1alpha1.AuthStack, obs *observation, failures []failure) *metav1.Condition {
	const typ = authv1alpha1.ConditionGatewayRouteReady
	if !resources.GatewayEnabled(stack) {
		return nil
	}
	c := func(ok bool, reason, msg string) *metav1.Condition {
		cond := condition(typ, ok, reason, msg)
		return &cond
	}
	if f := failureOf(failures, typ); f != nil {
		return c(false, authv1alpha1.ReasonApplyFailed, f.message())
	}
	if !obs.gateway.served {
		return c(false, authv1alpha1.ReasonGatewayAPINotServed,
			"the cluster does not serve gateway.networking.k8s.io/v1 HTTPRoute: install the Gateway API CRDs and a Gateway implementation (docs/edge-auth.md); the operator looks again every minute")
	}
	route := obs.gateway.route
	if route == nil {
		return c(false, authv1alpha1.ReasonProgressing, "the HTTPRoute does not exist yet")
	}
	var pending, refused, accepted []string
	for _, ns := range parentKeys(stack) {
		st := parentStatus(route, ns)
		switch {
		case st == nil:
			pending = append(pending, ns)
		case st.Status == metav1.ConditionTrue:
			accepted = append(accepted, ns)
		default:
			refused = append(refused, fmt.Sprintf("%s (%s: %s)", ns, st.Reason, st.Message))
		}
	}
	switch {
	case len(refused) > 0:
		return c(false, authv1alpha1.ReasonRouteNotAccepted, "not accepted by Gateway "+strings.Join(refused, ", "))
	case len(pending) > 0:
		return c(false, authv1alpha1.ReasonProgressing, "waiting for the controller of Gateway "+strings.Join(pending, ", ")+" to accept the route")
	}
	return c(true, authv1alpha1.ReasonRouteAccepted, "accepted by Gateway "+strings.Join(accepted, ", "))
}

// parentKeys are spec.gateway.parentRefs as namespace/name[/section].
func parentKeys(stack *authv1alpha1.AuthStack) []string {
	var out []string
	for _, p := range stack.Spec.Gateway.ParentRefs {
		out = append(out, parentKey(stack.Namespace, p.Namespace, p.Name, p.SectionName))
	}
	return out
}

func parentKey(routeNS, ns, name, section string) string {
	if ns == "" {
		ns = routeNS
	}
	k := ns + "/" + name
	if section != "" {
		k += "/" + section
	}
	return k
}

// parentStatus is the Accepted condition a Gateway's controller wrote for the
// parent key, or nil.
func parentStatus(route *gatewayv1.HTTPRoute, key string) *metav1.Condition {
	for _, p := range route.Status.Parents {
		ref := p.ParentRef
		var ns, section string
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		if ref.SectionName != nil {
			section = string(*ref.SectionName)
		}
		if parentKey(route.Namespace, ns, string(ref.Name), section) == key {
			if c := meta.FindStatusCondition(p.Conditions, string(gatewayv1.RouteConditionAccepted)); c != nil {
				return c
			}
		}
	}
	return nil
}
