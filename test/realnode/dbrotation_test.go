//go:build realnode

package realnode

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// rotationLoad is a client script: with the account $E / $P, it checks the session
// $TOKEN through the authserver Service about ten times a second and logs in every
// 8 seconds (under the per-account login limit of 10 a minute), printing each
// failure, until the Service stop-load exists in its namespace (the test creates it
// once the rotation is done), then prints "ok=N fail=M logins=L".
func rotationLoad(stack *authv1alpha1.AuthStack) string {
	return fmt.Sprintf(`set -u
A=http://%[1]s:%[2]d
`+waitService+`
ok=0; fail=0; logins=0; i=0; next=0; deadline=$(( $(date +%%s) + 1200 ))
echo started
while :; do
  i=$((i+1))
  if [ $((i %% 20)) = 0 ]; then
    nslookup stop-load.%[3]s.svc.cluster.local. >/dev/null 2>&1 && break
    [ "$(date +%%s)" -lt "$deadline" ] || { echo "no stop-load Service after 20 minutes"; break; }
  fi
  : >/tmp/b
  code=$(curl -sS -o /tmp/b -w '%%{http_code}' --max-time 5 -H "Authorization: Bearer $TOKEN" "$A/auth/session" 2>/tmp/err) || code="curl: $(cat /tmp/err)"
  if [ "$code" = 200 ]; then ok=$((ok+1)); else fail=$((fail+1)); echo "$(date +%%T) session failed: $code $(head -c 200 /tmp/b)"; fi
  now=$(date +%%s)
  if [ "$now" -ge "$next" ]; then
    next=$((now+8))
    code=$(curl -sS -o /tmp/b -w '%%{http_code}' --max-time 10 -X POST -H 'Content-Type: application/json' \
      --data "{\"email\":\"$E\",\"password\":\"$P\"}" "$A/auth/login" 2>/tmp/err) || code="curl: $(cat /tmp/err)"
    if [ "$code" = 200 ]; then ok=$((ok+1)); logins=$((logins+1)); else fail=$((fail+1)); echo "$(date +%%T) login failed: $code $(head -c 200 /tmp/b)"; fi
  fi
  sleep 0.1
done
echo "ok=$ok fail=$fail logins=$logins"
`, resources.AuthServerName(stack), resources.AuthServerHTTPPort, stack.Namespace)
}

// TestRealNodeDatabasePasswordRotation: on the managed stack (PostgreSQL, Redis,
// pgbouncer in transaction mode, NetworkPolicies), with session checks and logins
// running through the authserver Service, spec.database.managed.passwordRotation is
// raised: the operator moves the pods from role authstack to role authstack_b
// (pgbouncer rolls twice, the authserver pods once) and retires authstack. Not one
// request fails; afterwards authstack's old password no longer logs in, the new one
// of authstack_b does (acting as authstack), and every database session is
// authstack_b's.
func TestRealNodeDatabasePasswordRotation(t *testing.T) {
	images, err := LocalImages()
	if err != nil {
		t.Fatal(err)
	}
	ns := NewNamespace(t, "dbrot")
	StartMailpit(t, ns, images["mailpit"])
	StartOperator(t, ns, Images{AuthServer: images["authserver"], PgBouncer: images["pgbouncer"], Redis: images["redis"]})
	const clientApp = "client"
	stack := ManagedStack(ns, "rot", images)
	stack.Spec.NetworkPolicy.IngressControllerNamespaceSelector = &metav1.LabelSelector{
		MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	stack.Spec.NetworkPolicy.IngressControllerPodSelector = &metav1.LabelSelector{
		MatchLabels: map[string]string{"app": clientApp}}
	if err := env.c.Create(Ctx(t), stack); err != nil {
		t.Fatalf("creating the AuthStack: %v", err)
	}
	WaitStackReady(t, ns, stack.Name, 10*time.Minute)

	// An account and a session.
	log := RunClient(t, ns, clientApp, images["client"], fmt.Sprintf(`set -eu
A=http://%[1]s:%[2]d
`+waitService+`
M=http://smtp:8025
E="rot@example.com"
P="correct horse battery staple"
curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' --data "{\"email\":\"$E\",\"password\":\"$P\"}" "$A/auth/signup"
id=""
for _ in $(seq 1 60); do
  id=$(curl -sS "$M/api/v1/messages" | sed -n 's/^.*"ID":"\([^"]*\)".*$/\1/p' | head -n 1)
  [ -n "$id" ] && break
  sleep 1
done
token=$(curl -sS "$M/api/v1/message/$id" | grep -o 'token=[A-Za-z0-9_-]*' | head -n 1 | cut -d= -f2)
curl -sS -f -o /dev/null -X POST -H 'Content-Type: application/json' --data "{\"token\":\"$token\"}" "$A/auth/verify-email"
curl -sS -f -o /tmp/body -X POST -H 'Content-Type: application/json' --data "{\"email\":\"$E\",\"password\":\"$P\"}" "$A/auth/login"
echo "token=$(sed -n 's/^.*"token":"\([^"]*\)".*$/\1/p' /tmp/body)"
`, resources.AuthServerName(stack), resources.AuthServerHTTPPort))
	token := ""
	for _, l := range strings.Split(log, "\n") {
		if _, v, ok := strings.Cut(l, " token="); ok { // after the log line's CRI prefix
			token = strings.TrimSpace(v)
		}
	}
	if token == "" {
		t.Fatalf("no session token:\n%s", log)
	}

	var oldPW corev1.Secret
	if err := env.c.Get(Ctx(t), client.ObjectKey{Namespace: ns, Name: resources.PostgresPasswordSecretName(stack)}, &oldPW); err != nil {
		t.Fatal(err)
	}
	before := map[string]bool{}
	for _, p := range authServerPods(t, stack) {
		before[string(p.UID)] = true
	}

	load := StartClient(t, ns, "rotation-load", images["client"], map[string]string{"app": clientApp},
		"TOKEN='"+token+"'\nE='rot@example.com'\nP='correct horse battery staple'\n"+rotationLoad(stack))
	Eventually(t, 2*time.Minute, "the load pod runs", func() error {
		if !strings.Contains(ContainerLog(ns, load.Name, "client"), "started") {
			return fmt.Errorf("not started: %s", lastLines(ContainerLog(ns, load.Name, "client"), 3))
		}
		return nil
	})
	start := time.Now()
	var s authv1alpha1.AuthStack
	Eventually(t, time.Minute, "passwordRotation.generation raised", func() error { // the operator writes status meanwhile
		if err := env.c.Get(Ctx(t), client.ObjectKeyFromObject(stack), &s); err != nil {
			return err
		}
		s.Spec.Database.Managed.PasswordRotation = &authv1alpha1.DatabasePasswordRotationSpec{Generation: 1}
		return env.c.Update(Ctx(t), &s)
	})
	var phases []string
	last := ""
	Eventually(t, 10*time.Minute, "the rotation complete", func() error {
		if err := env.c.Get(Ctx(t), client.ObjectKeyFromObject(stack), &s); err != nil {
			return err
		}
		if r := s.Status.DatabasePasswordRotation; r != nil && r.Phase != last {
			last = r.Phase
			phases = append(phases, fmt.Sprintf("%s (%s)", r.Phase, time.Since(start).Round(time.Second)))
		}
		c := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionDatabasePasswordRotated)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != s.Generation {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	t.Logf("rotation phases: %s; done in %s", strings.Join(phases, " -> "), time.Since(start).Round(time.Second))
	WaitStackReady(t, ns, stack.Name, 2*time.Minute)

	// Stop the load, read its result.
	stop := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stop-load"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	if err := env.c.Create(Ctx(t), stop); err != nil {
		t.Fatal(err)
	}
	out := WaitClient(t, load, 2*time.Minute)
	var ok, fail, logins int
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "ok="); i >= 0 {
			_, _ = fmt.Sscanf(l[i:], "ok=%d fail=%d logins=%d", &ok, &fail, &logins)
		}
	}
	t.Logf("requests during the rotation: %d ok (%d logins), %d failed", ok, logins, fail)
	if fail != 0 || ok == 0 || logins < 5 {
		t.Errorf("requests: %d ok (%d logins), %d failed:\n%s", ok, logins, fail, out)
	}

	// Every authserver pod is new, none restarted.
	for _, p := range authServerPods(t, stack) {
		if before[string(p.UID)] && p.DeletionTimestamp == nil {
			t.Errorf("authserver pod %s did not roll", p.Name)
		}
		if n := restarts(&p); n != 0 {
			t.Errorf("authserver pod %s restarted %d times", p.Name, n)
		}
	}

	// PostgreSQL: the old password no longer logs in; the new role does, acting as the
	// owner; every session left is the new role's (pgbouncer's and the pods').
	var newPW corev1.Secret
	if err := env.c.Get(Ctx(t), client.ObjectKey{Namespace: ns, Name: s.Status.DatabasePasswordRotation.Current.SecretName}, &newPW); err != nil {
		t.Fatal(err)
	}
	dsn := func(user string, pw []byte) string {
		return fmt.Sprintf("postgresql://%s:%s@%s:%d/%s?sslmode=disable", user, pw, resources.PostgresHost(stack), resources.PostgresPort, resources.ManagedDatabaseName)
	}
	newURL := dsn(resources.ManagedDatabaseSecondUser, newPW.Data[resources.PostgresPasswordKey])
	oldURL := dsn(resources.ManagedDatabaseUser, oldPW.Data[resources.PostgresPasswordKey])
	// The rotation Jobs' labels: the policy of PostgreSQL admits them.
	checker := StartClient(t, ns, "pg-check", images["client"], resources.SelectorLabels(stack, resources.ComponentDBRotate), waitPostgres(newURL)+fmt.Sprintf(`
echo "acts as: $(psql '%[1]s' -qAt -c 'select current_user')"
echo "sessions: $(psql '%[1]s' -qAt -c "select coalesce(string_agg(distinct usename, ','), '') from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()")"
if psql '%[2]s' -qAt -c 'select 1' 2>/tmp/err; then echo "old password: logs in"; else echo "old password: $(cat /tmp/err)"; fi
`, newURL, oldURL))
	check := WaitClient(t, checker, 3*time.Minute)
	for _, want := range []string{"acts as: authstack\n", "sessions: authstack_b\n", "old password: ", "password authentication failed for user \"authstack\""} {
		if !strings.Contains(check, want) {
			t.Errorf("the database check lacks %q:\n%s", want, check)
		}
	}
}
