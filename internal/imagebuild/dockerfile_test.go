package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// stage is what a Dockerfile target sets for its image: the instructions of its
// own stage (the targets' bases are never our own stages).
type stage struct {
	entrypoint, cmd []string
	set             bool // CMD given
	user, workdir   string
	stopSignal      string
	exposed         []string
	copies          []string // COPY destinations
	labels          map[string]string
}

// parseDockerfile reads the stages of a Dockerfile by name: comments dropped,
// continuation lines joined, exec-form (JSON) and shell-form arguments.
func parseDockerfile(t *testing.T, file string) map[string]*stage {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(strings.TrimRight(l, " \t"), `\`); ok {
			cur += s + " "
			continue
		}
		if cur += l; strings.TrimSpace(cur) != "" {
			lines = append(lines, strings.TrimSpace(cur))
		}
		cur = ""
	}
	list := func(args string) []string {
		var out []string
		if strings.HasPrefix(args, "[") {
			if err := json.Unmarshal([]byte(args), &out); err != nil {
				t.Fatalf("exec form %q: %v", args, err)
			}
			return out
		}
		return []string{"/bin/sh", "-c", args}
	}
	stages := map[string]*stage{}
	var st *stage
	label := regexp.MustCompile(`([\w.\-]+)="([^"]*)"`)
	for _, l := range lines {
		instr, args, _ := strings.Cut(l, " ")
		args = strings.TrimSpace(args)
		switch strings.ToUpper(instr) {
		case "FROM":
			st = &stage{labels: map[string]string{}}
			if f := strings.Fields(args); len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
				stages[f[len(f)-1]] = st
			}
		case "ENTRYPOINT":
			st.entrypoint = list(args)
		case "CMD":
			st.cmd, st.set = list(args), true
		case "USER":
			st.user = args
		case "WORKDIR":
			st.workdir = args
		case "STOPSIGNAL":
			st.stopSignal = args
		case "EXPOSE":
			for _, p := range strings.Fields(args) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				st.exposed = append(st.exposed, p)
			}
		case "COPY":
			f := strings.Fields(args)
			st.copies = append(st.copies, f[len(f)-1])
		case "LABEL":
			for _, m := range label.FindAllStringSubmatch(args, -1) {
				st.labels[m[1]] = m[2]
			}
		}
	}
	return stages
}

// fakeDebianRoot is a Debian root with the files the authserver and manager images
// pick, as plain files: enough for their layout, no download.
func fakeDebianRoot(t *testing.T) string {
	root := t.TempDir()
	for _, f := range []string{pgBin + "/pg_dump", pgBin + "/pg_restore", pgBin + "/pg_isready", pgBin + "/postgres",
		pgBin + "/initdb", pgBin + "/psql", "/usr/share/postgresql/" + pgMajor + "/postgres.bki", "/usr/share/zoneinfo/UTC",
		"/usr/lib/locale/C.utf8/LC_CTYPE", "/usr/bin/busybox", "/usr/bin/redis-server", "/usr/bin/redis-cli",
		"/usr/bin/getent", "/usr/bin/curl", "/usr/sbin/pgbouncer", "/usr/share/ca-certificates/mozilla/A.crt"} {
		if err := os.MkdirAll(filepath.Join(root, path.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), []byte("x\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// lookPath resolves name on the image's PATH through its symlinks, as the
// runtime does for a command without a slash; "" when it is not there.
func lookPath(img image, name string) string {
	var pathEnv string
	for _, e := range img.Config.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		p := path.Join(dir, name)
		for range 10 {
			// The merged-/usr links at the top.
			for top, usr := range mergedUsr {
				if strings.HasPrefix(p, top+"/") {
					p = "/" + usr + strings.TrimPrefix(p, top)
				}
			}
			e, ok := img.Files[p]
			if !ok {
				break
			}
			if e.Link == "" {
				if !e.Dir && e.Mode&0o111 != 0 {
					return p
				}
				break
			}
			if path.IsAbs(e.Link) {
				p = e.Link
			} else {
				p = path.Join(path.Dir(p), e.Link)
			}
		}
	}
	return ""
}

// TestSameAsDockerfile: the images built here and the Dockerfile's targets have the
// same entrypoint, command, user, working directory, ports, stop signal and title,
// and the files the Dockerfile copies in are executables at the same paths. The
// authserver image has pg_dump and pg_restore on its PATH, as the backup Jobs need.
func TestSameAsDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "../../Dockerfile")
	bin := t.TempDir()
	for _, b := range []string{"authserver", "manager"} {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("binary"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in := inputs{Version: "0.0.0", Bin: bin, DebianRoot: fakeDebianRoot(t)}
	for target, build := range map[string]func(inputs) (image, error){"authserver": authserverImage, "manager": managerImage} {
		t.Run(target, func(t *testing.T) {
			st := stages[target]
			if st == nil {
				t.Fatalf("the Dockerfile has no stage %q", target)
			}
			img, err := build(in)
			if err != nil {
				t.Fatal(err)
			}
			c := img.Config
			if !reflect.DeepEqual(c.Entrypoint, st.entrypoint) {
				t.Errorf("entrypoint: image %q, Dockerfile %q", c.Entrypoint, st.entrypoint)
			}
			if st.set && len(c.Cmd)+len(st.cmd) > 0 && !reflect.DeepEqual(c.Cmd, st.cmd) {
				t.Errorf("cmd: image %q, Dockerfile %q", c.Cmd, st.cmd)
			}
			if c.User != st.user {
				t.Errorf("user: image %q, Dockerfile %q", c.User, st.user)
			}
			if c.WorkingDir != st.workdir {
				t.Errorf("workdir: image %q, Dockerfile %q", c.WorkingDir, st.workdir)
			}
			if c.StopSignal != st.stopSignal {
				t.Errorf("stop signal: image %q, Dockerfile %q", c.StopSignal, st.stopSignal)
			}
			var exposed []string
			for p := range c.ExposedPorts {
				exposed = append(exposed, p)
			}
			slices.Sort(exposed)
			slices.Sort(st.exposed)
			if !slices.Equal(exposed, st.exposed) {
				t.Errorf("exposed ports: image %q, Dockerfile %q", exposed, st.exposed)
			}
			if got, want := c.Labels["org.opencontainers.image.title"], st.labels["org.opencontainers.image.title"]; got != want {
				t.Errorf("title label: image %q, Dockerfile %q", got, want)
			}
			if len(st.copies) == 0 {
				t.Fatal("the Dockerfile's stage copies nothing")
			}
			for _, dst := range st.copies {
				if e, ok := img.Files[dst]; !ok || e.Dir || e.Link != "" || e.Mode&0o111 == 0 {
					t.Errorf("the Dockerfile copies %s; the image has %+v there", dst, e)
				}
			}
			if target == "authserver" {
				for _, tool := range []string{"pg_dump", "pg_restore"} {
					if lookPath(img, tool) == "" {
						t.Errorf("%s is not on the authserver image's PATH", tool)
					}
				}
			}
		})
	}
}

// TestLayerRootIsSearchable: the layer sets the mode of / itself (0755), so a
// non-root user reaches the files whatever mode the snapshotter would give it.
func TestLayerRootIsSearchable(t *testing.T) {
	fs := base("x")
	var buf bytes.Buffer
	if err := fs.writeTar(&buf); err != nil {
		t.Fatal(err)
	}
	h, err := tar.NewReader(&buf).Next()
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "./" || h.Typeflag != tar.TypeDir || h.Mode != 0o755 {
		t.Fatalf("the layer starts with %q (type %c, mode %o), want ./ 0755", h.Name, h.Typeflag, h.Mode)
	}
}
