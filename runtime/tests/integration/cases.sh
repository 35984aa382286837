# Test cases of a script (sourced first by lib.sh and podman_test.sh): the
# cases are shell functions t_NAME (NAME with '_' for '-').
#
#   SCRIPT --list          prints the case names, one a line
#   SCRIPT BERTH           runs every case, each in its own process (a script
#                          without cases runs as one piece: lib.sh)
#   SCRIPT BERTH CASE      returns to the script, which runs CASE: its
#                          function is $(case_function CASE)
if [ "${1:-}" = --list ]; then
    sed -n 's/^t_\([a-z0-9_]*\)() *{.*/\1/p' "$0" | tr _ -
    exit 0
fi
if [ $# = 1 ] && [ -n "$("$0" --list)" ]; then
    _rc=0
    for _c in $("$0" --list); do
        echo "== $_c"
        "$0" "$1" "$_c"
        case $? in 0|77) ;; *) echo "FAILED: $_c"; _rc=1 ;; esac
    done
    exit $_rc
fi

# case_function CASE: the function of CASE, or exit 2 when there is none.
case_function() {
    _fn=t_$(echo "$1" | tr - _)
    type "$_fn" >/dev/null 2>&1 || { echo "no such case: $1 (see $0 --list)" >&2; exit 2; }
    echo "$_fn"
}
