#!/bin/sh
# Attacks through directories a container shares with the host or with
# another container:
# - a shared `/dev` where a racer swaps `null` (and the other default nodes)
#   for a symlink to a host file while containers start: the host file's
#   mode must never change (device setup works on the node it created);
# - mount destinations that resolve into `/proc`, directly or through a
#   symlink (static or raced) in a shared volume: refused, so the runtime's
#   own procfs writes (oom_score_adj) never land in a bind-mounted host file.
. "$(dirname "$0")/lib.sh"

id=$RUN_ID-sfs
RACES=${BERTH_RACE_RUNS:-60}

# start_racer DIR NAME TARGET: keeps a symlink to TARGET beside NAME in DIR
# and, the moment a node appears at NAME, exchanges the two (renameat2
# RENAME_EXCHANGE): NAME becomes the symlink right after it was created.
# NAME "=" means: exchange DIR and TARGET back and forth. Stops when
# $TMP/stop-racer exists.
start_racer() {
    rm -f "$TMP/stop-racer"
    $PY - "$TMP/stop-racer" "$@" <<'PYEOF' &
import ctypes, os, sys
stop, d, name, target = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
libc = ctypes.CDLL(None, use_errno=True)
xchg = lambda a, b: libc.renameat2(-100, a, -100, b, 2) == 0
if name == "=":
    a, b = os.fsencode(d), os.fsencode(target)
    while not os.path.exists(stop):
        for _ in range(2000):
            xchg(a, b)
    sys.exit(0)
a = os.fsencode(os.path.join(d, name))
alts = [os.fsencode(os.path.join(d, ".alt%d-%s" % (i, name))) for i in (0, 1)]
def arm(p):  # p becomes a symlink to TARGET
    try:
        os.unlink(p)
    except OSError:
        pass
    os.symlink(target, p)
for p in alts:
    arm(p)
i = 0
while not os.path.exists(stop):
    for _ in range(2000):
        if not xchg(a, alts[i]):
            continue
        if not os.path.islink(a):
            xchg(a, alts[i])  # the symlink was at NAME already: put it back
            continue
        # NAME is the symlink now: re-arm the used slot while berth goes on,
        # and wait until it replaces NAME again.
        arm(alts[i])
        i ^= 1
        while os.path.islink(a) and not os.path.exists(stop):
            pass
PYEOF
    RACER=$!
}
stop_racer() { touch "$TMP/stop-racer"; wait $RACER 2>/dev/null; }

# ---- a shared /dev ----------------------------------------------------------
mkdir -p "$TMP/shareddev"
echo secret >"$TMP/hostfile"; chmod 0600 "$TMP/hostfile"
make_bundle "$TMP/dev" "c['mounts'] = [c['mounts'][0], {'destination': '/dev', 'type': 'bind', 'source': '$TMP/shareddev', 'options': ['rbind']}]
c['linux']['maskedPaths'] = []; c['linux']['readonlyPaths'] = []" /bin/true
# dev_race N PREFIX...: N container starts (each command line prefixed by
# PREFIX) while the racer runs; prints how often the host file's mode changed.
dev_race() {
    n=$1; shift
    start_racer "$TMP/shareddev" null "$TMP/hostfile"
    changed=0 i=0
    while [ $i -lt "$n" ]; do
        "$@" "$BERTH" --root "$ROOT" run --bundle "$TMP/dev" "$id-dev-$i" >/dev/null 2>&1
        b delete -f "$id-dev-$i" >/dev/null 2>&1
        [ "$(stat -c %a "$TMP/hostfile")" = 600 ] || { changed=$((changed + 1)); chmod 0600 "$TMP/hostfile"; }
        i=$((i + 1))
    done
    stop_racer
    echo $changed
}
changed=$(dev_race "$RACES")
[ "$changed" = 0 ] && ok "shared /dev raced $RACES times: the host file's mode never changed" \
    || bad "shared /dev: a host file was made mode 0666 through a swapped node ($changed of $RACES starts)"
# The window between mknodat and what follows is a few microseconds; a slow
# gateway widens it. strace's fault injection widens it here (20 ms after
# each mknodat), so the racer wins every time it can.
if command -v strace >/dev/null; then
    n=$((RACES / 6 + 1))
    changed=$(dev_race $n strace -f -qq -o /dev/null -e trace=mknodat -e inject=mknodat:delay_exit=20000)
    [ "$changed" = 0 ] && ok "shared /dev with a 20 ms window after mknodat, $n starts: the host file's mode never changed" \
        || bad "shared /dev with a widened window: a host file was made mode 0666 ($changed of $n starts)"
else
    echo "note: no strace, the widened-window race is not run"
fi
# The same without a racer: the nodes are real devices with their modes.
rm -rf "$TMP/shareddev"; mkdir -p "$TMP/shareddev"
b run --bundle "$TMP/dev" "$id-dev" >/dev/null 2>"$TMP/err" || bad "shared /dev without a racer: $(cat $TMP/err)"
[ "$(stat -c '%F %a %t:%T' $TMP/shareddev/null)" = "character special file 666 1:3" ] \
    && ok "shared /dev: null is the 1:3 device, mode 666" || bad "shared /dev null: $(stat -c '%F %a %t:%T' $TMP/shareddev/null)"

# ---- mounts into /proc ------------------------------------------------------
echo 0 >"$TMP/hostfile2"
# expect_refused NAME EDIT: create must fail naming /proc; the host file is untouched.
expect_refused() {
    make_bundle "$TMP/$1" "$2
c['process']['oomScoreAdj'] = 500" /bin/true
    if b run --bundle "$TMP/$1" "$id-$1" >/dev/null 2>"$TMP/err"; then
        bad "$1: a mount into /proc was accepted"
    else
        grep -q "/proc" "$TMP/err" && ok "$1: refused: $(head -1 $TMP/err)" || bad "$1: message: $(cat $TMP/err)"
    fi
    b delete -f "$id-$1" >/dev/null 2>&1
    [ "$(cat $TMP/hostfile2)" = 0 ] || { bad "$1: oom_score_adj was written into a host file"; echo 0 >"$TMP/hostfile2"; }
}
expect_refused procdirect "c['mounts'].append({'destination': '/proc/self/oom_score_adj', 'type': 'bind', 'source': '$TMP/hostfile2', 'options': ['bind']})"
expect_refused proctmpfs "c['mounts'].append({'destination': '/proc/sys', 'type': 'tmpfs', 'source': 'tmpfs'})"
mkdir -p "$TMP/vol"; ln -s ../proc/self "$TMP/vol/sub"
expect_refused procsymlink "c['mounts'] += [{'destination': '/vol', 'type': 'bind', 'source': '$TMP/vol', 'options': ['rbind']},
  {'destination': '/vol/sub/oom_score_adj', 'type': 'bind', 'source': '$TMP/hostfile2', 'options': ['bind']}]"

# The same destination through a shared volume where a racer exchanges `sub`
# between a directory and a symlink into /proc.
rm -f "$TMP/vol/sub"; mkdir -p "$TMP/vol/sub"; : >"$TMP/vol/sub/oom_score_adj"; ln -s ../proc/self "$TMP/vol/alt"
make_bundle "$TMP/procrace" "c['mounts'] += [{'destination': '/vol', 'type': 'bind', 'source': '$TMP/vol', 'options': ['rbind']},
  {'destination': '/vol/sub/oom_score_adj', 'type': 'bind', 'source': '$TMP/hostfile2', 'options': ['bind']}]
c['process']['oomScoreAdj'] = 500" /bin/true
start_racer "$TMP/vol/sub" = "$TMP/vol/alt"
written=0 i=0
while [ $i -lt "$RACES" ]; do
    b run --bundle "$TMP/procrace" "$id-pr-$i" >/dev/null 2>&1
    b delete -f "$id-pr-$i" >/dev/null 2>&1
    [ "$(cat $TMP/hostfile2)" = 0 ] || { written=$((written + 1)); echo 0 >"$TMP/hostfile2"; }
    i=$((i + 1))
done
stop_racer
[ $written = 0 ] && ok "mount destination raced into /proc $RACES times: oom_score_adj never reached the host file" \
    || bad "oom_score_adj written into a bind-mounted host file ($written of $RACES starts)"

# The proc mount itself and lxcfs-style files are still accepted; the
# oom_score_adj write reaches the real procfs file.
echo "cpuinfo from lxcfs" >"$TMP/cpuinfo"
make_bundle "$TMP/procok" "c['mounts'].append({'destination': '/proc/cpuinfo', 'type': 'bind', 'source': '$TMP/cpuinfo', 'options': ['bind', 'ro']})
c['process']['oomScoreAdj'] = 321" /bin/sh -c 'cat /proc/self/oom_score_adj; head -1 /proc/cpuinfo'
out=$(b run --bundle "$TMP/procok" "$id-procok" 2>&1)
[ "$out" = "321
cpuinfo from lxcfs" ] && ok "proc mount, a bind over /proc/cpuinfo and oomScoreAdj 321 work" || bad "proc mount / oomScoreAdj: $out"

finish
