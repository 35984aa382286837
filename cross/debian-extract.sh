#!/usr/bin/env bash
# Extracts Debian packages of another architecture into a directory, from the
# host's own archive and one suite only:
#   cross/debian-extract.sh ARCH DEST PACKAGE...     (suite: $SUITE, default bookworm)
# DEST must not exist; it is created by `mmdebstrap --variant=extract`.
#
# The sysroot builder (cross/build-sysroot.sh) and the qemu-tests kernel fetcher
# (qemu-tests/fetch-kernel.sh) use it, so both take their packages from the
# archive this machine already uses, never from a host name written into the
# project. The sources.list it hands mmdebstrap holds only "SUITE main", made
# from the host's apt configuration; both formats are read: deb822
# /etc/apt/sources.list.d/*.sources (the URIs of the enabled `deb` stanzas whose
# Suites list holds exactly SUITE) and one-line /etc/apt/sources.list and
# sources.list.d/*.list. Duplicates are dropped. Exits 1, saying why, when no
# entry of the host carries SUITE. ARCHIVE_SUITE (default SUITE) names the
# host entries to take the archive from when SUITE is not among them: an
# older release (bullseye, the qemu-tests' 5.10 kernel) is read from the
# archive the host's bookworm entries point at.
# VARIANT (default extract) is mmdebstrap's --variant and MMDEBSTRAP_ARGS more
# of its options, split on spaces (cross/make-base-image.sh makes root
# filesystems with them); a variant other than extract may name no package.
set -euo pipefail

arch=${1:?usage: debian-extract.sh ARCH DEST PACKAGE...}
dest=${2:?usage: debian-extract.sh ARCH DEST PACKAGE...}
shift 2
variant=${VARIANT:-extract}
[ $# -gt 0 ] || [ "$variant" != extract ] || { echo "debian-extract.sh: no package named" >&2; exit 2; }
suite=${SUITE:-bookworm}
archive_suite=${ARCHIVE_SUITE:-$suite}

host_sources() {
    local f
    {
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            # deb822: stanzas separated by blank lines; keep deb stanzas whose Suites
            # list holds exactly $suite.
            awk -v suite="$archive_suite" '
                function flush() {
                    if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ")) {
                        n = split(uris, u, " ")
                        for (i = 1; i <= n; i++) print u[i]
                    }
                    types = ""; uris = ""; suites = ""
                }
                /^[[:space:]]*$/ { flush(); next }
                /^[[:space:]]*#/ { next }
                tolower($1) == "types:"  { $1 = ""; types = $0 }
                tolower($1) == "uris:"   { $1 = ""; uris = $0 }
                tolower($1) == "suites:" { $1 = ""; suites = $0 }
                tolower($1) == "enabled:" && tolower($2) == "no" { types = "" }
                END { flush() }' "$f"
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            # one-line format: deb [options] URI suite components...
            awk -v suite="$archive_suite" '
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == suite) print $i
                }' "$f"
        done
    } | awk '!seen[$0]++' | sed "s|\$| $suite main|; s|^|deb |"
}

sources=$(host_sources)
if [ -z "$sources" ]; then
    echo "debian-extract.sh: no \`$archive_suite\` suite in the host's apt sources" >&2
    exit 1
fi
echo "extracting ${*:-the $variant variant} ($arch) into $dest from:"
echo "$sources" | sed 's/^/  /'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "$sources" >"$tmp/sources.list"
read -ra extra <<<"${MMDEBSTRAP_ARGS:-}"  # split on spaces, never globbed
[ $# -eq 0 ] || extra+=(--include="$(IFS=,; echo "$*")")
mmdebstrap --quiet --variant="$variant" --arch="$arch" "${extra[@]}" \
    "$suite" "$dest" "$tmp/sources.list"
