#!/bin/sh
# Installing a 64 MiB root filesystem image into a slot (a loop device, or
# a file where loop devices are missing): berth streaming it from a local
# docker-registry (download, hash, write, read back) against RAUC 1.8
# (`rauc install` of a plain bundle, local and over HTTP from nginx, through
# `rauc service` on a private dbus-daemon); wall time and peak RSS side by
# side. Then the faults: a berth install SIGKILLed 10 times resumes, with
# the bytes the registry served counted by a proxy (goal: at most the image
# + 10 x 64 KiB), and no half-written slot is ever bootable; RAUC's
# behaviour for contrast (a killed install starts over; with
# install-same=false a half-written slot is marked good).
# Needs root, docker-registry, rauc, nginx, dbus-daemon, mksquashfs, openssl.
# Usage: [RUNS=3] bench/slot.sh [BERTH] (default $BERTH, else build/src/berth)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
berth=${1:-${BERTH:-$here/build/src/berth}}
exec /usr/bin/python3 "$here/bench/slot.py" "$(realpath "$berth")"
