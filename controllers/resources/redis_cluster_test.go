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
// (twice: the second run must change nothing), and uses it with a cluster client.
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

	// The authserver's client is a single-node client: it does not accept the
	// cluster URL (see docs/data-tier.md, "Redis Cluster and the authserver").
	// When it learns to, this fails: then run the session store against this cluster here.
	if _, err := app.NewRedis(RedisClientURL(s, password)); err == nil {
		t.Error("app.NewRedis now accepts the cluster URL: test the authserver's session store against the cluster here, and update docs/data-tier.md")
	}
}
