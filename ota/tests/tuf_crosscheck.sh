#!/bin/sh
# berth and tuf-js's client on every repository of tuf_vectors/ (see
# crosscheck.mjs). Skips (77) where node or tuf-js is not installed: CI has
# neither; docs/tuf.md says how to install them.
berth=$1
here=$(dirname "$0")
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node is not installed"
    exit 77
fi
if [ -n "${MESON_EXE_WRAPPER:-}" ]; then
    # A cross build: node runs berth through the emulator, by a wrapper script.
    wrap=$(mktemp /tmp/berth-tuf-wrap-XXXXXX)
    trap 'rm -f "$wrap"' EXIT
    printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$MESON_EXE_WRAPPER" "$berth" >"$wrap"
    chmod +x "$wrap"
    node "$here/tuf_vectors/crosscheck.mjs" "$wrap"
    exit
fi
exec node "$here/tuf_vectors/crosscheck.mjs" "$berth"
