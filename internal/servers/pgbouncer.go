package servers

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PgBouncer is a running pgbouncer on 127.0.0.1.
type PgBouncer struct {
	dir  string
	port int
	user string
	pass string
	db   string
	proc *process
}

// PgBouncerConfigFor renders a pgbouncer.ini (transaction pooling) and an
// auth file for the PostgreSQL database at databaseURL: every database name
// is forwarded to that server, and the URL's user authenticates with the
// URL's password (scram-sha-256 to the client and to the server).
func PgBouncerConfigFor(databaseURL string) (ini, authFile string, err error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", "", fmt.Errorf("parsing the database URL: %w", err)
	}
	pw, _ := u.User.Password()
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	ini = fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
pool_mode = transaction
auth_type = scram-sha-256
max_client_conn = 2000
default_pool_size = 40
max_db_connections = 80
ignore_startup_parameters = extra_float_digits,search_path,options
server_reset_query =
server_check_delay = 1
`, host, port)
	authFile = fmt.Sprintf("%q %q\n", u.User.Username(), pw)
	return ini, authFile, nil
}

// rewritten are the [pgbouncer] keys StartPgBouncer sets itself.
var rewritten = map[string]bool{
	"listen_addr": true, "listen_port": true, "logfile": true, "pidfile": true,
	"unix_socket_dir": true, "auth_file": true, "user": true,
}

// StartPgBouncer starts pgbouncer from a full pgbouncer.ini text and an auth
// file's content. listen_addr, listen_port, logfile, pidfile,
// unix_socket_dir, auth_file (and user) are replaced so that it runs on a
// free loopback port in a private directory; the rest is used as given.
// When we are root it runs as the postgres OS user (pgbouncer refuses root).
func StartPgBouncer(ini, authFile string) (*PgBouncer, error) {
	bin, err := findBinary("pgbouncer", "/usr/sbin", "/usr/bin", "/usr/local/bin")
	if err != nil {
		return nil, err
	}
	cred, err := unprivilegedUser()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		var b *PgBouncer
		b, lastErr = startPgBouncer(bin, cred, ini, authFile)
		if lastErr == nil {
			return b, nil
		}
		if !isAddrInUse(lastErr) {
			break
		}
	}
	return nil, lastErr
}

func startPgBouncer(bin string, cred *syscall.Credential, ini, authFile string) (*PgBouncer, error) {
	dir, err := makeDir("pgbouncer", cred)
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	b := &PgBouncer{dir: dir, port: port}
	b.user, b.pass = firstAuthUser(authFile)
	b.db = firstDatabase(ini)
	authPath := filepath.Join(dir, "userlist.txt")
	iniPath := filepath.Join(dir, "pgbouncer.ini")
	own := fmt.Sprintf("listen_addr = 127.0.0.1\nlisten_port = %d\nlogfile = %s\npidfile = %s\nunix_socket_dir = %s\nauth_file = %s\n",
		port, filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"), dir, authPath)
	if err := os.WriteFile(iniPath, []byte(rewriteIni(ini, own)), 0o600); err != nil {
		b.Close()
		return nil, fmt.Errorf("writing pgbouncer.ini: %w", err)
	}
	if err := os.WriteFile(authPath, []byte(authFile), 0o600); err != nil {
		b.Close()
		return nil, fmt.Errorf("writing the pgbouncer auth file: %w", err)
	}
	if err := chownTree(dir, cred); err != nil {
		b.Close()
		return nil, fmt.Errorf("chowning %s: %w", dir, err)
	}
	b.proc = &process{name: "pgbouncer", path: bin, args: []string{iniPath}, dir: dir, cred: cred,
		logPath: filepath.Join(dir, "stdout.log"), deathSg: syscall.SIGKILL, stopSg: syscall.SIGTERM}
	if err := b.proc.start(); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.proc.waitReady(20*time.Second, func() error { return tcpDial(b.Addr()) }); err != nil {
		err = fmt.Errorf("%w\npgbouncer.log:\n%s", err, readTail(filepath.Join(dir, "pgbouncer.log")))
		b.Close()
		return nil, err
	}
	return b, nil
}

// rewriteIni drops the keys we own from the [pgbouncer] section and adds
// ours at its start (a section is created when missing).
func rewriteIni(ini, own string) string {
	var out strings.Builder
	section := ""
	added := false
	sc := bufio.NewScanner(strings.NewReader(ini))
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "[") && strings.HasSuffix(trim, "]") {
			section = strings.ToLower(strings.Trim(trim, "[] "))
			out.WriteString(line + "\n")
			if section == "pgbouncer" && !added {
				out.WriteString(own)
				added = true
			}
			continue
		}
		if section == "pgbouncer" {
			if k, _, ok := strings.Cut(trim, "="); ok && rewritten[strings.ToLower(strings.TrimSpace(k))] {
				out.WriteString("; (replaced by internal/servers) " + line + "\n")
				continue
			}
		}
		out.WriteString(line + "\n")
	}
	if !added {
		out.WriteString("\n[pgbouncer]\n" + own)
	}
	return out.String()
}

func firstAuthUser(authFile string) (user, pass string) {
	for _, line := range strings.Split(authFile, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, `"`) {
			continue
		}
		var fields []string
		for _, part := range strings.Split(line, `" "`) {
			fields = append(fields, strings.Trim(part, `" `))
		}
		if len(fields) >= 2 {
			return strings.ReplaceAll(fields[0], `""`, `"`), strings.ReplaceAll(fields[1], `""`, `"`)
		}
	}
	return "", ""
}

func firstDatabase(ini string) string {
	section := ""
	for _, line := range strings.Split(ini, "\n") {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "[") && strings.HasSuffix(trim, "]") {
			section = strings.ToLower(strings.Trim(trim, "[] "))
			continue
		}
		if section != "databases" || trim == "" || strings.HasPrefix(trim, ";") || strings.HasPrefix(trim, "#") {
			continue
		}
		if k, _, ok := strings.Cut(trim, "="); ok {
			return strings.TrimSpace(k)
		}
	}
	return ""
}

// Addr is host:port.
func (b *PgBouncer) Addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

// Port is the TCP port.
func (b *PgBouncer) Port() int { return b.port }

// Pid is pgbouncer's process id.
func (b *PgBouncer) Pid() int { return b.proc.pid() }

// LogPath is pgbouncer's own log file.
func (b *PgBouncer) LogPath() string { return filepath.Join(b.dir, "pgbouncer.log") }

// URLFor is databaseURL with its host and port replaced by pgbouncer's.
func (b *PgBouncer) URLFor(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return ""
	}
	u.Host = b.Addr()
	return u.String()
}

// URL is a URL through pgbouncer for the auth file's first user and the
// ini's first database (the wildcard "*" gives an empty database name).
func (b *PgBouncer) URL() string {
	db := b.db
	if db == "*" {
		db = ""
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(b.user, b.pass), Host: b.Addr(), Path: "/" + db,
		RawQuery: "sslmode=disable"}
	if b.user == "" {
		u.User = nil
	}
	return u.String()
}

// Close stops pgbouncer and removes its directory.
func (b *PgBouncer) Close() {
	if b.proc != nil {
		b.proc.stop()
	}
	os.RemoveAll(b.dir)
}
