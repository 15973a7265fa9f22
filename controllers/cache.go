package controllers

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/leanauth/authstack/controllers/resources"
)

// CacheOptions are the informer cache settings of the manager (cmd/manager): the
// operator caches only what it manages, so its memory follows the number of stacks,
// not the size of the cluster.
//   - Every kind it creates is cached only with its managed-by label.
//   - Secrets are cached whole-cluster (or per watched namespace), but as metadata only
//     (SetupWithManager asks for OnlyMetadata) and stripped of annotations and managed
//     fields: a referenced Secret is the user's and carries no label of ours, and a
//     Secret written by `kubectl apply` carries its whole content in the
//     kubectl.kubernetes.io/last-applied-configuration annotation. Their values are
//     read uncached (uncachedConfig, observe.go). ConfigMaps likewise.
//
// namespaces limits the cache to the watched namespaces (nil: all).
func CacheOptions(namespaces []string) cache.Options {
	opts := cache.Options{ByObject: map[client.Object]cache.ByObject{}}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = make(map[string]cache.Config, len(namespaces))
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	managed := labels.SelectorFromSet(labels.Set{resources.LabelManagedBy: resources.FieldOwner})
	for _, obj := range []client.Object{
		&appsv1.Deployment{}, &appsv1.StatefulSet{}, &corev1.Service{}, &corev1.Pod{},
		&autoscalingv2.HorizontalPodAutoscaler{}, &policyv1.PodDisruptionBudget{},
		&networkingv1.Ingress{}, &networkingv1.NetworkPolicy{}, &batchv1.Job{}, &batchv1.CronJob{},
	} {
		opts.ByObject[obj] = cache.ByObject{Label: managed}
	}
	opts.ByObject[&corev1.ConfigMap{}] = cache.ByObject{Label: managed, Transform: StripCachedMetadata}
	opts.ByObject[&corev1.Secret{}] = cache.ByObject{Transform: StripCachedMetadata}
	return opts
}

// StripCachedMetadata drops the annotations and managed fields of an object before the
// cache stores it. The operator reads neither from cached Secrets or ConfigMaps.
func StripCachedMetadata(in any) (any, error) {
	if obj, err := meta.Accessor(in); err == nil {
		obj.SetAnnotations(nil)
		obj.SetManagedFields(nil)
	}
	return in, nil
}
