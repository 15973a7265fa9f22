package controllers

import (
	"context"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

func getRoute(ctx context.Context, ns string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(resources.HTTPRouteGVK)
	return u, k8s.Get(ctx, key(ns, "auth-authserver"), u)
}

func stackCondition(t *testing.T, ns, typ string) *metav1.Condition {
	t.Helper()
	got := &authv1alpha1.AuthStack{}
	if err := k8s.Get(context.Background(), key(ns, "auth"), got); err != nil {
		t.Fatal(err)
	}
	return meta.FindStatusCondition(got.Status.Conditions, typ)
}

// TestGatewayRouteOnlyWithItsCRDs runs first without the Gateway API CRDs (no route,
// GatewayRouteReady False naming what to install, Ready unaffected), then installs
// the upstream CRDs from the module cache: the route is created and accepted by the
// real API server's schema and CEL rules, reports the Gateway's verdict, costs no
// write at rest, and goes when spec.gateway is turned off. Not parallel: it must
// see the CRDs absent.
func TestGatewayRouteOnlyWithItsCRDs(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	stack := sampleStack(ns, "auth")
	stack.Spec.Gateway = authv1alpha1.GatewaySpec{
		Enabled:    true,
		ParentRefs: []authv1alpha1.GatewayParentRef{{Name: "public", Namespace: "edge", SectionName: "https"}},
		Hostnames:  []string{"login.example.com"},
	}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	getDeployment(t, ns)
	markDeploymentAvailable(t, ns, "auth-authserver")
	markDeploymentAvailable(t, ns, "auth-pgbouncer")

	// 1. Without the CRDs.
	res, err := op.reconciler.Reconcile(ctx, ctrl.Request{NamespacedName: key(ns, "auth")})
	if err != nil {
		t.Fatalf("reconcile without the Gateway API CRDs: %v", err)
	}
	if res.RequeueAfter != gatewayRecheck {
		t.Errorf("RequeueAfter = %v, want %v to look for the CRDs again", res.RequeueAfter, gatewayRecheck)
	}
	requireReady(t, ns)
	if c := stackCondition(t, ns, authv1alpha1.ConditionGatewayRouteReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonGatewayAPINotServed {
		t.Fatalf("GatewayRouteReady without the CRDs = %+v", c)
	}
	if c := stackCondition(t, ns, authv1alpha1.ConditionDegraded); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Degraded without the CRDs = %+v, want True (a person must install them)", c)
	}
	if _, err := getRoute(ctx, ns); !meta.IsNoMatchError(err) {
		t.Fatalf("HTTPRoute is served before the test installs it (err %v): this test must run first", err)
	}

	// 2. With the upstream CRDs: created, and valid for the real schema.
	installGatewayAPICRDs(t)
	op.reconciler.gateway.forget()
	var route *unstructured.Unstructured
	eventually(t, "HTTPRoute created", func() error {
		reconcileNow(t, op, ns)
		route, err = getRoute(ctx, ns)
		return err
	})
	typed := &gatewayv1.HTTPRoute{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(route.Object, typed); err != nil {
		t.Fatal(err)
	}
	if p := typed.Spec.ParentRefs; len(p) != 1 || p[0].Name != "public" || ptr.Deref(p[0].Namespace, "") != "edge" || ptr.Deref(p[0].SectionName, "") != "https" {
		t.Errorf("parentRefs = %+v", p)
	}
	if ref := metav1.GetControllerOf(route); ref == nil || ref.Name != "auth" {
		t.Errorf("HTTPRoute controller = %+v", ref)
	}
	if c := stackCondition(t, ns, authv1alpha1.ConditionGatewayRouteReady); c == nil || c.Reason != authv1alpha1.ReasonProgressing {
		t.Errorf("GatewayRouteReady before the Gateway answered = %+v", c)
	}
	got := &authv1alpha1.AuthStack{}
	if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.URL != "https://auth.example.com/auth" {
		t.Errorf("status.url = %q: the Ingress is still the public URL while both exist", got.Status.URL)
	}

	// 3. The Gateway's controller refuses, then accepts: the condition follows.
	setRouteParentStatus := func(status metav1.ConditionStatus, reason string) {
		t.Helper()
		eventually(t, "route status written", func() error {
			r := &gatewayv1.HTTPRoute{}
			u, err := getRoute(ctx, ns)
			if err != nil {
				return err
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, r); err != nil {
				return err
			}
			r.Status.Parents = []gatewayv1.RouteParentStatus{{
				ParentRef:      typed.Spec.ParentRefs[0],
				ControllerName: "example.com/gateway-controller",
				Conditions: []metav1.Condition{{Type: "Accepted", Status: status, Reason: reason, Message: "from the test",
					LastTransitionTime: metav1.Now(), ObservedGeneration: r.Generation}},
			}}
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r)
			if err != nil {
				return err
			}
			u.Object = m
			u.SetGroupVersionKind(resources.HTTPRouteGVK)
			return k8s.Status().Update(ctx, u)
		})
	}
	setRouteParentStatus(metav1.ConditionFalse, "NotAllowedByListeners")
	eventually(t, "GatewayRouteReady NotAccepted", func() error {
		reconcileNow(t, op, ns)
		if c := stackCondition(t, ns, authv1alpha1.ConditionGatewayRouteReady); c == nil || c.Reason != authv1alpha1.ReasonRouteNotAccepted {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	setRouteParentStatus(metav1.ConditionTrue, "Accepted")
	eventually(t, "GatewayRouteReady True", func() error {
		reconcileNow(t, op, ns)
		if c := stackCondition(t, ns, authv1alpha1.ConditionGatewayRouteReady); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	requireReady(t, ns)

	// 4. At rest: no writes.
	settle(t, op, ns)
	before := op.writes.count()
	for range 10 {
		reconcileNow(t, op, ns)
	}
	if d := op.writes.count() - before; d != 0 {
		t.Errorf("10 no-op reconciles with the route sent %d writes, want 0", d)
	}

	// 5. Off: the route goes, and so does the condition.
	eventually(t, "spec.gateway turned off", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
			return err
		}
		got.Spec.Gateway.Enabled = false
		return k8s.Update(ctx, got)
	})
	eventually(t, "HTTPRoute deleted", func() error {
		reconcileNow(t, op, ns)
		if _, err := getRoute(ctx, ns); !apierrors.IsNotFound(err) {
			return fmt.Errorf("route: %v", err)
		}
		if c := stackCondition(t, ns, authv1alpha1.ConditionGatewayRouteReady); c != nil {
			return fmt.Errorf("condition still there: %+v", c)
		}
		return nil
	})
}
