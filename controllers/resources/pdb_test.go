package resources

import (
	"reflect"
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestPDB(t *testing.T) {
	for _, v := range stackVariants {
		t.Run(v.name, func(t *testing.T) {
			s := v.stack()
			p := AuthServerPDB(s)
			if p.APIVersion != "policy/v1" || p.Kind != "PodDisruptionBudget" || p.Name != "demo-authserver" || p.Namespace != testNamespace {
				t.Errorf("PDB = %s %s %s/%s", p.APIVersion, p.Kind, p.Namespace, p.Name)
			}
			if p.Spec.MaxUnavailable == nil || *p.Spec.MaxUnavailable != intstr.FromInt32(1) {
				t.Errorf("maxUnavailable = %v, want 1", p.Spec.MaxUnavailable)
			}
			if p.Spec.MinAvailable != nil {
				t.Errorf("minAvailable = %v set next to maxUnavailable", p.Spec.MinAvailable)
			}
			if ptr.Deref(p.Spec.UnhealthyPodEvictionPolicy, "") != policyv1.AlwaysAllow {
				t.Errorf("unhealthyPodEvictionPolicy = %v, want AlwaysAllow", p.Spec.UnhealthyPodEvictionPolicy)
			}
			if p.Spec.Selector == nil || !reflect.DeepEqual(p.Spec.Selector.MatchLabels, SelectorLabels(s, ComponentAuthServer)) {
				t.Errorf("selector = %+v", p.Spec.Selector)
			}
			pods := renderDeployment(s).Spec.Template.Labels
			if !labels.SelectorFromSet(p.Spec.Selector.MatchLabels).Matches(labels.Set(pods)) {
				t.Errorf("PDB selector does not match the pods %v", pods)
			}
		})
	}
}
