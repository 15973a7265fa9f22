package envtranslate

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Environment variables, resolved the way the kubelet resolves them.

func (t *translator) secretKey(name, key string, optional bool) ([]byte, bool, error) {
	s := t.secrets[name]
	if s == nil {
		if optional {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("Secret %s/%s not found", t.ns, name)
	}
	if b, ok := s.Data[key]; ok {
		return b, true, nil
	}
	if sv, ok := s.StringData[key]; ok {
		return []byte(sv), true, nil
	}
	if optional {
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("Secret %s/%s has no key %q", t.ns, name, key)
}

func (t *translator) configMapKey(name, key string, optional bool) (string, bool, error) {
	cm := t.configMaps[name]
	if cm == nil {
		if optional {
			return "", false, nil
		}
		return "", false, fmt.Errorf("ConfigMap %s/%s not found", t.ns, name)
	}
	if v, ok := cm.Data[key]; ok {
		return v, true, nil
	}
	if optional {
		return "", false, nil
	}
	return "", false, fmt.Errorf("ConfigMap %s/%s has no key %q", t.ns, name, key)
}

func (t *translator) envVar(e corev1.EnvVar, dep *appsv1.Deployment, c *corev1.Container) (Var, bool, error) {
	if e.ValueFrom == nil {
		return Var{Name: e.Name, Value: e.Value, Source: "value"}, true, nil
	}
	switch vf := e.ValueFrom; {
	case vf.SecretKeyRef != nil:
		r := vf.SecretKeyRef
		b, ok, err := t.secretKey(r.Name, r.Key, r.Optional != nil && *r.Optional)
		if err != nil || !ok {
			return Var{}, false, err
		}
		return Var{Name: e.Name, Value: string(b), Source: "secret " + r.Name + "/" + r.Key}, true, nil
	case vf.ConfigMapKeyRef != nil:
		r := vf.ConfigMapKeyRef
		v, ok, err := t.configMapKey(r.Name, r.Key, r.Optional != nil && *r.Optional)
		if err != nil || !ok {
			return Var{}, false, err
		}
		return Var{Name: e.Name, Value: v, Source: "configmap " + r.Name + "/" + r.Key}, true, nil
	case vf.FieldRef != nil:
		switch vf.FieldRef.FieldPath {
		case "metadata.namespace":
			return Var{Name: e.Name, Value: t.ns, Source: "value"}, true, nil
		case "metadata.name":
			return Var{Name: e.Name, Value: dep.Name + "-local", Source: "value"}, true, nil
		case "status.podIP", "status.hostIP":
			return Var{Name: e.Name, Value: "127.0.0.1", Source: "value", Rewritten: true}, true, nil
		}
		return Var{}, false, fmt.Errorf("fieldRef %s has no local equivalent", vf.FieldRef.FieldPath)
	case vf.ResourceFieldRef != nil:
		v, ok, err := resourceField(vf.ResourceFieldRef, dep, c)
		if err != nil || !ok {
			return Var{}, false, err
		}
		return Var{Name: e.Name, Value: v, Source: "resource " + vf.ResourceFieldRef.Resource}, true, nil
	}
	return Var{}, false, fmt.Errorf("unsupported valueFrom (only secretKeyRef, configMapKeyRef, fieldRef and resourceFieldRef)")
}

// resourceField resolves a downward-API resourceFieldRef the way the kubelet does:
// the container's limit (or request) divided by the divisor (default 1), rounded up.
// A limit the container does not set would be the node's allocatable in a pod; a
// local process has no such bound, so the variable is left unset.
func resourceField(r *corev1.ResourceFieldSelector, dep *appsv1.Deployment, self *corev1.Container) (string, bool, error) {
	c := self
	if r.ContainerName != "" {
		c = nil
		pod := &dep.Spec.Template.Spec
		for _, list := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
			for i := range list {
				if list[i].Name == r.ContainerName {
					c = &list[i]
				}
			}
		}
		if c == nil {
			return "", false, fmt.Errorf("resourceFieldRef names container %q, which the pod does not have", r.ContainerName)
		}
	}
	kind, name, found := strings.Cut(r.Resource, ".")
	if !found || (kind != "limits" && kind != "requests") {
		return "", false, fmt.Errorf("resourceFieldRef %s has no local equivalent", r.Resource)
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		return "", false, nil
	}
	divisor := r.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	// Milli-units keep fractional CPU exact; round up like the kubelet.
	n, d := q.MilliValue(), divisor.MilliValue()
	return strconv.FormatInt((n+d-1)/d, 10), true, nil
}

func (t *translator) envFrom(ef corev1.EnvFromSource) ([]Var, error) {
	var out []Var
	switch {
	case ef.SecretRef != nil:
		s := t.secrets[ef.SecretRef.Name]
		if s == nil {
			if ef.SecretRef.Optional != nil && *ef.SecretRef.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("Secret %s/%s not found", t.ns, ef.SecretRef.Name)
		}
		for _, k := range slices.Sorted(maps.Keys(s.Data)) {
			out = append(out, Var{Name: ef.Prefix + k, Value: string(s.Data[k]), Source: "secret " + s.Name + "/" + k})
		}
	case ef.ConfigMapRef != nil:
		cm := t.configMaps[ef.ConfigMapRef.Name]
		if cm == nil {
			if ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("ConfigMap %s/%s not found", t.ns, ef.ConfigMapRef.Name)
		}
		for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
			out = append(out, Var{Name: ef.Prefix + k, Value: cm.Data[k], Source: "configmap " + cm.Name + "/" + k})
		}
	}
	return out, nil
}
