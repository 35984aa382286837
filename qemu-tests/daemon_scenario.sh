#!/bin/busybox sh
# shellcheck shell=dash
# The /init of the daemon scenario test (qemu-tests/daemon_scenario_test.py):
# berth itself becomes PID 1. This script only does what must happen before
# it: mount /proc, /sys and /dev, load the modules (virtio disk, ext4,
# overlay, softdog), mount the state disk on /mnt/disk, start the test's
# console shell in the background, then `exec berth daemon --init` with the
# device root on the disk and the softdog as its watchdog.
#
#   /init                 the boot (PID 1, then exec'ed into berth)
#   /init console         the test's console shell (below)
#
# The state disk, made by the test: /berth is the device root (the image
# store, policy.json, and everything the daemon keeps), /manifests the
# update manifests the test applies, /test/failpoints (when present) the
# BERTH_FAILPOINTS of the next boot's daemon only: this script removes it
# before the daemon starts, so a hung daemon's watchdog reset boots a
# healthy one. /test/boots counts the boots.
#
# The console shell reads one command a line from the serial console,
# `ID COMMAND...`, and answers `BERTH-BEGIN ID`, what the command printed,
# `BERTH-END ID STATUS`. The helpers below read everything from the kernel
# (cgroup files, /proc, the volume on the disk, the app's http answer from
# inside its network namespace): the test does not take berth's word for
# what runs.
export PATH=/bin:/usr/bin:/sbin:/usr/sbin
DISK=/mnt/disk
STORE=$DISK/berth
# berth's parent cgroup. With berth.cgroups=hybrid on the command line the
# daemon mounts v1 hierarchies and the unified tree, where berth puts every
# container's processes too.
CG=/sys/fs/cgroup/berth
case " $(cat /proc/cmdline 2>/dev/null) " in *" berth.cgroups=hybrid "*) CG=/sys/fs/cgroup/unified/berth ;; esac
WATCHDOG_TIMEOUT=${WATCHDOG_TIMEOUT:-10}

uptime_s() { cut -d' ' -f1 /proc/uptime; }

boot() {
    /bin/busybox mount -t proc proc /proc
    /bin/busybox mount -t sysfs sysfs /sys
    /bin/busybox mount -t devtmpfs devtmpfs /dev
    /bin/busybox --install -s /bin
    # Only KERN_CRIT and above on the console (the softdog's "Initiating
    # system reboot" is one): other kernel messages would cut the shell's
    # lines in two.
    echo "3 4 1 7" >/proc/sys/kernel/printk
    echo "BERTH-BOOT uptime $(uptime_s)"
    while read -r m; do
        insmod "/modules/$m" || echo "BERTH-FACT insmod-failed $m"
    done </modules/load-order
    mkdir -p $DISK
    if ! mount -t ext4 /dev/vda $DISK; then
        echo "BERTH-FACT no-state-disk"
        exec sh
    fi
    mkdir -p $DISK/test
    boots=$(cat $DISK/test/boots 2>/dev/null || echo 0)
    boots=$((boots + 1))
    echo "$boots" >$DISK/test/boots
    failpoints=
    if [ -f $DISK/test/failpoints ]; then
        failpoints=$(cat $DISK/test/failpoints)
        rm $DISK/test/failpoints
    fi
    sync
    echo "BERTH-FACT boot $boots failpoints ${failpoints:-none} uptime $(uptime_s)"
    # The test's shell: its own session, the console as its terminal.
    setsid /bin/busybox sh /init console </dev/ttyAMA0 >/dev/ttyAMA0 2>&1 &
    if [ -n "$failpoints" ]; then export BERTH_FAILPOINTS="$failpoints"; fi
    exec /usr/bin/berth daemon --init --store $STORE --watchdog /dev/watchdog --watchdog-timeout "$WATCHDOG_TIMEOUT"
}

# ---------------------------------------------------------------- console helpers

# procs ID: the pids in container ID's cgroup (its runtime id, NAME.rVERSION).
procs() { cat "$CG/$1/cgroup.procs" 2>/dev/null; }

# main_pid ID: the container's main process: the one in its cgroup whose
# parent is not.
main_pid() {
    all=" $(procs "$1" | tr '\n' ' ') "
    for p in $all; do
        pp=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
        case $all in *" $pp "*) ;; *) echo "$p"; return 0 ;; esac
    done
    return 1
}

# http ID: the page the container's httpd serves on 127.0.0.1:8080 in its
# own network namespace, asked for from there (busybox nc: this busybox's
# wget crashes with -q or -T); fails unless the answer is 200.
http() {
    p=$(main_pid "$1") || return 1
    out=$(printf 'GET /index.html HTTP/1.0\r\n\r\n' | timeout 5 nsenter -t "$p" -n nc 127.0.0.1 8080 2>/dev/null) || return 1
    case $out in "HTTP/1."?" 200 "*) ;; *) return 1 ;; esac
    printf '%s\n' "$out" | tail -n 1
}

# containers: the container cgroups under berth's parent, one line.
containers() { (cd $CG 2>/dev/null && for d in *; do [ -d "$d" ] && printf '%s ' "$d"; done); echo; }

# up VERSION: db.rVERSION and web.rVERSION run (a main process each) and
# web answers `web VERSION` over http.
up() {
    main_pid "db.r$1" >/dev/null && main_pid "web.r$1" >/dev/null && [ "$(http "web.r$1")" = "web $1" ]
}

# wait_for SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds;
# prints `after S s, uptime U` (S from the call) or fails with `timed out`.
wait_for() {
    limit=$1
    shift
    t0=$(uptime_s)
    while :; do
        if "$@" >/dev/null 2>&1; then
            t=$(uptime_s)
            echo "after $(awk "BEGIN { printf \"%.1f\", $t - $t0 }") s, uptime $t"
            return 0
        fi
        if [ "$(awk "BEGIN { print ($(uptime_s) - $t0 > $limit) }")" = 1 ]; then
            echo "timed out after $limit s"
            return 1
        fi
        sleep 0.2
    done
}

# changed ID PID: container ID has a main process other than PID, and it is
# a new container's shell (not what is left of the old one while it dies).
changed() { p=$(main_pid "$1") && [ "$p" != "$2" ] && [ "$(cat "/proc/$p/comm")" = sh ]; }

# serves ID TEXT: the container's page is TEXT.
serves() { [ "$(http "$1")" = "$2" ]; }

# fails ID: the container's page cannot be fetched (404 or no answer).
fails() { ! http "$1" >/dev/null; }

# daemon_up: berth is PID 1 and its control socket is there.
daemon_up() { [ "$(cat /proc/1/comm)" = berth ] && [ -S /run/berth/daemon.sock ]; }

# volume FILE: a file of the `data` volume, on the state disk.
volume() { cat "$STORE/volumes/data/$1"; }

console() {
    stty -echo 2>/dev/null
    echo "BERTH-SHELL ready uptime $(uptime_s)"
    while IFS= read -r line; do
        id=${line%% *}
        cmd=${line#* }
        echo "BERTH-BEGIN $id"
        (eval "$cmd") </dev/null 2>&1
        echo "BERTH-END $id $?"
    done
}

case ${1:-boot} in
    boot) boot ;;
    console) console ;;
    *) echo "daemon_scenario.sh: unknown phase \`$1\`"; exit 2 ;;
esac
