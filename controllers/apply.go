package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/leanauth/authstack/controllers/resources"
)

// applier writes desired objects with server-side apply under one field owner, and
// only when the fields it owns differ from what it wants: a reconcile with nothing to
// change sends no write at all. Comparing against our own managed fields (not against
// the whole live object) ignores server-side defaults and other managers' fields, so
// defaults never cause a hot loop, while a hand edit of one of our fields (which moves
// its ownership away from us) is noticed and reverted.
type applier struct {
	client    client.Client
	scheme    *runtime.Scheme
	converter managedfields.TypeConverter
}

func newApplier(c client.Client, scheme *runtime.Scheme) *applier {
	return &applier{client: c, scheme: scheme, converter: applyconfigurations.NewTypeConverter(scheme)}
}

// apply makes the cluster hold desired (a typed built-in object). It reports whether it wrote.
func (a *applier) apply(ctx context.Context, desired client.Object) (bool, error) {
	gvk, err := apiutil.GVKForObject(desired, a.scheme)
	if err != nil {
		return false, err
	}
	live, err := a.scheme.New(gvk)
	if err != nil {
		return false, err
	}
	liveObj := live.(client.Object)
	err = a.client.Get(ctx, client.ObjectKeyFromObject(desired), liveObj)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false, fmt.Errorf("reading %s %s: %w", gvk.Kind, desired.GetName(), err)
	default:
		same, err := a.ownedFieldsMatch(liveObj, desired)
		if err != nil {
			return false, fmt.Errorf("comparing %s %s: %w", gvk.Kind, desired.GetName(), err)
		}
		if same {
			return false, nil
		}
	}
	u, err := applyObject(desired, gvk.GroupVersion().String(), gvk.Kind)
	if err != nil {
		return false, err
	}
	err = a.client.Patch(ctx, u, client.Apply, client.FieldOwner(resources.FieldOwner), client.ForceOwnership) //nolint:staticcheck // typed apply configurations would need one code path per kind
	if apierrors.IsInvalid(err) && liveObj.GetResourceVersion() != "" {
		// A hand edit can leave an element we cannot remove by applying, because another
		// manager owns it (a Service port renumbered by kubectl edit makes two ports named
		// "http"). A JSON merge patch replaces such lists whole; then apply takes the fields back.
		err = a.replaceLists(ctx, u)
		if err == nil {
			err = a.client.Patch(ctx, u, client.Apply, client.FieldOwner(resources.FieldOwner), client.ForceOwnership) //nolint:staticcheck
		}
	}
	if err != nil {
		return false, fmt.Errorf("applying %s %s: %w", gvk.Kind, desired.GetName(), err)
	}
	return true, nil
}

// replaceLists sends desired as a JSON merge patch, which replaces every list it names.
func (a *applier) replaceLists(ctx context.Context, desired *unstructured.Unstructured) error {
	body, err := json.Marshal(desired.Object)
	if err != nil {
		return err
	}
	target := desired.DeepCopy()
	return a.client.Patch(ctx, target, client.RawPatch(types.MergePatchType, body), client.FieldOwner(resources.FieldOwner))
}

// ownedFieldsMatch extracts from live the fields our field manager owns and compares
// them, as typed objects (so 0.5 and 500m are the same CPU), with desired.
func (a *applier) ownedFieldsMatch(live, desired client.Object) (bool, error) {
	var entry *fieldpath.Set
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == resources.FieldOwner && mf.Operation == "Apply" && mf.Subresource == "" && mf.FieldsV1 != nil {
			entry = &fieldpath.Set{}
			if err := entry.FromJSON(mf.FieldsV1.GetRawReader()); err != nil {
				return false, err
			}
		}
	}
	if entry == nil {
		return false, nil
	}
	gvk, err := apiutil.GVKForObject(desired, a.scheme)
	if err != nil {
		return false, err
	}
	live = live.DeepCopyObject().(client.Object)
	live.GetObjectKind().SetGroupVersionKind(gvk)
	typedLive, err := a.converter.ObjectToTyped(live)
	if err != nil {
		return false, err
	}
	ownedMap, ok := typedLive.ExtractItems(entry.Leaves()).AsValue().Unstructured().(map[string]any)
	if !ok {
		return false, nil
	}
	owned, err := a.scheme.New(gvk)
	if err != nil {
		return false, err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(ownedMap, owned); err != nil {
		return false, err
	}
	want, err := applyObject(desired, gvk.GroupVersion().String(), gvk.Kind)
	if err != nil {
		return false, err
	}
	wantTyped, err := a.scheme.New(gvk)
	if err != nil {
		return false, err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(want.Object, wantTyped); err != nil {
		return false, err
	}
	ownedObj, wantObj := owned.(client.Object), wantTyped.(client.Object)
	// The extracted object always carries name and namespace, never its type; compare the rest.
	ownedObj.SetName(wantObj.GetName())
	ownedObj.SetNamespace(wantObj.GetNamespace())
	ownedObj.GetObjectKind().SetGroupVersionKind(gvk)
	wantObj.GetObjectKind().SetGroupVersionKind(gvk)
	return equality.Semantic.DeepEqual(ownedObj, wantObj), nil
}

// applyObject turns a typed object into the apply body: no status, no nulls.
func applyObject(obj client.Object, apiVersion, kind string) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s %s: %w", kind, obj.GetName(), err)
	}
	delete(m, "status")
	pruneNulls(m)
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	return u, nil
}

// pruneNulls drops null values (such as the creationTimestamp of an unset time), which
// server-side apply would otherwise read as "remove this field".
func pruneNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if e == nil {
				delete(t, k)
				continue
			}
			pruneNulls(e)
		}
	case []any:
		for _, e := range t {
			pruneNulls(e)
		}
	}
}
