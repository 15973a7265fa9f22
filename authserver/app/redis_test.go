package app

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The cluster URL form gives a cluster client seeded with every node, the
// password and (rediss) TLS; other URLs a single-node client as before.
func TestNewRedisClusterAndStandalone(t *testing.T) {
	c, err := NewRedis("redis://:s3cretpw@n0:6379?addr=n1:6379&addr=n2:6380")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("cluster URL gave a %T", c)
	}
	o := cc.Options()
	if strings.Join(o.Addrs, ",") != "n0:6379,n1:6379,n2:6380" || o.Password != "s3cretpw" || o.TLSConfig != nil || o.MaxRetries != 1 {
		t.Errorf("cluster options: addrs %v password set %v tls %v retries %d", o.Addrs, o.Password == "s3cretpw", o.TLSConfig, o.MaxRetries)
	}

	c2, err := NewRedis("rediss://n0:6379?addr=n1:6379&password=s3cretpw")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	o2 := c2.(*redis.ClusterClient).Options()
	if o2.Password != "s3cretpw" || o2.TLSConfig == nil || o2.TLSConfig.ServerName != "" {
		t.Errorf("rediss cluster: password set %v, tls %+v (want TLS, each node checked against its own name)", o2.Password == "s3cretpw", o2.TLSConfig)
	}

	s, err := NewRedis("redis://:s3cretpw@h:6379/2")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sc, ok := s.(*redis.Client)
	if !ok || sc.Options().DB != 2 || sc.Options().Password != "s3cretpw" || sc.Options().Addr != "h:6379" {
		t.Errorf("standalone URL gave %T", s)
	}
}

func TestNewRedisErrorsNameTheVariableNotThePassword(t *testing.T) {
	for _, u := range []string{
		"redis://:s3cretpw@n0:6379?addr=n1",              // addr without a port
		"redis://:s3cretpw@n0:6379?addr=n1:6379&bogus=1", // unknown option
		"redis://:s3cretpw@n0:6379/3?addr=n1:6379",       // a database in cluster mode
		"http://:s3cretpw@n0:6379?addr=n1:6379",          // scheme
		"redis://:s3cretpw@h:6379/x",                     // standalone, bad database
	} {
		c, err := NewRedis(u)
		if err == nil {
			c.Close()
			t.Errorf("%q accepted", strings.ReplaceAll(u, "s3cretpw", "***"))
			continue
		}
		if !strings.HasPrefix(err.Error(), "REDIS_URL: ") || strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("error %q: must name REDIS_URL and not echo the password", err)
		}
	}
}
