#!/bin/sh
# The known escapes: the host's berth binary is out of a container's reach
# through /proc/<pid>/exe (CVE-2019-5736); no host fd reaches
# the container and a cwd through a leaked fd is refused (CVE-2024-21626);
# symlinks in the image at mount targets, under /dev and at masked paths are
# not followed out of the rootfs (CVE-2021-30465 and the 2025 advisories);
# the init is not dumpable before it execs. One behaviour per case (lib.sh).
. "$(dirname "$0")/lib.sh"

# CVE-2019-5736. The init (still berth, waiting on the exec fifo) is not
# dumpable: an unprivileged host user cannot read its environment.
t_init_not_dumpable() {
    id=$RUN_ID-sec
    command -v setpriv >/dev/null || skip "needs setpriv"
    make_bundle "$TMP/b" "c['process']['user'] = {'uid': 1000, 'gid': 1000}" /bin/true
    b create --bundle "$TMP/b" "$id" || bad "create"
    pid=$(state_field "$id" pid)
    setpriv --reuid=1000 --regid=1000 --clear-groups cat "/proc/$pid/environ" >/dev/null 2>&1 \
        && bad "the init's /proc/pid/environ is readable by uid 1000" || ok "init not dumpable (environ unreadable)"
}

# The container's process is exec'd through the sealed berth-dmz: a
# `#!/proc/self/exe` program reaches berth-dmz (which refuses to run it),
# never the host's berth binary.
t_proc_self_exe_reaches_dmz_only() {
    id=$RUN_ID-sec
    sum=$(sha256sum "$BERTH" | cut -d' ' -f1)
    cp -a "$ROOTFS" "$TMP/r5736"
    printf '#!/proc/self/exe\n' >"$TMP/r5736/evil"; chmod +x "$TMP/r5736/evil"
    make_bundle "$TMP/e" "c['root']['path'] = '$TMP/r5736'" /evil
    out=$(b run --bundle "$TMP/e" "$id" 2>&1); rc=$?
    [ $rc = 127 ] && echo "$out" | grep -q "berth-dmz: exec failed" && ok "#!/proc/self/exe reaches berth-dmz only" || bad "#!/proc/self/exe: rc $rc: $out"
    [ "$(sha256sum "$BERTH" | cut -d' ' -f1)" = "$sum" ] && ok "binary unchanged" || bad "binary changed"
}

# No host fd reaches the container (fd 7 open in berth, not preserved).
t_no_host_fd_reaches_container() {
    id=$RUN_ID-sec
    make_bundle "$TMP/f" "" /bin/sleep 100
    b run -d --bundle "$TMP/f" "$id" 7</etc/hostname 8>"$TMP/fd8" || bad "run -d"
    pid=$(state_field "$id" pid)
    out=$(ls /proc/$pid/fd | sort -n | tr '\n' ' ')
    [ "$out" = "0 1 2 " ] && ok "only 0 1 2 reach the container" || bad "fds of the container process: $out"
}

# CVE-2024-21626: cwd through a leaked fd. Not preserved: refused (the fd
# is closed). Preserved and pointing at a host directory: refused too.
t_cwd_via_leaked_fd_refused() {
    id=$RUN_ID-sec
    make_bundle "$TMP/w" 'c["process"]["cwd"] = "/proc/self/fd/7"' /bin/pwd
    b run --bundle "$TMP/w" "$id" 7<"$TMP" >"$TMP/out" 2>&1 && bad "cwd /proc/self/fd/7 accepted: $(cat $TMP/out)" || ok "cwd via a leaked fd refused: $(cat $TMP/out)"
}

t_cwd_via_preserved_fd_refused() {
    id=$RUN_ID-sec
    make_bundle "$TMP/w3" 'c["process"]["cwd"] = "/proc/self/fd/3"' /bin/pwd
    b run --preserve-fds 1 --bundle "$TMP/w3" "$id" 3<"$TMP" >"$TMP/out" 2>&1 && bad "cwd via a preserved host dir fd accepted: $(cat $TMP/out)" \
        || { grep -q "outside the container" "$TMP/out" && ok "cwd via a preserved fd refused: $(cat $TMP/out)" || bad "cwd preserved: $(cat $TMP/out)"; }
}

# A mount target that is a symlink to a host path stays inside the rootfs.
t_symlinked_mount_target_stays_inside() {
    id=$RUN_ID-sec
    cp -a "$ROOTFS" "$TMP/rsym"
    ln -s "$TMP/hostmnt" "$TMP/rsym/mnt-link"
    make_bundle "$TMP/s" "c['root']['path'] = '$TMP/rsym'; c['root']['readonly'] = False; c['mounts'].append({'destination': '/mnt-link', 'type': 'tmpfs', 'source': 'tmpfs'})" \
        /bin/sh -c 'touch /mnt-link/inside && echo PASS'
    out=$(b run --bundle "$TMP/s" "$id" 2>&1)
    [ ! -e "$TMP/hostmnt" ] && [ -d "$TMP/rsym$TMP/hostmnt" ] && echo "$out" | grep -q PASS && ok "symlinked mount target resolved inside the rootfs" \
        || bad "symlinked mount target: $out; host: $(ls -d $TMP/hostmnt 2>&1)"
}

# /dev without a tmpfs: the image's /dev/null is a symlink to a host file
# and a masked path is a symlink to one: nothing outside is touched.
t_dev_and_masked_symlinks_not_followed() {
    id=$RUN_ID-sec
    cp -a "$ROOTFS" "$TMP/rdev"
    echo secret >"$TMP/hostfile"
    ln -s "$TMP/hostfile" "$TMP/rdev/dev/null"
    ln -s "$TMP/hostfile" "$TMP/rdev/masked-link"
    make_bundle "$TMP/d" "c['root']['path'] = '$TMP/rdev'; c['root']['readonly'] = False; c['mounts'] = [m for m in c['mounts'] if not m['destination'].startswith('/dev')]; c['linux']['maskedPaths'].append('/masked-link'); c['linux']['readonlyPaths'].append('/masked-link')" \
        /bin/sh -c '[ -c /dev/null ] && echo x >/dev/null && echo PASS'
    out=$(b run --bundle "$TMP/d" "$id" 2>&1)
    echo "$out" | grep -q PASS && [ "$(cat $TMP/hostfile)" = secret ] && ok "/dev/null symlink replaced, host file untouched" || bad "/dev symlink: $out"
    [ -L "$TMP/rdev/masked-link" ] && ok "masked symlink left alone" || bad "masked symlink replaced"
}

run_cases
