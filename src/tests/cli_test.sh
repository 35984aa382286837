#!/bin/sh
# The CLI contract of docs/cli.md: help, usage errors (exit 2), version --json.
set -u
berth=$1
# In a cross build, meson test sets MESON_EXE_WRAPPER (the cross file's
# exe_wrapper, e.g. `qemu-arm-static -L <sysroot>`) to run the ARM binary.
wrap=${MESON_EXE_WRAPPER:-}
fail=0
check() { # description, expected exit, berth command line...
    desc=$1 want=$2; shift 2
    $wrap "$@" >/tmp/berth-cli-out.$$ 2>/tmp/berth-cli-err.$$
    got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL: $desc: exit $got, want $want"; cat /tmp/berth-cli-err.$$; fail=1
    else
        echo "ok: $desc"
    fi
}
check "help" 0 "$berth" help
check "--help" 0 "$berth" --help
check "command --help" 0 "$berth" version --help
check "unknown command" 2 "$berth" frobnicate
[ "$(wc -l </tmp/berth-cli-err.$$)" = 1 ] || { echo "FAIL: unknown command: not one line"; fail=1; }
grep -q "unknown command \`frobnicate\`" /tmp/berth-cli-err.$$ || { echo "FAIL: message"; fail=1; }
check "unknown option" 2 "$berth" version --frob
[ "$(wc -l </tmp/berth-cli-err.$$)" = 1 ] || { echo "FAIL: unknown option: not one line"; fail=1; }
check "unknown global option" 2 "$berth" --frob version
check "no command" 2 "$berth"
check "extra argument" 2 "$berth" version extra
check "version" 0 "$berth" version
check "version --json" 0 "$berth" version --json
py=/usr/bin/python3
[ -x $py ] || py=python3
$py - /tmp/berth-cli-out.$$ <<'PY' || fail=1
import json, sys
v = json.load(open(sys.argv[1]))
libs = v["libraries"]
for name in ["libseccomp", "libcap", "openssl", "libarchive", "zlib", "nlohmann_json"]:
    assert name in libs and libs[name]["version"], "missing library " + name
assert v["version"] and v["gitRevision"] and v["features"], v
print("ok: version --json names every library")
PY
check "global options before the command" 0 "$berth" --log /dev/null --log-format json --debug version
# `run`: two modes (docs/cli.md); options of one mode in the other are usage errors, found before anything is touched.
check "run --help" 0 "$berth" run --help
grep -q "IMAGE \[CMD" /tmp/berth-cli-out.$$ || { echo "FAIL: run --help does not show the image mode"; fail=1; }
check "run: an image option with a container id" 2 "$berth" run --rm some-id
check "run: a bundle option with an image" 2 "$berth" run --detach localhost/app:1
check "run: --bundle with an image option" 2 "$berth" run --bundle /nonexistent --name x some-id
check "run: --env without =" 2 "$berth" run -e FOO localhost/app:1
[ "$(wc -l </tmp/berth-cli-err.$$)" = 1 ] || { echo "FAIL: run usage error: not one line"; fail=1; }
check "run ID: too many arguments" 2 "$berth" run some-id extra
rm -f /tmp/berth-cli-out.$$ /tmp/berth-cli-err.$$
exit $fail
