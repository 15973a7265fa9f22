package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// unit is what one part of a component renders: the objects to apply (in order: what
// a workload reads comes before the workload), the one-shot objects to create once and
// never change, and the objects the spec turned off. Units are applied independently:
// one that fails never stops another.
type unit struct {
	// condition is the condition type a failure is reported on ("" for Ready only).
	condition string
	// field is the spec field the unit renders, for the failure message.
	field   string
	desired []client.Object
	create  []client.Object
	absent  []client.Object
	// handOver are fields applied once under handOverOwner, without force, before
	// desired: the operator passes them on to another manager (replicasHandOver).
	handOver []*unstructured.Unstructured
}

// handOverOwner is the field manager of the fields the operator passes on.
const handOverOwner = resources.FieldOwner + "-handover"

// failure is a unit the API server refused.
type failure struct {
	condition, field string
	err              error
}

func (f failure) message() string { return f.field + ": " + redactedApplyError(f.err) }

// applyUnits applies every unit. Inside a unit the first error stops the rest (a
// workload is never rolled to read a configuration that was refused); across units
// nothing stops: each failure is returned for its condition.
func (r *AuthStackReconciler) applyUnits(ctx context.Context, stack *authv1alpha1.AuthStack, units []unit) []failure {
	var failures []failure
	for _, u := range units {
		if err := r.applyUnit(ctx, stack, u); err != nil {
			failures = append(failures, failure{condition: u.condition, field: u.field, err: err})
		}
	}
	return failures
}

func (r *AuthStackReconciler) applyUnit(ctx context.Context, stack *authv1alpha1.AuthStack, u unit) error {
	for _, obj := range u.absent {
		if err := r.deleteOwned(ctx, stack, obj); err != nil {
			return err
		}
	}
	for _, obj := range u.handOver {
		// A conflict means the object moved since it was read (a stale cache, or the
		// HPA took the field): the rest of the unit must wait for a fresh read, since
		// applying it would drop a field the hand-over did not secure.
		err := r.Patch(ctx, obj, client.Apply, client.FieldOwner(handOverOwner)) //nolint:staticcheck // like apply
		if err != nil {
			return fmt.Errorf("handing over %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	for _, obj := range u.desired {
		wrote, err := r.applier.apply(ctx, obj)
		if err != nil {
			return err
		}
		if wrote {
			log.FromContext(ctx).V(1).Info("applied", "kind", fmt.Sprintf("%T", obj), "name", obj.GetName())
			traceWrite(ctx, obj)
		}
	}
	for _, obj := range u.create {
		if err := r.createOnce(ctx, stack, obj); err != nil {
			return err
		}
	}
	return nil
}

// createOnce creates obj unless it exists (read through the cache: no write at rest).
// A one-shot object (a Job) is never updated: its name says what it runs.
func (r *AuthStackReconciler) createOnce(ctx context.Context, stack *authv1alpha1.AuthStack, obj client.Object) error {
	live := obj.DeepCopyObject().(client.Object)
	err := r.Get(ctx, client.ObjectKeyFromObject(obj), live)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading %T %s: %w", obj, obj.GetName(), err)
	}
	if err := r.Create(ctx, obj); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
	}
	r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, "JobCreated", "Create", "created the one-shot Job %q", obj.GetName())
	return nil
}

// deleteOwned deletes obj if it exists and this stack controls it (with its pods, for a Job).
func (r *AuthStackReconciler) deleteOwned(ctx context.Context, stack *authv1alpha1.AuthStack, obj client.Object) error {
	if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.UID != stack.UID {
		return nil
	}
	err := r.Delete(ctx, obj, client.Preconditions{UID: ptr.To(obj.GetUID())}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

// metaOnly is an object of kind to delete by name, read through the metadata cache (so
// deleting a Secret or ConfigMap never caches their contents).
func metaOnly(stack *authv1alpha1.AuthStack, kind, name string) client.Object {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: stack.Namespace, Name: name},
	}
}

// named sets the name and namespace of an empty typed object, to delete it.
func named(stack *authv1alpha1.AuthStack, obj client.Object, name string) client.Object {
	obj.SetName(name)
	obj.SetNamespace(stack.Namespace)
	return obj
}

// uncachedConfig reads Secrets, ConfigMaps and PersistentVolumeClaims straight from the
// API server and everything else through the cache: the manager never caches them.
type uncachedConfig struct {
	client.Client
	reader client.Reader
}

func (c uncachedConfig) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	switch obj.(type) {
	case *corev1.Secret, *corev1.ConfigMap, *corev1.PersistentVolumeClaim:
		return c.reader.Get(ctx, key, obj, opts...)
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// redactedApplyError is the text of an apply error for a condition. API server errors
// name objects and fields, never Secret values (the operator never sends any).
func redactedApplyError(err error) string {
	msg := err.Error()
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	return msg
}

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
