package testservers

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/internal/servers"
)

// RedisClusterServer is a Redis Cluster of real redis-server processes
// (primaries only) owned by one test.
type RedisClusterServer struct {
	Nodes    []*RedisServer
	password string
}

// RedisCluster starts primaries (at least 3) redis-servers with
// cluster-enabled and a shared random password on free loopback ports,
// forms the cluster with `redis-cli --cluster create` (the hash slots split
// evenly) and waits until every node reports cluster_state:ok. The servers
// are stopped at t.Cleanup.
func RedisCluster(t testing.TB, primaries int) *RedisClusterServer {
	t.Helper()
	if primaries < 3 {
		t.Fatalf("testservers: a Redis Cluster needs at least 3 primaries, got %d", primaries)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		fatal(t, "redis cluster", fmt.Errorf("redis-cli not found (install it with hack/test-deps.sh): %w", err))
	}
	pw := servers.RandomSecret(16)
	c := &RedisClusterServer{password: pw}
	addrs := make([]string, 0, primaries)
	for i := 0; i < primaries; i++ {
		// The bus port defaults to port+10000: pick a free one explicitly.
		conf := servers.DefaultRedisConf(pw) + fmt.Sprintf("masterauth %s\ncluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 5000\ncluster-port %d\n", pw, FreePort(t))
		n := RedisWithConfig(t, conf)
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, n.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+pw)
	if out, err := cmd.CombinedOutput(); err != nil {
		fatal(t, "redis cluster", fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out))
	}
	for _, a := range addrs {
		for {
			host, port, _ := strings.Cut(a, ":")
			cmd := exec.CommandContext(ctx, cli, "-h", host, "-p", port, "cluster", "info")
			cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+pw)
			out, err := cmd.Output()
			if err == nil && strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if ctx.Err() != nil {
				fatal(t, "redis cluster", fmt.Errorf("node %s never reported cluster_state:ok: %v\n%s", a, err, out))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return c
}

// Addrs are the nodes' host:port.
func (c *RedisClusterServer) Addrs() []string {
	a := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		a[i] = n.Addr()
	}
	return a
}

// Password is the password of every node.
func (c *RedisClusterServer) Password() string { return c.password }

// URL is go-redis's cluster URL form, as the operator renders REDIS_URL
// for mode: cluster: redis://:<pw>@<node-0>?addr=<node-1>&addr=<node-2>...
func (c *RedisClusterServer) URL() string {
	a := c.Addrs()
	q := url.Values{}
	for _, x := range a[1:] {
		q.Add("addr", x)
	}
	u := url.URL{Scheme: "redis", User: url.UserPassword("", c.password), Host: a[0], RawQuery: q.Encode()}
	return u.String()
}
