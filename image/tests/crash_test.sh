#!/bin/sh
# Power-cut safety of the store: `berth image import` (store + unpack) is
# killed with SIGKILL at random instants, BERTH_CRASH_COUNT times (20 in CI;
# 200 for the slow run). After each kill, fsck finds nothing corrupted (only
# temporaries to remove), a second fsck is clean, and at the end an import
# succeeds. Every third round kills at a failpoint instead of a timer.
set -eu
B=${BERTH:?BERTH must name the berth binary}
N=${BERTH_CRASH_COUNT:-20}
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
command -v umoci >/dev/null || { echo "skipped: umoci missing"; exit 77; }
t=$(mktemp -d /tmp/berth-crash-XXXXXX)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$here/make_layout.sh" "$t/lay" 4 2
root=$t/root
# How long one import takes, in microseconds (at least 1 ms).
s=$(date +%s%N)
"$B" --root "$root" image import "$t/lay" localhost/c:1 >/dev/null
us=$(( ($(date +%s%N) - s) / 1000 ))
[ $us -gt 1000 ] || us=1000
# Failpoint rounds need a build with test hooks (-Dtest_hooks=true); without
# them every round is a kill -9 round.
hooks=0
"$B" version --json | grep -q '"test-hooks"' && hooks=1
[ $hooks = 1 ] || echo "note: built without test hooks: failpoint rounds become kill -9 rounds"
fps="store.put.write store.put.rename unpack.entry unpack.sync unpack.rename import.layer import.ref atomic_write.rename"
i=0 repaired=0 completed=0
while [ $i -lt "$N" ]; do
  i=$((i + 1))
  "$B" --root "$root" image rm localhost/c:1 2>/dev/null || true
  "$B" --root "$root" image gc >/dev/null
  if [ $hooks = 1 ] && [ $((i % 3)) = 0 ]; then
    fp=$(echo $fps | tr ' ' '\n' | shuf -n1)
    BERTH_FAILPOINTS="$fp=crash@$(shuf -i 1-3 -n1)" "$B" --root "$root" image import "$t/lay" localhost/c:1 >/dev/null 2>&1 || true
  else
    "$B" --root "$root" image import "$t/lay" localhost/c:1 >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v us=$us -v r=$(shuf -i 0-1000 -n1) 'BEGIN{printf "%.6f", us*r/1000/1e6}')"
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
  fi
  rep=$("$B" --root "$root" image fsck) || fail "round $i: fsck could not repair: $rep"
  if echo "$rep" | grep -E 'corrupted|incomplete layer|ref `' >/dev/null; then fail "round $i: $rep"; fi
  "$B" --root "$root" image fsck --check >/dev/null || fail "round $i: fsck not clean after repair"
  echo "$rep" | grep -q ' 0 repaired' || repaired=$((repaired + 1))
  "$B" --root "$root" image ls | grep -q localhost/c:1 && completed=$((completed + 1))
done
"$B" --root "$root" image import "$t/lay" localhost/c:1 >/dev/null || fail "final import"
"$B" --root "$root" image fsck --check >/dev/null || fail "final fsck"
echo "ok: $N kills; $repaired left temporaries that fsck removed, $completed finished before the kill"
