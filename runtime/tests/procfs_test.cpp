// rt::procfs: writes reach the real procfs file even when a host file is
// bind-mounted over its path (private instance), and with the fsopen family
// unavailable (kernels before 5.2) such a file is refused, never written.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "runtime/procfs.hpp"
#include "security_test_util.hpp"
#include "util/file.hpp"
#include "util/syscalls.hpp"

namespace {

/// In a child with its own mount namespace: binds a temp file holding "0"
/// over /proc/self/oom_score_adj, writes 7 through rt::procfs, and exits
/// 0 when the temp file still holds "0" and the write `expect_ok`-ly worked
/// (1: the host file got it, 2: the outcome differed, 3: setup failed).
int bound_over_child(bool disable_fsopen, bool expect_ok) {
    if (::unshare(CLONE_NEWNS) < 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) return 3;
    char tmpl[] = "/tmp/berth-procfs-XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd < 0 || ::write(fd, "0", 1) != 1) return 3;
    ::close(fd);
    std::string target = util::cat("/proc/", ::getpid(), "/oom_score_adj");
    int rc = 3;
    if (::mount(tmpl, target.c_str(), nullptr, MS_BIND, nullptr) == 0) {
        if (disable_fsopen) {
            util::sys::disable("fsopen");
            util::sys::disable("open_tree");
        }
        auto st = rt::procfs::write_self("oom_score_adj", "7");
        auto text = util::read_file(tmpl, 16);
        rc = !text || *text != "0" ? 1 : st.ok() != expect_ok ? 2 : 0;
        if (!st.ok() && st.error().code != EXDEV) rc = 2;
        ::umount2(target.c_str(), MNT_DETACH);
    }
    ::unlink(tmpl);
    return rc;
}

bool private_procfs_available() {
    int status = run_in_child([] { return rt::procfs::root().ok() ? 0 : 1; });
    return exited_with(status, 0);
}

}  // namespace

TEST_CASE("procfs writes never reach a file bound over the procfs path", "[procfs]") {
    if (::geteuid() != 0) {
        WARN("skipped: needs root (mount namespace and bind mounts)");
        return;
    }
    REQUIRE(private_procfs_available());
    // With fsopen/open_tree (5.2+): the private procfs has nothing mounted on it.
    CHECK(exited_with(run_in_child([] { return bound_over_child(false, true); }), 0));
    // Without them: /proc itself, where the bound file is found and refused.
    CHECK(exited_with(run_in_child([] { return bound_over_child(true, false); }), 0));
}
