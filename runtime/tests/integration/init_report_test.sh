#!/bin/sh
# The init's report reaches `create` whatever the timing. The runtime sends
# its go-ahead while the init builds the rootfs; an init that fails after
# the go-ahead arrived exits with it unread, and on an AF_UNIX socket the
# peer then reads ECONNRESET before the report the init sent: `create` said
# "read the init's report: Connection reset by peer" instead of why the
# init failed (seen under load in bad_input/missing-bind-source and
# shared_fs). Test hooks make it happen every time: BERTH_TEST_INIT_HOLD=
# go-ahead makes the init wait until the go-ahead is queued, so that its
# failure comes after it, and BERTH_TEST_READ_REPORT=after-init-exit makes
# the runtime read the report only once the init has exited.
. "$(dirname "$0")/lib.sh"

need_test_hooks() {
    "$BERTH" version --json | grep -q '"test-hooks"' || skip "berth was built without test hooks (-Dtest_hooks=true)"
}

# A bind of a missing source fails in the init, after the go-ahead.
t_failure_after_go_ahead_is_reported() {
    need_test_hooks
    make_bundle "$TMP/x" 'c["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/nonexistent-src", "options": ["bind"]})' /bin/true
    out=$(BERTH_TEST_INIT_HOLD=go-ahead BERTH_TEST_READ_REPORT=after-init-exit b run --bundle "$TMP/x" "$RUN_ID-r" 2>&1)
    case $out in
        *"Connection reset"*) bad "the init's report was lost: $out" ;;
        *nonexistent-src*) ok "the init's error is reported: $out" ;;
        *) bad "unexpected: $out" ;;
    esac
    status_is "$RUN_ID-r" created && bad "a failed create left a container"
    return 0
}

# The same with a run that succeeds: the hook alone changes nothing.
t_success_after_go_ahead() {
    need_test_hooks
    make_bundle "$TMP/ok" "" /bin/echo started
    out=$(BERTH_TEST_INIT_HOLD=go-ahead b run --bundle "$TMP/ok" "$RUN_ID-s" 2>&1)
    [ "$out" = started ] && ok "runs" || bad "run with the init held until the go-ahead: $out"
}

run_cases
