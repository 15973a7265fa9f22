package controllers

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// TestRenderIsPure renders every component of a stack with the whole data tier twice:
// the stack, the observation and the Inputs are unchanged, and so is the answer.
func TestRenderIsPure(t *testing.T) {
	stack := withBackupSpec(dataTierStack("ns"))
	stack.Spec.Redis.Mode = authv1alpha1.RedisCluster
	stack.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
	obs := &observation{}
	obs.authServer.configHash = "hash"
	obs.dataTier.db = resources.ManagedDatabaseURL(stack, "pw")
	obs.dataTier.redisPassword = "redis-pw"
	in := resources.Inputs{AuthServerImage: testImage, Pepper: resources.PepperRef(stack), ConfigHash: "hash"}

	stackBefore, obsBefore, inBefore := stack.DeepCopy(), *obs, in
	first := render(stack, obs, in)
	second := render(stack, obs, in)
	if !equality.Semantic.DeepEqual(stack, stackBefore) {
		t.Error("render changed the stack")
	}
	if !reflect.DeepEqual(*obs, obsBefore) {
		t.Error("render changed the observation")
	}
	if !reflect.DeepEqual(in, inBefore) {
		t.Error("render changed the Inputs")
	}
	if len(first) != len(second) {
		t.Fatalf("%d units, then %d", len(first), len(second))
	}
	for i := range first {
		a, b := first[i], second[i]
		if a.condition != b.condition || a.field != b.field || !equality.Semantic.DeepEqual(a.desired, b.desired) ||
			!equality.Semantic.DeepEqual(a.create, b.create) || !equality.Semantic.DeepEqual(a.absent, b.absent) ||
			!equality.Semantic.DeepEqual(a.handOver, b.handOver) {
			t.Errorf("unit %d (%s) differs between two renders", i, a.field)
		}
	}
	// Each unit's objects are reported on the condition of their own component.
	for _, u := range first {
		for _, obj := range u.desired {
			want, ok := componentConditions[obj.GetLabels()[resources.LabelComponent]]
			if ok && u.condition != want {
				t.Errorf("%T %s is in a unit reported on %s, its component's condition is %s", obj, obj.GetName(), u.condition, want)
			}
		}
	}
}
