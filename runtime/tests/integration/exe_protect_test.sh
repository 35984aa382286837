#!/bin/sh
# CVE-2019-5736 and the seccomp ordering, against the real binary:
#  - with vm.memfd_noexec=2 (no executable memfd, so no berth-dmz), a
#    `#!/proc/self/exe` process started by `berth exec` must not hand the
#    container a writable path to the host's berth binary;
#  - a container process holding CAP_SYS_PTRACE that scans /proc/*/exe while
#    `berth exec` runs must not get one either (the exec child runs berth
#    inside the container's pid namespace; non-dumpable does not stop
#    CAP_SYS_PTRACE);
#  - a seccomp profile that denies getcwd with noNewPrivileges false still
#    starts (the filter comes after the runtime's own syscalls).
# The attacker (exe_scanner.c, built static here) reopens a held
# /proc/<pid>/exe fd for writing once berth exits and writes into it. The
# tests run a copy of berth, so a failure corrupts only the copy.
. "$(dirname "$0")/lib.sh"

scanner_setup xp

# scanner_bundle DIR CAPS: the scanner as the container's process, /out (the
# scanner, its result and the release fifo) bound read-write from the host.
scanner_bundle() {
    make_bundle "$1" "c['process']['capabilities'] = {k: sorted(set(v + [$2])) for k, v in c['process']['capabilities'].items()}; c['mounts'].append({'destination': '/out', 'type': 'bind', 'source': '$TMP/out', 'options': ['rbind', 'rw']}); c['process']['noNewPrivileges'] = False" \
        /out/exe_scanner $devino 25 /out/result /out/fifo
}

# attack_loop: `berth exec` up to 30 times until the scanner reports.
attack_loop() {
    i=0
    while [ $i -lt 30 ] && [ ! -s "$TMP/out/result" ]; do
        b exec "$id" "$@" >>"$TMP/exec.log" 2>&1
        i=$((i + 1))
    done
    for _ in $(seq 100); do [ -s "$TMP/out/result" ] && break; sleep 0.1; done
}

# check_attack NAME: the scanner saw a berth process, wrote nothing into the
# host binary, and the binary is unchanged.
check_attack() {
    res=$(cat "$TMP/out/result" 2>/dev/null)
    case $res in
        "captured 0 "*|"") bad "$1: the scanner never saw a berth process ($res); exec log: $(tail -c 300 "$TMP/exec.log")" ;;
        *" writable 0") ok "$1: $res" ;;
        *) bad "$1: the host binary was writable from the container: $res" ;;
    esac
    [ "$(sha256sum "$BERTH" | cut -d' ' -f1)" = "$sum" ] && ok "$1: host binary unchanged" || bad "$1: host binary changed"
    cp "$TMP/orig-berth" "$BERTH" 2>/dev/null
}
cp "$BERTH" "$TMP/orig-berth"

# 1. vm.memfd_noexec=2 (per pid namespace: set in a new one, the whole
# scenario runs inside it). `#!/proc/self/exe --log=/out/fifo`: whatever
# binary the exec child hands over blocks on the fifo until the scanner
# holds its exe and releases it.
[ -e /proc/sys/vm/memfd_noexec ] || skip "kernel without vm.memfd_noexec"
cp -a "$ROOTFS" "$TMP/rnx"
# berth is dynamically linked: give the container its loader and libraries,
# as an ordinary image would have them.
for f in $(ldd "$BERTH" | grep -o '/[^ ]*'); do mkdir -p "$TMP/rnx$(dirname "$f")"; cp -L "$f" "$TMP/rnx$f"; done
printf '#!/proc/self/exe --log=/out/fifo\n' >"$TMP/rnx/evil"; chmod +x "$TMP/rnx/evil"
scanner_bundle "$TMP/nx" ""
$PY - "$TMP/nx/config.json" "$TMP/rnx" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c['root']['path'] = sys.argv[2]
json.dump(c, open(sys.argv[1], 'w'))
EOF
mkfifo "$TMP/out/fifo"
export BERTH ROOT TMP id
unshare -p --fork --mount-proc /bin/sh -c '
    echo 2 >/proc/sys/vm/memfd_noexec || exit 3
    "$BERTH" --root "$ROOT" run -d --bundle "$TMP/nx" "$id" || exit 4
    i=0
    while [ $i -lt 30 ] && [ ! -s "$TMP/out/result" ]; do
        "$BERTH" --root "$ROOT" exec "$id" /evil >>"$TMP/exec.log" 2>&1
        i=$((i + 1))
    done
    for _ in $(seq 100); do [ -s "$TMP/out/result" ] && break; sleep 0.1; done
    "$BERTH" --root "$ROOT" delete -f "$id"' >>"$TMP/exec.log" 2>&1
rc=$?
[ $rc = 3 ] && skip "cannot set vm.memfd_noexec"
[ $rc = 4 ] && bad "run under memfd_noexec=2: $(tail -c 300 "$TMP/exec.log")"
check_attack "memfd_noexec=2, #!/proc/self/exe through berth exec"
b delete -f "$id" 2>/dev/null  # when berth was overwritten, the inner delete failed
rm -f "$TMP/out/result" "$TMP/exec.log"

# 2. CAP_SYS_PTRACE in the container, `berth exec` from the host.
scanner_bundle "$TMP/pt" "'CAP_SYS_PTRACE'"
b run -d --bundle "$TMP/pt" "$id" || bad "run the CAP_SYS_PTRACE scanner"
attack_loop /bin/true
check_attack "CAP_SYS_PTRACE scanner during berth exec"
b delete -f "$id"

# 3. A profile denying getcwd, noNewPrivileges false: the runtime's own cwd
# check comes before the filter.
make_bundle "$TMP/cwd" "c['process']['noNewPrivileges'] = False; c['linux']['seccomp'] = {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['getcwd'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1}]}" \
    /bin/echo started
out=$(b run --bundle "$TMP/cwd" "$id" 2>&1)
[ "$out" = started ] && ok "getcwd denied, noNewPrivileges false: starts" || bad "getcwd denied, noNewPrivileges false: $out"
b delete -f "$id" 2>/dev/null

# 4. No way to protect the binary (no open_tree, no executable memfd, a
# noexec state root for the copy): refused, nothing started. open_tree is
# disabled through the test hooks, which a release build does not read.
mkdir -p "$TMP/nxroot"
if ! "$BERTH" version --json | grep -q '"test-hooks"'; then
    echo "skip: no protection possible: berth was built without test hooks (-Dtest_hooks=true)"
else
out=$(unshare -m -p --fork --mount-proc /bin/sh -c '
    echo 2 >/proc/sys/vm/memfd_noexec && mount -t tmpfs -o noexec tmpfs "$TMP/nxroot" || exit 3
    BERTH_DISABLE_SYSCALLS=open_tree "$BERTH" --root "$TMP/nxroot" run --bundle "$TMP/cwd" "$id"' 2>&1)
case $out in
    *"cannot protect the berth binary"*) ok "no protection possible: refused" ;;
    *) bad "no protection possible: $out" ;;
esac
fi
finish
