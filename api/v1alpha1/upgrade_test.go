package v1alpha1_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// A stack created before the name rules existed (a 40-character name was valid
// then) can still be updated, have its status written and be deleted once the
// CRD carries them: the rules hold on create only. Simulated on the real API
// server by installing the CRD without its name rules, creating the stack, then
// putting the rules back.
func TestNameRulesApplyOnCreateOnly(t *testing.T) {
	ctx := context.Background()
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	key := client.ObjectKey{Name: "authstacks.auth.leanauth.dev"}
	rulesPath := []string{"schema", "openAPIV3Schema", "x-kubernetes-validations"}
	setRules := func(keep func(rule string) bool, all []any) {
		t.Helper()
		if err := k8sClient.Get(ctx, key, crd); err != nil {
			t.Fatal(err)
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		v := versions[0].(map[string]any)
		var rules []any
		for _, r := range all {
			if keep(r.(map[string]any)["rule"].(string)) {
				rules = append(rules, r)
			}
		}
		if err := unstructured.SetNestedSlice(v, rules, rulesPath...); err != nil {
			t.Fatal(err)
		}
		_ = unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions")
		if err := k8sClient.Update(ctx, crd); err != nil {
			t.Fatalf("updating the CRD: %v", err)
		}
	}
	if err := k8sClient.Get(ctx, key, crd); err != nil {
		t.Fatal(err)
	}
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	original, _, _ := unstructured.NestedSlice(versions[0].(map[string]any), rulesPath...)
	all := func(string) bool { return true }
	t.Cleanup(func() { setRules(all, original) })

	long := "x" + strings.Repeat("y", authv1alpha1.MaxNameLength+1) // 40 characters
	probe := "w" + long[1:]                                         // another 40-character name, never created
	acceptsLong := func() bool {
		return k8sClient.Create(ctx, authStack(probe, minimalSpec()), client.DryRunAll) == nil
	}
	waitFor := func(want bool, what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); acceptsLong() != want; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the API server never %s", what)
			}
		}
	}

	setRules(func(rule string) bool { return !strings.Contains(rule, "metadata.name") }, original)
	waitFor(true, "accepted a 40-character name without the name rules")
	stack := authStack(long, minimalSpec())
	if err := k8sClient.Create(ctx, stack); err != nil {
		t.Fatalf("creating %q without the name rules: %v", long, err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), stack) })
	setRules(all, original)
	waitFor(false, "refused a new 40-character name with the name rules back")

	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(stack), stack); err != nil {
		t.Fatal(err)
	}
	stack.SetLabels(map[string]string{"team": "a"})
	if err := k8sClient.Update(ctx, stack); err != nil {
		t.Errorf("updating the existing stack: %v", err)
	}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(stack), stack); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(stack.Object, "https://auth.example.com/auth", "status", "url"); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Status().Update(ctx, stack); err != nil {
		t.Errorf("writing the existing stack's status: %v", err)
	}
	if err := k8sClient.Delete(ctx, stack); err != nil {
		t.Errorf("deleting the existing stack: %v", err)
	}
}
