package controllers

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/leanauth/authstack/controllers/resources"
)

// TestCacheHoldsOnlyWhatTheOperatorManages: with CacheOptions (what cmd/manager uses),
// the informer cache holds Deployments only with the operator's managed-by label, and
// Secrets and ConfigMaps without annotations (last-applied-configuration carries a
// Secret's whole content) and without managed fields.
func TestCacheHoldsOnlyWhatTheOperatorManages(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	managed := map[string]string{resources.LabelManagedBy: resources.FieldOwner}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns,
		Annotations: map[string]string{lastApplied: `{"stringData":{"url":"postgres://u:SECRET@db/auth"}}`, "team": "a"}},
		StringData: map[string]string{"url": "postgres://u:SECRET@db/auth"}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "auth-redis", Namespace: ns, Labels: managed,
		Annotations: map[string]string{lastApplied: `{"data":{}}`}}}
	dep := func(name string, labels map[string]string) *appsv1.Deployment {
		sel := map[string]string{"app": name}
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: sel},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}}}
	}
	for _, o := range []client.Object{secret, cm, dep("ours", managed), dep("theirs", nil)} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	c, err := cache.New(restConfig, func() cache.Options {
		o := CacheOptions([]string{ns})
		o.Scheme = testScheme
		return o
	}())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}

	for _, o := range []*metav1.PartialObjectMetadata{
		{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}},
		{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}},
	} {
		name := map[string]string{"Secret": secret.Name, "ConfigMap": cm.Name}[o.Kind]
		eventually(t, "cached "+o.Kind, func() error { return c.Get(ctx, key(ns, name), o) })
		if len(o.Annotations) != 0 || len(o.ManagedFields) != 0 {
			t.Errorf("the cached %s keeps annotations %v and %d managed fields", o.Kind, o.Annotations, len(o.ManagedFields))
		}
	}
	var deps appsv1.DeploymentList
	eventually(t, "cached Deployments", func() error { return c.List(ctx, &deps, client.InNamespace(ns)) })
	if len(deps.Items) != 1 || deps.Items[0].Name != "ours" {
		var names []string
		for _, d := range deps.Items {
			names = append(names, d.Name)
		}
		t.Errorf("cached Deployments %v, want only the managed one", names)
	}
}
