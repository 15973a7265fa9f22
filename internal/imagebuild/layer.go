package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// entry is one file of an image layer: a directory, a symlink, or a regular file
// whose content is Data or, when Src is set, the host file Src.
type entry struct {
	Path     string // absolute, inside the image
	Dir      bool
	Link     string // symlink target
	Src      string
	Data     []byte
	Mode     int64
	UID, GID int
}

// files collects the entries of a layer by path; a later entry replaces an earlier one.
type files map[string]entry

func (fs files) add(e entry) {
	e.Path = path.Clean("/" + e.Path)
	fs[e.Path] = e
}

func (fs files) dir(p string, mode int64, uid int) {
	fs.add(entry{Path: p, Dir: true, Mode: mode, UID: uid, GID: uid})
}
func (fs files) link(p, target string) { fs.add(entry{Path: p, Link: target}) }
func (fs files) data(p string, mode int64, b []byte) {
	fs.add(entry{Path: p, Data: b, Mode: mode})
}
func (fs files) file(p, src string, mode int64) { fs.add(entry{Path: p, Src: src, Mode: mode}) }

// epoch is the modification time of every file and the creation time of every
// image: the same inputs give the same layer and image digests.
var epoch = time.Unix(0, 0).UTC()

// writeTar writes the entries as a tar stream, parents first and in path order,
// owned by root unless an entry says otherwise. Missing parent directories are
// added (0755, root).
func (fs files) writeTar(w io.Writer) error {
	all := files{}
	for p, e := range fs {
		all[p] = e
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := fs[d]; !ok {
				all[d] = entry{Path: d, Dir: true, Mode: 0o755}
			}
		}
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	// The root directory itself: without this entry its mode is the snapshotter's
	// choice, and the real node's containerd makes it 0700, so uid 1001 cannot
	// reach any file ("stat /mailpit: permission denied").
	if err := tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	for _, p := range paths {
		e := all[p]
		h := &tar.Header{Name: strings.TrimPrefix(p, "/"), Mode: e.Mode, Uid: e.UID, Gid: e.GID,
			ModTime: epoch, Format: tar.FormatPAX}
		var body []byte
		switch {
		case e.Dir:
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case e.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.Link, 0o777
		default:
			body = e.Data
			if e.Src != "" {
				b, err := os.ReadFile(e.Src)
				if err != nil {
					return fmt.Errorf("reading %s for %s: %w", e.Src, p, err)
				}
				body = b
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing the tar header of %s: %w", p, err)
		}
		if _, err := tw.Write(body); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	return tw.Close()
}

// layer renders the entries as an image layer (gzip, fastest level: the machine
// is slow and the tarballs stay local).
func (fs files) layer() (v1.Layer, error) {
	var buf bytes.Buffer
	if err := fs.writeTar(&buf); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
}
