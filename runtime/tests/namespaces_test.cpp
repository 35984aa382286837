// Unit tests of runtime/namespaces: which namespaces the runtime joins or
// creates before clone and which the init joins (user first), checked on
// the setns and unshare calls a RecordingKernel kept. Namespace "files" are
// temporary files here: nothing is joined, the tests need no root.
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "recording_kernel.hpp"
#include "runtime/namespaces.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace {

using rt::testing::Call;
using rt::testing::RecordingKernel;

/// Stand-ins for namespace files: one temporary file per type, named after
/// it, so a recorded setns names the namespace it was given.
struct NsFiles {
    std::string dir;
    NsFiles() {
        char tmpl[] = "/tmp/berth-ns-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
    }
    ~NsFiles() { (void)util::remove_tree(dir); }

    std::vector<rt::ns::Join> joins(std::initializer_list<int> types) const {
        std::vector<rt::ns::Join> out;
        for (int t : types) {
            std::string path = util::cat(dir, '/', rt::namespace_name(t));
            auto fd = util::open_file(path, O_RDWR | O_CREAT, 0600);
            REQUIRE(fd.ok());
            out.push_back({t, std::move(*fd)});
        }
        return out;
    }
};

/// The namespace types of the recorded setns calls, in order.
std::vector<int> joined(const RecordingKernel &sys) {
    std::vector<int> out;
    for (const auto &c : sys.of("setns")) out.push_back(static_cast<int>(c.flags));
    return out;
}

rt::Spec spec_with(std::vector<rt::Namespace> namespaces) {
    rt::Spec s;
    s.namespaces = std::move(namespaces);
    return s;
}

}  // namespace

TEST_CASE("the init joins the user namespace before the others, the others in the spec's order", "[namespaces]") {
    NsFiles f;
    RecordingKernel sys;
    auto joins = f.joins({CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWUTS});
    REQUIRE(rt::ns::join_in_init(joins, sys).ok());
    CHECK(joined(sys) == std::vector<int>{CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS});
    // setns got the fd of the path given for each type.
    CHECK(sys.of("setns").at(0).target == f.dir + "/user");
}

TEST_CASE("the init closes each namespace fd once it has joined it", "[namespaces]") {
    NsFiles f;
    RecordingKernel sys;
    auto joins = f.joins({CLONE_NEWNET, CLONE_NEWUSER});
    REQUIRE(rt::ns::join_in_init(joins, sys).ok());
    for (const auto &j : joins) CHECK_FALSE(j.fd.valid());
}

TEST_CASE("the init skips namespaces the runtime already joined", "[namespaces]") {
    NsFiles f;
    RecordingKernel sys;
    auto joins = f.joins({CLONE_NEWPID, CLONE_NEWNET});
    joins[0].fd.reset();  // as prepare_for_children leaves a pid namespace
    REQUIRE(rt::ns::join_in_init(joins, sys).ok());
    CHECK(joined(sys) == std::vector<int>{CLONE_NEWNET});
}

TEST_CASE("a refused setns in the init names the namespace and stops the joins", "[namespaces]") {
    NsFiles f;
    RecordingKernel sys;
    sys.fail = [](const Call &c) { return c.flags == CLONE_NEWNET ? EPERM : 0; };
    auto joins = f.joins({CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWIPC});
    auto st = rt::ns::join_in_init(joins, sys);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == EPERM);
    CHECK_THAT(st.error().message(), Catch::Contains("join net namespace"));
    CHECK(joined(sys) == std::vector<int>{CLONE_NEWUSER, CLONE_NEWNET});
}

TEST_CASE("before clone the runtime joins only a pid or time namespace given by path", "[namespaces]") {
    NsFiles f;
    RecordingKernel sys;
    auto joins = f.joins({CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET});
    rt::Spec s = spec_with({{CLONE_NEWUSER, "/u"}, {CLONE_NEWPID, "/p"}, {CLONE_NEWNET, "/n"}});
    REQUIRE(rt::ns::prepare_for_children(s, joins, sys).ok());
    CHECK(joined(sys) == std::vector<int>{CLONE_NEWPID});
    CHECK(sys.of("unshare").empty());
    // The rest are left for the init.
    CHECK(joins[0].fd.valid());
    CHECK_FALSE(joins[1].fd.valid());
    CHECK(joins[2].fd.valid());
}

TEST_CASE("before clone the runtime creates a new time namespace with unshare", "[namespaces]") {
    NsFiles f;
    RecordingKernel sys;
    std::vector<rt::ns::Join> joins;
    rt::Spec s = spec_with({{CLONE_NEWPID, ""}, {rt::ns::kCloneNewTime, ""}});
    REQUIRE(rt::ns::prepare_for_children(s, joins, sys).ok());
    auto un = sys.of("unshare");
    REQUIRE(un.size() == 1);
    CHECK(un[0].flags == static_cast<unsigned long>(rt::ns::kCloneNewTime));
    CHECK(sys.of("setns").empty());
}

TEST_CASE("clone creates a new user namespace together with the others", "[namespaces]") {
    rt::Spec s = spec_with({{CLONE_NEWUSER, ""}, {CLONE_NEWNS, ""}, {CLONE_NEWNET, ""}});
    CHECK(rt::ns::clone_flags(s) == (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET));
    CHECK(rt::ns::unshare_after_join(s) == 0);
}
