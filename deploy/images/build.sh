#!/usr/bin/env bash
# `make images`: builds PICE's images offline with buildah from the repository's Dockerfile, on a
# distroless-style base made here of the host's shared libraries (those the binaries need), its
# CA bundle and a non-root user, then exports each image as a docker-archive tar (ready for
# `ctr images import`, `kind load image-archive` or `docker load`) and prints its size.
#
#   deploy/images/build.sh [OUT_DIR]      (default: ~/.cache/pice/images)
#
# PICE_IMAGE_PROFILE=release|debug (default release) picks cargo's profile; PICE_IMAGE_LLAMA=0
# skips the llama agent (it builds llama.cpp from source); PICE_IMAGE_TAG (default: the
# workspace version) tags every image. Images are named ghcr.io/pice-dev/<target>:<tag>, the names
# the Helm chart and the operator use by default. Needs root (buildah) and Debian's buildah.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${1:-${PICE_CACHE:-$HOME/.cache/pice}/images}
profile=${PICE_IMAGE_PROFILE:-release}
llama=${PICE_IMAGE_LLAMA:-1}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
tag=${PICE_IMAGE_TAG:-$version}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
targets=(pice-operator pice-gateway pice-edge-agent pice-sim)
((llama)) && targets+=(pice-edge-agent-llama)

command -v buildah >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah >/dev/null
}

work=$(mktemp -d /tmp/pice-images.XXXXXX)
storage=(--root "$work/storage" --runroot "$work/run" --storage-driver overlay)
cleanup() {
  buildah "${storage[@]}" rm --all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The binaries, into the build context's out/ (the Dockerfile's bins-host stage).
flag=(--profile "$profile"); dir=$profile
[ "$profile" = debug ] && { flag=(); dir=debug; }
ctx=$work/context; mkdir -p "$ctx/out"
if ((llama)); then
  tests/llama/build-deps.sh
  cargo build --locked "${flag[@]}" -p pice-edge-agent --features llama --bins
  cp "target/$dir/pice-edge-agent" "$ctx/out/pice-edge-agent-llama"
fi
cargo build --locked "${flag[@]}" -p pice-operator -p pice-gateway -p pice-edge-agent -p pice-sim --bins
for bin in pice-operator pice-gateway pice-edge-agent pice-sim; do cp "target/$dir/$bin" "$ctx/out/"; done

# 2. The base: every shared library the binaries load, the dynamic loader, the CA bundle, a
#    non-root user (65532) and /tmp; nothing else (no shell).
rootfs=$work/base/rootfs; mkdir -p "$rootfs"/{etc/ssl/certs,tmp}
chmod 1777 "$rootfs/tmp"
libs=$(for bin in "$ctx"/out/*; do ldd "$bin" | awk '/=>/ {print $3} /^\t\// {print $1}'; done | sort -u)
for lib in $libs; do cp -L --parents "$lib" "$rootfs/"; done
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
printf 'FROM scratch\nCOPY rootfs/ /\n' >"$work/base/Containerfile"
base=localhost/pice/base:$tag
buildah "${storage[@]}" bud -q --layers=false -f "$work/base/Containerfile" -t "$base" "$work/base" >/dev/null

# 3. One image per Dockerfile target, exported as a tar; the base too, for images built on it.
mkdir -p "$out"
rm -f "$out/base.tar"
buildah "${storage[@]}" push -q "$base" "docker-archive:$out/base.tar:$base" >/dev/null
cp Dockerfile "$ctx/Dockerfile"
printf '%-28s %10s\n' IMAGE SIZE
for target in "${targets[@]}"; do
  image=ghcr.io/pice-dev/$target:$tag
  buildah "${storage[@]}" bud -q --layers=false -f "$ctx/Dockerfile" --target "$target" \
    --build-arg BINS=bins-host --build-arg BASE="$base" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" -t "$image" "$ctx" >/dev/null
  rm -f "$out/$target.tar"
  buildah "${storage[@]}" push -q "$image" "docker-archive:$out/$target.tar:$image" >/dev/null
  printf '%-28s %7.1f MB\n' "$target" "$(echo "$(stat -c %s "$out/$target.tar") / 1000000" | bc -l)"
done
echo "images written to $out (docker-archive tars; profile $profile, revision ${revision:0:12})"
