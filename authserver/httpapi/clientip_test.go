package httpapi

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

var fixed = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	cases := []struct {
		remote string
		xff    []string
		hops   int
		want   string
	}{
		{"203.0.113.5:1234", nil, 0, "203.0.113.5"},
		{"203.0.113.5:1234", []string{"1.2.3.4"}, 0, "203.0.113.5"},                     // untrusted peer: header ignored
		{"10.1.2.3:80", []string{"198.51.100.1"}, 0, "198.51.100.1"},                    // trusted proxy
		{"10.1.2.3:80", []string{"6.6.6.6, 198.51.100.1, 10.0.0.9"}, 0, "198.51.100.1"}, // right-most untrusted
		// A client on a private (trusted) address, its forged entry before
		// it: by trust alone the forged entry is believed; counting hops,
		// the client's own address is.
		{"10.1.2.3:80", []string{"198.51.100.20, 10.244.1.7"}, 0, "198.51.100.20"},
		{"10.1.2.3:80", []string{"198.51.100.20, 10.244.1.7"}, 1, "10.244.1.7"},
		{"10.1.2.3:80", []string{"6.6.6.6, 198.51.100.1, 10.0.0.9"}, 2, "198.51.100.1"}, // a load balancer, then the ingress
		{"10.1.2.3:80", []string{"6.6.6.6", "198.51.100.1, 10.0.0.9"}, 3, "6.6.6.6"},    // across header lines
		{"10.1.2.3:80", []string{"198.51.100.1"}, 2, "198.51.100.1"},                    // fewer entries than hops: the left-most
		{"203.0.113.5:1234", []string{"1.2.3.4"}, 1, "203.0.113.5"},                     // untrusted peer: header ignored
		{"10.1.2.3:80", []string{"garbage, 198.51.100.1"}, 2, "198.51.100.1"},           // malformed: the nearest address read
		{"10.1.2.3:80", []string{"6.6.6.6", "198.51.100.1"}, 0, "198.51.100.1"},
		{"10.1.2.3:80", []string{"garbage"}, 0, "10.1.2.3"},
		{"10.1.2.3:80", nil, 0, "10.1.2.3"},
		{"[::ffff:10.1.2.3]:80", []string{"2001:db8::1"}, 0, "2001:db8::1"},
		// Some proxies (Azure Application Gateway) add the client's port:
		// the address still counts, not the proxy's.
		{"10.1.2.3:80", []string{"198.51.100.1:5678"}, 0, "198.51.100.1"},
		{"10.1.2.3:80", []string{"[2001:db8::1]:443, 10.0.0.9:80"}, 0, "2001:db8::1"},
	}
	for _, c := range cases {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, x := range c.xff {
			r.Header.Add("X-Forwarded-For", x)
		}
		if got := ClientIP(r, trusted, c.hops); got != c.want {
			t.Errorf("ClientIP(%s, %v, hops %d) = %s, want %s", c.remote, c.xff, c.hops, got, c.want)
		}
	}
}
