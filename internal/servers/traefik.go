package servers

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/mod/modfile"
)

// Traefik v3, built by hack/traefik.sh from the Go module proxy.
const (
	TraefikScript  = "hack/traefik.sh"
	TraefikModule  = "github.com/traefik/traefik/v3"
	TraefikVersion = "v3.6.12" // as hack/traefik.sh pins it (TestTraefikPin)
)

// GoModuleDir is the folder of module@version in the Go module cache,
// downloaded through the module proxy when it is not there yet.
func GoModuleDir(module, version string) (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", module+"@"+version).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", module, version, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", module, version, m.Error)
	}
	return m.Dir, nil
}

// TraefikCRDs returns the files of the CRDs Traefik's Kubernetes providers
// read: Gateway API's standard channel at the version Traefik is built
// with, and Traefik's own (Middleware, ...), both from their modules.
func TraefikCRDs() ([]string, error) {
	dir, err := GoModuleDir(TraefikModule, TraefikVersion)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return nil, err
	}
	mf, err := modfile.ParseLax("go.mod", b, nil)
	if err != nil {
		return nil, err
	}
	var gw string
	for _, r := range mf.Require {
		if r.Mod.Path == "sigs.k8s.io/gateway-api" {
			gw = r.Mod.Version
		}
	}
	if gw == "" {
		return nil, fmt.Errorf("%s@%s does not require sigs.k8s.io/gateway-api", TraefikModule, TraefikVersion)
	}
	gwDir, err := GoModuleDir("sigs.k8s.io/gateway-api", gw)
	if err != nil {
		return nil, err
	}
	files, _ := filepath.Glob(filepath.Join(gwDir, "config", "crd", "standard", "*.yaml"))
	return append(files, filepath.Join(dir, "docs", "content", "reference", "dynamic-configuration", "kubernetes-crd-definition-v1.yml")), nil
}

// Traefik is a Traefik process with one HTTP entry point on loopback.
type Traefik struct {
	dir  string
	port int
	proc *process
}

// StartTraefik starts Traefik with its entry point "web" on a free loopback
// port, the environment env (KUBECONFIG for the Kubernetes providers) and
// the static configuration flags args.
func StartTraefik(env []string, args ...string) (*Traefik, error) {
	bin, err := CachedBinary("TRAEFIK_BIN", "traefik", TraefikScript)
	if err != nil {
		return nil, err
	}
	dir, err := makeDir("traefik", nil)
	if err != nil {
		return nil, err
	}
	t := &Traefik{dir: dir}
	if t.port, err = FreePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	t.proc = &process{name: "traefik", path: bin, dir: dir, logPath: filepath.Join(dir, "traefik.log"),
		deathSg: syscall.SIGKILL, stopSg: syscall.SIGTERM, env: env,
		args: append([]string{"--entryPoints.web.address=" + t.Addr(), "--log.level=INFO", "--global.sendAnonymousUsage=false", "--global.checkNewVersion=false"}, args...)}
	if err := t.proc.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := t.proc.waitReady(60*time.Second, func() error { return tcpDial(t.Addr()) }); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Addr is the entry point's host:port; Port its port.
func (t *Traefik) Addr() string { return "127.0.0.1:" + strconv.Itoa(t.port) }
func (t *Traefik) Port() int    { return t.port }

// LogTail is the end of Traefik's log.
func (t *Traefik) LogTail() string { return t.proc.logTail() }

// Close stops Traefik and removes its folder.
func (t *Traefik) Close() {
	t.proc.stop()
	os.RemoveAll(t.dir)
}
