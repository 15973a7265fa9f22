package servers

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Redis is a running redis-server on 127.0.0.1.
type Redis struct {
	dir      string
	port     int
	password string
	confPath string
	proc     *process
}

// DefaultRedisConf is a redis.conf for tests: no persistence, requirepass.
func DefaultRedisConf(password string) string {
	return fmt.Sprintf("save \"\"\nappendonly no\nrequirepass %s\nmaxclients 10000\n", password)
}

// StartRedis starts redis-server from the full configuration text conf,
// with port, bind, dir, pidfile, unixsocket, daemonize and logfile lines
// appended so it runs on a free loopback port in a private directory.
func StartRedis(conf string) (*Redis, error) {
	bin, err := findBinary("redis-server", "/usr/bin", "/usr/local/bin")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		dir, err := makeDir("redis", nil)
		if err != nil {
			return nil, err
		}
		port, err := FreePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		r := &Redis{dir: dir, port: port, password: confPassword(conf), confPath: filepath.Join(dir, "redis.conf")}
		full := conf + fmt.Sprintf("\n# appended by internal/servers\nport %d\nbind 127.0.0.1\ndir %s\npidfile %s\nunixsocket %s\ndaemonize no\nlogfile \"\"\n",
			port, dir, filepath.Join(dir, "redis.pid"), filepath.Join(dir, "redis.sock"))
		if err := os.WriteFile(r.confPath, []byte(full), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("writing redis.conf: %w", err)
		}
		r.proc = &process{name: "redis-server", path: bin, args: []string{r.confPath}, dir: dir,
			logPath: filepath.Join(dir, "redis.log"), deathSg: syscall.SIGKILL, stopSg: syscall.SIGTERM}
		if lastErr = r.Start(); lastErr == nil {
			return r, nil
		}
		r.Close()
		if !isAddrInUse(lastErr) {
			break
		}
	}
	return nil, lastErr
}

// confPassword finds the default user's password in a redis.conf: the last
// requirepass, or a ">password" of "user default", following include files.
func confPassword(conf string) string {
	pw := ""
	scanConf(conf, &pw, 0)
	return pw
}

func scanConf(conf string, pw *string, depth int) {
	sc := bufio.NewScanner(strings.NewReader(conf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToLower(f[0]) {
		case "requirepass":
			if len(f) > 1 {
				*pw = strings.Trim(f[1], `"'`)
			} else {
				*pw = ""
			}
		case "user":
			if len(f) > 2 && f[1] == "default" {
				for _, r := range f[2:] {
					if strings.HasPrefix(r, ">") {
						*pw = r[1:]
					}
				}
			}
		case "include":
			if len(f) > 1 && depth < 5 {
				if b, err := os.ReadFile(strings.Trim(f[1], `"'`)); err == nil {
					scanConf(string(b), pw, depth+1)
				}
			}
		}
	}
}

// Start (re)starts the server on its port with its configuration.
func (r *Redis) Start() error {
	if ex, _ := r.proc.exited(); !ex {
		return nil
	}
	if err := r.proc.start(); err != nil {
		return err
	}
	return r.proc.waitReady(20*time.Second, r.ping)
}

// ping checks that the server answers (PONG, or NOAUTH when a password is set).
func (r *Redis) ping() error {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") {
		return nil
	}
	return fmt.Errorf("unexpected PING answer %q", strings.TrimSpace(line))
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s).
func (r *Redis) Stop() { r.proc.stop() }

// Close stops the server and removes its directory.
func (r *Redis) Close() {
	r.proc.stop()
	os.RemoveAll(r.dir)
}

// Addr is host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Password is the default user's password ("" when none).
func (r *Redis) Password() string { return r.password }

// Pid is the server's process id.
func (r *Redis) Pid() int { return r.proc.pid() }

// LogPath is the file holding the server's output.
func (r *Redis) LogPath() string { return r.proc.logPath }

// URL is redis://:<password>@127.0.0.1:port/0 (no password part without one).
func (r *Redis) URL() string {
	u := url.URL{Scheme: "redis", Host: r.Addr(), Path: "/0"}
	if r.password != "" {
		u.User = url.UserPassword("", r.password)
	}
	return u.String()
}
