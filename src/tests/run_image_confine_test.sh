#!/bin/sh
# What `berth run IMAGE` confines a container to, against hostile images
# built here with umoci (busybox-static plus a probe compiled here):
#   - devices: the cgroup denies all but the default devices, a device node
#     a layer carries (block 7:0, the host's loop0) is not in the rootfs,
#     the rootfs is mounted nodev, /dev/null still works;
#   - a pids limit;
#   - seccomp: clone with CLONE_NEWUSER (or NEWNET, NEWNS) fails EPERM, clone3
#     ENOSYS (libc falls back), unshare EPERM, fork and plain clone work;
#   - a FIFO at /etc/passwd or /etc/group: a one-line error at once, no hang,
#     nothing left, the store usable by the next run.
# Needs root; exits 77 (skipped) without it, umoci, busybox-static or cc.
# usage: run_image_confine_test.sh BERTH
set -u
BERTH=${1:?usage: $0 BERTH}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v cc >/dev/null || { echo "SKIP: needs a C compiler for the seccomp probe"; exit 77; }
TEST_NAME=confine
. "$HERE/run_image_lib.sh"

cc -static -O -o "$TMP/seccomp_probe" "$HERE/seccomp_probe.c" 2>"$TMP/cc.err" ||
    skip "cannot build a static probe: $(head -1 "$TMP/cc.err")"

ACCEPT=$TMP/accept.json
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$ACCEPT"
umoci init --layout "$TMP/layout" >/dev/null

# image TAG SETUP: busybox with its applets and a passwd; SETUP (a shell
# function) changes the rootfs ($r) before it becomes the image's layer.
image() {
    umoci new --image "$TMP/layout:$1" >/dev/null
    work=$TMP/work-$1
    umoci unpack --image "$TMP/layout:$1" "$work" >/dev/null
    r=$work/rootfs
    busybox_rootfs "$r"
    echo "root:x:0:" >"$r/etc/group"
    "$2"
    umoci repack --image "$TMP/layout:$1" "$work" >/dev/null
    umoci config --image "$TMP/layout:$1" --config.cmd /bin/sh >/dev/null
    rm -rf "$work"
}
hostile_devices() {
    mknod "$r/loop0" b 7 0
    mknod "$r/mem" c 1 1
    cp "$TMP/seccomp_probe" "$r/bin/seccomp_probe"
}
fifo_passwd() { rm "$r/etc/passwd" && mkfifo "$r/etc/passwd"; }
fifo_group() { rm "$r/etc/group" && mkfifo "$r/etc/group"; }
image dev hostile_devices
image fifo-passwd fifo_passwd
image fifo-group fifo_group
umoci gc --layout "$TMP/layout"
for t in dev fifo-passwd fifo-group; do
    "$BERTH" --root "$STORE" image import --ref-name "$t" "$TMP/layout" "localhost/$R:$t" >/dev/null 2>"$TMP/err" ||
        bad "import of $t: $(cat "$TMP/err")"
done
run() { b run --store "$STORE" --policy "$ACCEPT" -q "$@"; }
IMG=localhost/$R:dev

# ---- devices
out=$(run --rm "$IMG" sh -c 'test -e /loop0 && echo loop0; test -e /mem && echo mem; echo x >/dev/null && echo null-ok' 2>"$TMP/err")
[ "$out" = null-ok ] && ok "a layer's device nodes are not in the rootfs; /dev/null works" \
    || bad "device nodes of the layer: out=$(echo $out) $(cat "$TMP/err")"
out=$(run --rm "$IMG" sh -c 'cat /loop0 >/dev/null 2>&1 && echo opened-loop0; cat /mem >/dev/null 2>&1 && echo opened-mem; echo done' 2>"$TMP/err")
[ "$out" = done ] && ok "the host's loop0 and mem cannot be opened through the image" || bad "opened: $(echo $out)"
out=$(run --rm "$IMG" awk '$5 == "/" { print $6 }' /proc/self/mountinfo 2>"$TMP/err")
case ",$out," in *,nodev,*) ok "the rootfs is mounted nodev ($out)" ;; *) bad "rootfs mount options: $out $(cat "$TMP/err")" ;; esac

# A running container: its cgroup, and a device node put in its /dev from the host.
run --rm --name "$R-live" "$IMG" sleep 60 >/dev/null 2>"$TMP/live.err" &
bg=$!
i=0
while [ "$(b state "$R-live" 2>/dev/null | grep -c '"running"')" = 0 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
pid=$(b state "$R-live" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1)
if [ -z "$pid" ]; then
    bad "the container did not start: $(cat "$TMP/live.err")"
else
    cg=$(sed -n 's/^[0-9]*:devices:\(.*\)/\1/p' "/proc/$pid/cgroup")
    list=$(cat "/sys/fs/cgroup/devices$cg/devices.list" 2>/dev/null)
    if [ -n "$cg" ] && [ -n "$list" ] && ! echo "$list" | grep -q '^a ' && echo "$list" | grep -q '^c 1:3 rwm$'; then
        ok "the device cgroup denies all but the defaults: $(echo $list | tr '\n' ' ')"
    else
        bad "devices.list of $cg: $(echo $list)"
    fi
    pcg=$(sed -n 's/^[0-9]*:pids:\(.*\)/\1/p' "/proc/$pid/cgroup")
    max=$(cat "/sys/fs/cgroup/pids$pcg/pids.max" 2>/dev/null)
    [ "$max" = 2048 ] && ok "pids.max is 2048" || bad "pids.max of $pcg: $max"
    mknod "/proc/$pid/root/dev/hostloop" b 7 0 && mknod "/proc/$pid/root/dev/hostmem" c 1 1 || bad "mknod in the container's /dev"
    out=$(b exec "$R-live" sh -c 'cat /dev/hostloop >/dev/null 2>&1 && echo opened-loop; cat /dev/hostmem >/dev/null 2>&1 && echo opened-mem; echo done' 2>&1)
    [ "$out" = done ] && ok "a device node in /dev that is not granted cannot be opened" || bad "ungranted device: $(echo $out)"
    b kill "$R-live" KILL
fi
wait $bg

# ---- seccomp
out=$(run --rm "$IMG" /bin/seccomp_probe 2>"$TMP/err")
expect() { # line
    echo "$out" | grep -qx "$1" && ok "seccomp: $1" || bad "seccomp: expected '$1', got: $(echo "$out" | tr '\n' ';') $(cat "$TMP/err")"
}
expect "clone-newuser: EPERM"
expect "clone-newuser-newnet: EPERM"
expect "clone-newns: EPERM"
expect "clone-thread-flags: ok"
expect "clone3: ENOSYS"
expect "unshare-newuser: EPERM"
expect "fork: ok"
out=$(run --rm "$IMG" sh -c 'echo a | cat | tr a b' 2>"$TMP/err")
[ "$out" = b ] && ok "a shell pipeline runs under the profile" || bad "pipeline: $out $(cat "$TMP/err")"

# ---- FIFOs where the image's users are looked up
traces() {
    ls "$STATE" "$STORE/containers" 2>/dev/null
    grep -o " $TMP/[^ ]*" /proc/self/mountinfo
}
clean_before=$(traces)
for t in fifo-passwd fifo-group; do
    file=/etc/${t#fifo-}
    start=$(date +%s)
    timeout -s KILL 20 "$BERTH" --root "$STATE" run --store "$STORE" --policy "$ACCEPT" -q --rm "localhost/$R:$t" true \
        >"$TMP/out" 2>"$TMP/err"
    rc=$?
    took=$(($(date +%s) - start))
    if [ $rc = 1 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "$file" "$TMP/err" && grep -q "not a regular file" "$TMP/err"; then
        ok "a FIFO at $file: refused in ${took}s: $(cat "$TMP/err")"
    else
        bad "a FIFO at $file: rc=$rc after ${took}s: $(cat "$TMP/err")"
    fi
    [ "$(traces)" = "$clean_before" ] && ok "a FIFO at $file left nothing" || bad "a FIFO at $file left: $(traces | tr '\n' ' ')"
    for m in $(grep -o " $TMP/[^ ]*" /proc/self/mountinfo | sort -r); do umount -l "$m"; done
    rm -rf "$STORE/containers"/*
done
out=$(timeout -s KILL 20 "$BERTH" --root "$STATE" run --store "$STORE" --policy "$ACCEPT" -q --rm "$IMG" echo after 2>"$TMP/err")
[ "$out" = after ] && ok "the store is usable after the refusals" || bad "run after the FIFOs: $out $(cat "$TMP/err")"

[ $fail = 0 ] && echo "all passed"
exit $fail
