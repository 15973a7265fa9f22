package resources

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestService(t *testing.T) {
	s := withPodTemplate(sampleStack())
	svc := AuthServerService(s)
	if svc.Name != "demo-authserver" || svc.Namespace != testNamespace {
		t.Errorf("name = %s/%s", svc.Namespace, svc.Name)
	}
	if svc.APIVersion != "v1" || svc.Kind != "Service" {
		t.Errorf("type = %s %s", svc.APIVersion, svc.Kind)
	}
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("type = %s, want ClusterIP", svc.Spec.Type)
	}
	if !reflect.DeepEqual(svc.Spec.Selector, SelectorLabels(s, ComponentAuthServer)) {
		t.Errorf("selector = %v, want %v", svc.Spec.Selector, SelectorLabels(s, ComponentAuthServer))
	}
	want := map[string][2]any{"http": {int32(3000), "http"}, "metrics": {int32(9090), "metrics"}, "grpc-authz": {int32(9191), "grpc-authz"}}
	got := map[string][2]any{}
	for _, p := range svc.Spec.Ports {
		got[p.Name] = [2]any{p.Port, p.TargetPort.StrVal}
		if p.Protocol != corev1.ProtocolTCP || p.TargetPort.Type != intstr.String {
			t.Errorf("port %s: protocol %s targetPort %s", p.Name, p.Protocol, p.TargetPort.String())
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ports = %v, want %v", got, want)
	}

	// The Service reaches the Deployment's pods, on ports they expose.
	dep := renderDeployment(s)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not match pod labels %v", svc.Spec.Selector, dep.Spec.Template.Labels)
	}
	containerPorts := map[string]int32{}
	for _, p := range dep.Spec.Template.Spec.Containers[0].Ports {
		containerPorts[p.Name] = p.ContainerPort
	}
	for _, p := range svc.Spec.Ports {
		if containerPorts[p.TargetPort.StrVal] != p.Port {
			t.Errorf("Service port %s -> %s is not a container port of the same number (%v)", p.Name, p.TargetPort.StrVal, containerPorts)
		}
	}
}

func TestServiceSelectorIgnoresOtherStacks(t *testing.T) {
	a := sampleStack()
	b := sampleStack()
	b.Name = "other"
	podsOfB := renderDeployment(b).Spec.Template.Labels
	if labels.SelectorFromSet(AuthServerService(a).Spec.Selector).Matches(labels.Set(podsOfB)) {
		t.Error("the Service of stack demo selects the pods of stack other")
	}
}

func TestInClusterURL(t *testing.T) {
	if got, want := InClusterURL(sampleStack()), "http://demo-authserver.team-a.svc:3000"; got != want {
		t.Errorf("InClusterURL = %q, want %q", got, want)
	}
}
