package controllers

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors;prometheusrules,verbs=get;create;patch;delete

// monitoringRecheck is how long the answer "does the cluster serve the
// monitoring.coreos.com kinds" is reused: asking costs a discovery request
// while they are absent.
const monitoringRecheck = time.Minute

// monitoringKinds are the kinds spec.monitoring creates.
var monitoringKinds = []schema.GroupVersionKind{resources.ServiceMonitorGVK, resources.PrometheusRuleGVK}

// kindProbe says whether the cluster serves every one of its kinds (the
// Prometheus Operator's here, the Gateway API's in gateway.go), asking the
// RESTMapper at most once per ttl. The controller does not watch these kinds (the
// manager would fail to start without their CRDs), so the answer is re-read on a
// timer, not on events.
type kindProbe struct {
	mapper meta.RESTMapper
	ttl    time.Duration
	now    func() time.Time
	kinds  []schema.GroupVersionKind

	mu      sync.Mutex
	checked time.Time
	served  bool
}

func newMonitoringProbe(mapper meta.RESTMapper, ttl time.Duration) *kindProbe {
	return newKindProbe(mapper, ttl, monitoringKinds...)
}

func newKindProbe(mapper meta.RESTMapper, ttl time.Duration, kinds ...schema.GroupVersionKind) *kindProbe {
	return &kindProbe{mapper: mapper, ttl: ttl, now: time.Now, kinds: kinds}
}

// available reports whether every kind is served. Errors other than "no such
// kind" are logged and count as absent: an optional kind never blocks the stack.
func (p *kindProbe) available(ctx context.Context) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if !p.checked.IsZero() && now.Sub(p.checked) < p.ttl {
		return p.served
	}
	p.served = true
	for _, gvk := range p.kinds {
		if _, err := p.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			if !meta.IsNoMatchError(err) {
				log.FromContext(ctx).Error(err, "looking up an optional kind; treating it as absent", "kind", gvk.Kind)
			}
			p.served = false
			break
		}
	}
	p.checked = now
	return p.served
}

// forget makes the next call ask again (after an apply found the kind gone).
func (p *kindProbe) forget() {
	p.mu.Lock()
	p.checked = time.Time{}
	p.mu.Unlock()
}

// monitoringObjects renders the monitoring objects: the ServiceMonitor and
// PrometheusRule to apply when the stack asks for them, else the ones to delete. Pure.
func monitoringObjects(stack *authv1alpha1.AuthStack) (desired, absent []*unstructured.Unstructured, err error) {
	if !resources.MonitoringEnabled(stack) {
		for _, gvk := range monitoringKinds {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			u.SetName(resources.AuthServerName(stack))
			u.SetNamespace(stack.Namespace)
			absent = append(absent, u)
		}
		return nil, absent, nil
	}
	for _, build := range []func(*authv1alpha1.AuthStack) (*unstructured.Unstructured, error){
		resources.AuthServerServiceMonitor, resources.AuthServerPrometheusRule,
	} {
		obj, err := build(stack)
		if err != nil {
			return nil, nil, err
		}
		desired = append(desired, obj)
	}
	return desired, nil, nil
}

// reconcileMonitoring applies or deletes the monitoring objects when the cluster
// serves their kinds (the probe is what this component observes); otherwise it does
// nothing and says to look again later (wait) if the stack wants them. It has no
// condition: its errors never touch the stack's status.
func (r *AuthStackReconciler) reconcileMonitoring(ctx context.Context, stack *authv1alpha1.AuthStack) (wait bool, err error) {
	if r.monitoring == nil || !r.monitoring.available(ctx) {
		if resources.MonitoringEnabled(stack) {
			log.FromContext(ctx).V(1).Info("spec.monitoring.enabled, but the cluster does not serve monitoring.coreos.com/v1 ServiceMonitor and PrometheusRule: skipped")
			return true, nil
		}
		return false, nil
	}
	desired, absent, err := monitoringObjects(stack)
	if err != nil {
		return false, err
	}
	for _, obj := range absent {
		if err := r.deleteOwned(ctx, stack, obj); err != nil {
			return false, r.monitoringGone(err)
		}
	}
	for _, obj := range desired {
		wrote, err := r.applier.applyUnstructured(ctx, obj)
		if err != nil {
			return false, r.monitoringGone(err)
		}
		if wrote {
			log.FromContext(ctx).V(1).Info("applied", "kind", obj.GetKind(), "name", obj.GetName())
		}
	}
	return false, nil
}

// monitoringGone swallows the error of a kind that stopped being served (its
// CRD was deleted since the probe looked) and makes the probe look again.
func (r *AuthStackReconciler) monitoringGone(err error) error {
	if meta.IsNoMatchError(err) {
		r.monitoring.forget()
		return nil
	}
	return err
}
