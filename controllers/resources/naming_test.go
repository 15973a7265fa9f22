package resources

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func TestNames(t *testing.T) {
	s := sampleStack()
	for got, want := range map[string]string{
		AuthServerName(s):   "demo-authserver",
		PepperSecretName(s): "demo-pepper",
		TLSSecretName(s):    "demo-tls",
	} {
		if got != want {
			t.Errorf("name = %q, want %q", got, want)
		}
	}
	s.Spec.Ingress.TLS = &authv1alpha1.IngressTLS{SecretName: "mine"}
	if got := TLSSecretName(s); got != "mine" {
		t.Errorf("TLSSecretName with a spec name = %q, want mine", got)
	}
	s.Spec.Ingress.TLS = nil
	if got := TLSSecretName(s); got != "demo-tls" {
		t.Errorf("TLSSecretName without tls = %q, want demo-tls", got)
	}
}

func TestLabels(t *testing.T) {
	s := sampleStack()
	sel := SelectorLabels(s, ComponentAuthServer)
	want := map[string]string{LabelName: "authserver", LabelInstance: "demo", LabelComponent: "authserver"}
	if !reflect.DeepEqual(sel, want) {
		t.Errorf("SelectorLabels = %v, want %v", sel, want)
	}
	l := Labels(s, ComponentAuthServer)
	for k, v := range sel {
		if l[k] != v {
			t.Errorf("Labels lacks selector label %s=%s", k, v)
		}
	}
	if l[LabelManagedBy] != FieldOwner || l[LabelPartOf] != "authstack" {
		t.Errorf("Labels = %v", l)
	}
	// Each call returns a fresh map: a caller that adds a label must not change the selector.
	l["extra"] = "x"
	sel["extra"] = "y"
	if _, ok := SelectorLabels(s, ComponentAuthServer)["extra"]; ok {
		t.Error("SelectorLabels returns shared state")
	}
	if _, ok := Labels(s, ComponentAuthServer)["extra"]; ok {
		t.Error("Labels returns shared state")
	}
}

func TestMerged(t *testing.T) {
	extra := map[string]string{"a": "extra", "b": "extra"}
	base := map[string]string{"b": "base", "c": "base"}
	got := merged(extra, base)
	if want := map[string]string{"a": "extra", "b": "base", "c": "base"}; !reflect.DeepEqual(got, want) {
		t.Errorf("merged = %v, want %v (base wins)", got, want)
	}
	got["z"] = "new"
	if _, ok := extra["z"]; ok {
		t.Error("merged aliases extra")
	}
	if _, ok := base["z"]; ok {
		t.Error("merged aliases base")
	}
	if got := merged(nil, map[string]string{"k": "v"}); !reflect.DeepEqual(got, map[string]string{"k": "v"}) {
		t.Errorf("merged(nil, base) = %v", got)
	}
}

// TestOwnerReferences: every object the stack owns carries one controller reference
// to it; the pepper Secret carries none.
func TestOwnerReferences(t *testing.T) {
	s := sampleStack()
	objs := ownedObjects(s)
	for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Ingress"} {
		if _, ok := objs[kind]; !ok {
			t.Fatalf("the sample stack renders no %s", kind)
		}
	}
	for kind, o := range objs {
		if o.GetNamespace() != testNamespace {
			t.Errorf("%s namespace = %q", kind, o.GetNamespace())
		}
		refs := o.GetOwnerReferences()
		if len(refs) != 1 {
			t.Errorf("%s has %d owner references, want 1", kind, len(refs))
			continue
		}
		r := refs[0]
		if r.APIVersion != "auth.leanauth.dev/v1alpha1" || r.Kind != "AuthStack" || r.Name != testName || r.UID != testUID {
			t.Errorf("%s owner = %+v", kind, r)
		}
		if !ptr.Deref(r.Controller, false) {
			t.Errorf("%s owner reference is not the controller", kind)
		}
		if !ptr.Deref(r.BlockOwnerDeletion, false) {
			t.Errorf("%s owner reference does not block owner deletion", kind)
		}
		if o.GetLabels()[LabelInstance] != testName {
			t.Errorf("%s labels = %v", kind, o.GetLabels())
		}
	}
	if refs := PepperSecret(s, []byte("x")).OwnerReferences; len(refs) != 0 {
		t.Errorf("pepper Secret owner references = %+v, want none", refs)
	}
}

// TestRenderDeterministic renders every object twice, from the same stack and from a
// deep copy, and requires deeply equal objects and byte-identical JSON.
func TestRenderDeterministic(t *testing.T) {
	for _, v := range stackVariants {
		t.Run(v.name, func(t *testing.T) {
			s := v.stack()
			a, b := ownedObjects(s), ownedObjects(s.DeepCopy())
			if !reflect.DeepEqual(a, b) {
				t.Error("two renders differ")
			}
			for _, kind := range sortedKeys(a) {
				ja, jb := mustJSON(t, a[kind]), mustJSON(t, b[kind])
				if !bytes.Equal(ja, jb) {
					t.Errorf("%s serializes differently:\n%s\n%s", kind, ja, jb)
				}
			}
			if pa, pb := mustJSON(t, PepperSecret(s, []byte("p"))), mustJSON(t, PepperSecret(s.DeepCopy(), []byte("p"))); !bytes.Equal(pa, pb) {
				t.Error("PepperSecret serializes differently")
			}
		})
	}
}

// TestRenderDoesNotMutateStack: builders read the stack (a cached object) and never write it.
func TestRenderDoesNotMutateStack(t *testing.T) {
	s := withPodTemplate(sampleStack())
	before := mustJSON(t, s)
	objs := ownedObjects(s)
	_ = PepperSecret(s, []byte("p"))
	_ = ReferencedSecrets(s)
	if after := mustJSON(t, s); !bytes.Equal(before, after) {
		t.Errorf("rendering changed the AuthStack:\n%s\n%s", before, after)
	}
	// Every object carries its type, which server-side apply needs.
	for _, kind := range sortedKeys(objs) {
		raw := mustJSON(t, objs[kind])
		var generic map[string]any
		if err := json.Unmarshal(raw, &generic); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if generic["apiVersion"] == nil || generic["kind"] == nil {
			t.Errorf("%s renders no apiVersion/kind", kind)
		}
	}
}
