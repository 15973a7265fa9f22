package resources

import (
	"net/url"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The component labels of the backup Jobs (controllers/resources/backup.go): the
// NetworkPolicies let them reach the managed PostgreSQL and Redis.
const (
	backupPostgresComponent = "backup-postgres"
	backupRedisComponent    = "backup-redis"
	dnsPort                 = 53
)

// NetworkPolicyPorts are the ports of external endpoints, read from their URLs.
type NetworkPolicyPorts struct {
	// Database is the external database's port (the managed one is PostgresPort).
	Database int
	// Redis is the external Redis's port.
	Redis int
	// ErrorReporting is the port of the Sentry DSN (spec.observability.errorReporting).
	ErrorReporting int
}

// ExternalRedisPort reads the port of a redis:// URL (6379 when absent or unreadable).
func ExternalRedisPort(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		return RedisPort
	}
	if p, err := strconv.Atoi(u.Port()); err == nil && p > 0 && p < 65536 {
		return p
	}
	return RedisPort
}

// NetworkPoliciesEnabled says whether the stack renders NetworkPolicies (the default).
func NetworkPoliciesEnabled(stack *authv1alpha1.AuthStack) bool {
	return ptr.Deref(stack.Spec.NetworkPolicy.Enabled, authv1alpha1.DefaultNetworkPolicyEnabled)
}

// networkPolicyNames are every NetworkPolicy a stack can have, by the component it selects.
func networkPolicyNames(stack *authv1alpha1.AuthStack) map[string]string {
	return map[string]string{
		ComponentAuthServer:     AuthServerName(stack),
		ComponentPgBouncer:      PgBouncerName(stack),
		ComponentRedis:          RedisName(stack),
		ComponentRedisBootstrap: RedisBootstrapName(stack),
		ComponentPostgres:       PostgresName(stack),
	}
}

// AbsentNetworkPolicies names the NetworkPolicies the stack does not render now (to
// delete ones rendered before).
func AbsentNetworkPolicies(stack *authv1alpha1.AuthStack, ports NetworkPolicyPorts) []string {
	present := map[string]bool{}
	for _, np := range NetworkPolicies(stack, ports) {
		present[np.Name] = true
	}
	var out []string
	names := networkPolicyNames(stack)
	for _, c := range sortedKeys(names) {
		if !present[names[c]] {
			out = append(out, names[c])
		}
	}
	return out
}

// NetworkPolicies renders the firewall (docs/data-tier.md, "NetworkPolicies"): one
// policy per component, each denying every ingress and egress it does not allow.
//   - authserver: in from the ingress controller (http) and monitoring (metrics); out to
//     DNS, pgbouncer, the database (migrations), Redis, the SMTP port and, when
//     spec.observability sends them, the ports of the OTLP receiver and Sentry.
//   - pgbouncer: in from the authserver only; out to DNS and the database.
//   - Redis: in from the authserver, its backup Job and the restore Job (and, in cluster mode, the other
//     nodes and the bootstrap Job); out to DNS (and the other nodes).
//   - managed PostgreSQL: in from pgbouncer, the authserver (its migration init container)
//     the backup Job, the pepper count Job and the restore Job; no egress.
//
// An external database or Redis, the OTLP receiver and Sentry are reached on their
// port at any address: the address is outside the stack and may change. A
// CloudNativePG Cluster is reached at its pods (cnpg.io/cluster=<name>) on the port of
// its Secret, and its Pooler, when the authserver uses it, at cnpg.io/poolerName=<name>.
func NetworkPolicies(stack *authv1alpha1.AuthStack, ports NetworkPolicyPorts) []*networkingv1.NetworkPolicy {
	if !NetworkPoliciesEnabled(stack) {
		return nil
	}
	spec := stack.Spec.NetworkPolicy
	pods := func(component string) []networkingv1.NetworkPolicyPeer {
		return []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
			LabelInstance: stack.Name, LabelComponent: component,
		}}}}
	}
	dns := networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{
		port(corev1.ProtocolUDP, dnsPort), port(corev1.ProtocolTCP, dnsPort),
	}}
	dbPort := ports.Database
	if dbPort == 0 {
		dbPort = PostgresPort
	}
	// To the database: the managed pods, the CloudNativePG Cluster's pods, or the external port anywhere.
	toDatabase := networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, dbPort)}}
	cnpg := CloudNativePG(stack)
	switch {
	case ManagedDatabase(stack):
		toDatabase = networkingv1.NetworkPolicyEgressRule{To: pods(ComponentPostgres), Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, PostgresPort)}}
	case cnpg != nil:
		toDatabase.To = cnpgPods(LabelCNPGCluster, cnpg.Cluster)
	}

	var out []*networkingv1.NetworkPolicy

	// authserver
	monitoringNS := spec.MonitoringNamespaceSelector
	if monitoringNS == nil {
		monitoringNS = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}
	}
	authEgress := []networkingv1.NetworkPolicyEgressRule{dns}
	if PoolerEnabled(stack) {
		authEgress = append(authEgress, networkingv1.NetworkPolicyEgressRule{To: pods(ComponentPgBouncer),
			Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, PgBouncerPort)}})
	}
	authEgress = append(authEgress, toDatabase)
	if cnpg != nil && cnpg.Pooler != "" && !PoolerEnabled(stack) {
		authEgress = append(authEgress, networkingv1.NetworkPolicyEgressRule{To: cnpgPods(LabelCNPGPooler, cnpg.Pooler),
			Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, CNPGPoolerPort)}})
	}
	if ManagedRedis(stack) {
		authEgress = append(authEgress, networkingv1.NetworkPolicyEgressRule{To: pods(ComponentRedis),
			Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, RedisPort)}})
	} else {
		rp := ports.Redis
		if rp == 0 {
			rp = RedisPort
		}
		authEgress = append(authEgress, networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, rp)}})
	}
	smtpPort := int(stack.Spec.SMTP.Port)
	if smtpPort == 0 {
		smtpPort = 587
	}
	authEgress = append(authEgress, networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, smtpPort)}})
	if ps := observabilityPorts(stack, ports); len(ps) > 0 { // observability.go
		rule := networkingv1.NetworkPolicyEgressRule{}
		for _, p := range ps {
			rule.Ports = append(rule.Ports, port(corev1.ProtocolTCP, p))
		}
		authEgress = append(authEgress, rule)
	}
	var authIngress []networkingv1.NetworkPolicyIngressRule
	// A rule without peers would admit everyone: with no edge configured, none.
	if edge := EdgePeers(stack); len(edge) > 0 {
		authIngress = append(authIngress, networkingv1.NetworkPolicyIngressRule{From: edge,
			Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, AuthServerHTTPPort), port(corev1.ProtocolTCP, AuthServerGRPCAuthzPort)}})
	}
	authIngress = append(authIngress, networkingv1.NetworkPolicyIngressRule{
		From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: monitoringNS.DeepCopy(), PodSelector: spec.MonitoringPodSelector.DeepCopy()}},
		Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, AuthServerMetricsPort)}})
	out = append(out, networkPolicy(stack, AuthServerName(stack), ComponentAuthServer, authIngress, authEgress))

	// pgbouncer
	if PoolerEnabled(stack) {
		out = append(out, networkPolicy(stack, PgBouncerName(stack), ComponentPgBouncer,
			[]networkingv1.NetworkPolicyIngressRule{{From: pods(ComponentAuthServer),
				Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, PgBouncerPort)}}},
			[]networkingv1.NetworkPolicyEgressRule{dns, toDatabase}))
	}

	// Redis
	if ManagedRedis(stack) {
		redisPort := []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, RedisPort)}
		ingress := []networkingv1.NetworkPolicyIngressRule{
			{From: pods(ComponentAuthServer), Ports: redisPort},
			{From: pods(backupRedisComponent), Ports: redisPort},
			{From: pods(ComponentRestore), Ports: redisPort}, // flushes the session cache (restore.go)
		}
		egress := []networkingv1.NetworkPolicyEgressRule{dns}
		if RedisClusterMode(stack) {
			both := []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, RedisPort), port(corev1.ProtocolTCP, RedisBusPort)}
			ingress = append(ingress,
				networkingv1.NetworkPolicyIngressRule{From: pods(ComponentRedis), Ports: both},
				networkingv1.NetworkPolicyIngressRule{From: pods(ComponentRedisBootstrap), Ports: redisPort})
			egress = append(egress, networkingv1.NetworkPolicyEgressRule{To: pods(ComponentRedis), Ports: both})
			out = append(out, networkPolicy(stack, RedisBootstrapName(stack), ComponentRedisBootstrap, nil,
				[]networkingv1.NetworkPolicyEgressRule{dns, {To: pods(ComponentRedis), Ports: redisPort}}))
		}
		out = append(out, networkPolicy(stack, RedisName(stack), ComponentRedis, ingress, egress))
	}

	// managed PostgreSQL
	if ManagedDatabase(stack) {
		pg := []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, PostgresPort)}
		out = append(out, networkPolicy(stack, PostgresName(stack), ComponentPostgres,
			[]networkingv1.NetworkPolicyIngressRule{
				{From: pods(ComponentPgBouncer), Ports: pg},
				{From: pods(ComponentAuthServer), Ports: pg},
				{From: pods(backupPostgresComponent), Ports: pg},
				{From: pods(ComponentBackupVerify), Ports: pg}, // the restore drill (drill.go)
				{From: pods(ComponentPepperCount), Ports: pg},
				{From: pods(ComponentRestore), Ports: pg},
				{From: pods(ComponentDBRotate), Ports: pg}, // the password rotation (dbrotation.go)
			}, nil))
	}
	return out
}

// cnpgPods selects the pods CloudNativePG labels key=value in the stack's namespace.
func cnpgPods(key, value string) []networkingv1.NetworkPolicyPeer {
	return []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}}}}
}

// ingressNginxNamespace is where ingress-nginx installs itself (its manifests and chart).
const ingressNginxNamespace = "ingress-nginx"

// EdgePeers are the peers admitted to the authserver's http port: the proxies that
// route to it or call /auth/check for the apps they protect, as configured.
//   - the ingress controller of spec.networkPolicy's selectors; without them, the
//     ingress-nginx namespace for ingress.className nginx only;
//   - the Gateway data plane of the gateway selectors; without them, while
//     gateway.enabled, the namespaces of gateway.parentRefs;
//   - every CIDR of allowedIPBlocks.
func EdgePeers(stack *authv1alpha1.AuthStack) []networkingv1.NetworkPolicyPeer {
	spec := stack.Spec.NetworkPolicy
	var peers []networkingv1.NetworkPolicyPeer
	switch {
	case spec.IngressControllerNamespaceSelector != nil || spec.IngressControllerPodSelector != nil:
		peers = append(peers, networkingv1.NetworkPolicyPeer{
			NamespaceSelector: spec.IngressControllerNamespaceSelector.DeepCopy(), PodSelector: spec.IngressControllerPodSelector.DeepCopy()})
	case stack.Spec.Ingress.Enabled && stack.Spec.Ingress.ClassName == IngressClassNginx:
		peers = append(peers, networkingv1.NetworkPolicyPeer{NamespaceSelector: namespacesNamed(ingressNginxNamespace)})
	}
	switch {
	case spec.GatewayNamespaceSelector != nil || spec.GatewayPodSelector != nil:
		peers = append(peers, networkingv1.NetworkPolicyPeer{
			NamespaceSelector: spec.GatewayNamespaceSelector.DeepCopy(), PodSelector: spec.GatewayPodSelector.DeepCopy()})
	case GatewayEnabled(stack):
		peers = append(peers, networkingv1.NetworkPolicyPeer{NamespaceSelector: namespacesNamed(GatewayNamespaces(stack)...)})
	}
	for _, b := range spec.AllowedIPBlocks {
		peers = append(peers, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: b.CIDR, Except: slices.Clone(b.Except)}})
	}
	return peers
}

// namespacesNamed selects namespaces by name (the label every namespace carries).
func namespacesNamed(names ...string) *metav1.LabelSelector {
	if len(names) == 1 {
		return &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: names[0]}}
	}
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: slices.Clone(names)}}}
}

func port(proto corev1.Protocol, p int) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(proto), Port: ptr.To(intstr.FromInt32(int32(p)))}
}

// networkPolicy selects one component's pods and allows exactly ingress and egress.
func networkPolicy(stack *authv1alpha1.AuthStack, name, component string,
	ingress []networkingv1.NetworkPolicyIngressRule, egress []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: objectMeta(stack, name, component),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: SelectorLabels(stack, component)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     ingress,
			Egress:      egress,
		},
	}
}
