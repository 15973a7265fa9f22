package controllers

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/leanauth/authstack/controllers/resources"
)

// countingMapper counts the lookups that reach a real DefaultRESTMapper.
type countingMapper struct {
	meta.RESTMapper
	calls int
}

func (m *countingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	m.calls++
	return m.RESTMapper.RESTMapping(gk, versions...)
}

func TestMonitoringProbeCachesItsAnswer(t *testing.T) {
	ctx := context.Background()
	rm := meta.NewDefaultRESTMapper(nil)
	m := &countingMapper{RESTMapper: rm}
	now := time.Unix(1000, 0)
	p := newMonitoringProbe(m, time.Minute)
	p.now = func() time.Time { return now }

	if p.available(ctx) {
		t.Fatal("available with no kinds known")
	}
	calls := m.calls
	// The kinds appear, but the cached "no" holds until the ttl passes.
	rm.Add(resources.ServiceMonitorGVK, meta.RESTScopeNamespace)
	rm.Add(resources.PrometheusRuleGVK, meta.RESTScopeNamespace)
	now = now.Add(59 * time.Second)
	if p.available(ctx) || m.calls != calls {
		t.Fatalf("asked again within the ttl (%d lookups, was %d)", m.calls, calls)
	}
	now = now.Add(2 * time.Second)
	if !p.available(ctx) {
		t.Fatal("not available after the ttl, with both kinds known")
	}
	// forget makes the next call look again.
	calls = m.calls
	p.forget()
	p.available(ctx)
	if m.calls == calls {
		t.Error("forget did not force a new lookup")
	}
}

func TestMonitoringProbeNeedsBothKinds(t *testing.T) {
	rm := meta.NewDefaultRESTMapper(nil)
	rm.Add(resources.ServiceMonitorGVK, meta.RESTScopeNamespace)
	if newMonitoringProbe(rm, time.Minute).available(context.Background()) {
		t.Error("available with only ServiceMonitor served")
	}
}
