#!/bin/bash
# Build the oomwatch image from the root Dockerfile without a daemon and
# import it into the private containerd (tests/real/cri/setup.sh). No
# container registry is reachable here, so the Dockerfile's build stage runs
# in a local builder image: a debootstrapped Debian with gcc, and this
# machine's rustup toolchain and cargo home mounted where the official Rust
# images keep theirs. Idempotent. usage: oomwatch-image.sh WORKDIR SOCKET
set -euo pipefail
W=${1:?usage: oomwatch-image.sh WORKDIR SOCKET}
SOCK=${2:?usage: oomwatch-image.sh WORKDIR SOCKET}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
RUSTUP=${RUSTUP_HOME:-$HOME/.rustup}
CARGOH=${CARGO_HOME:-$HOME/.cargo}
[ -d "$RUSTUP/toolchains" ] || { echo "oomwatch-image.sh: needs a rustup toolchain in $RUSTUP" >&2; exit 1; }
B="buildah --storage-driver vfs"
if ! $B images -q localhost/rust-builder:local >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    rm -rf "$W/builder-rootfs"
    debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm "$W/builder-rootfs" http://deb.debian.org/debian >/dev/null
    c=$($B from scratch)
    $B copy "$c" "$W/builder-rootfs" / >/dev/null
    $B commit -q "$c" localhost/rust-builder:local >/dev/null
    $B rm "$c" >/dev/null
    rm -rf "$W/builder-rootfs"
fi
(cd "$REPO" && $B bud -q --build-arg RUST_IMAGE=localhost/rust-builder:local \
    --volume "$RUSTUP:/usr/local/rustup" --volume "$CARGOH:/usr/local/cargo" -t localhost/oomwatch:test . >/dev/null)
rm -f "$W/oomwatch.tar"
$B push -q localhost/oomwatch:test "oci-archive:$W/oomwatch.tar:localhost/oomwatch:test"
ctr -a "$SOCK" -n k8s.io images import "$W/oomwatch.tar" >/dev/null
echo "IMAGE=localhost/oomwatch:test"
