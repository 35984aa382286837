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
# instead of powering off (by hand: see qemu-tests/README.md);
# berth.cgroups=hybrid mounts the layout of a systemd-era vendor image
# instead (a tmpfs at /sys/fs/cgroup, one v1 hierarchy per controller of
# /proc/cgroups, cpu,cpuacct and net_cls,net_prio together, cgroup2 at
# /sys/fs/cgroup/unified) and runs each check's v1 variant where it has one
# (check_NAME_v1: the same behaviour read from the v1 files).
export PATH=/bin:/usr/bin
# The cgroup layout (set again once /proc is mounted).
mode=v2
cgroup_mode() { if grep -q 'berth\.cgroups=hybrid' /proc/cmdline; then echo hybrid; else echo v2; fi; }

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
        mount -t tmpfs tmpfs /tmp || return
    # Kernel messages (the OOM killer's report) would cut result lines in two.
    echo "1 4 1 7" >/proc/sys/kernel/printk
    if [ "$(cgroup_mode)" = hybrid ]; then
        mount_hybrid || return
    else
        mount -t cgroup2 cgroup2 /sys/fs/cgroup || return
        for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
            echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || return
        done
    fi
    # The containers' busybox tree (read-only in every bundle).
    ln /bin/busybox /containers/rootfs/bin/busybox &&
        /bin/busybox --install -s /containers/rootfs/bin
}

# The hybrid layout, as systemd mounts it on a vendor image: the enabled
# controllers of /proc/cgroups each in a v1 hierarchy (two pairs share one,
# with links for their names), cgroup2 without controllers at unified.
mount_hybrid() {
    mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup || return
    # shellcheck disable=SC2013 # one controller name a line
    for c in $(awk '!/^#/ && $4 == 1 { print $1 }' /proc/cgroups); do
        case $c in
            cpu | cpuacct) dir=cpu,cpuacct ;;
            net_cls | net_prio) dir=net_cls,net_prio ;;
            *) dir=$c ;;
        esac
        if [ ! -d "/sys/fs/cgroup/$dir" ]; then
            mkdir "/sys/fs/cgroup/$dir" && mount -t cgroup -o "$dir" cgroup "/sys/fs/cgroup/$dir" || return
        fi
        [ "$dir" = "$c" ] || ln -s "$dir" "/sys/fs/cgroup/$c" || return
    done
    mkdir /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
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
# cgdir ID: the container's cgroup2 directory (hybrid: in the unified tree).
cgdir() { if [ $mode = hybrid ]; then echo "/sys/fs/cgroup/unified/berth/$1"; else echo "/sys/fs/cgroup/berth/$1"; fi; }
# cg ID FILE: a file of the container's cgroup.
cg() { cat "$(cgdir "$1")/$2" 2>&1; }
# cgfile CONTROLLER ID FILE: where a file of the container's cgroup is
# (hybrid: in the controller's v1 hierarchy); cgread CONTROLLER ID FILE reads it.
cgfile() { if [ $mode = hybrid ]; then echo "/sys/fs/cgroup/$1/berth/$2/$3"; else echo "$(cgdir "$2")/$3"; fi; }
cgread() { cat "$(cgfile "$@")" 2>&1; }
# mem_limit ID: the container's memory limit (v1: memory.limit_in_bytes).
mem_limit() { if [ $mode = hybrid ]; then cgread memory "$1" memory.limit_in_bytes; else cg "$1" memory.max; fi; }
# parents: berth's parent cgroups (hybrid: one in each hierarchy it uses).
parents() { if [ $mode = hybrid ]; then ls -d /sys/fs/cgroup/*/berth; else echo /sys/fs/cgroup/berth; fi; }
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
gone() {
    for p in $(parents); do
        [ ! -e "$p/$1" ] || die "$p/$1 is still there: $(ls "$p/$1" | head -n 3 | tr '\n' ' ')"
    done
}
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
    [ -n "$(parents)" ] || die "no berth parent cgroup after its last container"
    for p in $(parents); do
        [ -d "$p" ] && [ -z "$(find "$p" -mindepth 1 -type d)" ] || die "$p is missing or not empty after its last container"
    done
}

check_memory_limit() {
    run_d mem
    is "memory.max" "$(cg mem memory.max)" 33554432
    is "the init's /proc/PID/cgroup" "$(cat "/proc/$(init_pid mem)/cgroup")" "0::/berth/mem"
}

# A process that allocates past memory.max is OOM-killed; the init stays.
# (v1: the count is in memory.oom_control.)
check_memory_oom() {
    b exec mem dd if=/dev/zero of=/dev/null bs=64M count=1 >/tmp/oom.out 2>&1
    rc=$?
    is "exit code of dd bs=64M under a 32 MiB limit ($(cat /tmp/oom.out))" $rc 137
    f=$(cgfile memory mem memory.events)
    [ $mode = v2 ] || f=$(cgfile memory mem memory.oom_control)
    n=$(keyed "$f" oom_kill)
    [ "${n:-0}" -ge 1 ] || die "$f has no oom_kill: $(tr '\n' ' ' <"$f")"
    is "status after the OOM kill" "$(status mem)" running
}

check_update_memory() {
    b update --memory 64m mem || die "berth update --memory 64m failed"
    is "the memory limit after update" "$(mem_limit mem)" 67108864
    b exec mem dd if=/dev/zero of=/dev/null bs=48M count=1 >/tmp/dd.out 2>&1
    rc=$?
    is "exit code of dd bs=48M under the new 64 MiB limit ($(cat /tmp/dd.out))" $rc 0
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
    is "pids.max" "$(cgread pids pids pids.max)" 10
    n=$(keyed "$(cgfile pids pids pids.events)" max)
    [ "${n:-0}" -ge 1 ] || die "pids.events counts no refused fork: $(cgread pids pids pids.events)"
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

# (The time it takes is printed: a hybrid host without cgroup.kill once
# waited 5 s here for a cgroup2 freeze of tasks the v1 freezer held.)
check_delete_paused() {
    pid=$(init_pid freeze)
    b pause freeze || die "berth pause failed"
    t0=$(cut -d' ' -f1 /proc/uptime)
    b delete -f freeze || die "berth delete -f of a paused container failed"
    echo "delete -f took $(awk -v t0="$t0" '{ printf "%.1f", $1 - t0 }' /proc/uptime) s"
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

# Without one, it is a bind of the container's cgroup directory (v1: the
# tmpfs holds a bind of it in every hierarchy).
check_cgroup_mount_no_cgroupns() {
    out=$(b run --bundle /bundles/nocgns nocgns 2>&1) || die "berth run nocgns failed: $out"
    echo "$out"
    if [ $mode = hybrid ]; then
        set -- ":memory:/berth/nocgns" v1mount /sys/fs/cgroup/memory cgroup "memory.limit_in_bytes: 41943040"
    else
        set -- "self: 0::/berth/nocgns" mount /sys/fs/cgroup cgroup2 "memory.max: 41943040"
    fi
    has "/proc/self/cgroup" "$out" "$1"
    echo "$out" | grep -q "^$2: [0-9]* [0-9]* [0-9:]* /berth/nocgns $3 .* - $4 " ||
        die "$3 is not a bind of /berth/nocgns: $(echo "$out" | grep "^$2:")"
    has "the memory limit seen inside" "$out" "$5"
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
    if [ $mode = hybrid ]; then
        others=$(find /sys/fs/cgroup -mindepth 3 -type d -path '*/berth/*')
    else
        others=$(find /sys/fs/cgroup -mindepth 1 -type d | grep -vx /sys/fs/cgroup/berth)
    fi
    [ -z "$others" ] || die "cgroups left: $(echo "$others" | tr '\n' ' ')"
}

# ---------------------------------------------------------------- the v1 variants

# berth.cgroups=hybrid: the same behaviours, read from the v1 hierarchies
# (berth also puts each container's processes in the unified tree).

check_memory_limit_v1() {
    run_d mem
    is "memory.limit_in_bytes" "$(mem_limit mem)" 33554432
    own=$(cat "/proc/$(init_pid mem)/cgroup")
    echo "the init's /proc/PID/cgroup: $(echo "$own" | tr '\n' ' ')"
    for h in memory pids freezer devices cpu,cpuacct cpuset ""; do
        echo "$own" | grep -q "^[0-9]*:$h:/berth/mem\$" || die "the init is not in /berth/mem of \`${h:-unified}\`"
    done
}

check_cpu_v1() {
    run_d cpu1
    is "cpu.cfs_quota_us" "$(cgread cpu cpu1 cpu.cfs_quota_us)" 50000
    is "cpu.cfs_period_us" "$(cgread cpu cpu1 cpu.cfs_period_us)" 100000
    is "cpu.shares" "$(cgread cpu cpu1 cpu.shares)" 512
}

check_cpuset_v1() {
    is "cpuset.cpus" "$(cgread cpuset cpu1 cpuset.cpus)" 0
    is "cpuset.mems" "$(cgread cpuset cpu1 cpuset.mems)" 0
    is "cpuset.effective_cpus" "$(cgread cpuset cpu1 cpuset.effective_cpus)" 0
}

# v1 has a blkio weight file only with CFQ (gone since 4.19) or BFQ loaded;
# without one, berth refuses the weight (as runc does) and leaves nothing.
check_io_weight_v1() {
    w=/sys/fs/cgroup/blkio
    if [ -f $w/blkio.weight ] || [ -f $w/blkio.bfq.weight ]; then
        f=blkio.weight
        [ -f $w/$f ] || f=blkio.bfq.weight
        run_d io
        has "$f" "$(cgread blkio io $f)" 500
        b delete -f io || die "berth delete -f io failed"
    else
        out=$(b run -d --bundle /bundles/io io 2>&1) && die "berth ran a blkio weight this kernel has no file for: $out"
        echo "no blkio weight file (no CFQ, BFQ not loaded); berth: $out"
        has "berth's error" "$out" "blkio.weight"
        ! b list -q 2>&1 | grep -qx io || die "berth list shows io after the refusal"
        [ ! -e /run/berth/io ] || die "/run/berth/io is still there after the refusal"
    fi
    gone io
}

check_update_cpu_v1() {
    b update --cpu-quota 20000 --cpu-shares 1024 --pids-limit 5 cpu1 || die "berth update failed"
    is "cpu.cfs_quota_us after update" "$(cgread cpu cpu1 cpu.cfs_quota_us)" 20000
    is "cpu.shares after update" "$(cgread cpu cpu1 cpu.shares)" 1024
    is "pids.max after update" "$(cgread pids cpu1 pids.max)" 5
    b delete -f cpu1 || die "berth delete -f cpu1 failed"
    gone cpu1
}

check_pause_resume_v1() {
    run_d freeze
    b pause freeze || die "berth pause failed"
    is "status after pause" "$(status freeze)" paused
    is "freezer.state" "$(cgread freezer freeze freezer.state)" FROZEN
    b resume freeze || die "berth resume failed"
    is "status after resume" "$(status freeze)" running
    is "freezer.state after resume" "$(cgread freezer freeze freezer.state)" THAWED
}

# With a cgroup namespace: a tmpfs at /sys/fs/cgroup holding each v1
# hierarchy's own cgroup, every path in /proc/self/cgroup the namespace's /.
check_cgroupns_v1() {
    out=$(b run --bundle /bundles/cgns cgns 2>&1) || die "berth run cgns failed: $out"
    echo "$out"
    echo "$out" | grep -q '^mount: [0-9]* [0-9]* [0-9:]* / /sys/fs/cgroup .* - tmpfs ' ||
        die "/sys/fs/cgroup is not a tmpfs: $(echo "$out" | grep '^mount:')"
    echo "$out" | grep -q '^v1mount: .* /sys/fs/cgroup/memory .* - cgroup ' || die "no memory hierarchy inside"
    has "memory.limit_in_bytes seen inside" "$out" "memory.limit_in_bytes: 50331648"
    case $out in *:/berth*) die "/proc/self/cgroup names berth's cgroups inside the namespace" ;; esac
    has "/proc/self/cgroup" "$out" ":memory:/"
}

# ---------------------------------------------------------------- main

if ! out=$(setup 2>&1); then
    echo "BERTH-TEST plan 1"
    echo "BERTH-TEST fail setup: $out"
    echo "BERTH-TEST done"
    power_off
fi
mode=$(cgroup_mode)

checks="run memory-limit memory-oom update-memory delete-removes-cgroup pids cpu cpuset io-weight update-cpu
        pause-resume delete-paused devices cgroupns cgroup-mount-no-cgroupns"
soak=$(sed -n 's/.*berth\.soak=\([0-9]*\).*/\1/p' /proc/cmdline)
[ -n "$soak" ] && [ $mode = v2 ] && checks="$checks soak"
checks="$checks no-leftovers"
# shellcheck disable=SC2086  # one word per check
echo "BERTH-TEST plan $(echo $checks | wc -w)"
if [ $mode = hybrid ]; then
    echo "BERTH-TEST info kernel $(uname -r) $(uname -m), $(nproc) cpus, hybrid: v1 $(cd /sys/fs/cgroup && for d in *; do [ "$d" = unified ] || printf '%s ' "$d"; done)"
else
    echo "BERTH-TEST info kernel $(uname -r) $(uname -m), $(nproc) cpus, cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
fi
echo "BERTH-TEST info $(berth version 2>&1 | head -n 1)"

for name in $checks; do
    dmesg -c >/dev/null
    fn=check_$(echo "$name" | tr - _)
    [ $mode = hybrid ] && type "${fn}_v1" >/dev/null 2>&1 && fn=${fn}_v1
    ("$fn") >/tmp/check.log 2>&1
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
