//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
	"github.com/leanauth/authstack/internal/localstack"
)

// The configuration translation the demo uses: the sample AuthStack Ready in
// the cluster, then the authserver binary started with the environment and
// files the operator rendered (through pgbouncer started from the rendered
// pgbouncer.ini) passes signup -> verification email -> verify -> login -> session.
func TestRenderedConfigServesSignupAndLogin(t *testing.T) {
	ns := namespace(t, "e2e-translate")
	b, err := os.ReadFile(filepath.Join(env.root, "config/samples/auth_v1alpha1_authstack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	stack := &authv1alpha1.AuthStack{}
	if err := yaml.Unmarshal(b, stack); err != nil {
		t.Fatalf("parsing the sample: %v", err)
	}
	stack.Namespace = ns

	srv, err := localstack.StartServers(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if err := localstack.ApplySecrets(ctx(t), env.c, srv.SecretsFor(stack)); err != nil {
		t.Fatal(err)
	}
	if err := env.c.Create(ctx(t), stack); err != nil {
		t.Fatalf("creating the sample AuthStack: %v", err)
	}
	waitReady(t, ns, stack.Name, 3*time.Minute)

	dir := filepath.Join(env.dir, "translate")
	a, err := localstack.StartAuthServer(ctx(t), env.c, ns, stack.Name, env.authserverBin, dir,
		srv.Addresses(localstack.SMTPAddress(stack)), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if a.PgBouncer == nil {
		t.Errorf("the sample pools connections, but no pgbouncer was started from the rendered config")
	}
	if v, _ := a.Serve.Lookup("DATABASE_URL"); !strings.Contains(v, a.PgBouncer.Addr()) {
		t.Errorf("DATABASE_URL does not go through the local pgbouncer")
	}
	res, err := localstack.Walk(ctx(t), a.URL, srv.Mailpit.APIURL(), "grace@example.com", "a long enough passphrase 7", func(s localstack.Step) {
		t.Logf("%s: %s", s.Name, s.Detail)
	})
	if err != nil {
		t.Fatalf("walk: %v\nauthserver log:\n%s", err, tail(filepath.Join(dir, "authserver.log")))
	}
	if !res.SessionOK || res.UserID == "" || len(res.Steps) != 6 {
		t.Fatalf("walk result %+v", res)
	}

	// The same with the managed Redis (a StatefulSet in the cluster): the
	// authserver reads REDIS_URL from the connection Secret the operator
	// composed with the password it generated; a local redis-server gets that password.
	managed := stack.DeepCopy()
	managed.ObjectMeta = metav1.ObjectMeta{Name: "managed", Namespace: ns}
	managed.Spec.Redis = authv1alpha1.RedisSpec{}
	managed.Spec.Ingress.Host = "auth2.example.com"
	// Both stacks use the one local PostgreSQL, which now holds the first stack's
	// hashes: the second brings the first one's pepper, as a stack restored onto
	// that data would. (With a fresh pepper, migrate refuses to start: PepperMismatch.)
	managed.Spec.Pepper = &authv1alpha1.PepperSpec{SecretRef: resources.PepperRef(stack)}
	if err := env.c.Create(ctx(t), managed); err != nil {
		t.Fatalf("creating a stack with managed Redis: %v", err)
	}
	waitReady(t, ns, managed.Name, 3*time.Minute)
	dir2 := filepath.Join(env.dir, "translate-managed")
	a2, err := localstack.StartAuthServer(ctx(t), env.c, ns, managed.Name, env.authserverBin, dir2,
		srv.Addresses(localstack.SMTPAddress(managed)), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a2.Close)
	if a2.Redis == nil {
		t.Fatalf("no local Redis was started for the managed one")
	}
	if v, _ := a2.Serve.Lookup("REDIS_URL"); !strings.Contains(v, a2.Redis.Addr()) || !strings.Contains(v, a2.Redis.Password()) {
		t.Errorf("REDIS_URL does not reach the local Redis with the generated password")
	}
	if _, err := localstack.Walk(ctx(t), a2.URL, srv.Mailpit.APIURL(), "hopper@example.com", "another long passphrase 8", nil); err != nil {
		t.Fatalf("walk with managed Redis: %v\nauthserver log:\n%s", err, tail(filepath.Join(dir2, "authserver.log")))
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
