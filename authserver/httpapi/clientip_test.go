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
		want   string
	}{
		{"203.0.113.5:1234", nil, "203.0.113.5"},
		{"203.0.113.5:1234", []string{"1.2.3.4"}, "203.0.113.5"},                     // untrusted peer: header ignored
		{"10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1"},                    // trusted proxy
		{"10.1.2.3:80", []string{"6.6.6.6, 198.51.100.1, 10.0.0.9"}, "198.51.100.1"}, // right-most untrusted
		{"10.1.2.3:80", []string{"6.6.6.6", "198.51.100.1"}, "198.51.100.1"},
		{"10.1.2.3:80", []string{"garbage"}, "10.1.2.3"},
		{"10.1.2.3:80", nil, "10.1.2.3"},
		{"[::ffff:10.1.2.3]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		// Some proxies (Azure Application Gateway) add the client's port:
		// the address still counts, not the proxy's.
		{"10.1.2.3:80", []string{"198.51.100.1:5678"}, "198.51.100.1"},
		{"10.1.2.3:80", []string{"[2001:db8::1]:443, 10.0.0.9:80"}, "2001:db8::1"},
	}
	for _, c := range cases {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, x := range c.xff {
			r.Header.Add("X-Forwarded-For", x)
		}
		if got := ClientIP(r, trusted); got != c.want {
			t.Errorf("ClientIP(%s, %v) = %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}
