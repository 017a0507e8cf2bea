#!/usr/bin/env bash
# Builds the e2e tests' file-server image `localhost/pice/test-files:TAG`: the pice-test-files
# binary on the PICE base image (base.tar, written by deploy/images/build.sh into IMAGE_DIR)
# serving SmolLM2-135M (tests/llama/fetch-model.sh) as /smollm2.gguf, so a pool on the real node
# fetches its weights from a pod in the test's namespace. Exports it to IMAGE_DIR/test-files.tar.
#
#   tests/e2e/files-image.sh IMAGE_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${1:?usage: files-image.sh IMAGE_DIR}
tag=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
model=$(tests/llama/fetch-model.sh)
cargo build --locked -q -p pice-tests --bin pice-test-files

work=$(mktemp -d /tmp/pice-files-image.XXXXXX)
storage=(--root "$work/storage" --runroot "$work/run" --storage-driver overlay)
trap 'buildah "${storage[@]}" rm --all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
buildah "${storage[@]}" pull -q "docker-archive:$out/base.tar" >/dev/null
cp target/debug/pice-test-files "$work/"
cp "$model" "$work/smollm2.gguf"
cat >"$work/Containerfile" <<EOT
FROM localhost/pice/base:$tag
COPY pice-test-files /usr/local/bin/pice-test-files
COPY smollm2.gguf /srv/files/smollm2.gguf
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/pice-test-files", "/srv/files", "0.0.0.0:8000"]
EOT
image=localhost/pice/test-files:$tag
buildah "${storage[@]}" bud -q --layers=false -f "$work/Containerfile" -t "$image" "$work" >/dev/null
rm -f "$out/test-files.tar"
buildah "${storage[@]}" push -q "$image" "docker-archive:$out/test-files.tar:$image" >/dev/null
echo "$image in $out/test-files.tar"
