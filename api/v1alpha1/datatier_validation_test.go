package v1alpha1_test

// Validation of the data-tier fields (spec.pooler, spec.redis, spec.database.managed,
// spec.networkPolicy). The reject cases join rejectCases, so TestRejects runs them and
// TestEveryRuleIsCovered counts them.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func init() {
	rejectCases = append(rejectCases, dataTierRejectCases...)
}

// managedDB replaces the external database of the minimal spec by a managed one.
var managedDB = map[string]any{"database": map[string]any{"managed": map[string]any{}}}

var dataTierRejectCases = []rejectCase{
	// pooler
	{name: "pooler replicas zero", set: map[string]any{"pooler.replicas": int64(0)}, field: "spec.pooler.replicas", kind: kindMinimum},
	{name: "pooler replicas above 20", set: map[string]any{"pooler.replicas": int64(21)}, field: "spec.pooler.replicas", kind: kindMaximum},
	{name: "pooler statement mode", set: map[string]any{"pooler.poolMode": "statement"}, field: "spec.pooler.poolMode", kind: kindEnum,
		msg: `"transaction", "session"`},
	{name: "pooler maxClientConnections below 10", set: map[string]any{"pooler.maxClientConnections": int64(9)},
		field: "spec.pooler.maxClientConnections", kind: kindMinimum},
	{name: "pooler maxClientConnections above 100000", set: map[string]any{"pooler.maxClientConnections": int64(100001)},
		field: "spec.pooler.maxClientConnections", kind: kindMaximum},
	{name: "pooler defaultPoolSize zero", set: map[string]any{"pooler.defaultPoolSize": int64(0)},
		field: "spec.pooler.defaultPoolSize", kind: kindMinimum},
	{name: "pooler defaultPoolSize above 1000", set: map[string]any{"pooler.defaultPoolSize": int64(1001)},
		field: "spec.pooler.defaultPoolSize", kind: kindMaximum},
	{name: "pooler image too long", set: map[string]any{"pooler.image": strings.Repeat("i", 513)},
		field: "spec.pooler.image", kind: kindMaxLength},

	// redis
	{name: "redis mode unknown", set: map[string]any{"redis.mode": "sentinel"}, field: "spec.redis.mode", kind: kindEnum},
	{name: "redis shards below 3", set: map[string]any{"redis.shards": int64(2)}, field: "spec.redis.shards", kind: kindMinimum},
	{name: "redis shards above 100", set: map[string]any{"redis.shards": int64(101)}, field: "spec.redis.shards", kind: kindMaximum},
	{name: "redis replicasPerShard negative", set: map[string]any{"redis.replicasPerShard": int64(-1)},
		field: "spec.redis.replicasPerShard", kind: kindMinimum},
	{name: "redis replicasPerShard above 5", set: map[string]any{"redis.replicasPerShard": int64(6)},
		field: "spec.redis.replicasPerShard", kind: kindMaximum},
	{name: "redis image too long", set: map[string]any{"redis.image": strings.Repeat("i", 513)},
		field: "spec.redis.image", kind: kindMaxLength},
	{name: "redis maxMemory in GiB notation", set: map[string]any{"redis.maxMemory": "1Gi"}, field: "spec.redis.maxMemory", kind: kindPattern},
	{name: "redis maxMemory zero", set: map[string]any{"redis.maxMemory": "0mb"}, field: "spec.redis.maxMemory", kind: kindPattern},
	{name: "redis maxMemoryPolicy unknown", set: map[string]any{"redis.maxMemoryPolicy": "lru"}, field: "spec.redis.maxMemoryPolicy", kind: kindEnum},
	{name: "redis storage size not a quantity", set: map[string]any{"redis.storage.size": "ten gigs"}, field: "spec.redis.storage.size", kind: kindPattern},
	{name: "redis storageClassName too long", set: map[string]any{"redis.storage.storageClassName": strings.Repeat("s", 254)},
		field: "spec.redis.storage.storageClassName", kind: kindMaxLength},

	// managed database
	{name: "managed database version unknown", set: map[string]any{"database": map[string]any{"managed": map[string]any{"version": "12"}}},
		field: "spec.database.managed.version", kind: kindEnum},
	{name: "managed database image too long", set: map[string]any{"database": map[string]any{"managed": map[string]any{"image": strings.Repeat("i", 513)}}},
		field: "spec.database.managed.image", kind: kindMaxLength},
	{name: "managed database storage size not a quantity", set: map[string]any{"database": map[string]any{"managed": map[string]any{
		"storage": map[string]any{"size": "lots"}}}},
		field: "spec.database.managed.storage.size", kind: kindPattern},
	{name: "managed database storageClassName too long", set: map[string]any{"database": map[string]any{"managed": map[string]any{
		"storage": map[string]any{"storageClassName": strings.Repeat("s", 254)}}}},
		field: "spec.database.managed.storage.storageClassName", kind: kindMaxLength},
}

func TestDataTierAccepts(t *testing.T) {
	cases := []struct {
		name string
		set  map[string]any
		del  []string
	}{
		{"redis omitted: managed standalone", nil, []string{"redis"}},
		{"redis managed cluster", map[string]any{"redis": map[string]any{"mode": "cluster", "shards": int64(3), "replicasPerShard": int64(0)}}, nil},
		{"redis external standalone", map[string]any{"redis.mode": "standalone"}, nil},
		{"redis tuned", map[string]any{"redis": map[string]any{"maxMemory": "512mb", "maxMemoryPolicy": "volatile-lru",
			"storage": map[string]any{"size": "20Gi", "storageClassName": "fast", "deleteOnStackDeletion": true}}}, nil},
		{"managed database", managedDB, nil},
		{"managed database 15 with storage", map[string]any{"database": map[string]any{"managed": map[string]any{
			"version": "15", "storage": map[string]any{"size": "1Gi"}}}}, nil},
		{"pooler off", map[string]any{"pooler.enabled": false}, nil},
		{"pooler at the bounds", map[string]any{"pooler.replicas": int64(20), "pooler.poolMode": "session",
			"pooler.maxClientConnections": int64(10), "pooler.defaultPoolSize": int64(1000)}, nil},
		{"network policy selectors", map[string]any{"networkPolicy": map[string]any{
			"ingressControllerNamespaceSelector": map[string]any{"matchLabels": map[string]any{"team": "edge"}},
			"ingressControllerPodSelector":       map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "traefik"}},
			"monitoringNamespaceSelector":        map[string]any{"matchExpressions": []any{map[string]any{"key": "monitoring", "operator": "Exists"}}},
		}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := minimalSpec()
			for _, p := range tc.del {
				deletePath(spec, p)
			}
			for p, v := range tc.set {
				setPath(spec, p, v)
			}
			if err := k8sClient.Create(context.Background(), authStack("good", spec), client.DryRunAll); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

// TestDataTierDefaults creates a stack with a managed database and the default Redis
// and reads back every data-tier default.
func TestDataTierDefaults(t *testing.T) {
	spec := minimalSpec()
	delete(spec, "redis")
	spec["database"] = map[string]any{"managed": map[string]any{}}
	u := authStack("datatier-defaults", spec)
	if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatalf("rejected: %v", err)
	}
	var got authv1alpha1.AuthStack
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &got); err != nil {
		t.Fatalf("converting the answer: %v", err)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	quantity := func(name string, q *resource.Quantity, want string) {
		t.Helper()
		if q == nil {
			t.Errorf("%s not defaulted", name)
		} else if q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("%s = %s, want %s", name, q.String(), want)
		}
	}
	resources := func(name string, got, want corev1.ResourceRequirements) {
		t.Helper()
		if !equality.Semantic.DeepEqual(got, want) {
			t.Errorf("%s = %+v, want the table's %+v", name, got, want)
		}
	}
	p := got.Spec.Pooler
	if p.Enabled == nil || *p.Enabled != authv1alpha1.DefaultPoolerEnabled {
		t.Errorf("pooler.enabled = %v, want true", p.Enabled)
	}
	check("pooler.replicas", p.Replicas, authv1alpha1.DefaultPoolerReplicas)
	check("pooler.poolMode", p.PoolMode, authv1alpha1.DefaultPoolMode)
	check("pooler.maxClientConnections", p.MaxClientConnections, authv1alpha1.DefaultPoolerMaxClientConnections)
	check("pooler.defaultPoolSize", p.DefaultPoolSize, authv1alpha1.DefaultPoolerPoolSize)
	if p.Resources == nil {
		t.Error("pooler.resources not defaulted")
	} else {
		quantity("pooler.resources.limits.memory", ptrQ(p.Resources.Limits.Memory()), "128Mi")
		resources("pooler.resources", *p.Resources, authv1alpha1.DefaultPgBouncerResources())
	}
	r := got.Spec.Redis
	check("redis.urlSecretRef", r.URLSecretRef == nil, true)
	check("redis.mode", r.Mode, "standalone")
	check("redis.shards", r.Shards, authv1alpha1.DefaultRedisShards)
	check("redis.replicasPerShard", r.ReplicasPerShard, 1)
	check("redis.maxMemory", r.MaxMemory, authv1alpha1.DefaultRedisMaxMemory)
	check("redis.maxMemoryPolicy", r.MaxMemoryPolicy, authv1alpha1.DefaultRedisMaxMemoryPolicy)
	quantity("redis.storage.size", r.Storage.Size, authv1alpha1.DefaultStorageSize)
	check("redis.storage.deleteOnStackDeletion", r.Storage.DeleteOnStackDeletion, false)
	if r.Resources == nil {
		t.Error("redis.resources not defaulted")
	} else {
		quantity("redis.resources.requests.memory", ptrQ(r.Resources.Requests.Memory()), "1Gi")
		resources("redis.resources", *r.Resources, authv1alpha1.DefaultRedisResources())
	}
	m := got.Spec.Database.Managed
	if m == nil {
		t.Fatal("database.managed lost")
	}
	check("database.managed.version", m.Version, authv1alpha1.DefaultPostgresVersion)
	if m.Resources == nil {
		t.Error("database.managed.resources not defaulted")
	} else {
		resources("database.managed.resources", *m.Resources, authv1alpha1.DefaultPostgresResources())
	}
	quantity("database.managed.storage.size", m.Storage.Size, authv1alpha1.DefaultStorageSize)
	check("database.managed.storage.deleteOnStackDeletion", m.Storage.DeleteOnStackDeletion, false)
	np := got.Spec.NetworkPolicy
	if np.Enabled == nil || *np.Enabled != authv1alpha1.DefaultNetworkPolicyEnabled {
		t.Errorf("networkPolicy.enabled = %v, want true", np.Enabled)
	}
	if s := np.IngressControllerNamespaceSelector; s != nil {
		t.Errorf("networkPolicy.ingressControllerNamespaceSelector = %v, want none: the edge admitted follows the spec (EdgePeers)", s)
	}
	if s := np.MonitoringNamespaceSelector; s == nil || s.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
		t.Errorf("networkPolicy.monitoringNamespaceSelector = %v", s)
	}
}

func ptrQ(q *resource.Quantity) *resource.Quantity { return q }

// TestEvaluationSampleIsAccepted dry-run creates config/samples/evaluation's AuthStack.
func TestEvaluationSampleIsAccepted(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "evaluation", "authstack-managed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &u.Object); err != nil {
		t.Fatalf("decoding the sample: %v", err)
	}
	u.SetNamespace(testNamespace)
	if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatalf("the evaluation sample is rejected: %v", err)
	}
	var got authv1alpha1.AuthStack
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Database.Managed == nil || got.Spec.Redis.URLSecretRef != nil || got.Spec.Redis.MaxMemory != "256mb" {
		t.Errorf("the sample does not run the managed data tier: %+v", got.Spec)
	}
}

// The data tier's transition rules refuse what the operator cannot carry out, saying
// what to do instead.
const (
	msgStorageShrink = "storage.size cannot shrink: a volume only grows. To use smaller volumes, back up, create a stack with the smaller size and restore into it (docs/backup-and-restore.md)"
	msgStorageClass  = "storage.storageClassName cannot change: the volumes exist in their class. Back up, create a stack with the new class and restore into it (docs/backup-and-restore.md)"
	msgRedisMode     = "redis.mode cannot change on the managed Redis: its volumes hold data of the other mode. Redis only caches sessions (they are kept in PostgreSQL): to switch, delete the AuthStack and its Redis PersistentVolumeClaims (data-<name>-redis-*), then create it with the new mode"
	msgRedisTopology = "redis.shards and redis.replicasPerShard cannot change on a Redis Cluster: the operator has no resharding path. Redis only caches sessions (they are kept in PostgreSQL): to change the topology, delete the AuthStack and its Redis PersistentVolumeClaims (data-<name>-redis-*), then create it with the new topology"
	msgPGVersion     = "database.managed.version cannot change: a new PostgreSQL major version needs pg_upgrade on the data, which the operator does not run. Back up, create a stack with the new version and restore into it (docs/backup-and-restore.md)"
)

// specTransition creates a stack with the minimal spec changed by create, then
// updates it with update: rejected at field with msg, or accepted when field is "".
type specTransition struct {
	name           string
	create, update map[string]any // dotted paths to set (nil values delete)
	field, msg     string
}

var managedRedis = map[string]any{"redis.urlSecretRef": nil}

func with(maps ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

var dataTierTransitions = []specTransition{
	{name: "redis storage grows", create: with(managedRedis, map[string]any{"redis.storage.size": "1Gi"}),
		update: map[string]any{"redis.storage.size": "2Gi"}},
	{name: "redis storage shrinks", create: with(managedRedis, map[string]any{"redis.storage.size": "2Gi"}),
		update: map[string]any{"redis.storage.size": "1500Mi"}, field: "spec.redis.storage", msg: msgStorageShrink},
	{name: "database storage shrinks", create: with(managedDBPaths, map[string]any{"database.managed.storage.size": "10Gi"}),
		update: map[string]any{"database.managed.storage.size": "9Gi"}, field: "spec.database.managed.storage", msg: msgStorageShrink},
	{name: "redis storage class changes", create: with(managedRedis, map[string]any{"redis.storage.storageClassName": "a"}),
		update: map[string]any{"redis.storage.storageClassName": "b"}, field: "spec.redis.storage", msg: msgStorageClass},
	{name: "redis storage class set later", create: managedRedis,
		update: map[string]any{"redis.storage.storageClassName": "b"}, field: "spec.redis.storage", msg: msgStorageClass},
	{name: "redis standalone to cluster", create: managedRedis,
		update: map[string]any{"redis.mode": "cluster"}, field: "spec.redis", msg: msgRedisMode},
	{name: "redis cluster to standalone", create: with(managedRedis, map[string]any{"redis.mode": "cluster"}),
		update: map[string]any{"redis.mode": "standalone"}, field: "spec.redis", msg: msgRedisMode},
	{name: "redis cluster shards change", create: with(managedRedis, map[string]any{"redis.mode": "cluster"}),
		update: map[string]any{"redis.shards": int64(4)}, field: "spec.redis", msg: msgRedisTopology},
	{name: "redis cluster replicas change", create: with(managedRedis, map[string]any{"redis.mode": "cluster"}),
		update: map[string]any{"redis.replicasPerShard": int64(2)}, field: "spec.redis", msg: msgRedisTopology},
	{name: "standalone redis shards change", create: managedRedis, update: map[string]any{"redis.shards": int64(4)}},
	{name: "external redis becomes a managed cluster", create: nil,
		update: map[string]any{"redis.urlSecretRef": nil, "redis.mode": "cluster"}},
	{name: "redis image changes", create: with(managedRedis, map[string]any{"redis.mode": "cluster"}),
		update: map[string]any{"redis.image": "example.com/redis:8"}},
	{name: "database storage class changes", create: with(managedDBPaths, map[string]any{"database.managed.storage.storageClassName": "a"}),
		update: map[string]any{"database.managed.storage.storageClassName": "b"}, field: "spec.database.managed.storage", msg: msgStorageClass},
	{name: "postgres major version changes", create: with(managedDBPaths, map[string]any{"database.managed.version": "16"}),
		update: map[string]any{"database.managed.version": "17"}, field: "spec.database.managed", msg: msgPGVersion},
}

// managedDBPaths is managedDB as dotted paths.
var managedDBPaths = map[string]any{"database.urlSecretRef": nil, "database.managed.storage.deleteOnStackDeletion": false}

func applyPaths(spec, paths map[string]any) {
	for p, v := range paths {
		if v == nil {
			deletePath(spec, p)
		} else {
			setPath(spec, p, v)
		}
	}
}

// TestDataTierTransitions: growing storage is accepted; shrinking it, changing its
// class, switching the managed Redis's mode, resharding a Redis Cluster and changing
// the managed PostgreSQL's major version are refused, naming the field and saying
// what to do instead.
func TestDataTierTransitions(t *testing.T) {
	for i, tc := range dataTierTransitions {
		t.Run(tc.name, func(t *testing.T) {
			spec := minimalSpec()
			applyPaths(spec, tc.create)
			checkTransition(t, fmt.Sprintf("datatier-transition-%d", i), spec,
				func(spec map[string]any) { applyPaths(spec, tc.update) }, tc.field, tc.msg)
		})
	}
}
