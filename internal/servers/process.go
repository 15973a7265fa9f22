// Package servers starts real PostgreSQL, Redis, pgbouncer and mailpit
// processes on loopback free ports. It is shared by the test helpers in
// internal/testservers and by the load command cmd/authbench.
//
// Every child process gets a parent-death signal, so it dies with the
// process that started it even when no cleanup code runs.
package servers

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DepsScript is the script that installs every binary this package starts.
const DepsScript = "hack/test-deps.sh"

// MissingBinaryError reports a server binary that is not installed.
type MissingBinaryError struct {
	Name   string
	Looked []string
}

func (e *MissingBinaryError) Error() string {
	return fmt.Sprintf("%s not found (looked in %s): run %s to install the test servers",
		e.Name, strings.Join(e.Looked, ", "), DepsScript)
}

// CacheDir is where hack/test-deps.sh puts built binaries (mailpit).
func CacheDir() string {
	if d := os.Getenv("AUTHSTACK_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "authstack")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "authstack-cache")
	}
	return filepath.Join(home, ".cache", "authstack")
}

// findBinary looks for name in PATH and in the given extra directories.
func findBinary(name string, extra ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	looked := []string{"$PATH"}
	for _, d := range extra {
		p := filepath.Join(d, name)
		looked = append(looked, d)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &MissingBinaryError{Name: name, Looked: looked}
}

// CachedBinary finds a program a hack/ script builds into CacheDir()/bin
// (hack/go-tool.sh): the path in the environment variable envVar if set, then
// the cache, then PATH. The error names the script that builds it.
func CachedBinary(envVar, name, script string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		return p, nil
	}
	p := filepath.Join(CacheDir(), "bin", name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found (looked in $%s, %s, $PATH): run %s (or make test-deps) to build it", name, envVar, filepath.Dir(p), script)
}

// postgresBinDir returns the newest /usr/lib/postgresql/*/bin holding postgres.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	ver := func(d string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		return n
	}
	sort.Slice(dirs, func(i, j int) bool { return ver(dirs[i]) > ver(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				return d, nil
			}
		}
	}
	return "", &MissingBinaryError{Name: "postgres/initdb", Looked: []string{"/usr/lib/postgresql/*/bin"}}
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// unprivilegedUser returns the credential to run PostgreSQL and pgbouncer
// with: nil when we are not root, else the "postgres" OS user (both refuse
// to run as root).
func unprivilegedUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres OS user (created by the postgresql package; run %s): %w", DepsScript, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// chownTree gives dir and everything under it to cred (no-op when nil).
func chownTree(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
}

var sweepOnce sync.Once

// makeDir creates a private directory for one server under the system temp
// dir, named with our pid so that directories left behind by a killed test
// binary are removed by the next run.
func makeDir(kind string, cred *syscall.Credential) (string, error) {
	sweepOnce.Do(sweepStaleDirs)
	dir, err := os.MkdirTemp("", fmt.Sprintf("authstack-%s-%d-", kind, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("creating a directory for %s: %w", kind, err)
	}
	if err := chownTree(dir, cred); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("handing %s to the postgres user: %w", dir, err)
	}
	return dir, nil
}

func sweepStaleDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "authstack-*-*-*"))
	for _, m := range matches {
		parts := strings.Split(filepath.Base(m), "-")
		if len(parts) < 4 {
			continue
		}
		pid, err := strconv.Atoi(parts[2])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM) {
			continue // still alive
		}
		os.RemoveAll(m)
	}
}

// process is one child server process with its output captured to a file.
type process struct {
	name    string
	path    string
	args    []string
	dir     string
	logPath string
	cred    *syscall.Credential
	env     []string       // added to os.Environ()
	deathSg syscall.Signal // sent to the child when we die
	stopSg  syscall.Signal // sent by stop()

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the %s log: %w", p.name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(append(os.Environ(), "LC_ALL=C", "LANG=C"), p.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: p.deathSg, Setpgid: true, Credential: p.cred}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// exited reports whether the process has ended (and how).
func (p *process) exited() (bool, error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true, nil
	}
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// pid is the child's process id (0 when not started).
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// stop sends the stop signal, waits up to 10 s, then kills.
func (p *process) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || done == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(p.stopSg)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		<-done
	}
}

// logTail returns the end of the captured output, for error messages.
func (p *process) logTail() string {
	return readTail(p.logPath)
}

func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 4000
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return string(bytes.TrimSpace(b))
}

// waitReady polls ready until it succeeds, the process exits, or timeout.
func (p *process) waitReady(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if ex, err := p.exited(); ex {
			return fmt.Errorf("%s exited during start (%v); log %s:\n%s", p.name, err, p.logPath, p.logTail())
		}
		if last = ready(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return fmt.Errorf("%s not ready after %s (%v); log %s:\n%s", p.name, timeout, last, p.logPath, p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// isAddrInUse reports whether a failed start looks like a port race, in
// which case the caller retries on another free port.
func isAddrInUse(err error) bool {
	if err == nil {
		return false
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "address already in use") || strings.Contains(s, "could not bind") || strings.Contains(s, "bind: address")
}

// tcpDial checks that something listens on addr.
func tcpDial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// LogTail returns the last few kilobytes of a log file, for error messages.
func LogTail(path string) string { return readTail(path) }

// Process is a child process started by StartProcess: it gets SIGKILL when
// its parent dies, and its output goes to a log file.
type Process struct{ p *process }

// StartProcess starts path with args, the current environment plus env, its
// output appended to logPath, in its own process group.
func StartProcess(name, path string, args, env []string, logPath string) (*Process, error) {
	p := &process{name: name, path: path, args: args, env: env, logPath: logPath,
		deathSg: syscall.SIGKILL, stopSg: syscall.SIGTERM}
	if err := p.start(); err != nil {
		return nil, err
	}
	return &Process{p: p}, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.p.pid() }

// Stop sends SIGTERM, waits up to 10 s, then kills the process group.
func (p *Process) Stop() { p.p.stop() }

// Exited reports whether the process has ended, and its error.
func (p *Process) Exited() (bool, error) { return p.p.exited() }

// Wait waits for the process to end, at most timeout; it reports whether it ended.
func (p *Process) Wait(timeout time.Duration) (bool, error) {
	select {
	case <-p.p.done:
	case <-time.After(timeout):
	}
	return p.p.exited()
}

// WaitReady polls ready until it succeeds; it fails when the process exits
// or after timeout (then stopping it), quoting the end of its log.
func (p *Process) WaitReady(timeout time.Duration, ready func() error) error {
	return p.p.waitReady(timeout, ready)
}

// LogPath is the file holding the process's output.
func (p *Process) LogPath() string { return p.p.logPath }
