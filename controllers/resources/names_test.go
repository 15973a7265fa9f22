package resources

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// nameModes are stacks that together turn on every builder: managed and external
// PostgreSQL, standalone, cluster and external Redis, the pooler, backups (scheduled
// and on demand), monitoring, NetworkPolicies, autoscaling and the Ingress.
var nameModes = []struct {
	name  string
	stack func() *authv1alpha1.AuthStack
}{
	{"managed postgres, cluster redis, pooler", func() *authv1alpha1.AuthStack {
		s := withBackup(clusterStack())
		s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{Version: "17"}}
		s.Spec.Pooler.Enabled = ptr.To(true)
		return s
	}},
	{"external postgres, standalone redis, pooler", func() *authv1alpha1.AuthStack {
		s := withBackup(managedRedisStack())
		s.Spec.Pooler.Enabled = ptr.To(true)
		return s
	}},
	{"external postgres and redis, own pepper, no pooler", func() *authv1alpha1.AuthStack {
		return withOwnPepper(withBackup(sampleStack()))
	}},
}

// renderEvery renders every object the operator creates or deletes for stack, through
// the same builders the reconciler calls. Deleted objects count: their names are derived
// the same way.
func renderEvery(t *testing.T, stack *authv1alpha1.AuthStack) []client.Object {
	t.Helper()
	stack.Spec.Monitoring.Enabled = ptr.To(true)
	stack.Annotations = map[string]string{AnnotationBackupNow: "2026-01-02T03:04:05Z"}
	in := sampleInputs(stack)
	in.PoolerConfigHash, in.RedisConfigHash = testHash, testHash
	db := DatabaseURL{Host: "pg.example.com", Port: 5432, User: "auth", Password: "pw", DBName: "auth"}
	if ManagedDatabase(stack) {
		db = ManagedDatabaseURL(stack, "pw")
	}
	objs := []client.Object{
		AuthServerDeployment(stack, in), AuthServerService(stack), AuthServerPDB(stack),
		PepperSecret(stack, []byte("p")),
		PgBouncerConfigSecret(stack, db), PgBouncerService(stack), PgBouncerDeployment(stack, in), PgBouncerPDB(stack),
		RedisConfigMap(stack), RedisAuthSecret(stack, "pw"), RedisPasswordSecret(stack, []byte("pw")),
		RedisService(stack), RedisStatefulSet(stack, in), RedisPDB(stack),
		PostgresPasswordSecret(stack, []byte("pw")), PostgresService(stack),
	}
	add := func(o client.Object, ok bool) {
		if ok {
			objs = append(objs, o)
		}
	}
	hpa, ing := AuthServerHPA(stack), AuthServerIngress(stack)
	add(hpa, hpa != nil)
	add(ing, ing != nil)
	conn := ConnectionSecret(stack, ConnectionFor(stack, db, "pw"))
	add(conn, conn != nil)
	job := RedisBootstrapJob(stack, in)
	add(job, job != nil)
	sts := PostgresStatefulSet(stack)
	add(sts, sts != nil)
	ports := NetworkPolicyPorts{Database: 5432, Redis: 6379}
	for _, np := range NetworkPolicies(stack, ports) {
		objs = append(objs, np)
	}
	for _, name := range AbsentNetworkPolicies(stack, ports) {
		objs = append(objs, &networkingv1.NetworkPolicy{ObjectMeta: objectMeta(stack, name, "absent")})
	}
	src := DefaultBackupSources(stack, in)
	apply, remove := BackupCronJobs(stack, src)
	for _, cj := range apply {
		objs = append(objs, cj)
	}
	for _, name := range remove {
		objs = append(objs, &batchv1.CronJob{ObjectMeta: objectMeta(stack, name, "absent")})
	}
	for _, j := range OnDemandBackupJobs(stack, src) {
		objs = append(objs, j)
	}
	for _, build := range []func(*authv1alpha1.AuthStack) (client.Object, error){
		func(s *authv1alpha1.AuthStack) (client.Object, error) { return AuthServerServiceMonitor(s) },
		func(s *authv1alpha1.AuthStack) (client.Object, error) { return AuthServerPrometheusRule(s) },
	} {
		o, err := build(stack)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}

// nameProblems validates every name and label value of obj, and the names and labels
// the cluster derives from it (a Job's name becomes a pod label, a StatefulSet's pod
// names are hostnames, a CronJob's Jobs add 11 characters), with apimachinery's validators.
func nameProblems(obj client.Object) []string {
	kind := fmt.Sprintf("%T", obj)
	var out []string
	check := func(what, value string, errs []string) {
		for _, e := range errs {
			out = append(out, fmt.Sprintf("%s %s %q: %s", kind, what, value, e))
		}
	}
	name := obj.GetName()
	check("name", name, validation.IsDNS1123Subdomain(name))
	switch o := obj.(type) {
	case *corev1.Service:
		check("name", name, validation.IsDNS1035Label(name))
	case *batchv1.Job:
		check("name (the pods' job-name label)", name, validation.IsValidLabelValue(name))
	case *batchv1.CronJob:
		// The CronJob controller names each Job <name>-<minutes since the epoch>.
		job := name + "-" + strings.Repeat("9", 10)
		check("Job name", job, validation.IsValidLabelValue(job))
	case *appsv1.StatefulSet:
		last := fmt.Sprintf("%s-%d", name, ptr.Deref(o.Spec.Replicas, 1)-1)
		check("pod name (hostname and statefulset.kubernetes.io/pod-name label)", last, validation.IsDNS1123Label(last))
		// controller-revision-hash = <name>-<hash of up to 10 characters>.
		rev := name + "-" + strings.Repeat("b", 10)
		check("controller-revision-hash label", rev, validation.IsValidLabelValue(rev))
		check("serviceName", o.Spec.ServiceName, validation.IsDNS1035Label(o.Spec.ServiceName))
	case *networkingv1.Ingress:
		for _, tls := range o.Spec.TLS {
			check("TLS secretName", tls.SecretName, validation.IsDNS1123Subdomain(tls.SecretName))
		}
	}
	// Every map under a "labels", "matchLabels" or "selector" key (object, pod template,
	// selectors, NetworkPolicy peers) holds label keys and values.
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return append(out, err.Error())
	}
	walkLabels(u, func(k, v string) {
		check("label key", k, validation.IsQualifiedName(k))
		check("label "+k, v, validation.IsValidLabelValue(v))
	})
	return out
}

func walkLabels(v any, fn func(k, v string)) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if m, ok := e.(map[string]any); ok && (k == "labels" || k == "matchLabels" || k == "selector") {
				for lk, lv := range m {
					if s, ok := lv.(string); ok {
						fn(lk, s)
					}
				}
			}
			walkLabels(e, fn)
		}
	case []any:
		for _, e := range t {
			walkLabels(e, fn)
		}
	}
}

// longestName is the longest name the CRD accepts.
func longestName(n int) string { return "s" + strings.Repeat("0", n-1) }

// TestNamesFitInEveryMode: for the longest name the CRD accepts, every object of every
// mode has valid names and labels.
func TestNamesFitInEveryMode(t *testing.T) {
	for _, m := range nameModes {
		t.Run(m.name, func(t *testing.T) {
			s := m.stack()
			s.Name = longestName(authv1alpha1.MaxNameLength)
			objs := renderEvery(t, s)
			if len(objs) < 25 {
				t.Fatalf("rendered only %d objects", len(objs))
			}
			for _, o := range objs {
				for _, p := range nameProblems(o) {
					t.Error(p)
				}
			}
		})
	}
}

// TestNamePatternIsTight: the CRD accepts exactly the names for which every child is
// valid: one character more, a dot or a leading digit each breaks some child.
func TestNamePatternIsTight(t *testing.T) {
	for _, name := range []string{longestName(authv1alpha1.MaxNameLength + 1), "a.b", "1abc"} {
		var problems int
		for _, m := range nameModes {
			s := m.stack()
			s.Name = name
			for _, o := range renderEvery(t, s) {
				problems += len(nameProblems(o))
			}
		}
		if problems == 0 {
			t.Errorf("every child of %q is valid, so the CRD should accept it", name)
		}
	}
}
