#!/bin/busybox sh
# shellcheck shell=dash
# /init of the qemu-tests initramfs (qemu-tests/mkinitramfs.py puts it there):
# PID 1 on a real cgroup v2 kernel. It mounts proc, sys, dev and cgroup2 at
# /sys/fs/cgroup (controllers enabled in the root's subtree_control, as systemd
# does on a device), runs berth's cgroup v2 checks against the bundles in
# /bundles, and powers off.
#
# Output, read by qemu-tests/boot_test.py on the serial console, one line each:
#   BERTH-TEST plan N               how many results follow
#   BERTH-TEST info TEXT            kernel, controllers, berth version
#   BERTH-TEST ok NAME
#   BERTH-TEST fail NAME: REASON    (the check's log precedes it, lines `  | ...`)
#   BERTH-TEST skip NAME: REASON
#   BERTH-TEST done
# The initramfs is the root filesystem, so berth cannot pivot_root here: every
# container goes through its MS_MOVE + chroot fallback.
#
# Kernel command line: berth.soak=N adds the soak check (N container
# lifecycles, the 'slow' test); berth.shell=1 opens a shell after the checks
# instead of powering off (by hand: see qemu-tests/README.md).
export PATH=/bin:/usr/bin

# ---------------------------------------------------------------- the machine

setup() {
    # busybox links its applets to the binary /proc/self/exe names: proc first.
    /bin/busybox mount -t proc proc /proc &&
        /bin/busybox --install -s /bin &&
        mount -t sysfs sysfs /sys &&
        mount -t devtmpfs devtmpfs /dev &&
        mkdir -p /dev/pts /dev/shm &&
        mount -t devpts devpts /dev/pts &&
        mount -t tmpfs tmpfs /run &&
        mount -t tmpfs tmpfs /tmp &&
        mount -t cgroup2 cgroup2 /sys/fs/cgroup || return
    # Kernel messages (the OOM killer's report) would cut result lines in two.
    echo "1 4 1 7" >/proc/sys/kernel/printk
    for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
        echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || return
    done
    # The containers' busybox tree (read-only in every bundle).
    ln /bin/busybox /containers/rootfs/bin/busybox &&
        /bin/busybox --install -s /containers/rootfs/bin
}

power_off() {
    if grep -q 'berth\.shell=1' /proc/cmdline; then
        echo "berth.shell=1: a shell; \`poweroff -f\` ends the machine"
        setsid cttyhack sh
    fi
    /bin/busybox sync
    /bin/busybox poweroff -f
}

# ---------------------------------------------------------------- helpers

die() { echo "$*"; exit 1; }
b() { timeout 60 berth "$@"; }
cgdir() { echo "/sys/fs/cgroup/berth/$1"; }
# cg ID FILE: a file of the container's cgroup.
cg() { cat "$(cgdir "$1")/$2" 2>&1; }
# is WHAT GOT WANT (logs what it saw)
is() { [ "$2" = "$3" ] || die "$1 is \`$2\`, want \`$3\`"; echo "$1: $2"; }
# has WHAT TEXT PATTERN: TEXT matches the shell pattern *PATTERN*.
has() { case $2 in *$3*) ;; *) die "$1 lacks \`$3\`: $2" ;; esac; }
status() { b state "$1" 2>&1 | sed -n 's/.*"status": "\([a-z]*\)".*/\1/p'; }
init_pid() { b state "$1" 2>&1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p'; }
# wait_status ID STATUS: up to 20 s.
wait_status() {
    n=0
    while [ "$(status "$1")" != "$2" ]; do
        n=$((n + 1))
        [ $n -lt 200 ] || die "$1 is still \`$(status "$1")\` after 20 s, want \`$2\`"
        sleep 0.1
    done
}
# keyed FILE KEY: the value of KEY in a flat keyed file (memory.events).
keyed() { sed -n "s/^$2 //p" "$1"; }
gone() { [ ! -e "$(cgdir "$1")" ] || die "$(cgdir "$1") is still there: $(ls "$(cgdir "$1")" | head -n 3 | tr '\n' ' ')"; }
# run_d ID: berth run --detach, the container's output in /tmp/ID.out.
run_d() { b run -d --bundle "/bundles/$1" "$1" >"/tmp/$1.out" 2>&1 || die "berth run -d $1: $(cat "/tmp/$1.out")"; }

# ---------------------------------------------------------------- the checks

# A container runs from the initramfs root (pivot_root refuses it: EINVAL)
# through MS_MOVE + chroot, with and without --no-pivot; run deletes it.
check_run() {
    out=$(b run --bundle /bundles/hello hello 2>&1)
    rc=$?
    is "exit code of \`berth run\`" $rc 3
    has "output" "$out" "hello from berth-qemu"
    out=$(b run --no-pivot --bundle /bundles/hello hello 2>&1)
    rc=$?
    is "exit code of \`berth run --no-pivot\`" $rc 3
    has "output (--no-pivot)" "$out" "hello from berth-qemu"
    gone hello
    [ ! -e /run/berth/hello ] || die "/run/berth/hello is still there"
    # berth's parent cgroup stays after its last container, empty (making
    # and removing it on every start cost a good part of the start time).
    [ -d /sys/fs/cgroup/berth ] && [ -z "$(find /sys/fs/cgroup/berth -mindepth 1 -type d)" ] ||
        die "/sys/fs/cgroup/berth is missing or not empty after its last container"
}

check_memory_limit() {
    run_d mem
    is "memory.max" "$(cg mem memory.max)" 33554432
    is "the init's /proc/PID/cgroup" "$(cat "/proc/$(init_pid mem)/cgroup")" "0::/berth/mem"
}

# A process that allocates past memory.max is OOM-killed; the init stays.
check_memory_oom() {
    b exec mem dd if=/dev/zero of=/dev/null bs=64M count=1 >/tmp/oom.out 2>&1
    rc=$?
    is "exit code of dd bs=64M under a 32 MiB memory.max ($(cat /tmp/oom.out))" $rc 137
    n=$(keyed "$(cgdir mem)/memory.events" oom_kill)
    [ "${n:-0}" -ge 1 ] || die "memory.events has no oom_kill: $(tr '\n' ' ' <"$(cgdir mem)/memory.events")"
    is "status after the OOM kill" "$(status mem)" running
}

check_update_memory() {
    b update --memory 64m mem || die "berth update --memory 64m failed"
    is "memory.max after update" "$(cg mem memory.max)" 67108864
    b exec mem dd if=/dev/zero of=/dev/null bs=48M count=1 >/tmp/dd.out 2>&1
    rc=$?
    is "exit code of dd bs=48M under the new 64 MiB memory.max ($(cat /tmp/dd.out))" $rc 0
}

# berth kill, then berth delete (no --force) of the stopped container.
check_delete_removes_cgroup() {
    b kill mem KILL || die "berth kill mem KILL failed"
    wait_status mem stopped
    b delete mem || die "berth delete mem failed"
    gone mem
}

# The init forks 20 sleeps under pids.max 10: fork fails with EAGAIN.
check_pids() {
    run_d pids
    wait_status pids stopped
    is "pids.max" "$(cg pids pids.max)" 10
    n=$(keyed "$(cgdir pids)/pids.events" max)
    [ "${n:-0}" -ge 1 ] || die "pids.events counts no refused fork: $(cg pids pids.events)"
    grep -q "can't fork: Resource temporarily unavailable" /tmp/pids.out ||
        die "no EAGAIN from fork in the output: $(cat /tmp/pids.out)"
    ! grep -q forked-20 /tmp/pids.out || die "all 20 forks succeeded"
    b delete pids || die "berth delete pids failed"
    gone pids
}

check_cpu() {
    run_d cpu
    is "cpu.max" "$(cg cpu cpu.max)" "50000 100000"
    # shares 512 -> weight 1 + (512 - 2) * 9999 / 262142, as runc converts
    is "cpu.weight" "$(cg cpu cpu.weight)" 20
}

check_cpuset() {
    is "cpuset.cpus" "$(cg cpu cpuset.cpus)" 0
    is "cpuset.mems" "$(cg cpu cpuset.mems)" 0
    is "cpuset.cpus.effective" "$(cg cpu cpuset.cpus.effective)" 0
}

check_io_weight() {
    # blkio weight 500 -> 1 + (500 - 10) * 9999 / 990
    is "io.weight" "$(cg cpu io.weight)" "default 4950"
}

check_update_cpu() {
    b update --cpu-quota 20000 --cpu-shares 1024 --pids-limit 5 cpu || die "berth update failed"
    is "cpu.max after update" "$(cg cpu cpu.max)" "20000 100000"
    is "cpu.weight after update" "$(cg cpu cpu.weight)" 39
    is "pids.max after update" "$(cg cpu pids.max)" 5
    b delete -f cpu || die "berth delete -f cpu failed"
    gone cpu
}

check_pause_resume() {
    run_d freeze
    b pause freeze || die "berth pause failed"
    is "status after pause" "$(status freeze)" paused
    is "cgroup.freeze" "$(cg freeze cgroup.freeze)" 1
    is "frozen in cgroup.events" "$(keyed "$(cgdir freeze)/cgroup.events" frozen)" 1
    b resume freeze || die "berth resume failed"
    is "status after resume" "$(status freeze)" running
    is "frozen in cgroup.events after resume" "$(keyed "$(cgdir freeze)/cgroup.events" frozen)" 0
}

check_delete_paused() {
    pid=$(init_pid freeze)
    b pause freeze || die "berth pause failed"
    b delete -f freeze || die "berth delete -f of a paused container failed"
    gone freeze
    [ ! -d "/proc/$pid" ] || die "the init ($pid) survived delete -f"
}

# The eBPF device program: the spec's deny-all, an allow of `c 1:11 w`, and
# berth's defaults. The denied opens must fail with EPERM (the program), not
# ENXIO (no driver), which is what the same nodes give outside the container.
check_devices() {
    out=$(b run --bundle /bundles/dev dev 2>&1) || die "berth run dev failed: $out"
    echo "$out"
    has "output" "$out" "null: written"
    has "output" "$out" "zero: read 4"
    has "output" "$out" "c 1 11 write: allowed"
    has "output" "$out" "mknod b 7 0: made"
    has "output" "$out" "b 7 0 read: head: /dev/loopx: Operation not permitted"
    has "output" "$out" "mknod c 4 1: made"
    has "output" "$out" "c 4 1 open: head: /dev/tty1x: Operation not permitted"
    mknod /tmp/loopx b 7 0 && mknod /tmp/tty1x c 4 1 || die "mknod on the host failed"
    host=$(head -c 1 /tmp/loopx 2>&1 >/dev/null; head -c 0 /tmp/tty1x 2>&1 >/dev/null)
    echo "outside any container: ${host:-both open}"
    case $host in *"not permitted"*) die "outside any container too: $host" ;; esac
}

# With a cgroup namespace, /sys/fs/cgroup is a cgroup2 mount whose root is
# the container's own cgroup.
check_cgroupns() {
    out=$(b run --bundle /bundles/cgns cgns 2>&1) || die "berth run cgns failed: $out"
    echo "$out"
    has "/proc/self/cgroup" "$out" "self: 0::/
"
    echo "$out" | grep -q '^mount: [0-9]* [0-9]* [0-9:]* / /sys/fs/cgroup .* - cgroup2 ' ||
        die "/sys/fs/cgroup is not a cgroup2 mount of the namespace root: $(echo "$out" | grep '^mount:')"
    has "memory.max seen inside" "$out" "memory.max: 50331648"
    has "the root's entries" "$out" "cgroup.procs"
    case $out in *"entries: "*berth*) die "the container sees berth's parent cgroup" ;; esac
}

# Without one, it is a bind of the container's cgroup directory.
check_cgroup_mount_no_cgroupns() {
    out=$(b run --bundle /bundles/nocgns nocgns 2>&1) || die "berth run nocgns failed: $out"
    echo "$out"
    has "/proc/self/cgroup" "$out" "self: 0::/berth/nocgns"
    echo "$out" | grep -q '^mount: [0-9]* [0-9]* [0-9:]* /berth/nocgns /sys/fs/cgroup .* - cgroup2 ' ||
        die "/sys/fs/cgroup is not a bind of /berth/nocgns: $(echo "$out" | grep '^mount:')"
    has "memory.max seen inside" "$out" "memory.max: 41943040"
}

# berth.soak=N: N rounds of two containers run at once (each one's create
# races the other's delete over berth's parent cgroup) and a full lifecycle
# (create, start, pause, resume, kill, delete).
check_soak() {
    i=0
    while [ $i -lt "$soak" ]; do
        i=$((i + 1))
        b run --bundle /bundles/soak "soak-$i" >"/tmp/soak-a.out" 2>&1 &
        a=$!
        b run --bundle /bundles/soak "soak-p$i" >"/tmp/soak-b.out" 2>&1 ||
            die "round $i: berth run: $(cat /tmp/soak-b.out)"
        wait $a || die "round $i: berth run: $(cat /tmp/soak-a.out)"
        for f in /tmp/soak-a.out /tmp/soak-b.out; do
            [ "$(cat $f)" = "16777216 16 " ] || die "round $i: memory.max and pids.max inside: $(cat $f)"
        done
        b create --bundle /bundles/freeze "soak-c$i" || die "round $i: create"
        b start "soak-c$i" && b pause "soak-c$i" && b resume "soak-c$i" || die "round $i: start/pause/resume"
        b kill "soak-c$i" KILL && wait_status "soak-c$i" stopped && b delete "soak-c$i" || die "round $i: kill/delete"
        gone "soak-$i"
        gone "soak-p$i"
        gone "soak-c$i"
    done
    echo "$soak rounds"
}

# After every container is deleted, no berth cgroup is left (but the empty
# parent, which stays).
check_no_leftovers() {
    left=$(b list -q 2>&1)
    [ -z "$left" ] || die "berth list still shows: $left"
    others=$(find /sys/fs/cgroup -mindepth 1 -type d | grep -vx /sys/fs/cgroup/berth)
    [ -z "$others" ] || die "cgroups left: $(echo "$others" | tr '\n' ' ')"
}

# ---------------------------------------------------------------- main

if ! out=$(setup 2>&1); then
    echo "BERTH-TEST plan 1"
    echo "BERTH-TEST fail setup: $out"
    echo "BERTH-TEST done"
    power_off
fi

checks="run memory-limit memory-oom update-memory delete-removes-cgroup pids cpu cpuset io-weight update-cpu
        pause-resume delete-paused devices cgroupns cgroup-mount-no-cgroupns"
soak=$(sed -n 's/.*berth\.soak=\([0-9]*\).*/\1/p' /proc/cmdline)
[ -n "$soak" ] && checks="$checks soak"
checks="$checks no-leftovers"
# shellcheck disable=SC2086  # one word per check
echo "BERTH-TEST plan $(echo $checks | wc -w)"
echo "BERTH-TEST info kernel $(uname -r) $(uname -m), $(nproc) cpus, cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "BERTH-TEST info $(berth version 2>&1 | head -n 1)"

for name in $checks; do
    dmesg -c >/dev/null
    ("check_$(echo "$name" | tr - _)") >/tmp/check.log 2>&1
    rc=$?
    sed 's/^/  | /' /tmp/check.log
    if [ $rc = 0 ]; then
        echo "BERTH-TEST ok $name"
    elif [ $rc = 77 ]; then
        echo "BERTH-TEST skip $name: $(tail -n 1 /tmp/check.log)"
    else
        echo "BERTH-TEST fail $name: $(tail -n 1 /tmp/check.log)"
        dmesg | tail -n 20 | sed 's/^/  | dmesg: /'
    fi
done
echo "BERTH-TEST done"
power_off
