package main

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// The Debian packages every Debian-based image picks its files from: extracted
// once (no maintainer scripts run) into one root filesystem, cached by this list.
// trixie: its PostgreSQL is 17, the operator's default major and the Dockerfile's
// PG_MAJOR, so the authserver's pg_dump handles every supported server.
const (
	debianSuite  = "trixie"
	debianMirror = "http://deb.debian.org/debian"
	pgMajor      = "17"
)

var debianPackages = []string{
	"postgresql-" + pgMajor, "postgresql-client-" + pgMajor, "pgbouncer", "redis-server", "redis-tools",
	"busybox-static", "curl", "libc-bin", "ca-certificates", "tzdata",
	"nginx", "libnginx-mod-http-set-misc", // the real-node edge tests' ingress-nginx stand-in
}

// debianRoot extracts debianPackages (and their dependencies) with mmdebstrap
// --variant=extract into cache/debian-<key>, unless it is there already, and returns
// the directory and the package versions (one "name version" a line).
func debianRoot(cache string) (string, []byte, error) {
	sum := sha256.Sum256([]byte(debianSuite + "\n" + debianMirror + "\n" + strings.Join(debianPackages, "\n")))
	dir := filepath.Join(cache, "debian-"+hex.EncodeToString(sum[:])[:16])
	versions := filepath.Join(dir, "packages.txt")
	if b, err := os.ReadFile(versions); err == nil {
		return filepath.Join(dir, "root"), b, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", nil, errors.New("mmdebstrap is not installed: run hack/images.sh (it installs it with apt-get)")
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	root := filepath.Join(dir, "root")
	logf("extracting %d Debian %s packages and their dependencies into %s", len(debianPackages), debianSuite, root)
	cmd := exec.Command("mmdebstrap", "--variant=extract", "--include="+strings.Join(debianPackages, ","),
		"--skip=cleanup/apt/cache", debianSuite, root, debianMirror)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", nil, fmt.Errorf("running %v: %w", cmd.Args, err)
	}
	// The downloaded .deb names say which versions went in; the files themselves go.
	debs, err := filepath.Glob(filepath.Join(root, "var/cache/apt/archives/*.deb"))
	if err != nil {
		return "", nil, err
	}
	var lines []string
	for _, d := range debs {
		f := strings.SplitN(strings.TrimSuffix(filepath.Base(d), ".deb"), "_", 3)
		if len(f) == 3 {
			lines = append(lines, f[0]+" "+strings.ReplaceAll(f[1], "%3a", ":"))
		}
		if err := os.Remove(d); err != nil {
			return "", nil, err
		}
	}
	sort.Strings(lines)
	b := []byte(strings.Join(lines, "\n") + "\n")
	return root, b, os.WriteFile(versions, b, 0o644)
}

// mergedUsr maps the top-level directories Debian makes symlinks into /usr (the
// extract variant creates none, and ELF interpreters name /lib64/...).
var mergedUsr = map[string]string{"/bin": "usr/bin", "/sbin": "usr/sbin", "/lib": "usr/lib", "/lib64": "usr/lib64"}

// libDirs are where the dynamic loader finds libraries without an ld.so.cache
// (Debian's glibc searches its multiarch directories by default).
var libDirs = []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib"}

// picker selects files from an extracted root filesystem: the paths asked for, the
// symlinks on the way, and every shared library their ELF files need, transitively.
type picker struct {
	root    string
	exclude []string // path.Match patterns of files not to take from a picked directory
	out     files
	seen    map[string]bool
}

func newPicker(root string, exclude ...string) *picker {
	return &picker{root: root, exclude: exclude, out: files{}, seen: map[string]bool{}}
}

// host is p (a path inside the image, with real parent directories) on the host.
func (pk *picker) host(p string) string { return filepath.Join(pk.root, p) }

// realDir resolves the symlinks of directory d inside the root (the merged-usr ones
// included), taking each link on the way, so that files are written under real
// directories only.
func (pk *picker) realDir(d string) (string, error) {
	real := "/"
	for _, c := range strings.Split(strings.TrimPrefix(d, "/"), "/") {
		if c == "" {
			continue
		}
		next := path.Join(real, c)
		if usr, ok := mergedUsr[next]; ok {
			real = "/" + usr
			continue
		}
		fi, err := os.Lstat(pk.host(next))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			real = next
			continue
		}
		if err := pk.pick(next); err != nil {
			return "", err
		}
		target, err := os.Readlink(pk.host(next))
		if err != nil {
			return "", err
		}
		if !path.IsAbs(target) {
			target = path.Join(real, target)
		}
		if real, err = pk.realDir(target); err != nil {
			return "", err
		}
	}
	return real, nil
}

// pick adds p (a file, a symlink and its target, or a directory tree).
func (pk *picker) pick(p string) error {
	d, err := pk.realDir(path.Dir(path.Clean(p)))
	if err != nil {
		return err
	}
	p = path.Join(d, path.Base(p))
	if pk.seen[p] {
		return nil
	}
	pk.seen[p] = true
	for _, pat := range pk.exclude {
		if ok, _ := path.Match(pat, p); ok {
			return nil
		}
	}
	h := pk.host(p)
	fi, err := os.Lstat(h)
	if err != nil {
		return fmt.Errorf("picking %s from the Debian root: %w", p, err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(h)
		if err != nil {
			return err
		}
		pk.out.link(p, target)
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		if _, err := os.Stat(pk.host(target)); err != nil {
			return nil // dangling in the root too (zoneinfo/localtime -> /etc/localtime)
		}
		return pk.pick(target)
	case fi.IsDir():
		pk.out.dir(p, int64(fi.Mode().Perm()), 0)
		ents, err := os.ReadDir(h)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := pk.pick(path.Join(p, e.Name())); err != nil {
				return err
			}
		}
		return nil
	case fi.Mode().IsRegular():
		pk.out.file(p, h, int64(fi.Mode().Perm()))
		return pk.pickNeeded(p, h)
	}
	return nil // devices, fifos: none needed
}

// pickNeeded adds the interpreter and the libraries an ELF file needs.
func (pk *picker) pickNeeded(p, h string) error {
	f, err := elf.Open(h)
	if err != nil {
		return nil // not an ELF file
	}
	defer f.Close()
	var needed []string
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err == nil {
				needed = append(needed, strings.TrimRight(string(b), "\x00"))
			}
		}
	}
	libs, _ := f.ImportedLibraries()
	runpath, _ := f.DynString(elf.DT_RUNPATH)
	rpath, _ := f.DynString(elf.DT_RPATH)
	var dirs []string
	for _, rp := range append(runpath, rpath...) {
		for _, d := range strings.Split(rp, ":") {
			dirs = append(dirs, strings.ReplaceAll(d, "$ORIGIN", path.Dir(p)))
		}
	}
	dirs = append(dirs, libDirs...)
	for _, lib := range libs {
		found := false
		for _, d := range dirs {
			if _, err := os.Stat(pk.host(path.Join(d, lib))); err == nil {
				needed, found = append(needed, path.Join(d, lib)), true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s needs %s, which is in none of %v of the Debian root", p, lib, dirs)
		}
	}
	for _, n := range needed {
		if err := pk.pick(n); err != nil {
			return err
		}
	}
	return nil
}
