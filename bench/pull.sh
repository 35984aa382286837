#!/bin/sh
# Pull + verify + unpack of a ~40 MB, 3-layer image (incompressible data,
# text, busybox) from a local docker-registry: berth against
# `skopeo copy docker://... oci:...` + `umoci unpack`, wall time and peak RSS;
# then the same pull over a throttled link (LINK_RATE_MIB, default 16) with
# and without unpacking (the one-pass unpack hides behind the download);
# then "shared layers": updating to an image that differs in one layer
# transfers exactly that layer + manifest + config (from the registry's
# access log). Usage: [RUNS=5] bench/pull.sh [BERTH] (default $BERTH, else
# build/src/berth)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
berth=${1:-${BERTH:-$here/build/src/berth}}
exec /usr/bin/python3 "$here/bench/pull.py" "$(realpath "$berth")"
