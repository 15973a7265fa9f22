//go:build containerd

package main

// Run as root: go test -tags containerd -count=1 ./internal/imagebuild/ -run TestImagesUnderContainerd
// It needs the images (hack/images.sh build) and containerd 2.x with runc
// (hack/real-node.sh builds containerd into $AUTHSTACK_CACHE/bin; apt installs runc).

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
	"github.com/leanauth/authstack/internal/servers"
)

// ctrd is a private containerd (its own root, state and socket) for one test.
type ctrd struct {
	t    *testing.T
	ctr  string
	sock string
}

func startContainerd(t *testing.T) *ctrd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("containers need root")
	}
	cache := os.Getenv("AUTHSTACK_CACHE")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache", "authstack")
	}
	bins, _ := filepath.Glob(filepath.Join(cache, "bin", "containerd-v2*"))
	if len(bins) == 0 {
		t.Fatalf("no containerd 2.x under %s/bin: run hack/real-node.sh build", cache)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatal("no runc: run hack/real-node.sh build (apt-get install runc)")
	}
	dir, err := os.MkdirTemp("", "authstack-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &ctrd{t: t, ctr: filepath.Join(bins[0], "ctr"), sock: filepath.Join(dir, "containerd.sock")}
	conf := fmt.Sprintf("version = 3\nroot = %q\nstate = %q\n[grpc]\n  address = %q\n", dir+"/root", dir+"/state", c.sock)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bins[0], "containerd"), "--config", filepath.Join(dir, "config.toml"))
	cmd.Env = append(os.Environ(), "PATH="+bins[0]+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		out, _ := exec.Command(c.ctr, "--address", c.sock, "-n", "k8s.io", "containers", "ls", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			c.stop(id)
		}
		_ = cmd.Process.Signal(os.Interrupt)
		_, _ = cmd.Process.Wait()
		// ctr's containers live in the cgroup k8s.io/<id>; the parent stays behind, empty.
		parents, _ := filepath.Glob("/sys/fs/cgroup/*/k8s.io")
		for _, p := range parents {
			_ = os.Remove(p) // fails, harmlessly, while anything else runs there
		}
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("containerd state and log kept in %s", dir)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := c.run("version"); err == nil {
			return c
		} else if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s: %v", c.sock, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *ctrd) run(args ...string) (string, error) {
	out, err := exec.Command(c.ctr, append([]string{"--address", c.sock, "-n", "k8s.io"}, args...)...).CombinedOutput()
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.Contains(l, "DEPRECATION") && l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n"), err
}

// start runs image in the background the way the operator's pods run it: host
// network (each test picks free ports), read-only root filesystem, the image's
// user, writable tmpfs mounts and read-only config folders.
func (c *ctrd) start(id, image string, tmpfs []string, binds map[string]string, env []string, args ...string) {
	c.t.Helper()
	a := []string{"run", "-d", "--net-host", "--read-only"}
	for _, dst := range tmpfs {
		a = append(a, "--mount", "type=tmpfs,src=tmpfs,dst="+dst+fmt.Sprintf(",options=rw:mode=1777:uid=%d:gid=%d", uid, uid))
	}
	for dst, src := range binds {
		a = append(a, "--mount", "type=bind,src="+src+",dst="+dst+",options=rbind:ro")
	}
	for _, e := range env {
		a = append(a, "--env", e)
	}
	a = append(append(a, image, id), args...)
	if out, err := c.run(a...); err != nil {
		c.t.Fatalf("ctr run %s: %v\n%s", id, err, out)
	}
}

func (c *ctrd) stop(id string) {
	_, _ = c.run("tasks", "kill", "-s", "SIGKILL", id)
	for range 50 {
		if _, err := c.run("tasks", "delete", id); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, _ = c.run("containers", "delete", id)
}

// exec runs a command in a running container.
func (c *ctrd) exec(id string, args ...string) (string, error) {
	return c.run(append([]string{"tasks", "exec", "--exec-id", fmt.Sprintf("e%d", time.Now().UnixNano()), id}, args...)...)
}

// builtImages imports the images of the last hack/images.sh build.
func builtImages(t *testing.T, c *ctrd) map[string]string {
	out, err := exec.Command("../../hack/images.sh", "build").Output()
	if err != nil {
		t.Fatalf("hack/images.sh build: %v", err)
	}
	refs := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 {
			refs[f[0]] = f[1]
			if out, err := c.run("images", "import", f[2]); err != nil {
				t.Fatalf("importing %s: %v\n%s", f[2], err, out)
			}
		}
	}
	return refs
}

func freePort(t *testing.T) int {
	p, err := servers.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitTCP(t *testing.T, what string, port int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %d: %v", what, port, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestImagesUnderContainerd runs the images with containerd and runc as the
// operator's pods run them (uid 1001 from the image, read-only root filesystem,
// the rendered redis.conf, auth.conf and pgbouncer.ini, the PostgreSQL
// environment): PostgreSQL initialises and passes its pg_isready probe, pgbouncer
// pools it in transaction mode, Redis takes the rendered config and wants its
// password, the client image reaches both, and the authserver image's pg_dump
// dumps the database.
func TestImagesUnderContainerd(t *testing.T) {
	c := startContainerd(t)
	img := builtImages(t, c)
	stack := &authv1alpha1.AuthStack{ObjectMeta: metav1.ObjectMeta{Name: "img", Namespace: "ns"},
		Spec: authv1alpha1.AuthStackSpec{Database: authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}}}
	pgPort, bouncerPort, redisPort := freePort(t), freePort(t), freePort(t)
	const pgPassword, redisPassword = "pg-pass-7f3a", "redis-pass-91c2"

	// PostgreSQL, with the environment the StatefulSet renders.
	sts := resources.PostgresStatefulSet(stack)
	var env []string
	for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = pgPassword
		}
		env = append(env, e.Name+"="+v)
	}
	c.start("postgres", img["postgres"], []string{"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"}, nil, env,
		"/usr/local/bin/docker-entrypoint.sh", "postgres", "-p", fmt.Sprint(pgPort))
	probe := sts.Spec.Template.Spec.Containers[0].ReadinessProbe.Exec.Command
	probe = append(probe, "-p", fmt.Sprint(pgPort)) // the probe's, on this test's port
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := c.exec("postgres", probe...)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the readiness probe %q never passed: %v %s", probe, err, out)
		}
		time.Sleep(time.Second)
	}

	// pgbouncer and Redis with the files the operator renders.
	conf := t.TempDir()
	write := func(dir, name, body string) string {
		d := filepath.Join(conf, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o444); err != nil {
			t.Fatal(err)
		}
		return d
	}
	ini, users := resources.PgBouncerConfig(stack, resources.DatabaseURL{Host: "127.0.0.1", Port: pgPort,
		DBName: resources.ManagedDatabaseName, User: resources.ManagedDatabaseUser, Password: pgPassword, SSLMode: "disable"})
	ini = strings.Replace(ini, fmt.Sprintf("listen_port = %d", resources.PgBouncerPort), fmt.Sprintf("listen_port = %d", bouncerPort), 1)
	write("pgbouncer", resources.PgBouncerUserlistKey, users)
	bouncerDir := write("pgbouncer", resources.PgBouncerIniKey, ini)
	bouncer := resources.PgBouncerDeployment(stack, resources.Inputs{}).Spec.Template.Spec.Containers[0]
	c.start("pgbouncer", img["pgbouncer"], []string{"/tmp"}, map[string]string{resources.PgBouncerConfigDir: bouncerDir}, nil, bouncer.Command...)

	redisConf := strings.Replace(resources.RedisConf(stack), fmt.Sprintf("port %d", resources.RedisPort), fmt.Sprintf("port %d", redisPort), 1)
	redisDir := write("redis", resources.RedisConfKey, redisConf)
	authDir := write("redis-auth", resources.RedisAuthConfKey, resources.RedisAuthConf(redisPassword))
	redis := resources.RedisStatefulSet(stack, resources.Inputs{}).Spec.Template.Spec.Containers[0]
	c.start("redis", img["redis"], []string{resources.RedisDataDir, "/tmp"},
		map[string]string{resources.RedisConfigDir: redisDir, resources.RedisAuthDir: authDir}, nil,
		append(redis.Command, redis.Args...)...)
	waitTCP(t, "pgbouncer", bouncerPort)
	waitTCP(t, "redis", redisPort)

	script := fmt.Sprintf(`set -eu
id -u
url="postgresql://%[1]s:%[2]s@127.0.0.1:%[3]d/%[4]s?sslmode=disable"
psql "$url" -v ON_ERROR_STOP=1 -qAt -c 'create table probe (v text)' -c "insert into probe values ('through-pgbouncer')"
echo "pg: $(psql "$url" -qAt -c 'select v from probe')"
echo "redis: $(redis-cli -p %[5]d --no-auth-warning -a '%[6]s' ping)"
echo "redis without the password: $(redis-cli -p %[5]d ping 2>&1)"
`, resources.ManagedDatabaseUser, pgPassword, bouncerPort, resources.ManagedDatabaseName, redisPort, redisPassword)
	out, err := c.run("run", "--rm", "--net-host", "--read-only", "--mount",
		"type=tmpfs,src=tmpfs,dst=/tmp,options=rw:mode=1777", img["client"], "client", "sh", "-c", script)
	if err != nil {
		t.Fatalf("the client script failed: %v\n%s", err, out)
	}
	for _, want := range []string{fmt.Sprint(uid), "pg: through-pgbouncer", "redis: PONG", "redis without the password: NOAUTH"} {
		if !strings.Contains(out, want) {
			t.Errorf("the client's output lacks %q:\n%s", want, out)
		}
	}

	// The backup Jobs' pg_dump, in the authserver image.
	out, err = c.run("run", "--rm", "--net-host", "--read-only", "--mount", "type=tmpfs,src=tmpfs,dst=/tmp,options=rw:mode=1777",
		img["authserver"], "dump", "pg_dump", "-Fc", "-f", "/tmp/dump",
		fmt.Sprintf("postgresql://%s:%s@127.0.0.1:%d/%s", resources.ManagedDatabaseUser, pgPassword, pgPort, resources.ManagedDatabaseName))
	if err != nil {
		t.Fatalf("pg_dump in the authserver image: %v\n%s", err, out)
	}
}
