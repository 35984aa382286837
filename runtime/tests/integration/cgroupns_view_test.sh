#!/bin/sh
# A cgroup namespace on a cgroup v1 (or hybrid) host: /sys/fs/cgroup in the
# container shows the container's own cgroup in each hierarchy, never the
# host's whole hierarchy (inside the namespace /proc/self/cgroup reads `/`,
# so deriving the bind sources from it bound the hierarchy roots).
. "$(dirname "$0")/lib.sh"

[ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] || skip "no cgroup v1 memory hierarchy"
[ -e /proc/self/ns/cgroup ] || skip "no cgroup namespaces"
id=$RUN_ID-cgns
make_bundle "$TMP/c" 'c["linux"]["namespaces"].append({"type": "cgroup"}); c["linux"]["resources"]["memory"] = {"limit": 33554432}' \
    /bin/sh -c 'ls /sys/fs/cgroup/memory; echo "limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"'
out=$(b run --bundle "$TMP/c" "$id" 2>&1) || bad "run: $out"
echo "$out" | grep -q "^limit=33554432$" && ok "the memory hierarchy is the container's cgroup" || bad "memory limit seen: $out"
echo "$out" | grep -qx "berth" && bad "the host's memory hierarchy is visible: $out" || ok "no host cgroup inside"
b delete -f "$id" 2>/dev/null
finish
