package envtranslate

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Mounted Secret and ConfigMap volumes, as local files.

func findVolume(vols []corev1.Volume, name string) *corev1.Volume {
	for i := range vols {
		if vols[i].Name == name {
			return &vols[i]
		}
	}
	return nil
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
			for _, k := range slices.Sorted(maps.Keys(s.Data)) {
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
