#!/bin/sh
# Fails when product code includes a header STYLE.md bans for size
# (<iostream>, <sstream>, <fstream>, <regex>: ~300 KB each on armhf).
# Tests (any tests/ folder) may use them.
set -eu
root=$1
hits=$(cd "$root" && grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(iostream|sstream|fstream|regex)>' \
    --include='*.cpp' --include='*.hpp' --include='*.h' src runtime image ota cross 2>/dev/null | grep -v '/tests/' || true)
if [ -n "$hits" ]; then
    echo "banned headers in product code:"
    echo "$hits"
    exit 1
fi
echo "no banned headers"
