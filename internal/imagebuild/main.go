// Command imagebuild builds AuthStack's container images without Docker or a
// registry: OCI images (docker-archive tarballs, which `ctr images import` reads)
// of this repository's static binaries and of Debian packages, into a cache,
// content-addressed (the tag carries a hash of the image's files and config, and
// an image already there is not written again). hack/images.sh drives it.
//
//	go run ./internal/imagebuild -bin bin -tools ~/.cache/authstack/bin -out ~/.cache/authstack/images
//
// It prints one line per image: NAME REF TARBALL.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func logf(format string, args ...any) { log.Printf(format, args...) }

func main() {
	log.SetFlags(0)
	log.SetPrefix("imagebuild: ")
	var in inputs
	var out string
	flag.StringVar(&out, "out", "", "cache directory of the Debian root and the image tarballs")
	flag.StringVar(&in.Bin, "bin", "bin", "directory with the authserver and manager binaries (make build)")
	flag.StringVar(&in.Tools, "tools", "", "directory with the mailpit and versitygw binaries")
	flag.StringVar(&in.Version, "version", "", "VERSION, without the v")
	flag.Parse()
	if out == "" || in.Tools == "" || in.Version == "" {
		log.Fatal("-out, -tools and -version are required")
	}
	if err := run(in, out); err != nil {
		log.Fatal(err)
	}
}

func run(in inputs, out string) error {
	var err error
	if in.DebianRoot, in.Debian, err = debianRoot(out); err != nil {
		return err
	}
	for _, im := range allImages {
		img, err := im.build(in)
		if err != nil {
			return err
		}
		ref, path, err := write(img, out)
		if err != nil {
			return fmt.Errorf("image %s: %w", img.Name, err)
		}
		fmt.Printf("%s %s %s\n", img.Name, ref, path)
	}
	return nil
}

// contentKey hashes what makes the image: its config and its layer's bytes.
func contentKey(img image) (string, error) {
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(img.Config); err != nil {
		return "", err
	}
	if err := img.Files.writeTar(h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// write writes the image's tarball unless one with the same content key exists.
func write(img image, out string) (string, string, error) {
	key, err := contentKey(img)
	if err != nil {
		return "", "", err
	}
	ref := repoPrefix + img.Name + ":" + img.Tag + "-" + key[:12]
	path := filepath.Join(out, img.Name+"-"+key[:16]+".tar")
	if _, err := os.Stat(path); err == nil {
		return ref, path, nil
	}
	layer, err := img.Files.layer()
	if err != nil {
		return "", "", err
	}
	oci, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", "", err
	}
	cf, err := oci.ConfigFile()
	if err != nil {
		return "", "", err
	}
	cf = cf.DeepCopy()
	cf.Config, cf.Architecture, cf.OS, cf.Created = img.Config, "amd64", "linux", v1.Time{Time: epoch}
	if oci, err = mutate.ConfigFile(oci, cf); err != nil {
		return "", "", err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", "", err
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, oci); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", "", err
	}
	fi, _ := os.Stat(path)
	logf("wrote %s (%d MB) as %s", path, fi.Size()>>20, ref)
	return ref, path, nil
}
