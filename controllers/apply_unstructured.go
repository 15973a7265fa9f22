package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/leanauth/authstack/controllers/resources"
)

// applyUnstructured is apply for kinds the scheme does not know (the Prometheus
// Operator's ServiceMonitor and PrometheusRule), with the same guarantee: no
// write when the fields we own already hold what we want. Without Go types there
// is no schema to extract our fields with, so "nothing changed" means:
//   - our field manager has applied this object before;
//   - every value we render is in the live object (maps compared key by key, so
//     server-side defaults and other managers' fields are ignored; lists element
//     by element, same length);
//   - every field we own (a path of field names only) is one we still render, so
//     a label dropped from the spec is noticed and removed by the apply.
func (a *applier) applyUnstructured(ctx context.Context, desired *unstructured.Unstructured) (bool, error) {
	gvk := desired.GroupVersionKind()
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(gvk)
	err := a.client.Get(ctx, client.ObjectKeyFromObject(desired), live)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false, fmt.Errorf("reading %s %s: %w", gvk.Kind, desired.GetName(), err)
	default:
		same, err := unstructuredMatches(live, desired)
		if err != nil {
			return false, fmt.Errorf("comparing %s %s: %w", gvk.Kind, desired.GetName(), err)
		}
		if same {
			return false, nil
		}
	}
	body := desired.DeepCopy()
	delete(body.Object, "status")
	pruneNulls(body.Object)
	if err := a.client.Patch(ctx, body, client.Apply, client.FieldOwner(resources.FieldOwner), client.ForceOwnership); err != nil { //nolint:staticcheck // no typed apply configurations for these kinds
		return false, fmt.Errorf("applying %s %s: %w", gvk.Kind, desired.GetName(), err)
	}
	return true, nil
}

// unstructuredMatches reports whether live already holds desired, as described
// at applyUnstructured.
func unstructuredMatches(live, desired *unstructured.Unstructured) (bool, error) {
	var owned *fieldpath.Set
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == resources.FieldOwner && mf.Operation == "Apply" && mf.Subresource == "" && mf.FieldsV1 != nil {
			owned = &fieldpath.Set{}
			if err := owned.FromJSON(mf.FieldsV1.GetRawReader()); err != nil {
				return false, err
			}
		}
	}
	if owned == nil {
		return false, nil
	}
	want, err := normalized(desired.Object)
	if err != nil {
		return false, err
	}
	have, err := normalized(live.Object)
	if err != nil {
		return false, err
	}
	delete(want, "status")
	if !contains(have, want) {
		return false, nil
	}
	stillRendered := true
	owned.Leaves().Iterate(func(p fieldpath.Path) {
		var cur any = want
		for _, pe := range p {
			if pe.FieldName == nil {
				return // a list element: compared whole above
			}
			m, ok := cur.(map[string]any)
			if !ok {
				return
			}
			if cur, ok = m[*pe.FieldName]; !ok {
				stillRendered = false
				return
			}
		}
	})
	return stillRendered, nil
}

// normalized round-trips v through JSON, so numbers compare equal whatever Go
// type they were built or decoded as.
func normalized(v map[string]any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// contains reports whether have holds every value of want: maps key by key
// (extra keys in have are fine), lists element by element with equal length,
// scalars equal.
func contains(have, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if wv == nil {
				continue
			}
			hv, ok := h[k]
			if !ok || !contains(hv, wv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !contains(h[i], w[i]) {
				return false
			}
		}
		return true
	default:
		return equality.Semantic.DeepEqual(have, want)
	}
}
