package resources

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// selectorString renders a label selector as "k=v,k=v" (matchExpressions too).
func selectorString(s *metav1.LabelSelector) string {
	if s == nil {
		return ""
	}
	var parts []string
	for k, v := range s.MatchLabels {
		parts = append(parts, k+"="+v)
	}
	for _, e := range s.MatchExpressions {
		parts = append(parts, fmt.Sprintf("%s %s %v", e.Key, e.Operator, e.Values))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func peerString(t *testing.T, stack *authv1alpha1.AuthStack, p networkingv1.NetworkPolicyPeer) string {
	t.Helper()
	if p.IPBlock != nil {
		if len(p.IPBlock.Except) > 0 {
			return "ip:" + p.IPBlock.CIDR + "-" + strings.Join(p.IPBlock.Except, ",")
		}
		return "ip:" + p.IPBlock.CIDR
	}
	if p.NamespaceSelector != nil {
		s := "ns{" + selectorString(p.NamespaceSelector) + "}"
		if p.PodSelector != nil {
			s += "+pods{" + selectorString(p.PodSelector) + "}"
		}
		return s
	}
	// A pod peer of the stack: exactly its instance and a component.
	ml := p.PodSelector.MatchLabels
	if len(ml) != 2 || ml[LabelInstance] != stack.Name || len(p.PodSelector.MatchExpressions) != 0 {
		t.Errorf("pod peer %v is not one component of this stack", ml)
	}
	return "pods:" + ml[LabelComponent]
}

// flatten renders every rule of the stack's policies as "policy in|out peer proto/port".
func flatten(t *testing.T, stack *authv1alpha1.AuthStack, ports NetworkPolicyPorts) []string {
	t.Helper()
	var out []string
	for _, np := range NetworkPolicies(stack, ports) {
		component := np.Labels[LabelComponent]
		if got := np.Spec.PodSelector.MatchLabels; len(got) != 3 || got[LabelComponent] != component || got[LabelInstance] != stack.Name {
			t.Errorf("%s selects %v", np.Name, got)
		}
		if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
			t.Errorf("%s policyTypes %v: both directions must be restricted", np.Name, np.Spec.PolicyTypes)
		}
		if refs := np.OwnerReferences; len(refs) != 1 || refs[0].UID != stack.UID {
			t.Errorf("%s owner references %v", np.Name, refs)
		}
		rule := func(dir string, peers []networkingv1.NetworkPolicyPeer, ps []networkingv1.NetworkPolicyPort) {
			if len(ps) == 0 {
				t.Errorf("%s: a %s rule with no ports allows every port", np.Name, dir)
			}
			names := []string{"any"}
			if len(peers) > 0 {
				names = nil
				for _, p := range peers {
					names = append(names, peerString(t, stack, p))
				}
			}
			for _, n := range names {
				for _, p := range ps {
					out = append(out, fmt.Sprintf("%s %s %s %s/%d", component, dir, n, *p.Protocol, p.Port.IntValue()))
				}
			}
		}
		for _, r := range np.Spec.Ingress {
			rule("in", r.From, r.Ports)
		}
		for _, r := range np.Spec.Egress {
			rule("out", r.To, r.Ports)
		}
	}
	sort.Strings(out)
	return out
}

const (
	nsIngress    = "ns{kubernetes.io/metadata.name=ingress-nginx}"
	nsMonitoring = "ns{kubernetes.io/metadata.name=monitoring}"
)

func dnsRules(component string) []string {
	return []string{component + " out any UDP/53", component + " out any TCP/53"}
}

func TestNetworkPoliciesExactRules(t *testing.T) {
	managed := func() *authv1alpha1.AuthStack {
		s := sampleStack()
		s.Spec.Pooler.Enabled = nil // on
		s.Spec.Redis = authv1alpha1.RedisSpec{}
		s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
		return s
	}
	cases := []struct {
		name  string
		stack *authv1alpha1.AuthStack
		ports NetworkPolicyPorts
		want  []string
	}{
		{"managed database and Redis behind the pooler", managed(), NetworkPolicyPorts{}, slices.Concat(
			[]string{
				"authserver in " + nsIngress + " TCP/3000",
				"authserver in " + nsIngress + " TCP/9191",
				"authserver in " + nsMonitoring + " TCP/9090",
				"authserver out pods:pgbouncer TCP/6432",
				"authserver out pods:postgres TCP/5432",
				"authserver out pods:redis TCP/6379",
				"authserver out any TCP/587",
				"pgbouncer in pods:authserver TCP/6432",
				"pgbouncer out pods:postgres TCP/5432",
				"redis in pods:authserver TCP/6379",
				"redis in pods:backup-redis TCP/6379",
				"redis in pods:restore TCP/6379",
				"postgres in pods:pgbouncer TCP/5432",
				"postgres in pods:authserver TCP/5432",
				"postgres in pods:backup-postgres TCP/5432",
				"postgres in pods:backup-verify TCP/5432",
				"postgres in pods:pepper-count TCP/5432",
				"postgres in pods:db-rotate TCP/5432",
				"postgres in pods:restore TCP/5432",
			}, dnsRules("authserver"), dnsRules("pgbouncer"), dnsRules("redis"))},
		{"external database and Redis, no pooler", sampleStack(), NetworkPolicyPorts{Database: 6543, Redis: 6380}, slices.Concat(
			[]string{
				"authserver in " + nsIngress + " TCP/3000",
				"authserver in " + nsIngress + " TCP/9191",
				"authserver in " + nsMonitoring + " TCP/9090",
				"authserver out any TCP/6543",
				"authserver out any TCP/6380",
				"authserver out any TCP/587",
			}, dnsRules("authserver"))},
		{"Redis cluster, external database behind the pooler, custom selectors and SMTP port", func() *authv1alpha1.AuthStack {
			s := sampleStack()
			s.Spec.Pooler.Enabled = ptr.To(true)
			s.Spec.Redis = authv1alpha1.RedisSpec{Mode: authv1alpha1.RedisCluster, Shards: 3, ReplicasPerShard: 1}
			s.Spec.SMTP.Port = 465
			s.Spec.NetworkPolicy = authv1alpha1.NetworkPolicySpec{
				IngressControllerNamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "edge"}},
				IngressControllerPodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "traefik"}},
				MonitoringNamespaceSelector:        &metav1.LabelSelector{MatchLabels: map[string]string{"team": "obs"}},
			}
			return s
		}(), NetworkPolicyPorts{Database: 5432}, slices.Concat(
			[]string{
				"authserver in ns{team=edge}+pods{app=traefik} TCP/3000",
				"authserver in ns{team=edge}+pods{app=traefik} TCP/9191",
				"authserver in ns{team=obs} TCP/9090",
				"authserver out pods:pgbouncer TCP/6432",
				"authserver out any TCP/5432",
				"authserver out pods:redis TCP/6379",
				"authserver out any TCP/465",
				"pgbouncer in pods:authserver TCP/6432",
				"pgbouncer out any TCP/5432",
				"redis in pods:authserver TCP/6379",
				"redis in pods:backup-redis TCP/6379",
				"redis in pods:restore TCP/6379",
				"redis in pods:redis TCP/6379",
				"redis in pods:redis TCP/16379",
				"redis in pods:redis-bootstrap TCP/6379",
				"redis out pods:redis TCP/6379",
				"redis out pods:redis TCP/16379",
				"redis-bootstrap out pods:redis TCP/6379",
			}, dnsRules("authserver"), dnsRules("pgbouncer"), dnsRules("redis"), dnsRules("redis-bootstrap"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := flatten(t, tc.stack, tc.ports)
			want := slices.Clone(tc.want)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("rules:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

func TestNetworkPoliciesDisabledAndAbsent(t *testing.T) {
	s := sampleStack()
	s.Spec.NetworkPolicy.Enabled = ptr.To(false)
	if nps := NetworkPolicies(s, NetworkPolicyPorts{}); len(nps) != 0 {
		t.Errorf("%d policies rendered while disabled", len(nps))
	}
	if got := AbsentNetworkPolicies(s, NetworkPolicyPorts{}); len(got) != 5 {
		t.Errorf("absent %v, want all five names", got)
	}
	s = sampleStack() // pooler off, external data tier: only the authserver's policy
	got := AbsentNetworkPolicies(s, NetworkPolicyPorts{})
	want := []string{"demo-pgbouncer", "demo-postgres", "demo-redis", "demo-redis-bootstrap"}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("absent %v, want %v", got, want)
	}
	// The postgres policy denies all egress; the bootstrap policy all ingress.
	s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
	s.Spec.Redis = authv1alpha1.RedisSpec{Mode: authv1alpha1.RedisCluster, Shards: 3}
	for _, np := range NetworkPolicies(s, NetworkPolicyPorts{}) {
		switch np.Name {
		case "demo-postgres":
			if np.Spec.Egress != nil {
				t.Errorf("postgres egress %+v, want none", np.Spec.Egress)
			}
		case "demo-redis-bootstrap":
			if np.Spec.Ingress != nil {
				t.Errorf("bootstrap ingress %+v, want none", np.Spec.Ingress)
			}
		}
	}
	if ExternalRedisPort("rediss://:pw@redis.example:6380/0") != 6380 || ExternalRedisPort("redis://redis.example") != 6379 || ExternalRedisPort("::") != 6379 {
		t.Error("ExternalRedisPort")
	}
}

// The http port admits the edge that is configured, and nothing when none is.
func TestNetworkPolicyEdgePeers(t *testing.T) {
	httpPeers := func(s *authv1alpha1.AuthStack) []string {
		var out []string
		for _, r := range flatten(t, s, NetworkPolicyPorts{}) {
			if strings.HasPrefix(r, "authserver in ") && strings.HasSuffix(r, " TCP/3000") {
				out = append(out, strings.TrimSuffix(strings.TrimPrefix(r, "authserver in "), " TCP/3000"))
			}
		}
		return out
	}
	gw := authv1alpha1.GatewaySpec{Enabled: true, ParentRefs: []authv1alpha1.GatewayParentRef{{Name: "a", Namespace: "edge"}, {Name: "b"}, {Name: "c", Namespace: "edge"}}}
	for _, tc := range []struct {
		name string
		edit func(*authv1alpha1.AuthStack)
		want []string
	}{
		{"ingress-nginx class: its namespace (as before)", func(*authv1alpha1.AuthStack) {}, []string{nsIngress}},
		{"another class without selectors: no ingress controller", func(s *authv1alpha1.AuthStack) { s.Spec.Ingress.ClassName = "traefik" }, nil},
		{"ingress off: none", func(s *authv1alpha1.AuthStack) { s.Spec.Ingress.Enabled = false }, nil},
		{"gateway: the parentRefs' namespaces", func(s *authv1alpha1.AuthStack) {
			s.Spec.Ingress.Enabled = false
			s.Spec.Gateway = gw
		}, []string{"ns{kubernetes.io/metadata.name In [edge team-a]}"}},
		{"gateway with selectors, beside ingress-nginx", func(s *authv1alpha1.AuthStack) {
			s.Spec.Gateway = gw
			s.Spec.NetworkPolicy.GatewayNamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "envoy-gateway-system"}}
			s.Spec.NetworkPolicy.GatewayPodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/component": "proxy"}}
		}, []string{nsIngress, "ns{kubernetes.io/metadata.name=envoy-gateway-system}+pods{app.kubernetes.io/component=proxy}"}},
		{"ip blocks only", func(s *authv1alpha1.AuthStack) {
			s.Spec.Ingress.Enabled = false
			s.Spec.NetworkPolicy.AllowedIPBlocks = []authv1alpha1.IPBlock{{CIDR: "10.1.0.0/16", Except: []string{"10.1.2.0/24"}}, {CIDR: "2001:db8::/64"}}
		}, []string{"ip:10.1.0.0/16-10.1.2.0/24", "ip:2001:db8::/64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sampleStack()
			tc.edit(s)
			got := httpPeers(s)
			sort.Strings(got)
			want := slices.Clone(tc.want)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("http peers = %v, want %v", got, want)
			}
			// Never a rule without peers: it would admit every source.
			for _, np := range NetworkPolicies(s, NetworkPolicyPorts{}) {
				for _, r := range np.Spec.Ingress {
					if len(r.From) == 0 {
						t.Errorf("%s has an ingress rule without peers", np.Name)
					}
				}
			}
		})
	}
}
