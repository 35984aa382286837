#!/bin/sh
# podman as a real client of berth (issue 3, "How it is checked"): builds a
# busybox image locally (no network: a busybox-static rootfs imported with
# `podman import`), then drives `podman --runtime <berth>` through run
# (exit codes, -i, -t, --memory 512k, --pids-limit, --cap-drop ALL,
# --read-only, --user, --network none), exec, stop, kill, pause/unpause.
# podman gets its own storage (vfs driver): a temporary directory, or
# $BERTH_PODMAN_STORAGE (meson gives one in the build dir) where the image is
# imported once and shared by the cases; nothing goes to the host's store.
#
#   podman_test.sh --list             the case names (one behaviour each)
#   podman_test.sh BERTH CASE         runs one case
#   podman_test.sh BERTH              runs every case
# Env: PODMAN_TEST_RUNTIME=crun runs the same checks against another runtime.
set -u
. "$(dirname "$0")/cases.sh"
berth=${1:?usage: podman_test.sh /abs/path/to/berth [CASE] | podman_test.sh --list}
case_name=$2
case $berth in /*) ;; *) berth=$(cd "$(dirname "$berth")" && pwd)/$(basename "$berth") ;; esac
runtime=${PODMAN_TEST_RUNTIME:-$berth}
case $runtime in /*) ;; *) runtime=$(command -v "$runtime") ;; esac

command -v podman >/dev/null 2>&1 || { echo "skipped: podman is not installed"; exit 77; }
command -v conmon >/dev/null 2>&1 || [ -x /usr/libexec/podman/conmon ] || { echo "skipped: conmon is not installed"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || [ -x /bin/busybox ] || { echo "skipped: busybox-static is not installed"; exit 77; }
busybox=${busybox:-/bin/busybox}

tmp=$(mktemp -d /tmp/berth-podman.XXXXXX)
store=${BERTH_PODMAN_STORAGE:-$tmp/store}
mkdir -p "$store"
# podman wants a runroot of at most 50 characters: one per storage, in /tmp
# (removed after each case: podman starts afresh, as after a reboot).
runroot=$tmp/run
[ -n "${BERTH_PODMAN_STORAGE:-}" ] && runroot=/tmp/berth-podman-run.$(echo "$store" | cksum | cut -d' ' -f1)
P="podman --root $store/storage --runroot $runroot --tmpdir $store/tmpdir --storage-driver vfs --cgroup-manager cgroupfs --events-backend file --runtime $runtime"
img=localhost/berth-busybox:test
# This host refuses podman's default RLIMIT_NPROC (above the hard limit): pass a smaller one.
nproc=4096:4096
UL="--ulimit nofile=1024:1024 --ulimit nproc=$nproc"
RUN="$P run --rm --network none $UL"

# podman's cgroupfs manager puts conmon in libpod_parent/conmon; remove it
# afterwards unless it was there before.
had_libpod_cg=$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null | head -1)
cleanup() {
    $P rm -af -t 0 >/dev/null 2>&1
    if [ -z "${BERTH_PODMAN_STORAGE:-}" ]; then
        $P rmi -af >/dev/null 2>&1
        # vfs leaves no mounts; the shm and run dirs may be mounted by podman
        grep " $store" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
    fi
    [ -n "${BERTH_PODMAN_STORAGE:-}" ] && rm -rf "$runroot"
    if [ -z "$had_libpod_cg" ]; then
        for d in /sys/fs/cgroup/*/libpod_parent/conmon /sys/fs/cgroup/*/libpod_parent; do rmdir "$d" 2>/dev/null; done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

failed=0
ok() { echo "PASS: $1"; }
bad() { failed=1; echo "FAIL: $1"; [ -s "$tmp/err" ] && sed 's/^/    /' "$tmp/err" | head -20; }
# check NAME WANT_EXIT WANT_OUTPUT_REGEX CMD... : runs CMD, compares exit and output.
check() {
    name=$1 want=$2 pat=$3; shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    out=$(tr -d '\r' <"$tmp/out")
    if [ "$got" != "$want" ]; then
        bad "$name: exit $got, want $want (output: $(echo "$out" | head -3))"
    elif [ -n "$pat" ] && ! printf '%s\n' "$out" | grep -Eq -- "$pat"; then
        bad "$name: output $(echo "$out" | head -3 | tr '\n' '|') does not match /$pat/"
    else
        ok "$name"
    fi
}

# ---- the image (imported once per storage, under a lock) ----------------------
image() {
    root=$tmp/rootfs
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/root"
    cp "$busybox" "$root/bin/busybox"
    for app in $("$root/bin/busybox" --list); do [ -e "$root/bin/$app" ] || ln -s busybox "$root/bin/$app"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\nuser:x:1000:\n' >"$root/etc/group"
    tar -C "$root" -cf "$tmp/rootfs.tar" . || { echo "cannot tar the rootfs"; exit 1; }
    if ! $P import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' "$tmp/rootfs.tar" $img >"$tmp/err" 2>&1; then
        cat "$tmp/err"; echo "FAIL: podman import of the busybox rootfs"; exit 1
    fi
}
exec 9>"$store/.lock"
flock 9
$P image exists $img 2>/dev/null || image
flock -u 9
echo "runtime: $runtime"

# daemon NAME CMD...: a detached container NAME, or the case fails.
daemon() {
    name=$1; shift
    $P run -d --name "$name" --network none $UL $img "$@" >"$tmp/out" 2>"$tmp/err" || { bad "run -d $name"; exit 1; }
}

# ---- run ---------------------------------------------------------------------
t_run_exit_codes() {
    check "run true exits 0" 0 "" $RUN $img true
    check "run passes the exit code (3)" 3 "" $RUN $img sh -c 'exit 3'
    check "run of a missing command fails" 127 "" $RUN $img /no/such/binary
}
t_run_output_and_stdin() {
    check "run output reaches podman" 0 "^hello from berth$" $RUN $img echo hello from berth
    check "-i: stdin reaches the container" 0 "^piped-in$" sh -c "echo piped-in | $RUN -i $img cat"
}
t_run_tty() {
    check "-t: a terminal through the console socket" 0 "^/dev/pts/[0-9]+" \
        script -qec "$RUN -t $img sh -c 'tty; test -t 0 && test -t 1'" /dev/null
    check "-t: the exit code passes through" 5 "" script -qec "$RUN -t $img sh -c 'exit 5'" /dev/null
}
t_run_memory_limit() {
    check "--memory 512k starts and is the limit" 0 "^524288$" \
        $RUN --memory 512k $img cat /sys/fs/cgroup/memory/memory.limit_in_bytes
}
t_run_pids_limit() {
    check "--pids-limit is the limit" 0 "^8$" $RUN --pids-limit 8 $img cat /sys/fs/cgroup/pids/pids.max
    check "--pids-limit stops forks" 0 "fork|Resource temporarily unavailable" \
        sh -c "$RUN --pids-limit 8 $img sh -c 'i=0; while [ \$i -lt 12 ]; do sleep 2 & i=\$((i+1)); done; wait' 2>&1; true"
}
t_run_cap_drop_all() {
    check "--cap-drop ALL: no capabilities" 0 "CapEff:[[:space:]]+0000000000000000" $RUN --cap-drop ALL $img grep CapEff /proc/self/status
    check "--cap-drop ALL: bounding set empty" 0 "CapBnd:[[:space:]]+0000000000000000" $RUN --cap-drop ALL $img grep CapBnd /proc/self/status
    check "default caps: not all of them" 0 "CapEff:" $RUN $img grep CapEff /proc/self/status
}
t_run_read_only() {
    check "--read-only: / is not writable" 0 "^refused$" $RUN --read-only $img sh -c 'touch /x 2>/dev/null && echo written || echo refused'
    check "--read-only: /tmp stays writable" 0 "^ok$" $RUN --read-only $img sh -c 'touch /tmp/x && echo ok'
}
t_run_user() {
    check "--user 1000:1000" 0 "^1000 1000$" $RUN --user 1000:1000 $img sh -c 'echo $(id -u) $(id -g)'
    check "--user 1000:1000 cannot write /root" 0 "^refused$" $RUN --user 1000:1000 $img sh -c 'touch /root/x 2>/dev/null && echo written || echo refused'
}
t_run_namespaces() {
    check "--network none: only lo" 0 "^lo$" $RUN $img ls /sys/class/net
    check "hostname is the container's" 0 "^berthhost$" $RUN --hostname berthhost $img hostname
    check "pid 1 is the command" 0 "^1$" $RUN $img sh -c 'echo $$'
}

# ---- a long-running container: exec, pause, stop, kill -----------------------
t_exec() {
    daemon c1 sleep 1000
    check "exec echo" 0 "^inside$" $P exec c1 echo inside
    check "exec passes the exit code (4)" 4 "" $P exec c1 sh -c 'exit 4'
    check "exec sees the container's pid 1" 0 "sleep" $P exec c1 cat /proc/1/cmdline
    check "exec -i" 0 "^via-stdin$" sh -c "echo via-stdin | $P exec -i c1 cat"
    check "exec -t" 0 "^/dev/pts/[0-9]+" script -qec "$P exec -t c1 tty" /dev/null
    check "exec --user 1000:1000" 0 "^1000$" $P exec --user 1000:1000 c1 id -u
    check "exec -e and --workdir" 0 "^bar /tmp$" $P exec -e FOO=bar --workdir /tmp c1 sh -c 'echo $FOO $(pwd)'
    check "top (runtime ps)" 0 "sleep" $P top c1
}
t_pause_unpause() {
    daemon c1 sleep 1000
    check "pause" 0 "" $P pause c1
    check "paused state" 0 "^paused$" $P inspect -f '{{.State.Status}}' c1
    check "unpause" 0 "" $P unpause c1
    check "running again" 0 "^running$" $P inspect -f '{{.State.Status}}' c1
    check "exec after unpause" 0 "^back$" $P exec c1 echo back
}
t_stop_start_rm() {
    daemon c1 sleep 1000
    check "stop" 0 "" $P stop -t 2 c1
    check "stopped state" 0 "^exited$" $P inspect -f '{{.State.Status}}' c1
    check "start again" 0 "" $P start c1
    check "rm -f of a running container" 0 "" $P rm -f -t 1 c1
}
t_kill_gives_137() {
    daemon c2 sleep 1000
    check "kill" 0 "" $P kill c2
    check "killed exit code 137" 0 "^137$" timeout 60 $P wait c2
    check "rm after kill" 0 "" $P rm c2
}
# pid 1 ignores signals it has no handler for: give it one for TERM, and
# signal only once the handler is in place (it says so with /tmp/ready).
t_kill_term_gives_143() {
    daemon c3 sh -c 'trap "exit 143" TERM; touch /tmp/ready; while :; do sleep 1; done'
    i=0
    until $P exec c3 test -e /tmp/ready 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 100 ] || { bad "the TERM handler was not ready within 10 s"; return; }
        sleep 0.1
    done
    check "kill -s TERM" 0 "" $P kill -s TERM c3
    check "TERM exit code 143" 0 "^143$" timeout 60 $P wait c3
}

fn=$(case_function "$case_name") || exit 2
"$fn"
[ $failed -eq 0 ] && echo "passed: $case_name"
exit $failed
