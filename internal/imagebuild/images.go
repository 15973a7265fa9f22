package main

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/leanauth/authstack/controllers/resources"
	"github.com/leanauth/authstack/internal/servers"
)

// The images, one function each: their configuration and files. Ours (authserver,
// manager) match the Dockerfile's targets (dockerfile_test.go checks it); the
// Debian ones run what the operator renders (controllers/resources): the commands,
// config paths, data directories and uid 1001 of its pods.

// repoPrefix names the images: local only, never pulled (the pods' IfNotPresent
// finds them in containerd).
const repoPrefix = "localhost/authstack/"

// image is one image to build.
type image struct {
	Name   string
	Tag    string // before the content key
	Config v1.Config
	Files  files
}

// inputs are what the images are built from.
type inputs struct {
	Version    string // VERSION, baked into bin/
	Bin        string // make build's output: authserver, manager
	Tools      string // mailpit, versitygw
	DebianRoot string
	Debian     []byte // "package version" lines of the Debian root
}

// uid is the user of every image: resources.NonRootUID, the pods' runAsUser.
const uid = resources.NonRootUID

// stdPath is the PATH of every image; PostgreSQL's versioned directory is
// added where its programs are called by name.
const stdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const pgBin = "/usr/lib/postgresql/" + pgMajor + "/bin"

//go:embed postgres-entrypoint.sh
var postgresEntrypoint []byte

func config(title string, entrypoint, cmd []string, env ...string) v1.Config {
	return v1.Config{
		Entrypoint: entrypoint,
		Cmd:        cmd,
		User:       fmt.Sprintf("%d:%d", uid, uid),
		WorkingDir: "/",
		Env:        append([]string{"PATH=" + stdPath}, env...),
		Labels: map[string]string{
			"org.opencontainers.image.title":  title,
			"org.opencontainers.image.source": "https://github.com/leanauth/authstack",
		},
	}
}

func ports(ps ...string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, p := range ps {
		m[p] = struct{}{}
	}
	return m
}

// base is what every image has: root and the image's user (uid and gid 1001) in
// /etc/passwd and /etc/group, a world-writable /tmp (an emptyDir covers it in
// the pods), and hosts from /etc/hosts before DNS.
func base(user string) files {
	fs := files{}
	fs.data("/etc/passwd", 0o644, fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/tmp:/sbin/nologin\n", user, uid, uid, user))
	fs.data("/etc/group", 0o644, fmt.Appendf(nil, "root:x:0:\n%s:x:%d:\n", user, uid))
	fs.data("/etc/nsswitch.conf", 0o644, []byte("passwd: files\ngroup: files\nhosts: files dns\n"))
	fs.dir("/tmp", 0o1777, 0)
	return fs
}

// debian picks paths (with the libraries they need) from the Debian root into fs,
// adds the merged-/usr links and the CA bundle, and says which package versions
// went in.
func debian(in inputs, fs files, img *image, exclude []string, paths ...string) error {
	pk := newPicker(in.DebianRoot, exclude...)
	for _, p := range paths {
		if err := pk.pick(p); err != nil {
			return fmt.Errorf("image %s: %w", img.Name, err)
		}
	}
	for p, e := range pk.out {
		fs[p] = e
	}
	for top, usr := range mergedUsr {
		fs.link(top, usr)
	}
	bundle, err := caBundle(in.DebianRoot)
	if err != nil {
		return err
	}
	fs.data("/etc/ssl/certs/ca-certificates.crt", 0o644, bundle)
	img.Config.Labels["org.opencontainers.image.base.name"] = "debian:" + debianSuite
	img.Files = fs
	return nil
}

// caBundle is what update-ca-certificates writes (the extract variant runs no
// maintainer script): every certificate of the ca-certificates package, in order.
func caBundle(root string) ([]byte, error) {
	certs, err := filepath.Glob(filepath.Join(root, "usr/share/ca-certificates/*/*.crt"))
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("no CA certificates under %s/usr/share/ca-certificates (%v)", root, err)
	}
	sort.Strings(certs)
	var out []byte
	for _, c := range certs {
		b, err := os.ReadFile(c)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			out = append(out, '\n')
		}
	}
	return out, nil
}

// busybox adds the static busybox and the applets the images' scripts use (the
// Redis cluster bootstrap, the PostgreSQL entrypoint, the e2e probes).
func busybox(fs files) {
	for _, a := range []string{"sh", "awk", "cat", "cut", "date", "echo", "env", "grep", "head", "hostname",
		"id", "kill", "chmod", "mktemp", "ls", "mkdir", "nc", "nslookup", "printf", "ps", "rm", "sed", "seq", "sleep", "sort",
		"tail", "test", "timeout", "tr", "true", "false", "wc", "wget"} {
		fs.link("/usr/bin/"+a, "busybox")
	}
}

// debianVersion is the version of package pkg in the Debian root.
func debianVersion(in inputs, pkg string) string {
	for _, l := range strings.Split(string(in.Debian), "\n") {
		if name, v, ok := strings.Cut(l, " "); ok && name == pkg {
			return v
		}
	}
	return "unknown"
}

// authserverImage: the static authserver on the PostgreSQL client tools of the
// newest supported major (the backup Jobs run pg_dump, restores pg_restore),
// where the Dockerfile's postgres:alpine base has them: /usr/local/bin.
func authserverImage(in inputs) (image, error) {
	img := image{Name: "authserver", Tag: "v" + in.Version}
	img.Config = config("authserver", []string{"/authserver"}, nil)
	img.Config.ExposedPorts = ports("3000/tcp", "9090/tcp")
	img.Config.StopSignal = "SIGTERM"
	fs := base("authserver")
	fs.file("/authserver", filepath.Join(in.Bin, "authserver"), 0o755)
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		fs.link("/usr/local/bin/"+tool, pgBin+"/"+tool)
	}
	img.Config.Labels["org.opencontainers.image.version"] = "v" + in.Version
	return img, debian(in, fs, &img, nil, pgBin+"/pg_dump", pgBin+"/pg_restore")
}

// managerImage: the static operator, CA certificates, nothing else (the
// Dockerfile's distroless/static).
func managerImage(in inputs) (image, error) {
	img := image{Name: "manager", Tag: "v" + in.Version}
	img.Config = config("authstack-operator", []string{"/manager"}, nil)
	img.Config.Labels["org.opencontainers.image.version"] = "v" + in.Version
	fs := base("manager")
	fs.file("/manager", filepath.Join(in.Bin, "manager"), 0o755)
	bundle, err := caBundle(in.DebianRoot)
	if err != nil {
		return img, err
	}
	fs.data("/etc/ssl/certs/ca-certificates.crt", 0o644, bundle)
	img.Files = fs
	return img, nil
}

// postgresImage: PostgreSQL as the operator's StatefulSet runs it: the official
// image's environment contract (POSTGRES_USER/PASSWORD/DB/INITDB_ARGS, PGDATA)
// through postgres-entrypoint.sh, pg_isready on PATH for the probes, the data
// volume at /var/lib/postgresql/data and sockets in /var/run/postgresql.
func postgresImage(in inputs) (image, error) {
	img := image{Name: "postgres", Tag: pgMajor}
	img.Config = config("postgres", []string{"/usr/local/bin/docker-entrypoint.sh"}, []string{"postgres"},
		"PGDATA=/var/lib/postgresql/data", "LANG=C.UTF-8")
	img.Config.Env[0] = "PATH=" + pgBin + ":" + stdPath
	img.Config.ExposedPorts = ports("5432/tcp")
	img.Config.StopSignal = "SIGINT" // fast shutdown, as the official image
	img.Config.Labels["org.opencontainers.image.version"] = debianVersion(in, "postgresql-"+pgMajor)
	fs := base("postgres")
	fs.data("/usr/local/bin/docker-entrypoint.sh", 0o755, postgresEntrypoint)
	fs.dir("/var/lib/postgresql", 0o755, 0)
	fs.dir("/var/run/postgresql", 0o2775, uid)
	busybox(fs)
	lib := "/usr/lib/postgresql/" + pgMajor
	return img, debian(in, fs, &img,
		// JIT (LLVM, 120 MB) and SELinux labels are not used; build files neither.
		[]string{lib + "/lib/llvmjit*", lib + "/lib/bitcode", lib + "/lib/pgxs", lib + "/lib/sepgsql.so",
			lib + "/bin/pg_config", "/usr/share/postgresql/" + pgMajor + "/man"},
		lib, "/usr/share/postgresql/"+pgMajor, "/usr/share/zoneinfo", "/usr/lib/locale/C.utf8", "/usr/bin/busybox")
}

// redisImage: redis-server (the StatefulSet's command, /data its volume) and,
// for the cluster bootstrap Job's sh script, redis-cli, getent and busybox.
func redisImage(in inputs) (image, error) {
	img := image{Name: "redis", Tag: strings.SplitN(strings.TrimPrefix(debianVersion(in, "redis-server"), "5:"), "-", 2)[0]}
	img.Config = config("redis", []string{"redis-server"}, nil)
	img.Config.WorkingDir = resources.RedisDataDir
	img.Config.ExposedPorts = ports("6379/tcp")
	img.Config.Labels["org.opencontainers.image.version"] = debianVersion(in, "redis-server")
	fs := base("redis")
	fs.dir(resources.RedisDataDir, 0o755, uid)
	busybox(fs)
	return img, debian(in, fs, &img, nil, "/usr/bin/redis-server", "/usr/bin/redis-cli", "/usr/bin/getent", "/usr/bin/busybox")
}

// pgbouncerImage: pgbouncer on PATH (the Deployment runs `pgbouncer
// /etc/pgbouncer/pgbouncer.ini`), with the CA bundle its verify-* modes read.
func pgbouncerImage(in inputs) (image, error) {
	v := debianVersion(in, "pgbouncer")
	img := image{Name: "pgbouncer", Tag: strings.SplitN(v, "-", 2)[0]}
	img.Config = config("pgbouncer", []string{"pgbouncer"}, []string{resources.PgBouncerConfigDir + "/" + resources.PgBouncerIniKey})
	img.Config.ExposedPorts = ports("6432/tcp")
	img.Config.Labels["org.opencontainers.image.version"] = v
	return img, debian(in, base("pgbouncer"), &img, nil, "/usr/sbin/pgbouncer")
}

// staticImage: a static binary of the tools directory as the entrypoint (the
// e2e suite's SMTP catcher and S3 server).
func staticImage(in inputs, name string, exposed ...string) (image, error) {
	img := image{Name: name, Tag: "local"}
	img.Config = config(name, []string{"/" + name}, nil)
	img.Config.ExposedPorts = ports(exposed...)
	fs := base(name)
	fs.file("/"+name, filepath.Join(in.Tools, name), 0o755)
	img.Files = fs
	return img, nil
}

// clientImage: the e2e suite's probe pod: curl, redis-cli, psql, getent, busybox.
func clientImage(in inputs) (image, error) {
	img := image{Name: "client", Tag: debianSuite}
	img.Config = config("client", nil, []string{"sleep", "infinity"})
	img.Config.Env[0] = "PATH=" + pgBin + ":" + stdPath
	fs := base("client")
	busybox(fs)
	return img, debian(in, fs, &img, nil, "/usr/bin/curl", "/usr/bin/redis-cli", pgBin+"/psql", "/usr/bin/getent", "/usr/bin/busybox")
}

// nginxImage: Debian's nginx with the modules ingress-nginx's forward auth
// needs (internal/servers.NginxModules), for the real-node edge tests; the
// pods give it its configuration and an emptyDir /tmp for its pid and temp files.
func nginxImage(in inputs) (image, error) {
	v := debianVersion(in, "nginx")
	img := image{Name: "nginx", Tag: strings.SplitN(v, "-", 2)[0]}
	img.Config = config("nginx", []string{"/usr/sbin/nginx"}, nil)
	img.Config.Labels["org.opencontainers.image.version"] = v
	img.Config.StopSignal = "SIGQUIT"
	return img, debian(in, base("nginx"), &img, nil, append([]string{"/usr/sbin/nginx"}, servers.NginxModules...)...)
}

// allImages are the images by name, in build order.
var allImages = []struct {
	name  string
	build func(inputs) (image, error)
}{
	{"authserver", authserverImage},
	{"manager", managerImage},
	{"postgres", postgresImage},
	{"redis", redisImage},
	{"pgbouncer", pgbouncerImage},
	{"mailpit", func(in inputs) (image, error) { return staticImage(in, "mailpit", "1025/tcp", "8025/tcp") }},
	{"versitygw", func(in inputs) (image, error) { return staticImage(in, "versitygw", "7070/tcp") }},
	{"client", clientImage},
	{"nginx", nginxImage},
	// Traefik v3 (hack/traefik.sh, in the tools folder), the real-node edge tests' Gateway.
	{"traefik", func(in inputs) (image, error) { return staticImage(in, "traefik", "8000/tcp") }},
}
