#!/usr/bin/env bash
# Writes a one-layer OCI image archive (an OCI image layout in a tar file, as
# `ctr images import` reads it) from a root filesystem folder, with no
# container engine and no registry.
#
#   hack/oci-image.sh REF ROOTFS OUT.tar [ENTRYPOINT_JSON] [USER]
#   e.g. hack/oci-image.sh localhost/authstack/pause:1 /tmp/rootfs pause.tar '["/pause"]' 65535:65535
#
# The layer is reproducible: sorted names, owner 0:0, mtime 0.
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 REF ROOTFS OUT.tar [ENTRYPOINT_JSON] [USER]" >&2; exit 2; }
ref="$1" rootfs="$2" out="$3" entrypoint="${4:-null}" user="${5:-}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"

blob() { # FILE: moves it into blobs/, prints "sha256:<hex> <size>"
  local d s; d=$(sha256sum "$1" | cut -d' ' -f1); s=$(stat -c %s "$1")
  mv "$1" "$work/blobs/sha256/$d"; echo "sha256:$d $s"
}

tar -C "$rootfs" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/layer" .
read -r layer layer_size < <(blob "$work/layer")
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"User":"%s","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
  "$entrypoint" "$user" "$layer" >"$work/config"
read -r config config_size < <(blob "$work/config")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
  "$config" "$config_size" "$layer" "$layer_size" >"$work/manifest"
read -r manifest manifest_size < <(blob "$work/manifest")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$manifest_size" "$ref" "${ref##*:}" >"$work/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
