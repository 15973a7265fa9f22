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
	"path/filepath"
	"sort"
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
	addrs, err := addressMap(o.Addresses, ns)
	if err != nil {
		return nil, err
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
		v, ok, err := t.envVar(e, dep, c)
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
