// test_hooks_probe: prints whether this build obeys the test hooks of the
// environment, one line each:
//   failpoints read|ignored        BERTH_FAILPOINTS=probe.point=error armed the point
//   disable_syscalls read|ignored  BERTH_DISABLE_SYSCALLS=openat2 disabled openat2
// test_hooks_test.sh runs it twice: linked with src/util as configured, and
// built from the same failpoint.cpp and syscalls.cpp with the hooks off (as a
// release build), which must print "ignored" for both.
#include <cstdio>

#include "util/failpoint.hpp"
#include "util/syscalls.hpp"

int main() {
    bool fp = !util::failpoint("probe.point").ok();
    bool sys = util::sys::disabled("openat2");
    printf("compiled %s\nfailpoints %s\ndisable_syscalls %s\n", util::test_hooks_compiled() ? "yes" : "no",
           fp ? "read" : "ignored", sys ? "read" : "ignored");
    return 0;
}
