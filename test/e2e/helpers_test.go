//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// namespace creates a fresh namespace for one test and deletes it at the end.
func namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.c.Create(ctx(t), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		// Delete the stacks first and wait for the namespace to be gone, so nothing of this
		// test (the operator reacting to its namespace being emptied) runs into the next one.
		c := context.Background()
		_ = env.c.DeleteAllOf(c, &authv1alpha1.AuthStack{}, client.InNamespace(name))
		_ = env.c.Delete(c, ns)
		_ = poll(2*time.Minute, func() (bool, error) {
			err := env.c.Get(c, client.ObjectKey{Name: name}, &corev1.Namespace{})
			return apierrors.IsNotFound(err), nil
		})
	})
	return name
}

// userSecrets creates the Secrets a stack references: a database URL and an
// SMTP password (values are placeholders: nothing connects in these tests).
func userSecrets(t *testing.T, ns string) {
	t.Helper()
	for name, data := range map[string]map[string]string{
		"db":   {"url": "postgres://authstack:pw-e2e@postgres.databases.svc:5432/auth?sslmode=disable"},
		"smtp": {"password": "smtp-e2e"},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
		if err := env.c.Create(ctx(t), s); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating Secret %s: %v", name, err)
		}
	}
}

// fullStack is an AuthStack using every tier the operator can run itself:
// the authserver with its HPA, the pgbouncer pooler, a managed Redis
// StatefulSet, an Ingress with TLS and NetworkPolicies.
func fullStack(ns, name string) *authv1alpha1.AuthStack {
	return &authv1alpha1.AuthStack{
		TypeMeta:   metav1.TypeMeta{APIVersion: authv1alpha1.GroupVersion.String(), Kind: "AuthStack"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: authv1alpha1.AuthStackSpec{
			AuthServer: authv1alpha1.AuthServerSpec{
				FrontendURL: "https://app.example.com",
				LogLevel:    "info",
			},
			Database: authv1alpha1.DatabaseSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "db", Key: "url"}},
			SMTP: authv1alpha1.SMTPSpec{Host: "smtp.example.com", Port: 587, Username: "mailer",
				PasswordSecretRef: &authv1alpha1.SecretKeyRef{Name: "smtp", Key: "password"}},
			Ingress: authv1alpha1.IngressSpec{Enabled: true, Host: "auth.example.com",
				TLS: &authv1alpha1.IngressTLS{ClusterIssuer: "letsencrypt"}},
		},
	}
}

func getStack(t *testing.T, ns, name string) *authv1alpha1.AuthStack {
	t.Helper()
	s := &authv1alpha1.AuthStack{}
	if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		t.Fatalf("reading AuthStack %s/%s: %v", ns, name, err)
	}
	return s
}

// updateStack applies change to the current AuthStack and updates it, again
// on a conflict: the operator writes the object's status (and finalizer)
// between a read and an update.
func updateStack(t *testing.T, ns, name string, change func(*authv1alpha1.AuthStack)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := getStack(t, ns, name)
		change(s)
		return env.c.Update(ctx(t), s)
	})
	if err != nil {
		t.Fatalf("updating AuthStack %s/%s: %v", ns, name, err)
	}
}

// waitReady waits until the stack is Ready for its current generation.
func waitReady(t *testing.T, ns, name string, timeout time.Duration) *authv1alpha1.AuthStack {
	t.Helper()
	var last *authv1alpha1.AuthStack
	err := poll(timeout, func() (bool, error) {
		s := &authv1alpha1.AuthStack{}
		if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			return false, nil
		}
		last = s
		c := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == s.Generation &&
			s.Status.ObservedGeneration == s.Generation, nil
	})
	if err != nil {
		t.Fatalf("AuthStack %s/%s not Ready after %s; status: %+v", ns, name, timeout, statusOf(last))
	}
	return last
}

func statusOf(s *authv1alpha1.AuthStack) any {
	if s == nil {
		return nil
	}
	var conds []string
	for _, c := range s.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s(%s: %s, gen %d)", c.Type, c.Status, c.Reason, c.Message, c.ObservedGeneration))
	}
	return fmt.Sprintf("generation %d observed %d conditions %s", s.Generation, s.Status.ObservedGeneration, strings.Join(conds, "; "))
}

// poll calls f every 250 ms until it says done, returns an error, or timeout.
func poll(timeout time.Duration, f func() (bool, error)) error {
	return pollEvery(250*time.Millisecond, timeout, f)
}

// pollEvery is poll with another interval.
func pollEvery(interval, timeout time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		time.Sleep(interval)
	}
}

func pepperBytes(t *testing.T, ns string, stack *authv1alpha1.AuthStack) []byte {
	t.Helper()
	s := &corev1.Secret{}
	if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: resources.PepperSecretName(stack)}, s); err != nil {
		t.Fatalf("reading the pepper Secret: %v", err)
	}
	b := s.Data[resources.PepperSecretKey]
	if len(b) == 0 {
		t.Fatalf("pepper Secret has no %q key", resources.PepperSecretKey)
	}
	return b
}

// childKinds are the kinds the operator owns, listed for snapshots and GC checks.
func childLists() map[string]client.ObjectList {
	return map[string]client.ObjectList{
		"Deployment":              &appsv1.DeploymentList{},
		"StatefulSet":             &appsv1.StatefulSetList{},
		"Service":                 &corev1.ServiceList{},
		"Secret":                  &corev1.SecretList{},
		"ConfigMap":               &corev1.ConfigMapList{},
		"HorizontalPodAutoscaler": &autoscalingv2.HorizontalPodAutoscalerList{},
		"PodDisruptionBudget":     &policyv1.PodDisruptionBudgetList{},
		"Ingress":                 &networkingv1.IngressList{},
		"NetworkPolicy":           &networkingv1.NetworkPolicyList{},
		"Job":                     &batchv1.JobList{},
		"CronJob":                 &batchv1.CronJobList{},
	}
}

// statusWrittenByControllers are the kinds whose status the cluster's
// controllers keep writing.
var statusWrittenByControllers = map[string]bool{
	"Deployment": true, "StatefulSet": true, "HorizontalPodAutoscaler": true, "PodDisruptionBudget": true,
	"Ingress": true, "Job": true, "CronJob": true,
}

// child is what a snapshot records of one object.
type child struct {
	Kind, Name      string
	Generation      int64
	ResourceVersion string
	Owned           bool // controller owner reference to the stack
	OperatorTime    string
}

// children lists every object in ns (of the kinds the operator renders)
// that the stack owns or that carries its instance label.
func children(t *testing.T, ns string, stack *authv1alpha1.AuthStack) map[string]child {
	t.Helper()
	out := map[string]child{}
	for kind, list := range childLists() {
		if err := env.c.List(ctx(t), list, client.InNamespace(ns)); err != nil {
			t.Fatalf("listing %s: %v", kind, err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			o := it.(client.Object)
			owned := false
			for _, r := range o.GetOwnerReferences() {
				if r.UID == stack.UID && ptr.Deref(r.Controller, false) {
					owned = true
				}
			}
			if !owned && o.GetLabels()[resources.LabelInstance] != stack.Name {
				continue
			}
			opTime := ""
			for _, mf := range o.GetManagedFields() {
				if mf.Manager == resources.FieldOwner && mf.Time != nil {
					opTime += string(mf.Operation) + "@" + mf.Time.UTC().Format(time.RFC3339) + mf.Subresource + " "
				}
			}
			rv := o.GetResourceVersion()
			if statusWrittenByControllers[kind] {
				// Their status is the cluster's business (the HPA controller rewrites
				// its conditions, for one); spec changes show in the generation and
				// operator writes in its managed-fields entries.
				rv = ""
			}
			out[kind+"/"+o.GetName()] = child{Kind: kind, Name: o.GetName(), Generation: o.GetGeneration(),
				ResourceVersion: rv, Owned: owned, OperatorTime: opTime}
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// podsByComponent counts the stack's pods that are Running and Ready, by component.
func podsByComponent(t *testing.T, ns, instance string) (running map[string]int, all []corev1.Pod) {
	t.Helper()
	var pods corev1.PodList
	if err := env.c.List(ctx(t), &pods, client.InNamespace(ns), client.MatchingLabels{resources.LabelInstance: instance}); err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	running = map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				running[p.Labels[resources.LabelComponent]]++
			}
		}
	}
	return running, pods.Items
}
