package resources

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/app"
	authconfig "github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

func clusterStack() *authv1alpha1.AuthStack {
	s := managedRedisStack()
	s.Spec.Redis.Mode, s.Spec.Redis.Shards, s.Spec.Redis.ReplicasPerShard = authv1alpha1.RedisCluster, 3, 1
	return s
}

func TestRedisClusterObjects(t *testing.T) {
	s := clusterStack()
	if RedisReplicas(s) != 6 {
		t.Errorf("replicas %d, want 3 shards x 2", RedisReplicas(s))
	}
	conf := RedisConf(s)
	for _, want := range []string{"cluster-enabled yes\n", "cluster-config-file nodes.conf\n", "appendonly yes\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("cluster redis.conf lacks %q", want)
		}
	}
	if strings.Contains(conf, "rename-command CLUSTER") {
		t.Error("CLUSTER is disabled: the bootstrap needs it")
	}
	in := sampleInputs(s)
	sts := RedisStatefulSet(s, in)
	c := sts.Spec.Template.Spec.Containers[0]
	if !strings.Contains(strings.Join(c.Args, " "), "--cluster-announce-hostname $(POD_NAME).demo-redis.team-a.svc") || len(c.Ports) != 2 {
		t.Errorf("cluster args %v ports %v", c.Args, c.Ports)
	}
	svc := RedisService(s)
	if !svc.Spec.PublishNotReadyAddresses || len(svc.Spec.Ports) != 2 {
		t.Errorf("cluster service %+v", svc.Spec)
	}
	job := RedisBootstrapJob(s, in)
	jc := job.Spec.Template.Spec.Containers[0]
	if got := strings.Join(append(jc.Command, jc.Args...), " "); !strings.HasPrefix(got, "sh /etc/redis/bootstrap.sh 1 demo-redis-0.demo-redis.team-a.svc:6379 ") ||
		len(jc.Args) != 7 {
		t.Errorf("bootstrap command %q", got)
	}
	if e := jc.Env[0]; e.Name != "REDISCLI_AUTH" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "demo-redis-password" {
		t.Errorf("bootstrap env %+v", jc.Env)
	}
	u, err := url.Parse(RedisClientURL(s, "pw"))
	if err != nil || len(u.Query()["addr"]) != 5 || u.Host != "demo-redis-0.demo-redis.team-a.svc:6379" {
		t.Errorf("cluster URL %v %v", u, err)
	}
	if _, err := redis.ParseClusterURL(RedisClientURL(s, "pw")); err != nil {
		t.Errorf("go-redis does not parse the cluster URL: %v", err)
	}
}

// runBootstrap runs the rendered bootstrap script, as the Job does, against nodes.
func runBootstrap(t *testing.T, script, password string, replicas int32, nodes []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), RedisBootstrapKey)
	if err := os.WriteFile(path, []byte(script), 0o500); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", append([]string{path, fmt.Sprint(replicas)}, nodes...)...)
	cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out)
	}
	return string(out)
}

// TestRedisClusterRenderedConfigRunsForReal starts six real redis-servers from the
// rendered cluster configuration, forms the cluster with the rendered bootstrap script
// (twice: the second run must change nothing), and uses it with a cluster client:
// then the authserver's session store and rate limiter, through the client
// app.NewRedis builds from the rendered REDIS_URL.
func TestRedisClusterRenderedConfigRunsForReal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s := clusterStack()
	pwBytes, _ := NewRedisPassword()
	password := string(pwBytes)
	authPath := filepath.Join(t.TempDir(), RedisAuthConfKey)
	if err := os.WriteFile(authPath, RedisAuthSecret(s, password).Data[RedisAuthConfKey], 0o600); err != nil {
		t.Fatal(err)
	}
	base := RedisConfigMap(s).Data[RedisConfKey]
	base = strings.Replace(base, RedisAuthDir+"/"+RedisAuthConfKey, authPath, 1)
	var nodes []string
	for i := 0; i < int(RedisReplicas(s)); i++ {
		conf := strings.Replace(base, "\ndir "+RedisDataDir+"\n", "\ndir "+t.TempDir()+"\n", 1)
		// The bus port is port+10000 by default: pick a free one explicitly.
		conf += fmt.Sprintf("cluster-port %d\n", testservers.FreePort(t))
		srv := testservers.RedisWithConfig(t, conf)
		nodes = append(nodes, srv.Addr())
	}
	script := RedisConfigMap(s).Data[RedisBootstrapKey]
	out := runBootstrap(t, script, password, s.Spec.Redis.ReplicasPerShard, nodes)
	if !strings.Contains(out, "cluster_state:ok") {
		t.Fatalf("bootstrap output:\n%s", out)
	}
	again := runBootstrap(t, script, password, s.Spec.Redis.ReplicasPerShard, nodes)
	if !strings.Contains(again, "already formed") || strings.Contains(again, "Performing hash slots allocation") {
		t.Errorf("a second bootstrap run did not leave the cluster alone:\n%s", again)
	}

	// A cluster client with the password: keys spread over every shard.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: nodes, Password: password})
	defer cc.Close()
	info, err := cc.ClusterInfo(ctx).Result()
	if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:6") || !strings.Contains(info, "cluster_size:3") {
		t.Fatalf("cluster info: %v\n%s", err, info)
	}
	for i := range 100 {
		if err := cc.Set(ctx, fmt.Sprintf("session:%d", i), i, time.Minute).Err(); err != nil {
			t.Fatalf("SET through the cluster: %v", err)
		}
	}
	masters := 0
	err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		n, err := c.DBSize(ctx).Result()
		if err == nil && n > 0 {
			masters++
		}
		return err
	})
	if err != nil || masters != 3 {
		t.Errorf("keys on %d of 3 primaries (%v)", masters, err)
	}
	// Passwords and disabled commands hold in cluster mode too.
	anon := redis.NewClient(&redis.Options{Addr: nodes[0], MaxRetries: -1})
	defer anon.Close()
	if err := anon.Get(ctx, "x").Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("GET without a password: %v", err)
	}
	if err := cc.Do(ctx, "flushall").Err(); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("FLUSHALL in cluster mode: %v", err)
	}

	// The authserver's own client, from the REDIS_URL the operator renders
	// (the pods' DNS names swapped for the local nodes, in the same order).
	rendered, err := url.Parse(RedisClientURL(s, password))
	if err != nil {
		t.Fatal(err)
	}
	q := rendered.Query()
	if len(q["addr"]) != len(nodes)-1 {
		t.Fatalf("rendered URL names %d extra nodes, want %d", len(q["addr"]), len(nodes)-1)
	}
	rendered.Host = nodes[0]
	q["addr"] = nodes[1:]
	rendered.RawQuery = q.Encode()
	rdb, err := app.NewRedis(rendered.String())
	if err != nil {
		t.Fatalf("app.NewRedis with the rendered cluster URL: %v", err)
	}
	defer rdb.Close()
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("app.NewRedis built a %T from the cluster URL, want a cluster client", rdb)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING with the rendered cluster URL: %v", err)
	}

	// The authserver's session store works against the cluster: sessions are
	// cached (on several primaries), validated from Redis alone, and revoked.
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
	u, _, err := store.InsertUser(ctx, st.Pool, "cluster@example.com", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
	if err != nil {
		t.Fatal(err)
	}
	m := session.NewManager(st.Pool, rdb, session.Options{TTL: time.Hour})
	var toks []string
	var infos []session.Info
	for range 12 {
		tok, info, err := m.Create(ctx, st.Pool, u, "192.0.2.1", "test", session.LevelPassword)
		if err != nil {
			t.Fatal(err)
		}
		m.Cache(ctx, tok, info)
		toks, infos = append(toks, tok), append(infos, info)
	}
	// The rows are gone from PostgreSQL: only the cluster can vouch now.
	if _, err := st.Pool.Exec(ctx, "DELETE FROM sessions"); err != nil {
		t.Fatal(err)
	}
	for i, tok := range toks {
		got, err := m.Validate(ctx, tok)
		if err != nil || got.ID != infos[i].ID || got.UserID != u.ID {
			t.Fatalf("Validate %d from the Redis Cluster cache: %+v, %v", i, got, err)
		}
	}
	var hashes [][]byte
	for _, tok := range toks {
		h, _ := session.HashToken(tok)
		hashes = append(hashes, h[:])
	}
	m.Forget(ctx, hashes...)
	for i, tok := range toks {
		if _, err := m.Validate(ctx, tok); err != session.ErrInvalid {
			t.Fatalf("revoked session %d still valid on the cluster: %v", i, err)
		}
	}

	// The rate limiter and lockout too (counters and lock in different slots).
	l := ratelimit.New(rdb, authconfig.RateLimits{LockoutAfter: 2, LockoutBase: time.Minute, LockoutMax: time.Minute, FailureMemory: time.Hour})
	acct := ratelimit.AccountKey("cluster@example.com")
	rules := []ratelimit.Rule{
		{Name: "login-ip", Key: "192.0.2.1", Limit: authconfig.Limit{N: 2, Window: time.Minute}},
		{Name: "login-account", Key: acct, Limit: authconfig.Limit{N: 10, Window: time.Minute}},
	}
	for i := 1; i <= 3; i++ {
		w, err := l.Allow(ctx, acct, rules...)
		if err != nil || (i <= 2) != (w == 0) {
			t.Fatalf("Allow %d on the cluster: wait %s, %v", i, w, err)
		}
	}
	for i := 1; i <= 2; i++ {
		if _, err := l.RecordFailure(ctx, acct); err != nil {
			t.Fatalf("RecordFailure %d on the cluster: %v", i, err)
		}
	}
	if w, err := l.Allow(ctx, acct); err != nil || w < 59*time.Second {
		t.Fatalf("locked account on the cluster: wait %s, %v", w, err)
	}
}
