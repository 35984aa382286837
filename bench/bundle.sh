# Shared by the runtime benchmarks (sourced, not run): builds a busybox-static
# bundle in $1 whose process runs /bin/true without a terminal, and finds
# berth (BERTH env, else build/src/berth or build/berth next to this folder).
make_bundle() { # dir
    local dir=$1 app
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp"
    cp /bin/busybox "$dir/rootfs/bin/busybox"
    for app in $(/bin/busybox --list); do [ -e "$dir/rootfs/bin/$app" ] || ln -s busybox "$dir/rootfs/bin/$app"; done
    (cd "$dir" && runc spec) || return 1
    /usr/bin/python3 - "$dir/config.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["process"]["terminal"] = False
d["process"]["args"] = ["/bin/true"]
json.dump(d, open(p, "w"), indent=1)
PY
}

find_berth() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ -n "${BERTH:-}" ]; then echo "$BERTH"; return; fi
    for b in "$root/build/src/berth" "$root/build/berth"; do [ -x "$b" ] && { echo "$b"; return; }; done
    echo "berth not found: set BERTH=/path/to/berth" >&2
    return 1
}

# crun 1.8 refuses hybrid cgroup hosts: run it in a private mount namespace
# without the cgroup2 mount. Prints the prefix to run crun commands with.
crun_wrap() { # script
    if [ -d /sys/fs/cgroup/unified ] && grep -q ' /sys/fs/cgroup/unified ' /proc/self/mountinfo; then
        unshare -m --propagation private sh -c "umount /sys/fs/cgroup/unified && $1"
    else
        sh -c "$1"
    fi
}

# The binary as it ships: a stripped copy in DIR (the build keeps debug info,
# and a runtime that copies itself to a memfd per run would pay for it).
# BERTH_NOSTRIP=1 measures the binary as built.
ship_berth() { # berth dir
    if [ -n "${BERTH_NOSTRIP:-}" ]; then echo "$1"; return; fi
    strip -o "$2/berth" "$1" && echo "$2/berth"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
