//go:build realnode

package realnode

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/controllers/resources"
)

// TestRealNodeSignupFlow: one AuthStack with managed PostgreSQL, managed Redis,
// pgbouncer in transaction mode and its NetworkPolicies, on the local images,
// reaches Ready with every pod really running; then a client pod walks signup ->
// verification email (mailpit pod) -> verify -> login -> session -> logout
// through the authserver Service by its DNS name. On the same stack, the
// subtests then break things: the Redis pod deleted under load, PostgreSQL
// stopped, a migration held up by its lock.
func TestRealNodeSignupFlow(t *testing.T) {
	images, err := LocalImages()
	if err != nil {
		t.Fatal(err)
	}
	ns := NewNamespace(t, "flow")
	StartMailpit(t, ns, images["mailpit"])
	StartOperator(t, ns, Images{AuthServer: images["authserver"], PgBouncer: images["pgbouncer"], Redis: images["redis"]})

	const client = "client" // RunClient labels the pod app=client
	stack := ManagedStack(ns, "flow", images)
	stack.Spec.AuthServer.MailFrom = "Flow <noreply@example.com>"
	// The client pod stands in for the ingress controller.
	stack.Spec.NetworkPolicy.IngressControllerNamespaceSelector = &metav1.LabelSelector{
		MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	stack.Spec.NetworkPolicy.IngressControllerPodSelector = &metav1.LabelSelector{
		MatchLabels: map[string]string{"app": client}}
	if err := env.c.Create(Ctx(t), stack); err != nil {
		t.Fatalf("creating the AuthStack: %v", err)
	}
	WaitStackReady(t, ns, stack.Name, 10*time.Minute)

	script := fmt.Sprintf(`set -eu
A=http://%[1]s:%[2]d
`+waitService+`
M=http://smtp:8025
E="flow-$(date +%%s)@example.com"
P="correct horse battery staple"
req() { # METHOD PATH [BODY] [TOKEN]: prints the status; the body goes to /tmp/body
  set -- "$1" "$2" "${3:-}" "${4:-}"
  curl -sS -o /tmp/body -w '%%{http_code}' -X "$1" -H 'Content-Type: application/json' \
    ${4:+-H "Authorization: Bearer $4"} ${3:+--data "$3"} "$A$2"
}
expect() { [ "$1" = "$2" ] || { echo "$3: HTTP $1, want $2: $(cat /tmp/body)"; exit 1; }; echo "$3: $1"; }
expect "$(req POST /auth/signup "{\"email\":\"$E\",\"password\":\"$P\"}")" 202 signup
id=""
for _ in $(seq 1 60); do
  id=$(curl -sS "$M/api/v1/messages" | sed -n 's/^.*"ID":"\([^"]*\)".*$/\1/p' | head -n 1)
  [ -n "$id" ] && break
  sleep 1
done
[ -n "$id" ] || { echo "no email reached mailpit"; exit 1; }
token=$(curl -sS "$M/api/v1/message/$id" | grep -o 'token=[A-Za-z0-9_-]*' | head -n 1 | cut -d= -f2)
[ -n "$token" ] || { echo "no token in the email"; exit 1; }
echo "email: a verification link"
expect "$(req POST /auth/verify-email "{\"token\":\"$token\"}")" 200 verify
expect "$(req POST /auth/login "{\"email\":\"$E\",\"password\":\"$P\"}")" 200 login
session=$(sed -n 's/^.*"token":"\([^"]*\)".*$/\1/p' /tmp/body)
expect "$(req GET /auth/session "" "$session")" 200 session
grep -q "$E" /tmp/body && echo "session: the user's own"
expect "$(req POST /auth/logout "" "$session")" 204 logout
expect "$(req GET /auth/session "" "$session")" 401 "session after logout"
expect "$(req POST /auth/login "{\"email\":\"$E\",\"password\":\"$P\"}")" 200 "login again"
echo "token=$(sed -n 's/^.*"token":"\([^"]*\)".*$/\1/p' /tmp/body)"
`, resources.AuthServerName(stack), resources.AuthServerHTTPPort)
	log := RunClient(t, ns, client, images["client"], script)
	for _, want := range []string{"signup: 202", "email: a verification link", "verify: 200", "login: 200",
		"session: 200", "session: the user's own", "logout: 204", "session after logout: 401"} {
		if !strings.Contains(log, want) {
			t.Errorf("the client's walk lacks %q:\n%s", want, log)
		}
	}
	token := ""
	for _, l := range strings.Split(log, "\n") {
		if _, v, ok := strings.Cut(l, " token="); ok {
			token = strings.TrimSpace(v)
		}
	}
	if token == "" {
		t.Fatalf("the walk printed no second session token:\n%s", log)
	}

	edge := map[string]string{"app": client}
	t.Run("RedisPodDeletedUnderLoad", func(t *testing.T) { redisPodDeletedUnderLoad(t, stack, images["client"], edge, token) })
	t.Run("PostgresUnreachable", func(t *testing.T) { postgresUnreachable(t, stack) })
	t.Run("SlowMigration", func(t *testing.T) { slowMigration(t, stack, images["client"]) })
}

// waitService is the start of a client script that calls the authserver
// Service at $A. Ready means the Deployment has an available pod; the Service
// routes to it, and the authserver's policy admits a new client pod, once
// kube-proxy and kube-router have synced, a moment later (both reject until
// then: "connection refused").
const waitService = `n=0
until curl -sS -o /dev/null --max-time 5 "$A/ready" 2>/tmp/err; do
  n=$((n+1)); [ "$n" -lt 60 ] || { echo "the Service never answered: $(cat /tmp/err)"; exit 1; }; sleep 1
done
echo "service: answered after $n failed tries"`

// waitPostgres is the start of a client script that connects to PostgreSQL at
// url: it waits until the policy admits the new pod (see waitService).
func waitPostgres(url string) string {
	return fmt.Sprintf(`n=0
until psql '%s' -qAt -c 'select 1' >/dev/null 2>/tmp/err; do
  n=$((n+1)); [ "$n" -lt 60 ] || { echo "PostgreSQL never answered: $(cat /tmp/err)"; exit 1; }; sleep 1
done`, url)
}

// sessionLoad is a client script that checks the session $TOKEN through the
// authserver Service for seconds, about ten times a second, prints
// each failure, and ends with "ok=N fail=M".
func sessionLoad(stack *authv1alpha1.AuthStack, seconds int) string {
	return fmt.Sprintf(`set -u
A=http://%[1]s:%[2]d
`+waitService+`
end=$(( $(date +%%s) + %[3]d ))
ok=0; fail=0
echo started
while [ "$(date +%%s)" -lt "$end" ]; do
  : >/tmp/b
  code=$(curl -sS -o /tmp/b -w '%%{http_code}' --max-time 5 -H "Authorization: Bearer $TOKEN" "$A/auth/session" 2>/tmp/err) || code="curl: $(cat /tmp/err)"
  if [ "$code" = 200 ]; then ok=$((ok+1)); else fail=$((fail+1)); echo "$(date +%%T) failed: $code $(head -c 200 /tmp/b)"; fi
  sleep 0.1
done
echo "ok=$ok fail=$fail"
`, resources.AuthServerName(stack), resources.AuthServerHTTPPort, seconds)
}

// loadResult reads "ok=N fail=M" from a sessionLoad pod's output.
func loadResult(t *testing.T, log string) (ok, fail int) {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if i := strings.Index(l, "ok="); i >= 0 {
			if _, err := fmt.Sscanf(l[i:], "ok=%d fail=%d", &ok, &fail); err == nil {
				return ok, fail
			}
		}
	}
	t.Fatalf("the load pod printed no result:\n%s", log)
	return 0, 0
}

// authServerPods lists the stack's authserver pods.
func authServerPods(t *testing.T, stack *authv1alpha1.AuthStack) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := env.c.List(Ctx(t), &pods, client.InNamespace(stack.Namespace),
		client.MatchingLabels(resources.SelectorLabels(stack, resources.ComponentAuthServer))); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// podReady says whether the pod's Ready condition is True.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		n += cs.RestartCount
	}
	return n
}

// redisPodDeletedUnderLoad: with a session check load running through the
// Service, the Redis pod is deleted; the StatefulSet brings a new one. The
// authserver pods stay ready all along and every check succeeds: sessions are
// validated from PostgreSQL while Redis is gone (the authserver says so).
func redisPodDeletedUnderLoad(t *testing.T, stack *authv1alpha1.AuthStack, image string, edge map[string]string, token string) {
	ns := stack.Namespace
	load := StartClient(t, ns, "redis-load", image, edge, "TOKEN='"+token+"'\n"+sessionLoad(stack, 45))
	Eventually(t, time.Minute, "the load pod runs", func() error {
		if !strings.Contains(ContainerLog(ns, load.Name, "client"), "started") {
			return fmt.Errorf("not started")
		}
		return nil
	})
	before := authServerPods(t, stack)
	redisPod := resources.RedisName(stack) + "-0"
	var old corev1.Pod
	if err := env.c.Get(Ctx(t), client.ObjectKey{Namespace: ns, Name: redisPod}, &old); err != nil {
		t.Fatal(err)
	}
	DeletePod(t, ns, redisPod)
	unready := map[string]bool{}
	watchAuth := func() {
		for _, p := range authServerPods(t, stack) {
			if !podReady(&p) {
				unready[p.Name] = true
			}
		}
	}
	Eventually(t, 2*time.Minute, "a new Redis pod ready", func() error {
		watchAuth()
		var p corev1.Pod
		if err := env.c.Get(Ctx(t), client.ObjectKey{Namespace: ns, Name: redisPod}, &p); err != nil {
			return err
		}
		if p.UID == old.UID || !podReady(&p) {
			return fmt.Errorf("not yet (uid %s, ready %v)", p.UID, podReady(&p))
		}
		return nil
	})
	Eventually(t, 2*time.Minute, "the load pod finished", func() error {
		watchAuth()
		if err := env.c.Get(Ctx(t), client.ObjectKeyFromObject(load), load); err != nil {
			return err
		}
		if load.Status.Phase != corev1.PodSucceeded && load.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", load.Status.Phase)
		}
		return nil
	})
	log := WaitClient(t, load, time.Second)
	ok, fail := loadResult(t, log)
	t.Logf("session checks while the Redis pod was replaced: %d ok, %d failed", ok, fail)
	if fail != 0 || ok == 0 {
		t.Errorf("session checks: %d ok, %d failed:\n%s", ok, fail, log)
	}
	if len(unready) > 0 {
		t.Errorf("authserver pods went unready while Redis was gone: %v", unready)
	}
	var fellBack bool
	for _, p := range before {
		fellBack = fellBack || strings.Contains(ContainerLog(ns, p.Name, resources.ComponentAuthServer), "using PostgreSQL for sessions")
	}
	if !fellBack {
		t.Errorf("no authserver pod said it validated sessions from PostgreSQL")
	}
	for _, p := range authServerPods(t, stack) {
		if n := restarts(&p); n != 0 {
			t.Errorf("authserver pod %s restarted %d times", p.Name, n)
		}
	}
}

// postgresUnreachable stops every process of the PostgreSQL pod (SIGSTOP: the
// port still accepts connections, nothing answers): the authserver pods go
// unready, without a restart; on SIGCONT they come back.
func postgresUnreachable(t *testing.T, stack *authv1alpha1.AuthStack) {
	ns := stack.Namespace
	var pg corev1.Pod
	if err := env.c.Get(Ctx(t), client.ObjectKey{Namespace: ns, Name: resources.PostgresName(stack) + "-0"}, &pg); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range HostProcesses(string(pg.UID)) {
		pid, cmd, _ := strings.Cut(p, ": ")
		if strings.Contains(cmd, "postgres") {
			n, err := strconv.Atoi(pid)
			if err != nil {
				t.Fatal(err)
			}
			pids = append(pids, n)
		}
	}
	if len(pids) == 0 {
		t.Fatalf("no postgres process in the pod: %q", HostProcesses(string(pg.UID)))
	}
	signal := func(sig syscall.Signal) {
		for _, pid := range pids {
			_ = syscall.Kill(pid, sig)
		}
	}
	signal(syscall.SIGSTOP)
	stopped := true
	t.Cleanup(func() {
		if stopped {
			signal(syscall.SIGCONT)
		}
	})
	Eventually(t, 2*time.Minute, "authserver pods unready", func() error {
		for _, p := range authServerPods(t, stack) {
			if podReady(&p) {
				return fmt.Errorf("pod %s still ready", p.Name)
			}
		}
		return nil
	})
	signal(syscall.SIGCONT)
	stopped = false
	Eventually(t, 2*time.Minute, "authserver pods ready again", func() error {
		for _, p := range authServerPods(t, stack) {
			if !podReady(&p) {
				return fmt.Errorf("pod %s not ready", p.Name)
			}
		}
		return nil
	})
	for _, p := range authServerPods(t, stack) {
		if n := restarts(&p); n != 0 {
			t.Errorf("authserver pod %s restarted %d times", p.Name, n)
		}
	}
}

// slowMigration: a session holds the migration lock (as a long migration by
// another pod would), and the authserver pod is replaced. The new pod's
// migrate init container waits on the lock with its serve container not
// started, so no liveness probe runs on it; once the lock goes, it migrates,
// starts and becomes ready, having restarted nothing.
func slowMigration(t *testing.T, stack *authv1alpha1.AuthStack, image string) {
	ns := stack.Namespace
	var secret corev1.Secret
	if err := env.c.Get(Ctx(t), client.ObjectKey{Namespace: ns, Name: resources.PostgresPasswordSecretName(stack)}, &secret); err != nil {
		t.Fatal(err)
	}
	const hold = 40
	url := fmt.Sprintf("postgresql://%s:%s@%s:%d/%s?sslmode=disable", resources.ManagedDatabaseUser,
		secret.Data[resources.PostgresPasswordKey], resources.PostgresHost(stack), resources.PostgresPort, resources.ManagedDatabaseName)
	// The backup job's labels: the policy of PostgreSQL admits them.
	locker := StartClient(t, ns, "migration-lock", image, resources.SelectorLabels(stack, resources.ComponentBackupPostgres),
		waitPostgres(url)+fmt.Sprintf(`
psql '%s' -v ON_ERROR_STOP=1 -qAt -c "select 'locked', pg_advisory_lock(%d)" -c "select pg_sleep(%d)"`, url, store.MigrationLockKey, hold))
	Eventually(t, time.Minute, "the migration lock held", func() error {
		if !strings.Contains(ContainerLog(ns, locker.Name, "client"), "locked") {
			return fmt.Errorf("not yet; %s", lastLines(ContainerLog(ns, locker.Name, "client"), 3))
		}
		return nil
	})
	old := map[string]bool{}
	for _, p := range authServerPods(t, stack) {
		old[p.Name] = true
		DeletePod(t, ns, p.Name)
	}
	noRestarts := func(pods []corev1.Pod) {
		for _, p := range pods {
			if n := restarts(&p); n != 0 {
				t.Fatalf("pod %s restarted %d times", p.Name, n)
			}
		}
	}
	Eventually(t, 2*time.Minute, "the lock released", func() error {
		noRestarts(authServerPods(t, stack))
		if err := env.c.Get(Ctx(t), client.ObjectKeyFromObject(locker), locker); err != nil {
			return err
		}
		if locker.Status.Phase != corev1.PodSucceeded {
			return fmt.Errorf("locker %s", locker.Status.Phase)
		}
		return nil
	})
	released := locker.Status.ContainerStatuses[0].State.Terminated.FinishedAt.Time
	var pod corev1.Pod
	Eventually(t, 2*time.Minute, "the new authserver pod ready", func() error {
		pods := authServerPods(t, stack)
		noRestarts(pods)
		for _, p := range pods {
			if !old[p.Name] && podReady(&p) {
				pod = p
				return nil
			}
		}
		return fmt.Errorf("no new pod ready among %d", len(pods))
	})
	// Timestamps have a second's precision: "not before" the release.
	migrate := pod.Status.InitContainerStatuses[0].State.Terminated
	serve := pod.Status.ContainerStatuses[0].State.Running
	if migrate == nil || serve == nil {
		t.Fatalf("pod %s: migrate %+v, serve %+v", pod.Name, pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses)
	}
	if migrate.FinishedAt.Time.Before(released) || serve.StartedAt.Time.Before(released) {
		t.Errorf("the lock went at %s, but migrate finished at %s and serve started at %s",
			released, migrate.FinishedAt.Time, serve.StartedAt.Time)
	}
	if waited := migrate.FinishedAt.Sub(migrate.StartedAt.Time); waited < (hold/2)*time.Second {
		t.Errorf("migrate ran %s: it did not wait for the lock (held %d s)", waited, hold)
	} else {
		t.Logf("migrate waited %s on the lock with serve not started; then the pod became ready, no restart", waited)
	}
}
