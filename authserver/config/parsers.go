package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/leanauth/authstack/authserver/pepperusage"
)

// Parsers and checks of single values used by the sections. The operator's
// tests hold its pepper rule to ParsePepper (controllers/resources/contract_test.go).

// PepperID derives the public identifier of a pepper key (pepperusage.ID).
func PepperID(key []byte) string { return pepperusage.ID(key) }

// ParseLimit parses "N/duration" (like "10/1m"); "0" or "off" disables.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "0" || strings.EqualFold(s, "off") {
		return Limit{}, nil
	}
	ns, ds, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("must be N/duration like 10/1m or off, got %q", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil || n < 0 || n > 1_000_000 {
		return Limit{}, fmt.Errorf("count must be an integer from 0 to 1000000, got %q", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(ds))
	if err != nil || d < time.Second || d > 30*24*time.Hour {
		return Limit{}, fmt.Errorf("window must be a duration from 1s to 720h, got %q", s)
	}
	if n == 0 {
		return Limit{}, nil
	}
	return Limit{N: n, Window: d}, nil
}

// ParsePepper decodes a pepper: 64 hex characters (32 bytes).
func ParsePepper(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) != 64 {
		return nil, fmt.Errorf("must be 64 hex characters (32 bytes), got %d characters", len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("must be 64 hex characters (32 bytes): not valid hex")
	}
	return b, nil
}

func checkDBURL(l *loader, name, v string) {
	if v == "" {
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		l.fail(name, "must be a postgres:// or postgresql:// URL with a host")
	}
}

// checkRedisURL validates REDIS_URL: a redis:// or rediss:// URL with a
// host, or go-redis's Redis Cluster form, the same with addr=host:port for
// every other seed node (redis://:pw@node-0:6379?addr=node-1:6379&...).
// Messages never contain the URL: it holds the password.
func checkRedisURL(l *loader, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		l.fail("REDIS_URL", "must be a redis:// or rediss:// URL with a host")
		return
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		l.fail("REDIS_URL", "malformed query string")
		return
	}
	addrs, cluster := q["addr"]
	if !cluster {
		return
	}
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		l.fail("REDIS_URL", "a cluster URL (with addr=) cannot select a database: Redis Cluster has only database 0")
	}
	for i, a := range append([]string{u.Host}, addrs...) {
		h, p, err := net.SplitHostPort(a)
		if i == 0 && err != nil && u.Port() == "" {
			continue // the first node may leave the port at its default, 6379
		}
		n, perr := strconv.Atoi(p)
		if err != nil || h == "" || perr != nil || n < 1 || n > 65535 {
			l.fail("REDIS_URL", "cluster node %d: addr must be host:port", i+1)
			return
		}
	}
}

// ParseHostPattern checks one entry of AUTH_REDIRECT_HOSTS: a host name, or
// "*." and a domain of at least two labels (its subdomains at any depth),
// and lower-cases it.
func ParseHostPattern(s string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(s))
	name, wild := strings.CutPrefix(p, "*.")
	bad := name == "" || strings.ContainsAny(name, "*/:@?#[]\\ ") || (wild && !strings.Contains(name, "."))
	if !bad {
		u, err := url.Parse("http://" + name)
		bad = err != nil || u.Hostname() != name
	}
	if bad {
		return "", fmt.Errorf("%q is not a host name or *.domain (like *.example.com)", s)
	}
	return p, nil
}
