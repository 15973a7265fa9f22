//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leanauth/authstack/internal/localstack"
	"github.com/leanauth/authstack/internal/servers"
)

// operator is the operator binary run as a local process; it can be killed
// and restarted. Its metrics endpoint counts its requests to the API server.
type operator struct {
	mu      sync.Mutex
	logDir  string
	logPath string
	proc    *localstack.Proc
	metrics string // http://127.0.0.1:port/metrics
	starts  int
}

func newOperator(logDir string) *operator {
	_ = os.MkdirAll(logDir, 0o755)
	return &operator{logDir: logDir, logPath: filepath.Join(logDir, "operator.log")}
}

// start runs the operator and waits until its health endpoint answers.
func (o *operator) start() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.proc != nil {
		if !o.proc.Exited() {
			return nil
		}
	}
	mport, err := servers.FreePort()
	if err != nil {
		return err
	}
	hport, err := servers.FreePort()
	if err != nil {
		return err
	}
	o.starts++
	f, _ := os.OpenFile(o.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	fmt.Fprintf(f, "---- start %d ----\n", o.starts)
	f.Close()
	o.metrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	p, err := localstack.StartProc(env.managerBin, []string{
		"--kubeconfig", env.kubeconfig, "--leader-elect=false",
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", mport),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", hport),
		"--authserver-image", "ghcr.io/leanauth/authserver:e2e",
	}, os.Environ(), o.logPath)
	if err != nil {
		return err
	}
	o.proc = p
	hc := &http.Client{Timeout: time.Second}
	return p.WaitReady(60*time.Second, func() error {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", hport))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
}

// kill sends SIGKILL and waits for the process to end.
func (o *operator) kill() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.proc == nil {
		return
	}
	_ = syscall.Kill(o.proc.Pid(), syscall.SIGKILL)
	o.proc.Wait(30 * time.Second)
	o.proc = nil
}

// stop ends the operator gracefully.
func (o *operator) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.proc != nil {
		o.proc.Stop()
		o.proc = nil
	}
}

// writes is the number of write requests (POST, PUT, PATCH, DELETE) the
// running operator has sent to the API server, from client-go's
// rest_client_requests_total in its metrics.
func (o *operator) writes() (int, error) {
	o.mu.Lock()
	u := o.metrics
	o.mu.Unlock()
	resp, err := http.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	total, found := 0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "rest_client_requests_total{") {
			continue
		}
		found = true
		labels, value, _ := strings.Cut(line[len("rest_client_requests_total{"):], "} ")
		write := false
		for _, m := range []string{`method="POST"`, `method="PUT"`, `method="PATCH"`, `method="DELETE"`} {
			if strings.Contains(labels, m) {
				write = true
			}
		}
		if !write {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %q: %w", line, err)
		}
		total += int(f)
	}
	if !found {
		return 0, fmt.Errorf("no rest_client_requests_total in the operator's metrics")
	}
	return total, sc.Err()
}
