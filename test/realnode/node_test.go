//go:build realnode

package realnode

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// The node itself: a pod under Pod Security "restricted" really runs (its
// process is on the host, in the pod's cgroup, and answers on the pod's
// address), a Service routes to it by its DNS name from another pod, and a
// NetworkPolicy blocks and then allows that traffic, all by real packets.
func TestRealNodePodServiceDNSAndNetworkPolicy(t *testing.T) {
	ns := NewNamespace(t, "node")
	ctx := Ctx(t)

	// Pod Security "restricted" is enforced: a pod without the restricted
	// security context is refused.
	loose := AgentPod(ns, "loose", nil)
	loose.Spec.Containers[0].SecurityContext = nil
	if err := env.c.Create(ctx, loose); err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("a pod without a restricted security context: want Forbidden by PodSecurity restricted, got %v", err)
	}

	web := StartAgent(t, ns, "web", map[string]string{"app": "web"})
	procs := HostProcesses(string(web.Pod.UID))
	if !containsWith(procs, "serve :8080") {
		t.Fatalf("no host process of pod web runs netcheck serve; processes in its cgroups: %q", procs)
	}
	status, body, err := httpGet(fmt.Sprintf("http://%s:%d/", web.Pod.Status.PodIP, AgentPort))
	if err != nil || status != 200 || !strings.Contains(body, "ok web") {
		t.Fatalf("GET the web pod at its address %s: %d %q %v", web.Pod.Status.PodIP, status, body, err)
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(AgentPort)}},
		},
	}
	if err := env.c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	client := StartAgent(t, ns, "client", map[string]string{"app": "client"})
	other := StartAgent(t, ns, "other", map[string]string{"app": "other"})

	fqdn := "web." + ns + ".svc.cluster.local"
	Eventually(t, 60*time.Second, "DNS answers "+fqdn+" with the Service's address", func() error {
		addrs, err := client.Resolve(fqdn)
		if err != nil {
			return err
		}
		if addrs != svc.Spec.ClusterIP {
			return fmt.Errorf("got %q, want %s", addrs, svc.Spec.ClusterIP)
		}
		return nil
	})
	for _, u := range []string{"http://web/", "http://" + fqdn + "/"} {
		Eventually(t, 60*time.Second, "client GET "+u+" through the Service", func() error {
			body, err := client.Get(u)
			if err != nil {
				return err
			}
			if !strings.Contains(body, "ok web") {
				return fmt.Errorf("body %q is not the web pod's", body)
			}
			return nil
		})
	}

	// Default deny: nothing reaches web, through the Service or at its address.
	denyAll := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-default-deny"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	if err := env.c.Create(ctx, denyAll); err != nil {
		t.Fatal(err)
	}
	webAddr := fmt.Sprintf("%s:%d", web.Pod.Status.PodIP, AgentPort)
	svcAddr := fqdn + ":80"
	client.ExpectBlocked(t, svcAddr)
	client.ExpectBlocked(t, webAddr)
	other.ExpectBlocked(t, webAddr)
	// The kubelet's readiness probe still reaches it (the node's own traffic is allowed).
	WaitPodReady(t, ns, "web", 30*time.Second)

	// Then allow the client pods only, on the serving port.
	allow := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-allow-client"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(AgentPort))}},
			}},
		},
	}
	if err := env.c.Create(ctx, allow); err != nil {
		t.Fatal(err)
	}
	client.ExpectReach(t, svcAddr)
	client.ExpectReach(t, webAddr)
	other.ExpectBlocked(t, webAddr)
	other.ExpectBlocked(t, svcAddr)
	if _, err := client.Get("http://web/"); err != nil {
		t.Fatalf("client GET http://web/ after the allow policy: %v", err)
	}

	// With both policies gone, web is open to every pod again.
	for _, p := range []*networkingv1.NetworkPolicy{denyAll, allow} {
		if err := env.c.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	other.ExpectReach(t, webAddr)
}

func containsWith(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
