package envtranslate

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// In-cluster addresses mapped to local ones.

// addressMap keys the address mapping (Options.Addresses) by canonical host and port.
func addressMap(addresses map[string]string, ns string) (map[string]string, error) {
	out := make(map[string]string, len(addresses))
	for k, v := range addresses {
		h, p, err := net.SplitHostPort(k)
		if err != nil {
			return nil, fmt.Errorf("address mapping key %q: want host:port: %w", k, err)
		}
		out[net.JoinHostPort(canonicalHost(h, ns), p)] = v
	}
	return out, nil
}

// canonicalHost turns every form of a Service name into name.ns.svc; other
// hosts (external names, IPs) are lower-cased and kept.
func canonicalHost(h, ns string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if net.ParseIP(h) != nil || h == "localhost" {
		return h
	}
	h = strings.TrimSuffix(h, ".cluster.local")
	parts := strings.Split(h, ".")
	switch {
	case len(parts) == 1:
		return h + "." + ns + ".svc"
	case len(parts) == 2 && parts[1] != "svc":
		// name.ns, unless the second label looks like a top-level domain of an external name:
		// short two-label names are Service forms only when that namespace exists, which we
		// cannot know, so both forms are matched (see lookup).
		return h + ".svc"
	}
	return h
}

// inCluster reports whether a host is a Service DNS name.
func inCluster(h string) bool {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	return strings.HasSuffix(h, ".svc") || strings.HasSuffix(h, ".svc.cluster.local")
}

func (t *translator) lookup(host, port string) (string, bool) {
	if to, ok := t.addrs[net.JoinHostPort(canonicalHost(host, t.ns), port)]; ok {
		return to, true
	}
	to, ok := t.addrs[net.JoinHostPort(strings.ToLower(host), port)]
	return to, ok
}

// rewriteURL maps the host:port of a URL value (postgres://, redis://, ...).
func (t *translator) rewriteURL(v string) (string, bool, error) {
	if !strings.Contains(v, "://") {
		return v, false, nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return v, false, nil
	}
	port := u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	host := u.Hostname()
	to, ok := t.lookup(host, port)
	if !ok {
		if inCluster(host) {
			return "", false, fmt.Errorf("in-cluster address %s:%s has no local equivalent (add it to the address mapping)", host, port)
		}
		return v, false, nil
	}
	u.Host = to
	return u.String(), true, nil
}

func defaultPort(scheme string) string {
	switch scheme {
	case "postgres", "postgresql":
		return "5432"
	case "redis", "rediss":
		return "6379"
	case "http":
		return "80"
	case "https":
		return "443"
	case "smtp":
		return "25"
	}
	return ""
}

// rewriteSMTP maps SMTP_HOST and SMTP_PORT together.
func (t *translator) rewriteSMTP(p *Process) error {
	hi, pi := -1, -1
	for i, v := range p.Env {
		switch v.Name {
		case "SMTP_HOST":
			hi = i
		case "SMTP_PORT":
			pi = i
		}
	}
	if hi < 0 {
		return nil
	}
	port := "587"
	if pi >= 0 {
		port = p.Env[pi].Value
	}
	host := p.Env[hi].Value
	to, ok := t.lookup(host, port)
	if !ok {
		if inCluster(host) {
			return fmt.Errorf("SMTP server %s:%s has no local equivalent (add it to the address mapping)", host, port)
		}
		return nil
	}
	h, pt, err := net.SplitHostPort(to)
	if err != nil {
		return fmt.Errorf("address mapping for %s:%s: %w", host, port, err)
	}
	if _, err := strconv.Atoi(pt); err != nil {
		return fmt.Errorf("address mapping for %s:%s: port %q is not a number", host, port, pt)
	}
	p.Env[hi].Value, p.Env[hi].Rewritten = h, true
	if pi >= 0 {
		p.Env[pi].Value, p.Env[pi].Rewritten = pt, true
	} else {
		p.Env = append(p.Env, Var{Name: "SMTP_PORT", Value: pt, Source: "value", Rewritten: true})
	}
	return nil
}
