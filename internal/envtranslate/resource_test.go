package envtranslate

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The downward API's resourceFieldRef resolves as the kubelet resolves it: the
// limit divided by the divisor, rounded up; an unset limit leaves the variable out.
func TestResourceFieldRef(t *testing.T) {
	c := corev1.Container{Name: "authserver", Resources: corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
	}}
	dep := &appsv1.Deployment{}
	dep.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "migrate", Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}}}}
	dep.Spec.Template.Spec.Containers = []corev1.Container{c}
	for _, tc := range []struct {
		sel     corev1.ResourceFieldSelector
		want    string
		present bool
	}{
		{corev1.ResourceFieldSelector{Resource: "limits.cpu"}, "2", true},
		{corev1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}, "1500", true},
		{corev1.ResourceFieldSelector{Resource: "requests.cpu"}, "1", true},
		{corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}, "512", true},
		{corev1.ResourceFieldSelector{Resource: "limits.cpu", ContainerName: "migrate"}, "3", true},
		{corev1.ResourceFieldSelector{Resource: "requests.memory"}, "", false},
	} {
		got, ok, err := resourceField(&tc.sel, dep, &dep.Spec.Template.Spec.Containers[0])
		if err != nil || ok != tc.present || got != tc.want {
			t.Errorf("%s (divisor %s, container %q) = %q, %v, %v; want %q, %v", tc.sel.Resource, tc.sel.Divisor.String(), tc.sel.ContainerName, got, ok, err, tc.want, tc.present)
		}
	}
	if _, _, err := resourceField(&corev1.ResourceFieldSelector{Resource: "limits.cpu", ContainerName: "nope"}, dep, &c); err == nil {
		t.Error("a resourceFieldRef naming a missing container was accepted")
	}
}
