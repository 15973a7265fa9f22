package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// TestOperatorPodsRunOnTheImages: every container the operator renders for a stack
// with managed PostgreSQL, a managed Redis Cluster and the pooler, pointed at these
// images, finds its command (or the image's entrypoint) and its exec probes'
// commands on the image's PATH, runs as the image's user, and (PostgreSQL) sets
// only variables the image's entrypoint reads.
func TestOperatorPodsRunOnTheImages(t *testing.T) {
	bin := t.TempDir()
	for _, b := range []string{"authserver", "manager"} {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("binary"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in := inputs{Version: "0.0.0", Bin: bin, DebianRoot: fakeDebianRoot(t)}
	images := map[string]image{}
	for _, build := range []func(inputs) (image, error){authserverImage, postgresImage, redisImage, pgbouncerImage} {
		img, err := build(in)
		if err != nil {
			t.Fatal(err)
		}
		images[repoPrefix+img.Name] = img
	}

	stack := &authv1alpha1.AuthStack{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "ns"},
		Spec: authv1alpha1.AuthStackSpec{
			Database: authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{Image: repoPrefix + "postgres"}},
			Redis:    authv1alpha1.RedisSpec{Mode: authv1alpha1.RedisCluster},
			Pooler:   authv1alpha1.PoolerSpec{Enabled: ptr.To(true)},
		},
	}
	ops := resources.Inputs{AuthServerImage: repoPrefix + "authserver", PgBouncerImage: repoPrefix + "pgbouncer", RedisImage: repoPrefix + "redis"}
	pods := map[string]corev1.PodSpec{
		"postgres":        resources.PostgresStatefulSet(stack).Spec.Template.Spec,
		"redis":           resources.RedisStatefulSet(stack, ops).Spec.Template.Spec,
		"redis-bootstrap": resources.RedisBootstrapJob(stack, ops).Spec.Template.Spec,
		"pgbouncer":       resources.PgBouncerDeployment(stack, ops).Spec.Template.Spec,
		"authserver":      resources.AuthServerDeployment(stack, ops).Spec.Template.Spec,
	}
	for pod, spec := range pods {
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			t.Run(pod+"/"+c.Name, func(t *testing.T) {
				img, ok := images[c.Image]
				if !ok {
					t.Fatalf("renders image %q, not one of these", c.Image)
				}
				cmd := c.Command
				if len(cmd) == 0 {
					cmd = img.Config.Entrypoint
				}
				commands := [][]string{cmd}
				for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
					if p != nil && p.Exec != nil {
						commands = append(commands, p.Exec.Command)
					}
				}
				for _, cmd := range commands {
					if len(cmd) == 0 {
						t.Fatal("no command and no entrypoint")
					}
					if strings.HasPrefix(cmd[0], "/") {
						if e, ok := img.Files[cmd[0]]; !ok || e.Mode&0o111 == 0 {
							t.Errorf("%s is not an executable of image %s", cmd[0], img.Name)
						}
					} else if lookPath(img, cmd[0]) == "" {
						t.Errorf("%s is not on the PATH of image %s", cmd[0], img.Name)
					}
				}
				if got, want := img.Config.User, fmt.Sprintf("%d:%d", *c.SecurityContext.RunAsUser, *c.SecurityContext.RunAsGroup); got != want {
					t.Errorf("image user %s, pod runs as %s", got, want)
				}
				if img.Name == "postgres" {
					for _, e := range c.Env {
						if !strings.Contains(string(postgresEntrypoint), e.Name) {
							t.Errorf("the pod sets %s, which the image's entrypoint never reads", e.Name)
						}
					}
				}
			})
		}
	}
}
