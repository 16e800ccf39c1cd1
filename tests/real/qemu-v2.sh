#!/bin/bash
# Real cgroup v2 OOM kills in a throw-away qemu guest (TCG): a Debian cloud
# kernel and a busybox initramfs. Never runs the host out of memory.
#
# usage: qemu-v2.sh setup                 # Debian packages, extract qemu + kernel into $WORK
#        qemu-v2.sh run MODE [WATCHER...]  # boot once; MODE = memcg | global | group
#                                          # console to stdout; WATCHER binaries go to /bin
# MODE memcg:  pod slice memory.max=32M, hog in its container scope
# MODE global: no limits, -m 256, BestEffort-shaped scope with oom_score_adj 1000
# MODE group:  container scope with memory.oom.group=1: a sleeper and a hog die together
# A static /bin/oomwatch given as WATCHER runs in the guest before the hog,
# with the hard threshold from APPEND="oomwatch.hard=100Mi"; its log is printed.
set -euo pipefail
WORK=${WORK:-/tmp/oomwatch-qemu}
ROOT=$WORK/root
QEMU=$ROOT/usr/bin/qemu-system-x86_64
export DEBIAN_FRONTEND=noninteractive

setup() {
    [ -x "$QEMU" ] && ls "$ROOT"/boot/vmlinuz-* >/dev/null 2>&1 && return 0
    mkdir -p "$WORK/debs" "$ROOT"
    cd "$WORK/debs"
    local kpkg
    kpkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
    apt-get download qemu-system-x86 qemu-system-common "$kpkg" >/dev/null
    # qemu's runtime libraries (installing qemu-system-x86 itself would
    # remove the backported qemu-utils on these machines).
    local deps
    deps=$(for d in qemu-system-x86_*.deb qemu-system-common_*.deb; do dpkg-deb -f "$d" Depends; done |
        tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/ //g' | grep -v '^qemu-system-common$' | grep -v '^$' | sort -u)
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $deps busybox-static gcc libc6-dev >/dev/null
    for d in ./*.deb; do dpkg-deb -x "$d" "$ROOT"; done
    "$QEMU" --version | head -1
}

build() {
    local mode=$1; shift
    local dir=$WORK/initramfs-$mode
    rm -rf "$dir" && mkdir -p "$dir"/{bin,sbin,proc,sys,dev,tmp}
    gcc -static -O2 -o "$WORK/hog" "$(dirname "$(readlink -f "$0")")/hog.c"
    cp /bin/busybox "$dir/bin/busybox"
    for a in $("$dir/bin/busybox" --list); do [ -e "$dir/bin/$a" ] || ln -s busybox "$dir/bin/$a"; done
    cp "$WORK/hog" "$dir/bin/hog"
    for w in "$@"; do install -m 0755 "$w" "$dir/bin/$(basename "$w")"; done
    cat > "$dir/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
dmesg -n 1
MODE=memcg; GUEST_ARGS=
for a in $(cat /proc/cmdline); do case "$a" in oomtest=*) MODE=${a#oomtest=};; esac; done
echo "=== guest up: $(uname -r), mode=$MODE"
CID=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
QOS=kubepods-burstable.slice; POD=kubepods-burstable-pod0a1b2c3d_1111_2222_3333_444455556666.slice
[ "$MODE" = global ] && { QOS=kubepods-besteffort.slice; POD=kubepods-besteffort-pod0a1b2c3d_1111_2222_3333_444455556666.slice; }
CG=/sys/fs/cgroup; d=$CG
for part in kubepods.slice $QOS $POD cri-containerd-$CID.scope; do
  echo +memory > $d/cgroup.subtree_control; d=$d/$part; mkdir $d
done
SCOPE=$d; PODDIR=$CG/kubepods.slice/$QOS/$POD
case $MODE in
  memcg) echo 32M > $PODDIR/memory.max; ARGS=100;;
  group) echo 48M > $PODDIR/memory.max; echo 1 > $SCOPE/memory.oom.group; ARGS=100;;
  global) ARGS="0 1000";;
esac
HARD=100Mi
for a in $(cat /proc/cmdline); do case "$a" in oomwatch.hard=*) HARD=${a#oomwatch.hard=};; esac; done
if [ -x /bin/oomwatch ]; then
  mkdir -p /tmp/st
  # oomwatch must outlive the OOM it watches: -1000 (root in the guest may lower it).
  sh -c "echo -1000 > /proc/self/oom_score_adj; exec /bin/oomwatch run --state-dir /tmp/st --listen 127.0.0.1:9789 --eviction-hard $HARD --sample-interval 200ms --node-name qemu-guest" > /tmp/oomwatch.out 2> /tmp/oomwatch.err &
  sleep 3
fi
if [ "$MODE" = group ]; then
  sh -c "echo \$\$ > $SCOPE/cgroup.procs && exec /bin/hog 8 && sleep 600" >/dev/null &
  sh -c "echo \$\$ > $SCOPE/cgroup.procs && exec sleep 600" &
  sleep 1
fi
sh -c "echo \$\$ > $SCOPE/cgroup.procs && exec /bin/hog $ARGS" >/dev/null
echo "=== hog exit status: $?"
sleep 1
for f in $SCOPE $PODDIR $CG/kubepods.slice; do echo "=== memory.events $f"; cat $f/memory.events; done
if [ -x /bin/oomwatch ]; then
  sleep 2
  echo "=== oomwatch log"; cat /tmp/oomwatch.out
  echo "=== oomwatch stderr"; cat /tmp/oomwatch.err
  echo "=== end oomwatch"
fi
echo "=== dmesg"
dmesg
echo "=== kmsg"
timeout 1 cat /dev/kmsg
echo "=== done"
poweroff -f
INIT
    chmod 0755 "$dir/init"
    mknod -m 600 "$dir/dev/console" c 5 1
    (cd "$dir" && find . | sort | busybox cpio -o -H newc 2>/dev/null) | gzip -1 > "$WORK/initramfs-$mode.gz"
}

run() {
    local mode=${1:?mode}; shift
    local mem=512; [ "$mode" = global ] && mem=256
    build "$mode" "$@"
    timeout "${BOOT_TIMEOUT:-300}" "$QEMU" -L /usr/share/seabios -L /usr/share/qemu -nic none -accel tcg \
        -m "$mem" -smp 1 -nographic -no-reboot -kernel "$(ls "$ROOT"/boot/vmlinuz-* | head -1)" \
        -initrd "$WORK/initramfs-$mode.gz" -append "console=ttyS0 quiet panic=-1 oomtest=$mode ${APPEND:-}" < /dev/null
}

case ${1:-} in
    setup) setup;;
    run) shift; run "$@";;
    *) sed -n '2,12p' "$0"; exit 2;;
esac
