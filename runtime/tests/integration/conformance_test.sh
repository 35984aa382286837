#!/bin/sh
# OCI runtime-spec conformance cases runc and crun accept:
# - a config without a mount namespace (inherited from the runtime): the
#   process runs chrooted in the rootfs and the host's mounts are untouched;
#   what would change the runtime's mounts is refused, as runc refuses
#   masked/read-only paths without one;
# - `rootfsPropagation: unbindable` (and runbindable);
# - the state on the stdin of prestart, createRuntime, createContainer and
#   startContainer hooks says `created` (runtime-spec "State": created is
#   "after step 2 in the lifecycle", and those hooks are steps 3 to 7).
. "$(dirname "$0")/lib.sh"

id=$RUN_ID-oci

# ---- no mount namespace -----------------------------------------------------
echo "inside the rootfs" >"$ROOTFS/etc/marker"
NOMNT="c['linux']['namespaces'] = [n for n in c['linux']['namespaces'] if n['type'] != 'mount']
c['mounts'] = []; c['linux']['maskedPaths'] = []; c['linux']['readonlyPaths'] = []; c['root']['readonly'] = False"
make_bundle "$TMP/nomnt" "$NOMNT" /bin/cat /etc/marker
snapshot "$TMP/before"
prop_before=$(awk '$5 == "/" {print $7}' /proc/self/mountinfo)
out=$(b run --bundle "$TMP/nomnt" "$id-nomnt" 2>&1)
[ "$out" = "inside the rootfs" ] && ok "no mount namespace: the process runs in the rootfs" || bad "no mount namespace: $out"
snapshot "$TMP/after"
cmp -s "$TMP/before" "$TMP/after" && ok "no mount namespace: the host's mounts are unchanged" \
    || bad "no mount namespace changed host mounts: $(diff $TMP/before $TMP/after | head -5)"
[ "$(awk '$5 == "/" {print $7}' /proc/self/mountinfo)" = "$prop_before" ] && ok "no mount namespace: the propagation of / is unchanged" \
    || bad "propagation of / changed: $prop_before -> $(awk '$5 == "/" {print $7}' /proc/self/mountinfo)"
# refused_nomnt NAME EDIT PATTERN
refused_nomnt() {
    make_bundle "$TMP/nomnt-$1" "$NOMNT
$2" /bin/true
    if b run --bundle "$TMP/nomnt-$1" "$id-nomnt-$1" >/dev/null 2>"$TMP/err"; then
        bad "no mount namespace with $1: accepted"
    else
        grep -q -- "$3" "$TMP/err" && ok "no mount namespace with $1: $(head -1 $TMP/err)" || bad "$1: message $(cat $TMP/err)"
    fi
    b delete -f "$id-nomnt-$1" >/dev/null 2>&1
}
refused_nomnt maskedPaths "c['linux']['maskedPaths'] = ['/proc/kcore']" "maskedPaths.*needs a mount namespace"
refused_nomnt mounts "c['mounts'] = [{'destination': '/proc', 'type': 'proc', 'source': 'proc'}]" "mounts.*needs a mount namespace"
refused_nomnt readonly "c['root']['readonly'] = True" "readonly.*needs a mount namespace"

# ---- rootfsPropagation ------------------------------------------------------
for p in unbindable runbindable private; do
    make_bundle "$TMP/prop-$p" "c['linux']['rootfsPropagation'] = '$p'" /bin/sh -c 'awk "\$5 == \"/\" {print \$7}" /proc/self/mountinfo'
    out=$(b run --bundle "$TMP/prop-$p" "$id-prop-$p" 2>&1); rc=$?
    case $p in *unbindable) want=unbindable ;; *) want=- ;; esac  # no optional field: private
    if [ $rc = 0 ] && [ "$out" = "$want" ]; then ok "rootfsPropagation $p: / shows '$out' in mountinfo"
    else bad "rootfsPropagation $p: rc $rc: $out"; fi
done

# ---- the state given to hooks -----------------------------------------------
hook() { echo "{'path': '$BUSYBOX', 'args': ['sh', '-c', 'cat > $1']}"; }
make_bundle "$TMP/hooks" "c['hooks'] = {'prestart': [$(hook $TMP/st-prestart)], 'createRuntime': [$(hook $TMP/st-createRuntime)],
  'createContainer': [$(hook $TMP/st-createContainer)], 'startContainer': [{'path': '/bin/sh', 'args': ['sh', '-c', 'cat > /tmp/st']}],
  'poststart': [$(hook $TMP/st-poststart)]}
c['root']['readonly'] = False
c['mounts'].append({'destination': '/tmp', 'type': 'bind', 'source': '$TMP/hookout', 'options': ['rbind']})" /bin/true
mkdir -p "$TMP/hookout"
b run --bundle "$TMP/hooks" "$id-hooks" >/dev/null 2>"$TMP/err" || bad "run with hooks: $(cat $TMP/err)"
cp "$TMP/hookout/st" "$TMP/st-startContainer" 2>/dev/null
for k in prestart:created createRuntime:created createContainer:created startContainer:created poststart:running; do
    name=${k%%:*} want=${k#*:}
    got=$($PY -c "import json; print(json.load(open('$TMP/st-$name'))['status'])" 2>&1)
    [ "$got" = "$want" ] && ok "$name hook sees status $want" || bad "$name hook sees status '$got', want $want"
done

finish
