package resources

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/config"
)

// The contract between the Deployment the operator renders and the authserver that
// runs in it: the rendered env and files, resolved the way the kubelet resolves them,
// must load with the authserver's own configuration loader.

// podEnv resolves a container's env the way the kubelet does, from values, and its
// mounted Secret files, from the pod's volumes.
func podEnv(t *testing.T, spec corev1.PodSpec, c corev1.Container, values map[authv1alpha1.SecretKeyRef][]byte) (config.Getenv, config.ReadFile) {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.ResourceFieldRef != nil:
			// The kubelet: the container's resource divided by the divisor, rounded up.
			r := e.ValueFrom.ResourceFieldRef
			res := c.Resources.Limits
			if strings.HasPrefix(r.Resource, "requests.") {
				res = c.Resources.Requests
			}
			q := res[corev1.ResourceName(strings.SplitN(r.Resource, ".", 2)[1])]
			div := r.Divisor
			if div.IsZero() {
				div = resource.MustParse("1")
			}
			env[e.Name] = strconv.FormatInt((q.MilliValue()+div.MilliValue()-1)/div.MilliValue(), 10)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := authv1alpha1.SecretKeyRef{Name: e.ValueFrom.SecretKeyRef.Name, Key: e.ValueFrom.SecretKeyRef.Key}
			v, ok := values[ref]
			if !ok {
				t.Fatalf("env %s refers to %s/%s, which the test has no value for", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = string(v)
		default:
			t.Fatalf("env %s has an unsupported source %+v", e.Name, e.ValueFrom)
		}
	}
	files := map[string][]byte{}
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			for _, item := range v.Secret.Items {
				files[m.MountPath+"/"+item.Path] = values[authv1alpha1.SecretKeyRef{Name: v.Secret.SecretName, Key: item.Key}]
			}
		}
	}
	get := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	read := func(p string) ([]byte, error) {
		if b, ok := files[p]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("open %s: %w", p, fs.ErrNotExist)
	}
	return get, read
}

func TestAuthServerLoadsRenderedConfig(t *testing.T) {
	for _, v := range stackVariants {
		t.Run(v.name, func(t *testing.T) {
			s := v.stack()
			values := map[authv1alpha1.SecretKeyRef][]byte{}
			for k, b := range testSecretValues {
				values[k] = b
			}
			values[PepperRef(s)] = testSecretValues[authv1alpha1.SecretKeyRef{Name: "demo-pepper", Key: "pepper"}]
			spec := renderDeployment(s).Spec.Template.Spec
			get, read := podEnv(t, spec, container(t, spec, ComponentAuthServer), values)
			cfg, err := config.Load(get, read)
			if err != nil {
				t.Fatalf("the authserver rejects the rendered configuration: %v", err)
			}
			if cfg.Port != AuthServerHTTPPort || cfg.MetricsAddr != fmt.Sprintf(":%d", AuthServerMetricsPort) {
				t.Errorf("authserver listens on %d and %q, the pod exposes %d and %d", cfg.Port, cfg.MetricsAddr, AuthServerHTTPPort, AuthServerMetricsPort)
			}
			// Sized to the container: GOMAXPROCS is limits.cpu rounded up, and the
			// default hash concurrency follows it.
			if limits := authServerResources(s).Limits; !limits.Cpu().IsZero() {
				cpu := limits.Cpu()
				if v, _ := get("GOMAXPROCS"); v != strconv.FormatInt((cpu.MilliValue()+999)/1000, 10) {
					t.Errorf("GOMAXPROCS resolves to %q for limits.cpu %s", v, cpu)
				}
			}
			if len(cfg.Peppers) != 1 {
				t.Errorf("authserver loaded %d peppers, want the mounted one", len(cfg.Peppers))
			}
			if cfg.DatabaseURL != string(testSecretValues[*s.Spec.Database.URLSecretRef]) {
				t.Error("DATABASE_URL did not reach the authserver")
			}
			ph := s.Spec.AuthServer.PasswordHashing
			if ph.MemoryKiB > 0 && (int32(cfg.Argon2.MemoryKiB) != ph.MemoryKiB || int32(cfg.Argon2.Iterations) != ph.Iterations || int32(cfg.Argon2.Parallelism) != ph.Parallelism) {
				t.Errorf("argon2 = %+v, spec says %+v", cfg.Argon2, ph)
			}
			if ttl := s.Spec.AuthServer.SessionTTL; ttl != nil && cfg.SessionTTL != ttl.Duration {
				t.Errorf("session TTL = %s, spec says %s", cfg.SessionTTL, ttl.Duration)
			}
			if cfg.CookieName != "__Host-session" || !cfg.CookieSecure {
				t.Errorf("session cookie %q (secure %v), want the __Host- one a sibling subdomain cannot plant", cfg.CookieName, cfg.CookieSecure)
			}
			if cfg.SMTP.Host != s.Spec.SMTP.Host || cfg.SMTP.Port != int(s.Spec.SMTP.Port) {
				t.Errorf("SMTP = %s:%d, spec says %s:%d", cfg.SMTP.Host, cfg.SMTP.Port, s.Spec.SMTP.Host, s.Spec.SMTP.Port)
			}
		})
	}
}

func TestMigrateLoadsRenderedConfig(t *testing.T) {
	s := sampleStack()
	spec := renderDeployment(s).Spec.Template.Spec
	get, read := podEnv(t, spec, spec.InitContainers[0], testSecretValues)
	url, err := config.LoadDatabase(get, read)
	if err != nil {
		t.Fatalf("authserver migrate rejects the rendered configuration: %v", err)
	}
	if url != string(testSecretValues[*s.Spec.Database.URLSecretRef]) {
		t.Error("migrate got another database URL")
	}
	// The pepper check (PepperMismatch) sees the pepper the server hashes with.
	peppers, secret, err := config.LoadPeppers(get, read)
	if err != nil {
		t.Fatalf("authserver migrate rejects the rendered pepper: %v", err)
	}
	key, _ := config.ParsePepper(string(testSecretValues[PepperRef(s)]))
	if len(peppers) != 1 || peppers[0].ID != config.PepperID(key) || secret != PepperSecretName(s) {
		t.Errorf("migrate peppers %v from Secret %q, want the one of %q", peppers, secret, PepperSecretName(s))
	}
}

// TestPepperMismatchExitCode: the operator recognises the exit code with which
// `authserver migrate` refuses data hashed with another pepper.
func TestPepperMismatchExitCode(t *testing.T) {
	if PepperMismatchExitCode != app.ExitPepperMismatch {
		t.Errorf("PepperMismatchExitCode = %d, the authserver exits with %d", PepperMismatchExitCode, app.ExitPepperMismatch)
	}
}

// TestPepperContract: what the operator generates and what it accepts as a pepper is
// exactly what the authserver accepts.
func TestPepperContract(t *testing.T) {
	p, err := NewPepper()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.ParsePepper(string(p)); err != nil {
		t.Errorf("the authserver rejects a generated pepper: %v", err)
	}
	for _, v := range pepperCases {
		_, err := config.ParsePepper(string(v.value))
		if accepted := err == nil; accepted != ValidPepper(v.value) {
			t.Errorf("%s: ValidPepper = %v but the authserver accepts it = %v (%v)", v.name, ValidPepper(v.value), accepted, err)
		}
	}
}

var pepperCases = []struct {
	name  string
	value []byte
	valid bool
}{
	{"64 hex", []byte(strings.Repeat("ab", 32)), true},
	{"64 upper-case hex", []byte(strings.Repeat("AB", 32)), true},
	{"64 hex and a newline (kubectl --from-file)", []byte(strings.Repeat("0f", 32) + "\n"), true},
	{"empty", nil, false},
	{"63 hex", []byte(strings.Repeat("a", 63)), false},
	{"66 hex", []byte(strings.Repeat("a", 66)), false},
	{"96 hex (openssl rand -hex 48)", []byte(strings.Repeat("c", 96)), false},
	{"32 raw bytes", []byte(strings.Repeat("\x01", 32)), false},
	{"64 non-hex characters", []byte(strings.Repeat("z", 64)), false},
}

// loadRenderedConfig is the configuration the authserver's own loader reads
// from s's rendered authserver container, with the test Secrets' values (and
// the demo pepper under s's pepper reference) as the kubelet would supply them.
func loadRenderedConfig(t *testing.T, s *authv1alpha1.AuthStack) *config.Config {
	t.Helper()
	values := map[authv1alpha1.SecretKeyRef][]byte{}
	for k, b := range testSecretValues {
		values[k] = b
	}
	values[PepperRef(s)] = testSecretValues[authv1alpha1.SecretKeyRef{Name: "demo-pepper", Key: "pepper"}]
	spec := renderDeployment(s).Spec.Template.Spec
	get, read := podEnv(t, spec, container(t, spec, ComponentAuthServer), values)
	cfg, err := config.Load(get, read)
	if err != nil {
		t.Fatalf("the authserver rejects the rendered configuration: %v", err)
	}
	return cfg
}
