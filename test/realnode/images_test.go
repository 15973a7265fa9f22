//go:build realnode

package realnode

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// LocalImages builds AuthStack's images with hack/images.sh (no Docker, no
// registry), imports them into the node once, and returns their references by
// name: authserver, manager, postgres, redis, pgbouncer, mailpit, versitygw, client.
var LocalImages = sync.OnceValues(func() (map[string]string, error) {
	cmd := exec.Command("hack/images.sh", "build")
	cmd.Dir, cmd.Stderr = env.root, os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("hack/images.sh build: %w", err)
	}
	refs := map[string]string{}
	var tarballs []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 {
			refs[f[0]] = f[1]
			tarballs = append(tarballs, f[2])
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("hack/images.sh build printed no image: %q", out)
	}
	return refs, ImportImages(tarballs...)
})

// podOf turns a workload's pod template into a bare pod: the volume claim becomes
// an emptyDir (the images are under test here, not storage), and hostname and
// subdomain give it the DNS name a StatefulSet's pod has.
func podOf(ns, name, subdomain string, tpl corev1.PodTemplateSpec) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: tpl.Labels}, Spec: tpl.Spec}
	pod.Spec.Hostname, pod.Spec.Subdomain = name, subdomain
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: resources.DataVolumeName,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	// A quick teardown: no preStop delay (the Service drain of a rollout is not under
	// test here), and the API server wants the grace period longer than the delay.
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](5)
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].Lifecycle = nil
	}
	return pod
}

// create creates objects the operator would own, without the owner (there is
// no AuthStack here: the garbage collector would delete them).
func create(t *testing.T, ns string, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		o.SetNamespace(ns)
		o.SetOwnerReferences(nil)
		if err := env.c.Create(Ctx(t), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// TestRealNodeDataTierImages: the PostgreSQL, Redis and pgbouncer images run the
// pods exactly as the operator renders them (commands, config files, probes,
// uid 1001, read-only root filesystem, Pod Security "restricted"), on a real
// kubelet: PostgreSQL initialises its volume from the rendered environment, the
// probes pass, and a pod of the client image reaches PostgreSQL through
// pgbouncer in transaction mode and Redis with the rendered password, by their
// Service DNS names.
func TestRealNodeDataTierImages(t *testing.T) {
	images, err := LocalImages()
	if err != nil {
		t.Fatal(err)
	}
	ns := NewNamespace(t, "images")
	stack := &authv1alpha1.AuthStack{
		ObjectMeta: metav1.ObjectMeta{Name: "img", Namespace: ns},
		Spec: authv1alpha1.AuthStackSpec{
			Database: authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{Image: images["postgres"]}},
			Pooler:   authv1alpha1.PoolerSpec{Enabled: ptr.To(true), PoolMode: authv1alpha1.PoolMode("transaction")},
		},
	}
	in := resources.Inputs{PgBouncerImage: images["pgbouncer"], RedisImage: images["redis"]}
	const pgPassword, redisPassword = "pg-pass-7f3a", "redis-pass-91c2"

	pg := resources.PostgresStatefulSet(stack)
	redis := resources.RedisStatefulSet(stack, in)
	bouncer := resources.PgBouncerDeployment(stack, in)
	create(t, ns,
		resources.PostgresPasswordSecret(stack, []byte(pgPassword)), resources.PostgresService(stack),
		resources.RedisConfigMap(stack), resources.RedisAuthSecret(stack, redisPassword), resources.RedisService(stack),
		resources.PgBouncerConfigSecret(stack, resources.ManagedDatabaseURL(stack, pgPassword)), resources.PgBouncerService(stack),
		podOf(ns, pg.Name+"-0", pg.Spec.ServiceName, pg.Spec.Template),
		podOf(ns, redis.Name+"-0", redis.Spec.ServiceName, redis.Spec.Template),
		podOf(ns, bouncer.Name, "", bouncer.Spec.Template),
	)
	for _, name := range []string{pg.Name + "-0", redis.Name + "-0", bouncer.Name} {
		pod := WaitPodReady(t, ns, name, 5*time.Minute)
		t.Logf("%s ready; host processes: %q", name, HostProcesses(string(pod.UID)))
	}
	if log := ContainerLog(ns, pg.Name+"-0", resources.ComponentPostgres); !strings.Contains(log, "initialised") {
		t.Errorf("PostgreSQL did not initialise its volume; log:\n%s", log)
	}

	// The probe: psql through pgbouncer (a transaction-mode pool: the backend pid
	// may change between transactions, the data may not), redis-cli to Redis.
	script := fmt.Sprintf(`set -eu
url="postgresql://%[1]s:%[2]s@%[3]s:%[4]d/%[5]s?sslmode=disable"
psql "$url" -v ON_ERROR_STOP=1 -qAt -c 'create table if not exists probe (v text)' -c "insert into probe values ('through-pgbouncer')"
echo "pg: $(psql "$url" -qAt -c 'select v from probe')"
echo "redis: $(redis-cli -h %[6]s -p %[7]d --no-auth-warning -a '%[8]s' ping)"
`, resources.ManagedDatabaseUser, pgPassword, resources.PgBouncerName(stack), resources.PgBouncerPort, resources.ManagedDatabaseName,
		redis.Name+"-0."+redis.Spec.ServiceName, resources.RedisPort, redisPassword)
	log := RunClient(t, ns, "probe", images["client"], script)
	for _, want := range []string{"pg: through-pgbouncer", "redis: PONG"} {
		if !strings.Contains(log, want) {
			t.Errorf("the client pod's output lacks %q:\n%s", want, log)
		}
	}
}

// RunClient runs script with sh in a pod of the client image (curl, psql,
// redis-cli, busybox) under Pod Security "restricted", labelled app=NAME, waits
// until it ends, and returns its output; the test fails if the script fails.
func RunClient(t *testing.T, ns, name, image, script string) string {
	t.Helper()
	return WaitClient(t, StartClient(t, ns, name, image, map[string]string{"app": name}, script), 3*time.Minute)
}

// StartClient starts script in a client-image pod with these labels and returns
// at once (WaitClient waits for its end).
func StartClient(t *testing.T, ns, name, image string, labels map[string]string, script string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			SecurityContext:               resources.RestrictedPodSecurityContext(),
			Containers: []corev1.Container{{
				Name: "client", Image: image, ImagePullPolicy: corev1.PullNever,
				Command:         []string{"sh", "-c", script},
				SecurityContext: resources.RestrictedContainerSecurityContext(),
				VolumeMounts:    []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
			}},
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	if err := env.c.Create(Ctx(t), pod); err != nil {
		t.Fatalf("creating the client pod %s: %v", name, err)
	}
	return pod
}

// WaitClient waits until a client pod's script ends and returns its output;
// the test fails if the script failed.
func WaitClient(t *testing.T, pod *corev1.Pod, timeout time.Duration) string {
	t.Helper()
	Eventually(t, timeout, "client pod "+pod.Name+" finished", func() error {
		if err := env.c.Get(Ctx(t), client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s; output so far: %s", pod.Status.Phase, lastLines(ContainerLog(pod.Namespace, pod.Name, "client"), 5))
		}
		return nil
	})
	log := ContainerLog(pod.Namespace, pod.Name, "client")
	if pod.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("client pod %s failed:\n%s", pod.Name, log)
	}
	return log
}
