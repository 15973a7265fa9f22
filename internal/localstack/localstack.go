// Package localstack runs, as local processes, the auth tier an AuthStack
// describes: PostgreSQL, Redis and an SMTP catcher (mailpit) standing in for
// the user's servers, then pgbouncer and the authserver started with exactly
// the configuration the operator rendered into the cluster (its Deployment,
// its Secrets), translated to loopback by internal/envtranslate.
//
// The demo (cmd/authstack-demo, hack/demo.sh) and the end-to-end tests
// (test/e2e) share it. Pods in the local cluster are simulated by kwok; these
// processes are the real thing.
package localstack

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
	"github.com/leanauth/authstack/internal/envtranslate"
	"github.com/leanauth/authstack/internal/servers"
)

// In-cluster addresses the Secrets written by WriteSecrets name, as a user's
// Secrets would in a real cluster.
const (
	PostgresService = "postgres.databases.svc"
	RedisService    = "redis.databases.svc"
	DatabaseName    = "auth"
	FieldManager    = "authstack-demo"
)

// Servers are the user's data servers and SMTP relay, run locally.
type Servers struct {
	Postgres *servers.Postgres
	Redis    *servers.Redis
	Mailpit  *servers.Mailpit
	// SMTPPassword is the password put into the SMTP Secret (mailpit accepts any).
	SMTPPassword string
}

// StartServers starts PostgreSQL (with an empty database "auth" owned by
// servers.AppUser), Redis with a password and mailpit.
func StartServers(ctx context.Context) (_ *Servers, err error) {
	s := &Servers{SMTPPassword: servers.RandomSecret(12)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Postgres, err = servers.StartPostgres(ctx); err != nil {
		return nil, fmt.Errorf("starting PostgreSQL: %w", err)
	}
	if _, err = s.Postgres.CreateDatabase(ctx, DatabaseName); err != nil {
		return nil, err
	}
	if s.Redis, err = servers.StartRedis(servers.DefaultRedisConf(servers.RandomSecret(16))); err != nil {
		return nil, fmt.Errorf("starting Redis: %w", err)
	}
	if s.Mailpit, err = servers.StartMailpit(); err != nil {
		return nil, fmt.Errorf("starting mailpit: %w", err)
	}
	return s, nil
}

// Close stops every server.
func (s *Servers) Close() {
	if s.Mailpit != nil {
		s.Mailpit.Close()
	}
	if s.Redis != nil {
		s.Redis.Close()
	}
	if s.Postgres != nil {
		s.Postgres.Close()
	}
}

// DatabaseURL is the URL as a pod in the cluster would use it.
func (s *Servers) DatabaseURL() string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(servers.AppUser, s.Postgres.Password()),
		Host: PostgresService + ":5432", Path: "/" + DatabaseName, RawQuery: "sslmode=disable"}
	return u.String()
}

// RedisURL is the URL as a pod in the cluster would use it.
func (s *Servers) RedisURL() string {
	u := url.URL{Scheme: "redis", User: url.UserPassword("", s.Redis.Password()), Host: RedisService + ":6379", Path: "/0"}
	return u.String()
}

// Addresses maps the in-cluster addresses to the local servers. smtp is the
// SMTP host:port the AuthStack names (an outside relay, here mailpit).
func (s *Servers) Addresses(smtp string) map[string]string {
	return map[string]string{
		PostgresService + ":5432": s.Postgres.Addr(),
		RedisService + ":6379":    s.Redis.Addr(),
		smtp:                      s.Mailpit.SMTPAddr(),
	}
}

// SecretsFor renders the Secrets an AuthStack references (database URL, Redis
// URL, SMTP password), with the names the stack's spec gives them.
func (s *Servers) SecretsFor(stack *authv1alpha1.AuthStack) []*corev1.Secret {
	var out []*corev1.Secret
	add := func(ref *authv1alpha1.SecretKeyRef, value string) {
		if ref == nil {
			return
		}
		out = append(out, &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: stack.Namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "authstack-demo"}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{ref.Key: []byte(value)},
		})
	}
	add(stack.Spec.Database.URLSecretRef, s.DatabaseURL())
	add(stack.Spec.Redis.URLSecretRef, s.RedisURL())
	add(stack.Spec.SMTP.PasswordSecretRef, s.SMTPPassword)
	return out
}

// ApplySecrets writes the Secrets with server-side apply (forcing ownership,
// so placeholders applied earlier by kubectl are replaced).
func ApplySecrets(ctx context.Context, c client.Client, secrets []*corev1.Secret) error {
	for _, sec := range secrets {
		u := sec.DeepCopy()
		//nolint:staticcheck // client.Apply with a typed object is what controller-runtime v0.25 offers for SSA of built-ins here.
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying Secret %s/%s: %w", sec.Namespace, sec.Name, err)
		}
	}
	return nil
}

// SMTPAddress is the SMTP host:port the stack's spec names.
func SMTPAddress(stack *authv1alpha1.AuthStack) string {
	port := stack.Spec.SMTP.Port
	if port == 0 {
		port = 587
	}
	return stack.Spec.SMTP.Host + ":" + strconv.Itoa(int(port))
}

// AuthServer is the authserver (and pgbouncer, when the stack pools) running
// as local processes with the operator's rendered configuration.
type AuthServer struct {
	Proc      *Proc
	PgBouncer *servers.PgBouncer
	// Redis stands in for the managed Redis StatefulSet (standalone mode), with
	// the password the operator generated.
	Redis   *servers.Redis
	URL     string // http://127.0.0.1:port
	Metrics string // 127.0.0.1:port
	// Serve is the translated environment of the authserver container.
	Serve *envtranslate.Process
	// Migrate is the translated environment of the migration init container.
	Migrate *envtranslate.Process
}

// Close stops the authserver and pgbouncer.
func (a *AuthServer) Close() {
	if a.Proc != nil {
		a.Proc.Stop()
	}
	if a.PgBouncer != nil {
		a.PgBouncer.Close()
	}
	if a.Redis != nil {
		a.Redis.Close()
	}
}

// Logf prints progress.
type Logf func(format string, args ...any)

// StartAuthServer reads the stack's rendered Deployment and Secrets, starts
// pgbouncer from the rendered pgbouncer config when the stack pools, runs the
// migration init container's command, then the authserver container's, and
// waits for /ready. binary is the authserver built from this checkout; dir
// receives the mounted files and logs.
func StartAuthServer(ctx context.Context, c client.Reader, namespace, name, binary, dir string, addrs map[string]string, logf Logf) (_ *AuthServer, err error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	stack := &authv1alpha1.AuthStack{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, stack); err != nil {
		return nil, fmt.Errorf("reading AuthStack %s/%s: %w", namespace, name, err)
	}
	dep := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: resources.AuthServerName(stack)}, dep); err != nil {
		return nil, fmt.Errorf("reading the rendered authserver Deployment: %w", err)
	}
	secrets, configMaps, err := namespaceObjects(ctx, c, namespace)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	a := &AuthServer{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	all := map[string]string{}
	for k, v := range addrs {
		all[k] = v
	}

	if resources.ManagedRedis(stack) {
		// The managed Redis runs as a StatefulSet in the cluster (simulated there):
		// here a local redis-server with the password the operator generated.
		if resources.RedisClusterMode(stack) {
			return nil, fmt.Errorf("the stack runs a managed Redis Cluster: only standalone managed Redis runs locally")
		}
		ref := resources.RedisPasswordRef(stack)
		sec := secrets[ref.Name]
		if sec == nil || len(sec.Data[ref.Key]) == 0 {
			return nil, fmt.Errorf("the managed Redis password Secret %s/%s (key %s) is missing", namespace, ref.Name, ref.Key)
		}
		if a.Redis, err = servers.StartRedis(servers.DefaultRedisConf(string(sec.Data[ref.Key]))); err != nil {
			return nil, fmt.Errorf("starting a local Redis for the managed one: %w", err)
		}
		all[resources.RedisHost(stack)+":"+strconv.Itoa(resources.RedisPort)] = a.Redis.Addr()
		logf("redis-server for the managed Redis (the operator's generated password) on %s", a.Redis.Addr())
	}

	if resources.PoolerEnabled(stack) {
		cfg := secrets[resources.PgBouncerConfigSecretName(stack)]
		if cfg == nil {
			return nil, fmt.Errorf("the stack pools connections but Secret %s/%s is missing", namespace, resources.PgBouncerConfigSecretName(stack))
		}
		ini, err := envtranslate.PgBouncerIni(string(cfg.Data[resources.PgBouncerIniKey]), namespace, all)
		if err != nil {
			return nil, err
		}
		if a.PgBouncer, err = servers.StartPgBouncer(ini, string(cfg.Data[resources.PgBouncerUserlistKey])); err != nil {
			return nil, fmt.Errorf("starting pgbouncer with the rendered pgbouncer.ini: %w", err)
		}
		all[resources.PgBouncerHost(stack)+":"+strconv.Itoa(resources.PgBouncerPort)] = a.PgBouncer.Addr()
		logf("pgbouncer (rendered pgbouncer.ini, transaction pooling) on %s", a.PgBouncer.Addr())
	}

	files := filepath.Join(dir, "files")
	if a.Migrate, err = envtranslate.Translate(dep, secrets, configMaps, envtranslate.Options{
		Container: "migrate", Namespace: namespace, Addresses: all, FilesDir: files,
	}); err != nil {
		return nil, err
	}
	httpPort, err := servers.FreePort()
	if err != nil {
		return nil, err
	}
	metricsPort, err := servers.FreePort()
	if err != nil {
		return nil, err
	}
	// The ext_authz gRPC port is fixed in the pod (9191): on one host every
	// translated authserver needs its own.
	grpcPort, err := servers.FreePort()
	if err != nil {
		return nil, err
	}
	a.URL = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	a.Metrics = "127.0.0.1:" + strconv.Itoa(metricsPort)
	if a.Serve, err = envtranslate.Translate(dep, secrets, configMaps, envtranslate.Options{
		Container: resources.ComponentAuthServer, Namespace: namespace, Addresses: all, FilesDir: files,
		Listen: map[string]string{"HOST": "127.0.0.1", "PORT": strconv.Itoa(httpPort), "METRICS_ADDR": a.Metrics,
			"AUTH_GRPC_PORT": strconv.Itoa(grpcPort)},
	}); err != nil {
		return nil, err
	}
	for _, p := range []*envtranslate.Process{a.Migrate, a.Serve} {
		if err := WriteFiles(p.Files); err != nil {
			return nil, err
		}
	}

	logf("migrate (init container %q, args %v)", "migrate", a.Migrate.Args)
	mig, err := StartProc(binary, a.Migrate.Args, cleanEnv(a.Migrate.Environ()), filepath.Join(dir, "migrate.log"))
	if err != nil {
		return nil, err
	}
	if done, werr := mig.Wait(2 * time.Minute); !done || werr != nil {
		mig.Stop()
		return nil, fmt.Errorf("authserver migrate failed (%v); log %s:\n%s", werr, filepath.Join(dir, "migrate.log"), servers.LogTail(filepath.Join(dir, "migrate.log")))
	}

	logf("authserver (container %q, args %v) on %s", resources.ComponentAuthServer, a.Serve.Args, a.URL)
	if a.Proc, err = StartProc(binary, a.Serve.Args, cleanEnv(a.Serve.Environ()), filepath.Join(dir, "authserver.log")); err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := a.Proc.WaitReady(60*time.Second, func() error {
		resp, err := hc.Get(a.URL + "/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/ready: %s", resp.Status)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return a, nil
}

// cleanEnv is env plus what a process needs that a container has from its
// image (PATH, HOME), and nothing else from our environment that the
// authserver reads: the rendered configuration must be the only source.
func cleanEnv(env []string) []string {
	return append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + os.TempDir()}, env...)
}

// WriteFiles writes the mounted files of a translated process.
func WriteFiles(files []envtranslate.File) error {
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", filepath.Dir(f.Path), err)
		}
		_ = os.Remove(f.Path) // may be read-only from an earlier run
		if err := os.WriteFile(f.Path, f.Data, os.FileMode(f.Mode)); err != nil {
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
	}
	return nil
}

func namespaceObjects(ctx context.Context, c client.Reader, ns string) (map[string]*corev1.Secret, map[string]*corev1.ConfigMap, error) {
	var sl corev1.SecretList
	if err := c.List(ctx, &sl, client.InNamespace(ns)); err != nil {
		return nil, nil, fmt.Errorf("listing Secrets in %s: %w", ns, err)
	}
	secrets := map[string]*corev1.Secret{}
	for i := range sl.Items {
		secrets[sl.Items[i].Name] = &sl.Items[i]
	}
	var cl corev1.ConfigMapList
	if err := c.List(ctx, &cl, client.InNamespace(ns)); err != nil {
		return nil, nil, fmt.Errorf("listing ConfigMaps in %s: %w", ns, err)
	}
	cms := map[string]*corev1.ConfigMap{}
	for i := range cl.Items {
		cms[cl.Items[i].Name] = &cl.Items[i]
	}
	return secrets, cms, nil
}
