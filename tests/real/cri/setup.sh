#!/bin/bash
# A private containerd with its CRI plugin, and the test images, for the
# CRI tests. Idempotent. Root; Debian packages containerd, runc, buildah;
# Python grpcio and grpcio-tools; the CRI api.proto from the crates.io crate
# k8s-cri. Prints shell assignments: SOCK, TASKS, LOGS.
# usage: setup.sh WORKDIR
set -euo pipefail
W=${1:?usage: setup.sh WORKDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$W"
export DEBIAN_FRONTEND=noninteractive
for p in containerd runc buildah; do
    command -v "$p" >/dev/null || apt-get install -y -qq --no-install-recommends containerd runc buildah >/dev/null
done
python3 -c 'import grpc, grpc_tools' 2>/dev/null || pip install -q grpcio grpcio-tools >&2

# CRI stubs from the api.proto shipped in the k8s-cri crate.
if [ ! -f "$W/v1_pb2_grpc.py" ]; then
    crate=$(ls ~/.cargo/registry/cache/*/k8s-cri-*.crate 2>/dev/null | head -1 || true)
    if [ -z "$crate" ]; then
        mkdir -p "$W/fetch/src" && echo 'fn main() {}' > "$W/fetch/src/main.rs"
        printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nk8s-cri = "0.11"\n' > "$W/fetch/Cargo.toml"
        (cd "$W/fetch" && cargo fetch -q)
        crate=$(ls ~/.cargo/registry/cache/*/k8s-cri-*.crate | head -1)
    fi
    tar xzf "$crate" -C "$W" --strip-components=2 --wildcards '*/proto/v1.proto'
    python3 -m grpc_tools.protoc -I"$W" --python_out="$W" --grpc_python_out="$W" "$W/v1.proto"
fi

# Static binaries in FROM-scratch images, built without a daemon.
if [ ! -f "$W/hog.tar" ]; then
    gcc -static -O2 -o "$W/pause" "$HERE/pause.c"
    gcc -static -O2 -o "$W/hog" "$HERE/../hog.c"
    for img in pause hog; do
        c=$(buildah --storage-driver vfs from scratch)
        buildah --storage-driver vfs copy "$c" "$W/$img" "/$img" >/dev/null
        buildah --storage-driver vfs config --entrypoint "[\"/$img\"]" "$c"
        buildah --storage-driver vfs commit -q "$c" "localhost/$img:test" >/dev/null
        buildah --storage-driver vfs rm "$c" >/dev/null
        buildah --storage-driver vfs push -q "localhost/$img:test" "oci-archive:$W/$img.tar:localhost/$img:test"
    done
fi

# The eater image from its Dockerfile, around a static build.
REPO=$(cd "$HERE/../../.." && pwd)
if [ ! -f "$W/eater.tar" ]; then
    (cd "$REPO" && RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --release -p eater \
        --target x86_64-unknown-linux-gnu --target-dir target/static)
    (cd "$REPO" && buildah --storage-driver vfs bud -q -f eater/Dockerfile -t localhost/eater:test . >/dev/null)
    buildah --storage-driver vfs push -q localhost/eater:test "oci-archive:$W/eater.tar:localhost/eater:test"
fi

SOCK=$W/containerd.sock
if ! ctr -a "$SOCK" version >/dev/null 2>&1; then
    containerd config default | python3 "$HERE/containerd_config.py" "$W" "$SOCK" > "$W/config.toml"
    nohup containerd --config "$W/config.toml" > "$W/containerd.log" 2>&1 &
    for _ in $(seq 100); do ctr -a "$SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
    ctr -a "$SOCK" version >/dev/null
fi
for img in pause hog eater; do
    ctr -a "$SOCK" -n k8s.io images ls -q | grep -q "localhost/$img:test" || ctr -a "$SOCK" -n k8s.io images import "$W/$img.tar" >/dev/null
done
echo "SOCK=$SOCK"
echo "TASKS=$W/state/io.containerd.runtime.v2.task/k8s.io"
echo "LOGS=$W/pods"
