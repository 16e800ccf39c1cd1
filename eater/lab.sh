#!/bin/bash
# The seed experiment at small scale on one machine, with real parts: a
# kubepods cgroup with a limit stands in for the node, containerd CRI pods of
# the three QoS classes run eaters below it (oom_score_adj as the kubelet
# sets them, as far as containerd allows), the eaters fill it, and oomwatch
# watches. Prints oomwatch's lines and who was killed, in which order, and
# why. Cleans up after itself.
#
# usage: sudo eater/lab.sh            (root; cgroup v1 memory controller, or v2)
# env:   NODE_MEM (default 600M), ROUNDS (default 3), WORK (default /tmp/oomwatch-cri),
#        OOMWATCH_BIN (default: cargo build --release)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
CRI=$REPO/tests/real/cri
W=${WORK:-/tmp/oomwatch-cri}
NODE_MEM=${NODE_MEM:-600M}
ROUNDS=${ROUNDS:-3}
PREFIX=/oomwatch-lab-$$
[ "$(id -u)" = 0 ] || { echo "lab.sh: run as root (it creates cgroups and runs containerd)" >&2; exit 1; }

if [ -f /sys/fs/cgroup/memory/memory.usage_in_bytes ]; then
    CG=/sys/fs/cgroup/memory; V=1
elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    CG=/sys/fs/cgroup; V=2
else
    echo "lab.sh: no memory cgroup controller (v1 at /sys/fs/cgroup/memory or v2 at /sys/fs/cgroup)" >&2; exit 1
fi

echo "== setting up containerd, images and oomwatch (first run takes a few minutes)"
eval "$(bash "$CRI/setup.sh" "$W")"
BIN=${OOMWATCH_BIN:-}
if [ -z "$BIN" ]; then
    (cd "$REPO" && cargo build -q --release --bin oomwatch)
    BIN=$REPO/target/release/oomwatch
fi
STATE=$(mktemp -d)
SANDBOXES=()
cleanup() {
    set +e
    for s in "${SANDBOXES[@]}"; do python3 "$CRI/cri_pod.py" "$W" "$SOCK" "$LOGS" cleanup "$s" >/dev/null 2>&1; done
    [ -n "${OW:-}" ] && kill "$OW" 2>/dev/null && wait "$OW" 2>/dev/null
    for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
        [ -d "$h$PREFIX" ] && find "$h$PREFIX" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf "$STATE"
}
trap cleanup EXIT

echo "== the node: $PREFIX/kubepods with a $NODE_MEM limit (cgroup v$V)"
if [ $V = 1 ]; then
    mkdir -p "$CG$PREFIX/kubepods"
    echo "$NODE_MEM" > "$CG$PREFIX/kubepods/memory.limit_in_bytes"
else
    echo +memory > "$CG/cgroup.subtree_control"
    mkdir -p "$CG$PREFIX/kubepods"
    echo +memory > "$CG$PREFIX/cgroup.subtree_control"
    echo "$NODE_MEM" > "$CG$PREFIX/kubepods/memory.max"
    echo +memory > "$CG$PREFIX/kubepods/cgroup.subtree_control"
fi

"$BIN" run --listen 127.0.0.1:0 --state-dir "$STATE/state" --pod-logs-dir "$LOGS" \
    --runtime-state-dir "$TASKS" --kubepods-cgroup "$PREFIX/kubepods" --node-name lab-node \
    > "$STATE/oomwatch.log" 2> "$STATE/oomwatch.err" &
OW=$!
sleep 1

json() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
cri() { python3 "$CRI/cri_pod.py" "$W" "$SOCK" "$LOGS" "$@"; }
# Wait until a container has exited (killed), at most 15 s.
wait_exit() {
    for _ in $(seq 150); do
        [ "$(cri status "$1" | json state)" = CONTAINER_EXITED ] && return 0
        sleep 0.1
    done
    echo "lab.sh: container $1 still running after 15 s" >&2
}
echo "== three Guaranteed eaters (limit 150Mi, eat 120Mi each)"
for i in 1 2 3; do
    SANDBOXES+=("$(cri start guaranteed lab "guaranteed-$i" eater "$PREFIX" 120Mi $((150 << 20)) -997 | json sandbox_id)")
done
sleep 3
# One eater grows at a time: a second OOM racing the first victim's exit
# could otherwise pick a Guaranteed pod, whose oom_score_adj here is 0, not
# -997 (containerd cannot go below its own, and root may not lower it).
echo "== round 1: a BestEffort, then a Burstable eater (no limits, 250Mi each): the node runs out"
OUT=$(cri start besteffort lab besteffort eater "$PREFIX" 250Mi 0 1000); BE=$(echo "$OUT" | json sandbox_id); SANDBOXES+=("$BE")
wait_exit "$(echo "$OUT" | json container_id)"
OUT=$(cri start burstable lab burstable eater "$PREFIX" 250Mi 0 988); BU=$(echo "$OUT" | json sandbox_id); SANDBOXES+=("$BU")
wait_exit "$(echo "$OUT" | json container_id)"
for r in $(seq 2 "$ROUNDS"); do
    echo "== round $r: restart them, as the kubelet would"
    wait_exit "$(cri restart "$BE" eater 250Mi 0 1000 | json container_id)"
    wait_exit "$(cri restart "$BU" eater 250Mi 0 988 | json container_id)"
done
sleep 1

echo
# This run's kills: earlier runs' are still in the ring and come back replayed.
grep "OOM kill: lab/" "$STATE/oomwatch.log" | grep -v "replayed (in the kernel ring" > "$STATE/lab.log" || true
echo "== oomwatch's lines for this lab"
cat "$STATE/lab.log"
[ -s "$STATE/lab.log" ] || echo "(none: see $STATE/oomwatch.err)"
echo
echo "== who was killed, in order"
grep -o "OOM kill: lab/[^ ]* container [^ ]* ([A-Za-z]*)" "$STATE/lab.log" | sed 's/OOM kill: //' | nl
echo
echo "== why (verdicts)"
grep -o "verdict [a-z-]*" "$STATE/lab.log" | sort | uniq -c
echo
echo "The pods sat under one kubepods limit, so every kill is 'allocatable': the pods"
echo "together used all the node allowed them. BestEffort (oom_score_adj 1000) dies first,"
echo "then Burstable; the Guaranteed pods survive. On a real node without that limit the"
echo "same pressure is a global OOM, judged against the kubelet's eviction threshold."
