// Package envtranslate turns one container of a Deployment the operator
// rendered, plus the Secrets and ConfigMaps it references, into the
// environment, arguments and files of a local process: in-cluster addresses
// become loopback ones, mounted Secret volumes become files in a local folder,
// listen addresses are pinned to 127.0.0.1.
//
// The demo (hack/demo.sh) and the end-to-end tests use it to run the real
// authserver binary with exactly the configuration the operator rendered,
// since no container runs on these machines (pods are simulated by kwok).
//
// Nothing here prints a Secret's value: errors name variables, Secrets and keys.
package envtranslate

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Options say how to map the cluster onto this machine.
type Options struct {
	// Container is the container to translate (an init container works too).
	Container string
	// Namespace resolves short Service names (default: the Deployment's).
	Namespace string
	// Addresses maps in-cluster host:port to a loopback host:port, for example
	// "postgres.databases.svc:5432" -> "127.0.0.1:40123". Keys may use any form
	// of a Service name (name, name.ns, name.ns.svc, name.ns.svc.cluster.local)
	// and are matched in every URL-valued variable and in SMTP_HOST+SMTP_PORT.
	Addresses map[string]string
	// FilesDir receives the mounted Secret and ConfigMap volumes, one
	// sub-folder per volume; variables pointing into a mount are rewritten.
	FilesDir string
	// Listen overrides listen settings: variable name -> value (for example
	// PORT=40001, METRICS_ADDR=127.0.0.1:40002, HOST=127.0.0.1). Only names the
	// container already sets, plus HOST, are set.
	Listen map[string]string
}

// Var is one environment variable of the translated process.
type Var struct {
	Name  string
	Value string
	// Source says where the value came from, for printing: "value",
	// "secret NAME/KEY" or "configmap NAME/KEY". Values from Secrets must not be printed.
	Source string
	// Rewritten says the value was changed by the translation (address, path or listen).
	Rewritten bool
}

// Secret reports whether the value came from a Secret.
func (v Var) Secret() bool { return strings.HasPrefix(v.Source, "secret ") }

// File is one file of a mounted volume, to be written before the process starts.
type File struct {
	Path string
	Data []byte
	Mode uint32
}

// Process is what to run.
type Process struct {
	Command []string // the container's command, when set (an image entrypoint otherwise)
	Args    []string
	Env     []Var
	Files   []File
}

// Environ is the environment as NAME=value strings.
func (p *Process) Environ() []string {
	out := make([]string, 0, len(p.Env))
	for _, v := range p.Env {
		out = append(out, v.Name+"="+v.Value)
	}
	return out
}

// Lookup returns a variable's value.
func (p *Process) Lookup(name string) (string, bool) {
	for _, v := range p.Env {
		if v.Name == name {
			return v.Value, true
		}
	}
	return "", false
}

// Describe renders the environment for people: values from Secrets are
// replaced by where they come from.
func (p *Process) Describe() string {
	var b strings.Builder
	for _, v := range p.Env {
		shown := v.Value
		if v.Secret() {
			shown = "<" + v.Source + ">"
		}
		note := ""
		if v.Rewritten {
			note = "   (translated to loopback)"
		}
		fmt.Fprintf(&b, "  %s=%s%s\n", v.Name, shown, note)
	}
	return b.String()
}

// Translate builds the local process of one container of dep. secrets and
// configMaps are the objects of dep's namespace, by name.
func Translate(dep *appsv1.Deployment, secrets map[string]*corev1.Secret, configMaps map[string]*corev1.ConfigMap, o Options) (*Process, error) {
	if dep == nil {
		return nil, fmt.Errorf("translating: no Deployment")
	}
	ns := o.Namespace
	if ns == "" {
		ns = dep.Namespace
	}
	if ns == "" {
		ns = "default"
	}
	pod := dep.Spec.Template.Spec
	var c *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == o.Container {
			c = &pod.Containers[i]
		}
	}
	for i := range pod.InitContainers {
		if pod.InitContainers[i].Name == o.Container {
			c = &pod.InitContainers[i]
		}
	}
	if c == nil {
		return nil, fmt.Errorf("translating Deployment %s: no container %q", dep.Name, o.Container)
	}
	addrs := map[string]string{}
	for k, v := range o.Addresses {
		h, p, err := net.SplitHostPort(k)
		if err != nil {
			return nil, fmt.Errorf("address mapping key %q: want host:port: %w", k, err)
		}
		addrs[net.JoinHostPort(canonicalHost(h, ns), p)] = v
	}
	t := &translator{ns: ns, secrets: secrets, configMaps: configMaps, addrs: addrs}

	proc := &Process{Command: append([]string(nil), c.Command...), Args: append([]string(nil), c.Args...)}

	// Volumes: files, and the mount paths they replace.
	mounts := map[string]string{} // container mount path -> local folder
	for _, m := range c.VolumeMounts {
		vol := findVolume(pod.Volumes, m.Name)
		if vol == nil {
			return nil, fmt.Errorf("container %s mounts volume %q that the pod does not define", c.Name, m.Name)
		}
		if vol.Secret == nil && vol.ConfigMap == nil {
			continue // emptyDir and the like: nothing to carry over
		}
		if o.FilesDir == "" {
			return nil, fmt.Errorf("container %s mounts volume %q: Options.FilesDir is needed", c.Name, m.Name)
		}
		local := filepath.Join(o.FilesDir, m.Name)
		mounts[strings.TrimRight(m.MountPath, "/")] = local
		files, err := t.volumeFiles(vol, local, m.SubPath)
		if err != nil {
			return nil, fmt.Errorf("container %s volume %q: %w", c.Name, m.Name, err)
		}
		proc.Files = append(proc.Files, files...)
	}

	seen := map[string]int{}
	set := func(v Var) {
		if i, ok := seen[v.Name]; ok {
			proc.Env[i] = v
			return
		}
		seen[v.Name] = len(proc.Env)
		proc.Env = append(proc.Env, v)
	}
	for _, ef := range c.EnvFrom {
		vars, err := t.envFrom(ef)
		if err != nil {
			return nil, fmt.Errorf("container %s envFrom: %w", c.Name, err)
		}
		for _, v := range vars {
			set(v)
		}
	}
	for _, e := range c.Env {
		v, ok, err := t.envVar(e, dep)
		if err != nil {
			return nil, fmt.Errorf("container %s env %s: %w", c.Name, e.Name, err)
		}
		if ok {
			set(v)
		}
	}

	// Rewrite values: mount paths, then addresses.
	for i := range proc.Env {
		v := &proc.Env[i]
		if nv, ok := rewritePath(v.Value, mounts); ok {
			v.Value, v.Rewritten = nv, true
			continue
		}
		nv, changed, err := t.rewriteURL(v.Value)
		if err != nil {
			return nil, fmt.Errorf("container %s env %s: %w", c.Name, v.Name, err)
		}
		if changed {
			v.Value, v.Rewritten = nv, true
		}
	}
	if err := t.rewriteSMTP(proc); err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}

	// Listen settings.
	names := make([]string, 0, len(o.Listen))
	for k := range o.Listen {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := seen[k]; ok || k == "HOST" {
			set(Var{Name: k, Value: o.Listen[k], Source: "value", Rewritten: true})
		}
	}
	sort.SliceStable(proc.Env, func(i, j int) bool { return proc.Env[i].Name < proc.Env[j].Name })
	return proc, nil
}

type translator struct {
	ns         string
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
	addrs      map[string]string
}

func findVolume(vols []corev1.Volume, name string) *corev1.Volume {
	for i := range vols {
		if vols[i].Name == name {
			return &vols[i]
		}
	}
	return nil
}

func (t *translator) secretKey(name, key string, optional bool) ([]byte, bool, error) {
	s := t.secrets[name]
	if s == nil {
		if optional {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("Secret %s/%s not found", t.ns, name)
	}
	if b, ok := s.Data[key]; ok {
		return b, true, nil
	}
	if sv, ok := s.StringData[key]; ok {
		return []byte(sv), true, nil
	}
	if optional {
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("Secret %s/%s has no key %q", t.ns, name, key)
}

func (t *translator) configMapKey(name, key string, optional bool) (string, bool, error) {
	cm := t.configMaps[name]
	if cm == nil {
		if optional {
			return "", false, nil
		}
		return "", false, fmt.Errorf("ConfigMap %s/%s not found", t.ns, name)
	}
	if v, ok := cm.Data[key]; ok {
		return v, true, nil
	}
	if optional {
		return "", false, nil
	}
	return "", false, fmt.Errorf("ConfigMap %s/%s has no key %q", t.ns, name, key)
}

func (t *translator) envVar(e corev1.EnvVar, dep *appsv1.Deployment) (Var, bool, error) {
	if e.ValueFrom == nil {
		return Var{Name: e.Name, Value: e.Value, Source: "value"}, true, nil
	}
	switch vf := e.ValueFrom; {
	case vf.SecretKeyRef != nil:
		r := vf.SecretKeyRef
		b, ok, err := t.secretKey(r.Name, r.Key, r.Optional != nil && *r.Optional)
		if err != nil || !ok {
			return Var{}, false, err
		}
		return Var{Name: e.Name, Value: string(b), Source: "secret " + r.Name + "/" + r.Key}, true, nil
	case vf.ConfigMapKeyRef != nil:
		r := vf.ConfigMapKeyRef
		v, ok, err := t.configMapKey(r.Name, r.Key, r.Optional != nil && *r.Optional)
		if err != nil || !ok {
			return Var{}, false, err
		}
		return Var{Name: e.Name, Value: v, Source: "configmap " + r.Name + "/" + r.Key}, true, nil
	case vf.FieldRef != nil:
		switch vf.FieldRef.FieldPath {
		case "metadata.namespace":
			return Var{Name: e.Name, Value: t.ns, Source: "value"}, true, nil
		case "metadata.name":
			return Var{Name: e.Name, Value: dep.Name + "-local", Source: "value"}, true, nil
		case "status.podIP", "status.hostIP":
			return Var{Name: e.Name, Value: "127.0.0.1", Source: "value", Rewritten: true}, true, nil
		}
		return Var{}, false, fmt.Errorf("fieldRef %s has no local equivalent", vf.FieldRef.FieldPath)
	}
	return Var{}, false, fmt.Errorf("unsupported valueFrom (only secretKeyRef, configMapKeyRef and fieldRef)")
}

func (t *translator) envFrom(ef corev1.EnvFromSource) ([]Var, error) {
	var out []Var
	switch {
	case ef.SecretRef != nil:
		s := t.secrets[ef.SecretRef.Name]
		if s == nil {
			if ef.SecretRef.Optional != nil && *ef.SecretRef.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("Secret %s/%s not found", t.ns, ef.SecretRef.Name)
		}
		for _, k := range sortedKeys(s.Data) {
			out = append(out, Var{Name: ef.Prefix + k, Value: string(s.Data[k]), Source: "secret " + s.Name + "/" + k})
		}
	case ef.ConfigMapRef != nil:
		cm := t.configMaps[ef.ConfigMapRef.Name]
		if cm == nil {
			if ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("ConfigMap %s/%s not found", t.ns, ef.ConfigMapRef.Name)
		}
		keys := make([]string, 0, len(cm.Data))
		for k := range cm.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, Var{Name: ef.Prefix + k, Value: cm.Data[k], Source: "configmap " + cm.Name + "/" + k})
		}
	}
	return out, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// volumeFiles lists the files a Secret or ConfigMap volume holds, as the
// kubelet would project them (items with paths and modes, else every key).
func (t *translator) volumeFiles(vol *corev1.Volume, dir, subPath string) ([]File, error) {
	type entry struct {
		path string
		data []byte
		mode *int32
	}
	var entries []entry
	var defMode *int32
	switch {
	case vol.Secret != nil:
		src := vol.Secret
		defMode = src.DefaultMode
		optional := src.Optional != nil && *src.Optional
		if len(src.Items) == 0 {
			s := t.secrets[src.SecretName]
			if s == nil {
				if optional {
					return nil, nil
				}
				return nil, fmt.Errorf("Secret %s/%s not found", t.ns, src.SecretName)
			}
			for _, k := range sortedKeys(s.Data) {
				entries = append(entries, entry{path: k, data: s.Data[k]})
			}
		}
		for _, it := range src.Items {
			b, ok, err := t.secretKey(src.SecretName, it.Key, optional)
			if err != nil {
				return nil, err
			}
			if ok {
				entries = append(entries, entry{path: it.Path, data: b, mode: it.Mode})
			}
		}
	case vol.ConfigMap != nil:
		src := vol.ConfigMap
		defMode = src.DefaultMode
		optional := src.Optional != nil && *src.Optional
		if len(src.Items) == 0 {
			cm := t.configMaps[src.Name]
			if cm == nil {
				if optional {
					return nil, nil
				}
				return nil, fmt.Errorf("ConfigMap %s/%s not found", t.ns, src.Name)
			}
			for k, v := range cm.Data {
				entries = append(entries, entry{path: k, data: []byte(v)})
			}
		}
		for _, it := range src.Items {
			v, ok, err := t.configMapKey(src.Name, it.Key, optional)
			if err != nil {
				return nil, err
			}
			if ok {
				entries = append(entries, entry{path: it.Path, data: []byte(v), mode: it.Mode})
			}
		}
	}
	var files []File
	for _, e := range entries {
		if strings.Contains(e.path, "..") || filepath.IsAbs(e.path) {
			return nil, fmt.Errorf("item path %q escapes the volume", e.path)
		}
		if subPath != "" && e.path != subPath {
			continue
		}
		mode := uint32(0o644)
		if defMode != nil {
			mode = uint32(*defMode)
		}
		if e.mode != nil {
			mode = uint32(*e.mode)
		}
		// The local user must read its own files: keep the owner bits readable.
		mode |= 0o400
		p := filepath.Join(dir, e.path)
		if subPath != "" {
			p = dir
		}
		files = append(files, File{Path: p, Data: e.data, Mode: mode})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// rewritePath maps a value inside a mount path to the local folder.
func rewritePath(v string, mounts map[string]string) (string, bool) {
	best := ""
	for mp := range mounts {
		if (v == mp || strings.HasPrefix(v, mp+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	if best == "" {
		return v, false
	}
	return mounts[best] + strings.TrimPrefix(v, best), true
}

// canonicalHost turns every form of a Service name into name.ns.svc; other
// hosts (external names, IPs) are lower-cased and kept.
func canonicalHost(h, ns string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if net.ParseIP(h) != nil || h == "localhost" {
		return h
	}
	h = strings.TrimSuffix(h, ".cluster.local")
	parts := strings.Split(h, ".")
	switch {
	case len(parts) == 1:
		return h + "." + ns + ".svc"
	case len(parts) == 2 && parts[1] != "svc":
		// name.ns, unless the second label looks like a top-level domain of an external name:
		// short two-label names are Service forms only when that namespace exists, which we
		// cannot know, so both forms are matched (see lookup).
		return h + ".svc"
	}
	return h
}

// inCluster reports whether a host is a Service DNS name.
func inCluster(h string) bool {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	return strings.HasSuffix(h, ".svc") || strings.HasSuffix(h, ".svc.cluster.local")
}

func (t *translator) lookup(host, port string) (string, bool) {
	if to, ok := t.addrs[net.JoinHostPort(canonicalHost(host, t.ns), port)]; ok {
		return to, true
	}
	to, ok := t.addrs[net.JoinHostPort(strings.ToLower(host), port)]
	return to, ok
}

// rewriteURL maps the host:port of a URL value (postgres://, redis://, ...).
func (t *translator) rewriteURL(v string) (string, bool, error) {
	if !strings.Contains(v, "://") {
		return v, false, nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return v, false, nil
	}
	port := u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	host := u.Hostname()
	to, ok := t.lookup(host, port)
	if !ok {
		if inCluster(host) {
			return "", false, fmt.Errorf("in-cluster address %s:%s has no local equivalent (add it to the address mapping)", host, port)
		}
		return v, false, nil
	}
	u.Host = to
	return u.String(), true, nil
}

func defaultPort(scheme string) string {
	switch scheme {
	case "postgres", "postgresql":
		return "5432"
	case "redis", "rediss":
		return "6379"
	case "http":
		return "80"
	case "https":
		return "443"
	case "smtp":
		return "25"
	}
	return ""
}

// rewriteSMTP maps SMTP_HOST and SMTP_PORT together.
func (t *translator) rewriteSMTP(p *Process) error {
	hi, pi := -1, -1
	for i, v := range p.Env {
		switch v.Name {
		case "SMTP_HOST":
			hi = i
		case "SMTP_PORT":
			pi = i
		}
	}
	if hi < 0 {
		return nil
	}
	port := "587"
	if pi >= 0 {
		port = p.Env[pi].Value
	}
	host := p.Env[hi].Value
	to, ok := t.lookup(host, port)
	if !ok {
		if inCluster(host) {
			return fmt.Errorf("SMTP server %s:%s has no local equivalent (add it to the address mapping)", host, port)
		}
		return nil
	}
	h, pt, err := net.SplitHostPort(to)
	if err != nil {
		return fmt.Errorf("address mapping for %s:%s: %w", host, port, err)
	}
	if _, err := strconv.Atoi(pt); err != nil {
		return fmt.Errorf("address mapping for %s:%s: port %q is not a number", host, port, pt)
	}
	p.Env[hi].Value, p.Env[hi].Rewritten = h, true
	if pi >= 0 {
		p.Env[pi].Value, p.Env[pi].Rewritten = pt, true
	} else {
		p.Env = append(p.Env, Var{Name: "SMTP_PORT", Value: pt, Source: "value", Rewritten: true})
	}
	return nil
}

// PgBouncerIni rewrites the host= and port= of every [databases] entry of a
// pgbouncer.ini through the address mapping (keys as in Options.Addresses);
// ns resolves short Service names. An in-cluster host without a mapping is an error.
func PgBouncerIni(ini, ns string, addresses map[string]string) (string, error) {
	t := &translator{ns: ns, addrs: map[string]string{}}
	for k, v := range addresses {
		h, p, err := net.SplitHostPort(k)
		if err != nil {
			return "", fmt.Errorf("address mapping key %q: want host:port: %w", k, err)
		}
		t.addrs[net.JoinHostPort(canonicalHost(h, ns), p)] = v
	}
	lines := strings.Split(ini, "\n")
	section := ""
	for i, line := range lines {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "[") && strings.HasSuffix(trim, "]") {
			section = strings.ToLower(strings.Trim(trim, "[] "))
			continue
		}
		if section != "databases" || trim == "" || strings.HasPrefix(trim, ";") || strings.HasPrefix(trim, "#") {
			continue
		}
		name, conn, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		fields := strings.Fields(conn)
		host, port := "", "5432"
		for _, f := range fields {
			if k, v, ok := strings.Cut(f, "="); ok {
				switch k {
				case "host":
					host = v
				case "port":
					port = v
				}
			}
		}
		if host == "" {
			continue
		}
		to, ok := t.lookup(host, port)
		if !ok {
			if inCluster(host) {
				return "", fmt.Errorf("pgbouncer database %s: in-cluster address %s:%s has no local equivalent", strings.TrimSpace(name), host, port)
			}
			continue
		}
		th, tp, err := net.SplitHostPort(to)
		if err != nil {
			return "", fmt.Errorf("address mapping for %s:%s: %w", host, port, err)
		}
		hasPort := false
		for j, f := range fields {
			switch {
			case strings.HasPrefix(f, "host="):
				fields[j] = "host=" + th
			case strings.HasPrefix(f, "port="):
				fields[j], hasPort = "port="+tp, true
			}
		}
		if !hasPort {
			fields = append(fields, "port="+tp)
		}
		lines[i] = strings.TrimRight(name, " ") + " = " + strings.Join(fields, " ")
	}
	return strings.Join(lines, "\n"), nil
}
