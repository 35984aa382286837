# Sourced by the `berth run IMAGE` system tests (run_image_test.sh,
# run_image_confine_test.sh) after they set BERTH and TEST_NAME: skips
# (exit 77) without root, umoci or busybox-static; makes a temporary
# directory TMP (removed at exit, with every container of the test and
# every mount under it); sets R (unique to this run: put it in image names
# and container ids), STORE, STATE, BUSYBOX and fail; defines b (berth with
# STATE as its state root), ok, bad, skip and busybox_rootfs.
case $BERTH in /*) ;; *) BERTH=$PWD/$BERTH ;; esac
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
command -v umoci >/dev/null || skip "needs umoci"
BUSYBOX=/bin/busybox
file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked" || skip "needs busybox-static"

TMP=$(mktemp -d "/tmp/berth-$TEST_NAME.XXXXXX")
chmod 755 "$TMP"
R=$(basename "$TMP" | tr -cd 'a-zA-Z0-9' | tr 'A-Z' 'a-z')
STORE=$TMP/store
STATE=$TMP/state
fail=0
b() { "$BERTH" --root "$STATE" "$@"; }
cleanup() {
    for id in $(b list -q 2>/dev/null); do b delete -f "$id" >/dev/null 2>&1; done
    grep -o " $TMP/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# busybox_rootfs DIR: busybox-static and its applets in DIR/bin, a root
# entry in DIR/etc/passwd, an empty DIR/tmp.
busybox_rootfs() {
    mkdir -p "$1/bin" "$1/etc" "$1/tmp"
    cp "$BUSYBOX" "$1/bin/busybox"
    for a in $("$BUSYBOX" --list); do [ -e "$1/bin/$a" ] || ln -s busybox "$1/bin/$a"; done
    echo "root:x:0:0:root:/root:/bin/sh" >"$1/etc/passwd"
}
