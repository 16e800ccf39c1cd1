#!/bin/bash
# Make real kernel OOM kills in kubepods-shaped cgroup v1 paths and save what
# the kernel printed, as raw kmsg records and as dmesg / dmesg -T / dmesg -x.
# Root, cgroup v1 memory controller at /sys/fs/cgroup/memory. Never touches
# the host's own memory: every hog runs under a 32-64 MiB limit.
# usage: capture-v1.sh OUTDIR   (ONLY=host: just the host-service kill)
set -euo pipefail
OUT=${1:?usage: capture-v1.sh OUTDIR}
MEM=/sys/fs/cgroup/memory
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
gcc -static -O2 -o "$WORK/hog" "$(dirname "$0")/hog.c"
# Hostile comms: spaces, parentheses, commas; a long name cut to 15 bytes.
cp "$WORK/hog" "$WORK/my (app), v2"
cp "$WORK/hog" "$WORK/ld-musl-x86_64.so.1"

uid() { cat /proc/sys/kernel/random/uuid; }
cid() { head -c32 /dev/urandom | sha256sum | cut -c1-64; }
last_seq() { timeout 0.3 cat /dev/kmsg 2>/dev/null | tail -1 | cut -d, -f2 || true; }
# run CGROUP LIMIT ADJ CMD...: put a shell in the cgroup with a limit, exec CMD
run_in() {
    local cg=$MEM$1 limit=$2 adj=$3; shift 3
    mkdir -p "$cg"
    echo "$limit" > "$cg/memory.limit_in_bytes"
    echo "$limit" > "$cg/memory.memsw.limit_in_bytes" 2>/dev/null || true
    sh -c "echo \$\$ > $cg/cgroup.procs; echo $adj > /proc/self/oom_score_adj; exec \"\$@\"" sh "$@" >/dev/null 2>&1 || true
    sleep 0.2
}
# capture NAME: raw kmsg records since $START, plus dmesg renderings of the same time span
capture() {
    local name=$1
    timeout 0.5 cat /dev/kmsg 2>/dev/null | awk -F, -v s="$START" '$2+0 > s+0' > "$OUT/$name.kmsg" || true
    local t0 t1
    t0=$(head -1 "$OUT/$name.kmsg" | cut -d, -f3); t1=$(tail -1 "$OUT/$name.kmsg" | cut -d, -f3)
    for fmt in plain T x; do
        local args=(); [ $fmt = T ] && args=(-T); [ $fmt = x ] && args=(-x)
        dmesg "${args[@]}" | awk -v a="$t0" -v b="$t1" -v fmt=$fmt '
            { if (fmt != "T") { match($0, /\[ *[0-9]+\.[0-9]+\]/); if (RSTART) { t = substr($0, RSTART+1, RLENGTH-2) * 1e6; keep = (t >= a && t <= b) } } else keep = inside }
            keep { print }' > "$OUT/$name.dmesg-$fmt" || true
    done
    # dmesg -T has no kernel time: cut the same number of lines from the end.
    local n; n=$(wc -l < "$OUT/$name.dmesg-plain")
    dmesg -T | tail -n "$n" > "$OUT/$name.dmesg-T"
    dmesg -x | tail -n "$n" > "$OUT/$name.dmesg-x"
    rm -f "$OUT/$name.dmesg-plain.tmp"
}
cleanup() { find "$MEM/$1" -depth -type d -exec rmdir {} \; 2>/dev/null || true; }

if [ "${ONLY:-}" != host ]; then
# 1. all three QoS classes, cgroupfs driver; oom_score_adj as the kubelet sets
#    it where the kernel lets root raise it (lowering needs CAP_SYS_RESOURCE).
U1=$(uid) U2=$(uid) U3=$(uid)
START=$(last_seq)
run_in "/kubepods/besteffort/pod$U1/$(cid)" 32M 1000 "$WORK/ld-musl-x86_64.so.1" 100
run_in "/kubepods/burstable/pod$U2/$(cid)" 32M 988 "$WORK/my (app), v2" 100
run_in "/kubepods/pod$U3/$(cid)" 32M 0 "$WORK/hog" 100
capture qos-classes-cgroupfs
cleanup "kubepods/besteffort/pod$U1"; cleanup "kubepods/burstable/pod$U2"; cleanup "kubepods/pod$U3"

# 2. a child killed beside its surviving parent, systemd-driver names
U=$(uid); C=$(cid); U_=${U//-/_}
CG=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$U_.slice/cri-containerd-$C.scope
START=$(last_seq)
run_in "$CG" 48M 500 sh -c "\"$WORK/hog\" 100; echo child-exit \$?; sleep 0.1"
capture child-of-main-systemd
cleanup "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$U_.slice"

# 3. node-allocatable shape: the limit on a parent, pods below it unlimited
P=/oomwatch-alloc-$$/kubepods
mkdir -p "$MEM$P"; echo 64M > "$MEM$P/memory.limit_in_bytes"
U=$(uid)
START=$(last_seq)
mkdir -p "$MEM$P/besteffort/pod$U/$(cid)"
CGL=$(ls -d "$MEM$P/besteffort/pod$U"/*/)
sh -c "echo \$\$ > ${CGL}cgroup.procs; echo 1000 > /proc/self/oom_score_adj; exec \"$WORK/hog\" 200" >/dev/null 2>&1 || true
sleep 0.2
capture allocatable-parent-limit
find "$MEM/oomwatch-alloc-$$" -depth -type d -exec rmdir {} \; 2>/dev/null || true
fi
# 4. a host victim: a systemd service's cgroup, not a pod
START=$(last_seq)
run_in /system.slice/oomwatch-demo.service 32M 0 "$WORK/hog" 100
capture host-service
cleanup system.slice/oomwatch-demo.service
ls -l "$OUT"
