package resources

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

// managedRedisStack is the sample stack with the default, managed Redis.
func managedRedisStack() *authv1alpha1.AuthStack {
	s := sampleStack()
	s.Spec.Redis = authv1alpha1.RedisSpec{Mode: authv1alpha1.RedisStandalone, Shards: 3, ReplicasPerShard: 1,
		MaxMemory: "1gb", MaxMemoryPolicy: "volatile-ttl", Storage: authv1alpha1.StorageSpec{Size: ptr.To(qty("10Gi"))}}
	return s
}

func TestRedisConf(t *testing.T) {
	s := managedRedisStack()
	conf := RedisConf(s)
	for _, want := range []string{"appendonly yes\n", "maxmemory 1gb\n", "maxmemory-policy volatile-ttl\n",
		"save 900 1\n", "save 300 10\n", "save 60 10000\n", "rename-command FLUSHDB \"\"\n", "rename-command FLUSHALL \"\"\n",
		"rename-command SHUTDOWN \"\"\n", "rename-command CONFIG \"\"\n", "dir /data\n",
		"include /etc/redis-auth/auth.conf\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("redis.conf lacks %q", want)
		}
	}
	for _, never := range []string{"\nrequirepass", "\nmasterauth", "cluster-enabled", "rename-command CLUSTER", "rename-command PSYNC"} {
		if strings.Contains(conf, never) {
			t.Errorf("standalone redis.conf contains %q", never)
		}
	}
	if !strings.HasSuffix(conf, "include /etc/redis-auth/auth.conf\n") {
		t.Error("the auth include must come last, so nothing overrides it")
	}
	s.Spec.Redis.MaxMemory, s.Spec.Redis.MaxMemoryPolicy = "512mb", "volatile-lru"
	if c := RedisConf(s); !strings.Contains(c, "maxmemory 512mb\n") || !strings.Contains(c, "maxmemory-policy volatile-lru\n") {
		t.Error("maxMemory/maxMemoryPolicy not rendered")
	}
	if got := RedisAuthConf(`p"w\x`); got != "requirepass \"p\\\"w\\\\x\"\nmasterauth \"p\\\"w\\\\x\"\n" {
		t.Errorf("auth.conf quoting: %q", got)
	}
	cm := RedisConfigMap(s)
	for k, v := range cm.Data {
		if strings.Contains(v, "SECRET") {
			t.Errorf("ConfigMap key %s holds a secret", k)
		}
	}
	if RedisConfigHash(s, "a") == RedisConfigHash(s, "b") {
		t.Error("the Redis config hash ignores the password")
	}
}

func TestRedisObjects(t *testing.T) {
	s := managedRedisStack()
	in := sampleInputs(s)
	in.RedisImage, in.RedisConfigHash = "example.com/redis:7", "hash-r"
	sts := RedisStatefulSet(s, in)
	pod := sts.Spec.Template.Spec
	c := container(t, pod, ComponentRedis)
	if c.Image != "example.com/redis:7" || *sts.Spec.Replicas != 1 || sts.Spec.ServiceName != "demo-redis" {
		t.Errorf("image %q replicas %d serviceName %q", c.Image, *sts.Spec.Replicas, sts.Spec.ServiceName)
	}
	if strings.Join(append(c.Command, c.Args...), " ") != "redis-server /etc/redis/redis.conf" {
		t.Errorf("command %v %v", c.Command, c.Args)
	}
	if sts.Spec.Template.Annotations[AnnotationConfigHash] != "hash-r" {
		t.Error("no config hash on the pod template")
	}
	if p := sts.Spec.PersistentVolumeClaimRetentionPolicy; p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType ||
		p.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("PVC retention %+v, want Retain/Retain by default", p)
	}
	vct := sts.Spec.VolumeClaimTemplates[0]
	if vct.Name != "data" || !vct.Spec.Resources.Requests.Storage().Equal(qty("10Gi")) || vct.Spec.StorageClassName != nil {
		t.Errorf("volume claim template %+v", vct)
	}
	s.Spec.Redis.Storage = authv1alpha1.StorageSpec{Size: ptr.To(qty("3Gi")), StorageClassName: ptr.To("fast"), DeleteOnStackDeletion: true}
	sts = RedisStatefulSet(s, in)
	if sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		t.Error("deleteOnStackDeletion does not delete the PVCs")
	}
	if v := sts.Spec.VolumeClaimTemplates[0]; !v.Spec.Resources.Requests.Storage().Equal(qty("3Gi")) || ptr.Deref(v.Spec.StorageClassName, "") != "fast" {
		t.Errorf("storage spec ignored: %+v", v.Spec)
	}
	for _, e := range c.Env {
		if e.Value != "" && strings.Contains(e.Value, "pw") {
			t.Errorf("env %s inlines a secret", e.Name)
		}
	}
	svc := RedisService(s)
	if svc.Spec.ClusterIP != "None" || svc.Spec.Ports[0].Port != 6379 || len(svc.Spec.Ports) != 1 || svc.Spec.PublishNotReadyAddresses {
		t.Errorf("standalone service %+v", svc.Spec)
	}
	if RedisBootstrapJob(s, in) != nil {
		t.Error("a bootstrap Job in standalone mode")
	}
	pw := RedisPasswordSecret(s, []byte("abc"))
	if len(pw.OwnerReferences) != 0 || pw.Annotations[AnnotationRetain] != "true" || string(pw.Data["password"]) != "abc" {
		t.Errorf("password Secret: owners %v annotations %v", pw.OwnerReferences, pw.Annotations)
	}
	for _, obj := range []metav1.Object{sts, svc, RedisPDB(s), RedisConfigMap(s), RedisAuthSecret(s, "x")} {
		refs := obj.GetOwnerReferences()
		if len(refs) != 1 || refs[0].UID != testUID {
			t.Errorf("%T %s: owner references %v", obj, obj.GetName(), refs)
		}
	}
	u, err := url.Parse(RedisClientURL(s, "p@ss"))
	if err != nil || u.Host != "demo-redis.team-a.svc:6379" || u.Path != "/0" {
		t.Errorf("client URL %v %v", u, err)
	} else if p, _ := u.User.Password(); p != "p@ss" {
		t.Error("client URL password lost")
	}
	a, _ := NewRedisPassword()
	b, _ := NewRedisPassword()
	if len(a) != 64 || string(a) == string(b) {
		t.Errorf("generated passwords %q %q", a, b)
	}
}

// startRenderedRedis starts redis-server from the rendered redis.conf, with the auth
// include written where the test can put it (the pod mounts it at RedisAuthDir).
func startRenderedRedis(t *testing.T, stack *authv1alpha1.AuthStack, password string) *testservers.RedisServer {
	t.Helper()
	authPath := filepath.Join(t.TempDir(), RedisAuthConfKey)
	auth := RedisAuthSecret(stack, password).Data[RedisAuthConfKey]
	if err := os.WriteFile(authPath, auth, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := RedisConfigMap(stack).Data[RedisConfKey]
	const mounted = RedisAuthDir + "/" + RedisAuthConfKey
	if !strings.Contains(conf, "include "+mounted) {
		t.Fatalf("redis.conf does not include %s", mounted)
	}
	conf = strings.Replace(conf, mounted, authPath, 1)
	// The data volume is mounted at /data in the pod.
	conf = strings.Replace(conf, "\ndir "+RedisDataDir+"\n", "\ndir "+t.TempDir()+"\n", 1)
	return testservers.RedisWithConfig(t, conf)
}

// TestRedisRenderedConfigRunsForReal starts the real redis-server from the rendered
// configuration: the password is enforced, the disabled commands are refused, AOF is
// on and survives a restart, and the authserver's session cache works against it.
func TestRedisRenderedConfigRunsForReal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := managedRedisStack()
	pwBytes, err := NewRedisPassword()
	if err != nil {
		t.Fatal(err)
	}
	password := string(pwBytes)
	srv := startRenderedRedis(t, s, password)

	// No password, a wrong one: refused.
	anon := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	defer anon.Close()
	if err := anon.Set(ctx, "k", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("SET without a password: %v, want NOAUTH", err)
	}
	wrong := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: "wrong", MaxRetries: -1})
	defer wrong.Close()
	if err := wrong.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("PING with a wrong password: %v, want WRONGPASS", err)
	}

	// The authserver's own client, from the URL the operator renders (host swapped).
	clientURL, _ := url.Parse(RedisClientURL(s, password))
	clientURL.Host = srv.Addr()
	rdb, err := app.NewRedis(clientURL.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING with the rendered URL: %v", err)
	}

	for _, cmd := range RedisDisabledCommands {
		args := []any{strings.ToLower(cmd)}
		switch cmd {
		case "CONFIG":
			args = append(args, "get", "maxmemory")
		case "KEYS":
			args = append(args, "*")
		case "DEBUG":
			args = append(args, "sleep", "0")
		case "ACL":
			args = append(args, "list")
		case "MODULE":
			args = append(args, "list")
		case "REPLICAOF", "SLAVEOF":
			args = append(args, "no", "one")
		case "SWAPDB":
			args = append(args, "0", "1")
		}
		err := rdb.Do(ctx, args...).Err()
		if err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("%s: %v, want unknown command", cmd, err)
		}
	}

	info, err := rdb.Info(ctx, "persistence", "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"aof_enabled:1", "maxmemory:1073741824", "maxmemory_policy:volatile-ttl"} {
		if !strings.Contains(info, want+"\r\n") {
			t.Errorf("INFO lacks %s", want)
		}
	}

	// The authserver's session cache (Lua scripts included) works against it.
	pg := testservers.Postgres(t)
	dbURL := pg.NewDatabase(t)
	if _, err := store.Migrate(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, _, err := store.InsertUser(ctx, st.Pool, "redis@example.com", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
	if err != nil {
		t.Fatal(err)
	}
	m := session.NewManager(st.Pool, rdb, session.Options{TTL: time.Hour})
	tok, sinfo, err := m.Create(ctx, st.Pool, u, "192.0.2.1", "test", session.LevelPassword)
	if err != nil {
		t.Fatal(err)
	}
	m.Cache(ctx, tok, sinfo)
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n == 0 {
		t.Fatalf("the session was not cached in Redis: dbsize %d, %v", n, err)
	}
	if _, err := st.Pool.Exec(ctx, "DELETE FROM sessions"); err != nil {
		t.Fatal(err)
	}
	got, err := m.Validate(ctx, tok)
	if err != nil || got.UserID != u.ID {
		t.Fatalf("Validate from the Redis cache: %+v, %v", got, err)
	}

	// AOF: the data survives a restart.
	if err := rdb.Set(ctx, "durable", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // appendfsync everysec
	srv.Stop(t)
	srv.Start(t)
	if v, err := rdb.Get(ctx, "durable").Result(); err != nil || v != "yes" {
		t.Errorf("after a restart: %q, %v; want the key back from the AOF", v, err)
	}
}
