#!/usr/bin/env bash
# The herd test of the fleet channel (issue 11; docs/fleet.md ("Scaling") uses
# its figures): N simulated devices (`berth fleet device`: the fleet agent,
# the TUF client, MQTT, registry pulls and staging are the real ones; the app
# runner is a no-op) against one nginx (the TUF repository written by
# `berth fleet init|release`), one docker-registry (the updates' images) and
# one mosquitto (TLS, a client certificate per device, ACLs), all on this
# machine. Each device runs in its own network namespace with one address on
# a bridge this script makes (10.K.0.0/16, the first K of 200..249 this
# machine does not use; the servers listen on 10.K.0.1, the bridge's only
# address). Needs root, nginx,
# docker-registry, mosquitto, mosquitto-clients, openssl. Slow (minutes).
#
# Measured and printed:
#   push          `berth fleet release` + `berth fleet publish` -> every
#                 device committed: latency p50/p99 (goal p50 <= 2 s, p99 <= 10 s)
#   registry      bytes the registry served for the update (its log) against
#                 N x the update's size (goal: within 1 %)
#   idle          device RSS (median, max); bytes on the veths over an idle
#                 window (--idle-s 120 at --keepalive-s 60: exactly 2
#                 exchanges a device), per device and hour, the cost of one
#                 keepalive exchange and of one poll, and from them the
#                 bytes an hour at the default keepalive of 300 s with a
#                 poll every 15 min, 1 h or 6 h (goal <= 5 KB/h)
#   restart       the broker stopped for --down-s and started: reconnects per
#                 second after the restart (spread by the devices' jitter)
#   polling       the same update path without a broker, polling every
#                 --poll-ms: latency p50/p99, for comparison
#   stuck         devices not on the last release at the end (goal 0)
#
#   bench/fleet.sh [--devices N] [--keepalive-s S] [--idle-s S] [--poll-ms MS]
#                  [--down-s S] [--layer-kib K] [--keep] [--perf-push FILE]
#                  (BERTH=/path/to/berth; default build/src/berth)
#
# Everything it made (namespaces, bridge, processes, the temporary
# directory under /var/tmp) is removed on every exit, Ctrl-C included.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "skipped: fleet.sh needs root"; exit 77; }
. "$here/bundle.sh"
berth=$(find_berth)
exec /usr/bin/python3 "$here/fleet.py" --berth "$berth" "$@"
