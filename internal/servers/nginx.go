package servers

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Nginx is Debian's nginx (hack/test-deps.sh) in front of an app, with the
// forward auth ingress-nginx renders for the auth-url, auth-signin and
// auth-response-headers annotations.
type Nginx struct {
	dir  string
	port int
	proc *process
}

// NginxAuth is the part of an Ingress the forward auth comes from.
type NginxAuth struct {
	AuthURL   string   // nginx.ingress.kubernetes.io/auth-url
	SigninURL string   // auth-signin; "" for none (every refusal is then a 401)
	Headers   []string // auth-response-headers
	// NoAuthPrefix is a path prefix served without the check ("" for none),
	// the "without the check" baseline of the benchmarks.
	NoAuthPrefix string
}

// NginxModules are the dynamic modules ingress-nginx's configuration needs
// (set_escape_uri, for the sign-in URL), as Debian ships them.
var NginxModules = []string{"/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_set_misc_module.so"}

// NginxConfig follows the server block ingress-nginx (controller v1.x,
// nginx.tmpl) renders for a location with those annotations: an internal
// auth location that passes the request's headers (not its body) with
// X-Original-URL over a new connection per check (auth-keepalive's default
// is 0), keep-alive connections to the app (upstream-keepalive's default), auth_request on the location, each response header copied
// with auth_request_set + proxy_set_header (which replaces a header of the
// same name sent by the client), and, with auth-signin, error_page 401 to a
// location that redirects with rd=<the URL asked for>.
// The folder dir holds the pid and temp files; listen is nginx's listen
// parameter (host:port or a port); app is the upstream's host:port. The
// real-node edge tests run the same configuration in a pod.
func NginxConfig(dir, listen, app string, a NginxAuth) string {
	var b strings.Builder
	for _, m := range NginxModules {
		fmt.Fprintf(&b, "load_module %s;\n", m)
	}
	fmt.Fprintf(&b, `daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  upstream app { server %[3]s; keepalive 320; }
  server {
    listen %[2]s;
    location = /_external-auth {
      internal;
      proxy_pass_request_body    off;
      proxy_set_header           Content-Length          "";
      proxy_set_header           X-Forwarded-Proto       "";
      proxy_set_header           Host                    %[4]s;
      proxy_set_header           X-Original-URL          $scheme://$http_host$request_uri;
      proxy_set_header           X-Original-Method       $request_method;
      proxy_set_header           X-Sent-From             "nginx-ingress-controller";
      proxy_set_header           X-Real-IP               $remote_addr;
      proxy_set_header           X-Forwarded-For         $remote_addr;
      proxy_set_header           X-Auth-Request-Redirect $request_uri;
      proxy_buffering            off;
      proxy_pass_request_headers on;
      proxy_pass                 %[5]s;
    }
`, dir, listen, app, hostPort(a.AuthURL), a.AuthURL)
	if a.SigninURL != "" {
		fmt.Fprintf(&b, `    location @_external-auth-signin {
      internal;
      add_header Set-Cookie $auth_cookie;
      return 302 %s%srd=$scheme://$http_host$escaped_request_uri;
    }
`, a.SigninURL, map[bool]string{true: "&", false: "?"}[strings.Contains(a.SigninURL, "?")])
	}
	if a.NoAuthPrefix != "" {
		fmt.Fprintf(&b, `    location %s {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }
`, a.NoAuthPrefix)
	}
	b.WriteString(`    location / {
      auth_request     /_external-auth;
      auth_request_set $auth_cookie $upstream_http_set_cookie;
      add_header       Set-Cookie $auth_cookie;
`)
	for i, h := range a.Headers {
		v := "$upstream_http_" + strings.ReplaceAll(strings.ToLower(h), "-", "_")
		fmt.Fprintf(&b, "      auth_request_set $authHeader%d %s;\n      proxy_set_header '%s' $authHeader%d;\n", i, v, h, i)
	}
	if a.SigninURL != "" {
		b.WriteString("      set_escape_uri $escaped_request_uri $request_uri;\n      error_page 401 = @_external-auth-signin;\n")
	}
	b.WriteString(`      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }
  }
}
`)
	return b.String()
}

func hostPort(u string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}

// StartNginx starts nginx on a free loopback port in front of app (a
// host:port) with the forward auth of a.
func StartNginx(app string, a NginxAuth) (*Nginx, error) {
	bin, err := findBinary("nginx", "/usr/sbin")
	if err != nil {
		return nil, err
	}
	for _, m := range NginxModules {
		if _, err := os.Stat(m); err != nil {
			return nil, fmt.Errorf("nginx module %s missing: run %s", m, DepsScript)
		}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		dir, err := makeDir("nginx", nil)
		if err != nil {
			return nil, err
		}
		// Workers of a root master run as nobody: they write the temp folders.
		if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o777); err == nil {
			err = os.Chmod(filepath.Join(dir, "tmp"), 0o777)
		}
		n := &Nginx{dir: dir}
		if err == nil {
			n.port, err = FreePort()
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(NginxConfig(dir, n.Addr(), app, a)), 0o644)
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		n.proc = &process{name: "nginx", path: bin, dir: dir, logPath: filepath.Join(dir, "nginx.log"),
			deathSg: syscall.SIGKILL, stopSg: syscall.SIGQUIT,
			args: []string{"-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log")}}
		if lastErr = n.proc.start(); lastErr == nil {
			lastErr = n.proc.waitReady(30*time.Second, func() error { return tcpDial(n.Addr()) })
		}
		if lastErr == nil {
			return n, nil
		}
		errLog := readTail(filepath.Join(dir, "error.log"))
		n.Close()
		if !isAddrInUse(lastErr) && !strings.Contains(errLog, "Address already in use") {
			return nil, fmt.Errorf("%w\nerror.log:\n%s", lastErr, errLog)
		}
	}
	return nil, lastErr
}

// Addr is nginx's host:port.
func (n *Nginx) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// Close stops nginx and removes its folder.
func (n *Nginx) Close() {
	n.proc.stop()
	os.RemoveAll(n.dir)
}
