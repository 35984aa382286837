// Unit tests of runtime/mounts (and the /dev steps it runs): which mounts a
// spec makes, with which flags and data, in which order, and what it
// refuses, checked on the calls a RecordingKernel kept. Nothing is mounted:
// the rootfs is a temporary directory, the tests need no root.
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "recording_kernel.hpp"
#include "runtime/mounts.hpp"
#include "runtime/spec.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace {

using rt::testing::Call;
using rt::testing::RecordingKernel;
using util::json::Value;

/// A temporary bundle: rootfs/ (with dev/ and proc/), a bind source
/// directory src/ and file src.txt; removed, and the cwd restored, at the end.
struct Bundle {
    std::string dir, rootfs;
    util::UniqueFd cwd{::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)};
    RecordingKernel sys;
    rt::mounts::RootfsOptions opts;

    Bundle() {
        char tmpl[] = "/tmp/berth-mounts-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        // The mount code compares paths with their real names.
        char *real = ::realpath(tmpl, nullptr);
        dir = real;
        ::free(real);
        rootfs = dir + "/rootfs";
        for (const char *d : {"/rootfs", "/rootfs/dev", "/rootfs/proc", "/rootfs/proc/sys", "/src"})
            REQUIRE(::mkdir((dir + d).c_str(), 0755) == 0);
        REQUIRE(util::atomic_write_file(dir + "/src.txt", "x").ok());
        sys.root = rootfs;
        opts.sys = &sys;
    }
    ~Bundle() {
        if (::fchdir(cwd.get()) < 0) FAIL("restore the cwd");
        (void)util::remove_tree(dir);
    }

    /// config.json with a mount namespace and the given `mounts` (and more, merged into "linux").
    rt::Spec spec(Value mounts, Value linux = Value::object()) const {
        Value doc = Value::parse(R"({"ociVersion": "1.0.2", "process": {"args": ["/bin/true"], "cwd": "/"},
                                    "linux": {"namespaces": [{"type": "mount"}]}})");
        doc["root"] = {{"path", rootfs}};
        doc["mounts"] = std::move(mounts);
        for (auto it = linux.begin(); it != linux.end(); ++it) doc["linux"][it.key()] = it.value();
        auto s = rt::parse_spec(doc, dir);
        REQUIRE(s.ok());
        return std::move(*s);
    }
    util::UniqueFd rootfd() const {
        auto fd = util::open_file(rootfs, O_PATH | O_DIRECTORY);
        REQUIRE(fd.ok());
        return std::move(*fd);
    }
    util::Status mount_one(Value m) {
        rt::Spec s = spec(Value::array({std::move(m)}));
        return rt::mounts::mount_entry(rootfd().get(), s.mounts.at(0), opts);
    }
    util::Status setup(const rt::Spec &s) { return rt::mounts::setup_rootfs(s, opts); }
};

bool is_mount(const Call &c, const std::string &target) { return c.op == "mount" && c.target == target; }

}  // namespace

TEST_CASE("a bind mount binds its source without MS_REC", "[mounts]") {
    Bundle b;
    REQUIRE(b.mount_one({{"destination", "/data"}, {"type", "bind"}, {"source", b.dir + "/src"}, {"options", {"bind"}}}).ok());
    REQUIRE(b.sys.calls.size() == 1);
    CHECK(b.sys.calls[0].op == "mount");
    CHECK(b.sys.calls[0].source == b.dir + "/src");
    CHECK(b.sys.calls[0].target == "ROOT/data");
    CHECK(b.sys.calls[0].flags == MS_BIND);
}

TEST_CASE("an rbind mount binds with MS_REC", "[mounts]") {
    Bundle b;
    REQUIRE(b.mount_one({{"destination", "/data"}, {"type", "bind"}, {"source", b.dir + "/src"}, {"options", {"rbind"}}}).ok());
    REQUIRE(b.sys.calls.size() == 1);
    CHECK(b.sys.calls[0].flags == (MS_BIND | MS_REC));
}

TEST_CASE("a read-only bind is remounted after the bind with ro, nosuid, nodev and noexec from its options",
          "[mounts]") {
    Bundle b;
    REQUIRE(b.mount_one({{"destination", "/data"},
                         {"type", "bind"},
                         {"source", b.dir + "/src"},
                         {"options", {"rbind", "ro", "nosuid", "nodev", "noexec"}}})
                .ok());
    REQUIRE(b.sys.calls.size() == 2);
    CHECK(b.sys.calls[0].flags == (MS_BIND | MS_REC));
    const Call &re = b.sys.calls[1];
    CHECK(re.target == "ROOT/data");
    CHECK(re.source.empty());
    unsigned long want = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    CHECK((re.flags & want) == want);
    CHECK((re.flags & MS_REC) == 0);
}

TEST_CASE("a bind's rw option clears a read-only flag the source's mount has", "[mounts]") {
    Bundle b;
    // Only the flags asked for: "rw" alone remounts, without MS_RDONLY.
    REQUIRE(b.mount_one({{"destination", "/data"}, {"type", "bind"}, {"source", b.dir + "/src"}, {"options", {"bind", "rw"}}})
                .ok());
    REQUIRE(b.sys.calls.size() == 2);
    CHECK((b.sys.calls[1].flags & (MS_BIND | MS_REMOUNT)) == (MS_BIND | MS_REMOUNT));
    CHECK((b.sys.calls[1].flags & MS_RDONLY) == 0);
}

TEST_CASE("a remount refused by locked flags is retried keeping the target's flags", "[mounts]") {
    Bundle b;
    b.sys.fail = [n = 0](const Call &c) mutable { return c.flags & MS_REMOUNT && n++ == 0 ? EPERM : 0; };
    REQUIRE(b.mount_one({{"destination", "/data"}, {"type", "bind"}, {"source", b.dir + "/src"}, {"options", {"bind", "ro"}}})
                .ok());
    REQUIRE(b.sys.calls.size() == 3);
    CHECK(b.sys.calls[1].flags & MS_RDONLY);
    CHECK((b.sys.calls[2].flags & b.sys.calls[1].flags) == b.sys.calls[1].flags);
}

TEST_CASE("a bind's propagation option is set on the target after the bind", "[mounts]") {
    Bundle b;
    REQUIRE(b.mount_one({{"destination", "/data"},
                         {"type", "bind"},
                         {"source", b.dir + "/src"},
                         {"options", {"rbind", "rprivate"}}})
                .ok());
    REQUIRE(b.sys.calls.size() == 2);
    CHECK(b.sys.calls[1].target == "ROOT/data");
    CHECK(b.sys.calls[1].flags == (MS_PRIVATE | MS_REC));
}

TEST_CASE("an rro bind is made read-only recursively with mount_setattr", "[mounts]") {
    Bundle b;
    REQUIRE(b.mount_one({{"destination", "/data"}, {"type", "bind"}, {"source", b.dir + "/src"}, {"options", {"rbind", "rro"}}})
                .ok());
    auto attrs = b.sys.of("mount_setattr");
    REQUIRE(attrs.size() == 1);
    CHECK(attrs[0].target == "ROOT/data");
    CHECK(attrs[0].flags == 1);  // MOUNT_ATTR_RDONLY
}

TEST_CASE("a bind of a file creates a file as its missing target", "[mounts]") {
    Bundle b;
    REQUIRE(b.mount_one({{"destination", "/etc/hosts"}, {"type", "bind"}, {"source", b.dir + "/src.txt"}}).ok());
    struct stat sb;
    REQUIRE(::stat((b.rootfs + "/etc/hosts").c_str(), &sb) == 0);
    CHECK(S_ISREG(sb.st_mode));
    CHECK(b.sys.calls.at(0).target == "ROOT/etc/hosts");
}

TEST_CASE("a bind of a missing source fails naming the source and mounts nothing", "[mounts]") {
    Bundle b;
    auto st = b.mount_one({{"destination", "/data"}, {"type", "bind"}, {"source", b.dir + "/missing"}});
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message(), Catch::Contains("source") && Catch::Contains("missing"));
    CHECK(b.sys.calls.empty());
}

TEST_CASE("a tmpfs is mounted with its type, its flag options as flags and the rest as data", "[mounts]") {
    Bundle b;
    REQUIRE(b.mount_one({{"destination", "/run"},
                         {"type", "tmpfs"},
                         {"source", "tmpfs"},
                         {"options", {"nosuid", "nodev", "noexec", "mode=755", "size=65536k"}}})
                .ok());
    REQUIRE(b.sys.calls.size() == 1);
    const Call &c = b.sys.calls[0];
    CHECK(c.source == "tmpfs");
    CHECK(c.target == "ROOT/run");
    CHECK(c.fstype == "tmpfs");
    CHECK(c.flags == (MS_NOSUID | MS_NODEV | MS_NOEXEC));
    CHECK(c.data == "mode=755,size=65536k");
}

TEST_CASE("a mount without a source uses its type as the source", "[mounts]") {
    Bundle b;
    REQUIRE(b.mount_one({{"destination", "/dev/mqueue"}, {"type", "mqueue"}}).ok());
    REQUIRE(b.sys.calls.size() == 1);
    CHECK(b.sys.calls[0].source == "mqueue");
    CHECK(b.sys.calls[0].fstype == "mqueue");
}

TEST_CASE("sysfs refused by the kernel is replaced by a read-only rbind of the host's /sys", "[mounts]") {
    Bundle b;
    b.sys.fail = [](const Call &c) { return c.fstype == "sysfs" ? EPERM : 0; };
    REQUIRE(b.mount_one({{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"}, {"options", {"nosuid", "noexec"}}})
                .ok());
    REQUIRE(b.sys.calls.size() == 3);
    CHECK(b.sys.calls[1].source == "/sys");
    CHECK(b.sys.calls[1].flags == (MS_BIND | MS_REC));
    unsigned long want = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC;
    CHECK((b.sys.calls[2].flags & want) == want);
    CHECK(b.sys.calls[2].target == "ROOT/sys");
}

TEST_CASE("a failed mount names its destination and type", "[mounts]") {
    Bundle b;
    b.sys.fail = [](const Call &) { return ENODEV; };
    auto st = b.mount_one({{"destination", "/x"}, {"type", "nosuchfs"}});
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == ENODEV);
    CHECK_THAT(st.error().message(), Catch::Contains("mount `/x` (nosuchfs)"));
}

TEST_CASE("a bind into /proc is refused before anything is mounted", "[mounts][proc]") {
    Bundle b;
    auto st = b.mount_one({{"destination", "/proc/sys/x"}, {"type", "bind"}, {"source", b.dir + "/src"}});
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message(), Catch::Contains("inside `/proc`; refused"));
    CHECK(b.sys.of("mount").empty());
}

TEST_CASE("a bind through a symlink that resolves into /proc is refused", "[mounts][proc]") {
    Bundle b;
    REQUIRE(::symlink("/proc/sys", (b.rootfs + "/link").c_str()) == 0);
    auto st = b.mount_one({{"destination", "/link"}, {"type", "bind"}, {"source", b.dir + "/src"}});
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message(), Catch::Contains("`/proc/sys`"));
    CHECK(b.sys.of("mount").empty());
}

TEST_CASE("a tmpfs on /proc is refused: only a procfs may be mounted there", "[mounts][proc]") {
    Bundle b;
    auto st = b.mount_one({{"destination", "/proc"}, {"type", "tmpfs"}});
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message(), Catch::Contains("only a procfs may be mounted on `/proc`"));
    CHECK(b.sys.calls.empty());
}

TEST_CASE("a procfs on /proc is mounted", "[mounts][proc]") {
    Bundle b;
    REQUIRE(b.mount_one({{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}}).ok());
    REQUIRE(b.sys.calls.size() == 1);
    CHECK(b.sys.calls[0].fstype == "proc");
    CHECK(b.sys.calls[0].target == "ROOT/proc");
}

TEST_CASE("a bind of a file over an lxcfs entry in /proc is accepted", "[mounts][proc]") {
    Bundle b;
    REQUIRE(b.mount_one({{"destination", "/proc/meminfo"}, {"type", "bind"}, {"source", b.dir + "/src.txt"}}).ok());
    REQUIRE(b.sys.calls.size() == 1);
    CHECK(b.sys.calls[0].target == "ROOT/proc/meminfo");
}

TEST_CASE("without a mount namespace, mounts and path rules are refused", "[mounts][nomntns]") {
    Bundle b;
    rt::Spec s = b.spec(Value::array());
    s.namespaces.clear();
    CHECK(rt::mounts::check_without_mount_ns(s, false).ok());
    CHECK_FALSE(rt::mounts::check_without_mount_ns(s, true).ok());
    auto refused = [&](rt::Spec t, const char *what) {
        auto st = rt::mounts::check_without_mount_ns(t, false);
        REQUIRE_FALSE(st.ok());
        CHECK_THAT(st.error().message(), Catch::Contains(what) && Catch::Contains("needs a mount namespace"));
    };
    rt::Spec t = s;
    t.mounts.push_back(rt::Mount{});
    refused(t, "`mounts`");
    t = s;
    t.masked_paths.push_back("/proc/kcore");
    refused(t, "maskedPaths");
    t = s;
    t.readonly_paths.push_back("/proc/sys");
    refused(t, "readonlyPaths");
    t = s;
    t.rootfs_propagation = MS_SHARED;
    refused(t, "rootfsPropagation");
    t = s;
    t.root_readonly = true;
    refused(t, "root.readonly");
}

TEST_CASE("without a mount namespace the init only makes devices and chroots into the rootfs", "[mounts][nomntns]") {
    Bundle b;
    rt::Spec s = b.spec(Value::array());
    s.namespaces.clear();
    REQUIRE(b.setup(s).ok());
    REQUIRE_FALSE(b.sys.calls.empty());
    CHECK(b.sys.calls.back().op == "chroot");
    CHECK(b.sys.calls.back().target == "ROOT");
    CHECK(b.sys.of("pivot_root").empty());
    for (const auto &c : b.sys.of("mount")) {
        INFO(c.target);
        // Only the host's device nodes, bound onto files in the rootfs's /dev.
        CHECK(c.target.starts_with("ROOT/dev/"));
        CHECK(c.flags == MS_BIND);
    }
}

TEST_CASE("the rootfs: / made rslave, then the rootfs bound onto itself, then the spec's mounts, then pivot_root",
          "[mounts][order]") {
    Bundle b;
    rt::Spec s = b.spec(Value::array({{{"destination", "/run"}, {"type", "tmpfs"}}}));
    REQUIRE(b.setup(s).ok());
    const auto &calls = b.sys.calls;
    REQUIRE(calls.size() >= 4);
    CHECK(is_mount(calls[0], "/"));
    CHECK(calls[0].flags == (MS_SLAVE | MS_REC));
    CHECK(is_mount(calls[1], "ROOT"));
    CHECK(calls[1].source == "ROOT");
    CHECK(calls[1].flags == (MS_BIND | MS_REC));
    CHECK(is_mount(calls[2], "ROOT/run"));
    long pivot = b.sys.index_of([](const Call &c) { return c.op == "pivot_root"; });
    REQUIRE(pivot > 2);
    CHECK(calls[pivot].source == "ROOT");
    CHECK(calls[pivot].target == "ROOT");
    // The old root stacked on `/` is made rslave, then detached.
    REQUIRE(calls.size() == static_cast<size_t>(pivot) + 3);
    CHECK(is_mount(calls[pivot + 1], "/"));
    CHECK(calls[pivot + 1].flags == (MS_SLAVE | MS_REC));
    CHECK(calls[pivot + 2].op == "umount2");
    CHECK(calls[pivot + 2].flags == MNT_DETACH);
}

TEST_CASE("the default devices are bound from the host when mknod is not allowed", "[mounts][devices]") {
    Bundle b;
    REQUIRE(b.setup(b.spec(Value::array())).ok());
    for (const char *d : {"null", "zero", "full", "random", "urandom", "tty"}) {
        INFO(d);
        long i = b.sys.index_of([&](const Call &c) { return is_mount(c, util::cat("ROOT/dev/", d)); });
        REQUIRE(i >= 0);
        CHECK(b.sys.calls[i].source == util::cat("/dev/", d));
        CHECK(b.sys.calls[i].flags == MS_BIND);
    }
    long stdin_link = b.sys.index_of([](const Call &c) { return c.op == "symlinkat" && c.target == "ROOT/dev/stdin"; });
    REQUIRE(stdin_link >= 0);
    CHECK(b.sys.calls[stdin_link].source == "/proc/self/fd/0");
}

TEST_CASE("masked paths: a directory gets an empty read-only tmpfs, a file gets /dev/null, after the devices",
          "[mounts][order]") {
    Bundle b;
    REQUIRE(::mkdir((b.rootfs + "/proc/acpi").c_str(), 0755) == 0);
    REQUIRE(util::atomic_write_file(b.rootfs + "/proc/kcore", "").ok());
    rt::Spec s = b.spec(Value::array(), {{"maskedPaths", {"/proc/acpi", "/proc/kcore", "/proc/missing"}}});
    REQUIRE(b.setup(s).ok());
    long null_dev = b.sys.index_of([](const Call &c) { return is_mount(c, "ROOT/dev/null"); });
    long dir = b.sys.index_of([](const Call &c) { return is_mount(c, "ROOT/proc/acpi"); });
    long file = b.sys.index_of([](const Call &c) { return is_mount(c, "ROOT/proc/kcore"); });
    REQUIRE(null_dev >= 0);
    REQUIRE(dir > null_dev);
    REQUIRE(file > dir);
    CHECK(b.sys.calls[dir].fstype == "tmpfs");
    CHECK(b.sys.calls[dir].flags == (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC));
    CHECK(b.sys.calls[dir].data == "size=0,mode=000");
    CHECK(b.sys.calls[file].source == "ROOT/dev/null");
    CHECK(b.sys.calls[file].flags == MS_BIND);
    CHECK(b.sys.index_of([](const Call &c) { return c.target == "ROOT/proc/missing"; }) == -1);
}

TEST_CASE("read-only paths are bound onto themselves then remounted read-only, nosuid, nodev, noexec", "[mounts]") {
    Bundle b;
    rt::Spec s = b.spec(Value::array(), {{"readonlyPaths", {"/proc/sys"}}});
    REQUIRE(b.setup(s).ok());
    long bind = b.sys.index_of([](const Call &c) { return is_mount(c, "ROOT/proc/sys") && !(c.flags & MS_REMOUNT); });
    REQUIRE(bind >= 0);
    CHECK(b.sys.calls[bind].source == "ROOT/proc/sys");
    CHECK(b.sys.calls[bind].flags == (MS_BIND | MS_REC));
    const Call &re = b.sys.calls.at(bind + 1);
    CHECK(re.target == "ROOT/proc/sys");
    unsigned long want = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    CHECK((re.flags & want) == want);
}

TEST_CASE("rootfsPropagation shared is set on / only after pivot_root", "[mounts][order]") {
    Bundle b;
    rt::Spec s = b.spec(Value::array(), {{"rootfsPropagation", "shared"}});
    REQUIRE(b.setup(s).ok());
    CHECK(b.sys.calls.front().flags == (MS_SLAVE | MS_REC));
    long pivot = b.sys.index_of([](const Call &c) { return c.op == "pivot_root"; });
    REQUIRE(pivot >= 0);
    CHECK(is_mount(b.sys.calls.back(), "/"));
    CHECK(b.sys.calls.back().flags == s.rootfs_propagation);
    CHECK(b.sys.calls.back().flags & MS_SHARED);
}

TEST_CASE("rootfsPropagation private is set on / before the rootfs bind", "[mounts][order]") {
    Bundle b;
    rt::Spec s = b.spec(Value::array(), {{"rootfsPropagation", "rprivate"}});
    REQUIRE(b.setup(s).ok());
    CHECK(is_mount(b.sys.calls.front(), "/"));
    CHECK(b.sys.calls.front().flags == (MS_PRIVATE | MS_REC));
    CHECK(is_mount(b.sys.calls[1], "ROOT"));
}

TEST_CASE("root.readonly remounts / read-only as the last step", "[mounts][order]") {
    Bundle b;
    rt::Spec s = b.spec(Value::array());
    s.root_readonly = true;
    REQUIRE(b.setup(s).ok());
    const Call &last = b.sys.calls.back();
    CHECK(is_mount(last, "/"));
    CHECK((last.flags & (MS_BIND | MS_REMOUNT | MS_RDONLY)) == (MS_BIND | MS_REMOUNT | MS_RDONLY));
}

TEST_CASE("with --no-pivot the rootfs is moved onto / and chrooted into", "[mounts][order]") {
    Bundle b;
    b.opts.no_pivot = true;
    REQUIRE(b.setup(b.spec(Value::array())).ok());
    CHECK(b.sys.of("pivot_root").empty());
    long move = b.sys.index_of([](const Call &c) { return c.op == "mount" && (c.flags & MS_MOVE); });
    REQUIRE(move >= 0);
    CHECK(b.sys.calls[move].source == "ROOT");
    CHECK(b.sys.calls[move].target == "/");
    REQUIRE(b.sys.calls.at(move + 1).op == "chroot");
    CHECK(b.sys.calls[move + 1].target == "ROOT");
}

TEST_CASE("pivot_root refused with EINVAL (an initramfs root) falls back to moving the rootfs", "[mounts][order]") {
    Bundle b;
    b.sys.fail = [](const Call &c) { return c.op == "pivot_root" ? EINVAL : 0; };
    REQUIRE(b.setup(b.spec(Value::array())).ok());
    long pivot = b.sys.index_of([](const Call &c) { return c.op == "pivot_root"; });
    long move = b.sys.index_of([](const Call &c) { return c.op == "mount" && (c.flags & MS_MOVE); });
    REQUIRE(pivot >= 0);
    CHECK(move > pivot);
}

TEST_CASE("pivot_root failing otherwise stops the setup", "[mounts]") {
    Bundle b;
    b.sys.fail = [](const Call &c) { return c.op == "pivot_root" ? EPERM : 0; };
    auto st = b.setup(b.spec(Value::array()));
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message(), Catch::Contains("pivot_root"));
    CHECK(b.sys.of("chroot").empty());
}

TEST_CASE("a mount refused into /proc stops the setup before pivot_root", "[mounts][proc]") {
    Bundle b;
    rt::Spec s = b.spec(Value::array({{{"destination", "/proc/sys/kernel"}, {"type", "tmpfs"}}}));
    auto st = b.setup(s);
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message(), Catch::Contains("mount `/proc/sys/kernel`"));
    CHECK(b.sys.of("pivot_root").empty());
}

TEST_CASE("a cgroup mount on a v1 or hybrid host is a tmpfs holding a bind of each hierarchy, then made read-only",
          "[mounts][cgroup]") {
    auto infos = rt::mounts::read_mountinfo();
    REQUIRE(infos.ok());
    std::vector<std::string> hierarchies;
    bool v2_root = false;
    for (const auto &mi : *infos) {
        if (mi.mount_point == "/sys/fs/cgroup" && mi.fs_type == "cgroup2") v2_root = true;
        if ((mi.fs_type == "cgroup" || mi.fs_type == "cgroup2") && mi.mount_point.starts_with("/sys/fs/cgroup/") &&
            mi.mount_point.find('/', 15) == std::string::npos)
            hierarchies.push_back(mi.mount_point.substr(15));
    }
    if (v2_root || hierarchies.empty()) {
        WARN("the host has no v1 cgroup hierarchies under /sys/fs/cgroup: nothing to check");
        return;
    }
    Bundle b;
    REQUIRE(b.mount_one({{"destination", "/sys/fs/cgroup"}, {"type", "cgroup"}, {"source", "cgroup"},
                         {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}})
                .ok());
    const auto &calls = b.sys.calls;
    REQUIRE_FALSE(calls.empty());
    CHECK(calls.front().fstype == "tmpfs");
    CHECK(calls.front().target == "ROOT/sys/fs/cgroup");
    CHECK((calls.front().flags & MS_RDONLY) == 0);
    for (const auto &h : hierarchies) {
        INFO(h);
        std::string target = "ROOT/sys/fs/cgroup/" + h;
        long bind = b.sys.index_of([&](const Call &c) { return is_mount(c, target) && c.flags == MS_BIND; });
        REQUIRE(bind > 0);
        CHECK(b.sys.calls[bind].source.starts_with("/sys/fs/cgroup/" + h));
        const Call &re = b.sys.calls.at(bind + 1);
        CHECK(re.target == target);
        unsigned long want = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
        CHECK((re.flags & want) == want);
        // Co-mounted controllers get a symlink each, as on the host (cpu -> cpu,cpuacct).
        if (h.find(',') != std::string::npos)
            for (const auto &c : util::split(h, ','))
                CHECK(b.sys.index_of([&](const Call &l) {
                    return l.op == "symlinkat" && l.source == h && l.target == "ROOT/sys/fs/cgroup/" + c;
                }) > bind);
    }
    // The tmpfs itself is made read-only last.
    CHECK(is_mount(calls.back(), "ROOT/sys/fs/cgroup"));
    CHECK((calls.back().flags & (MS_REMOUNT | MS_RDONLY)) == (MS_REMOUNT | MS_RDONLY));
}
