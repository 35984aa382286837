#!/bin/sh
# The test hooks (BERTH_FAILPOINTS, BERTH_DISABLE_SYSCALLS) are read from the
# environment only by test builds (-Dtest_hooks=true).
#   test_hooks_test.sh release PROBE          PROBE, built with the hooks off,
#                                             ignores both variables
#   test_hooks_test.sh build PROBE BERTH on|off  PROBE (linked as berth is) reads
#                                             them iff the option is on, and
#                                             `berth version --json` lists the
#                                             feature "test-hooks" iff it is on
set -u
mode=$1 probe=$2
out=$(BERTH_FAILPOINTS=probe.point=error BERTH_DISABLE_SYSCALLS=openat2 ${MESON_EXE_WRAPPER:-} "$probe") || { echo "FAIL: $probe exited $?"; exit 1; }
echo "$out"
case $mode in
release)
    want="compiled no
failpoints ignored
disable_syscalls ignored" ;;
build)
    berth=$3 on=$4
    features=$(${MESON_EXE_WRAPPER:-} "$berth" version --json | /usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["features"]))') \
        || { echo "FAIL: berth version --json"; exit 1; }
    echo "berth features: $features"
    case " $features " in *" test-hooks "*) listed=on ;; *) listed=off ;; esac
    [ "$listed" = "$on" ] || { echo "FAIL: test_hooks=$on but berth version lists test-hooks: $listed"; exit 1; }
    if [ "$on" = on ]; then
        want="compiled yes
failpoints read
disable_syscalls read"
    else
        want="compiled no
failpoints ignored
disable_syscalls ignored"
    fi ;;
*) echo "usage: $0 release PROBE | build PROBE BERTH on|off"; exit 2 ;;
esac
[ "$out" = "$want" ] || { echo "FAIL: want:"; echo "$want"; exit 1; }
echo "ok"
