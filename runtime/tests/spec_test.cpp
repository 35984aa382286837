// Unit tests of runtime/spec: config.json parsing, type errors naming the
// field, mount option flags, namespaces, mappings, devices. Documents built
// in C++ use unsigned literals where config.json text would give unsigned
// numbers (nlohmann keeps the signedness of the C++ value).
#include <sched.h>
#include <sys/mount.h>

#include <catch2/catch.hpp>

#include "runtime/namespaces.hpp"
#include "runtime/spec.hpp"

namespace {

using util::json::Value;

Value minimal() {
    return Value::parse(R"({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["/bin/true"], "cwd": "/"},
        "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
    })");
}

std::string error_of(const Value &doc) {
    auto r = rt::parse_spec(doc, "/b");
    REQUIRE_FALSE(r.ok());
    return r.error().message();
}

}  // namespace

TEST_CASE("a minimal spec parses", "[spec]") {
    auto s = rt::parse_spec(minimal(), "/bundle");
    REQUIRE(s.ok());
    CHECK(s->root_path == "/bundle/rootfs");
    CHECK(s->process->args == std::vector<std::string>{"/bin/true"});
    CHECK(s->find_namespace(CLONE_NEWNS) != nullptr);
    CHECK(s->find_namespace(CLONE_NEWNET) == nullptr);
    CHECK(s->process->cwd == "/");
    CHECK_FALSE(s->process->no_new_privileges);
    CHECK(s->hooks.is_null());
}

TEST_CASE("absolute root path is kept", "[spec]") {
    auto doc = minimal();
    doc["root"]["path"] = "/srv/root";
    doc["root"]["readonly"] = true;
    auto s = rt::parse_spec(doc, "/bundle");
    REQUIRE(s.ok());
    CHECK(s->root_path == "/srv/root");
    CHECK(s->root_readonly);
}

TEST_CASE("wrong types name the field", "[spec]") {
    auto doc = minimal();
    doc["process"]["args"] = "sh";
    CHECK_THAT(error_of(doc), Catch::Contains("`process.args`"));
    doc = minimal();
    doc["process"]["user"] = {{"uid", "root"}};
    CHECK_THAT(error_of(doc), Catch::Contains("`process.user.uid`"));
    doc = minimal();
    doc["hostname"] = 5;
    CHECK_THAT(error_of(doc), Catch::Contains("`hostname`"));
    doc = minimal();
    doc["linux"]["sysctl"] = {{"net.ipv4.ip_forward", 1}};
    CHECK_THAT(error_of(doc), Catch::Contains("`linux.sysctl.net.ipv4.ip_forward`"));
    doc = minimal();
    doc["annotations"] = {{"a", true}};
    CHECK_THAT(error_of(doc), Catch::Contains("`annotations.a`"));
    doc = minimal();
    doc["process"]["env"] = {"NOEQUALS"};
    CHECK_THAT(error_of(doc), Catch::Contains("`process.env[0]`"));
}

TEST_CASE("missing required fields", "[spec]") {
    auto doc = minimal();
    doc.erase("ociVersion");
    CHECK_THAT(error_of(doc), Catch::Contains("ociVersion"));
    doc = minimal();
    doc.erase("root");
    CHECK_THAT(error_of(doc), Catch::Contains("`root`"));
    doc = minimal();
    doc["process"]["args"] = Value::array();
    CHECK_THAT(error_of(doc), Catch::Contains("`process.args`"));
    doc = minimal();
    doc["ociVersion"] = "2.0.0";
    CHECK_THAT(error_of(doc), Catch::Contains("unsupported version"));
    doc = minimal();
    doc["process"]["cwd"] = "relative";
    CHECK_THAT(error_of(doc), Catch::Contains("`process.cwd`"));
}

TEST_CASE("namespaces", "[spec]") {
    auto doc = minimal();
    doc["linux"]["namespaces"].push_back({{"type", "bogus"}});
    CHECK_THAT(error_of(doc), Catch::Contains("`linux.namespaces[2].type`: unknown namespace `bogus`"));
    doc = minimal();
    doc["linux"]["namespaces"].push_back({{"type", "pid"}});
    CHECK_THAT(error_of(doc), Catch::Contains("listed twice"));
    doc = minimal();
    doc["linux"]["namespaces"].push_back({{"type", "network"}, {"path", "/proc/1/ns/net"}});
    auto s = rt::parse_spec(doc, "/b");
    REQUIRE(s.ok());
    CHECK(s->find_namespace(CLONE_NEWNET)->path == "/proc/1/ns/net");
    CHECK(std::string(rt::namespace_name(CLONE_NEWNET)) == "net");
    CHECK(std::string(rt::namespace_name(CLONE_NEWNS)) == "mnt");
}

TEST_CASE("uid/gid mappings need a user namespace", "[spec]") {
    auto doc = minimal();
    doc["linux"]["uidMappings"] = {{{"containerID", 0u}, {"hostID", 1000u}, {"size", 1u}}};
    CHECK_THAT(error_of(doc), Catch::Contains("without a user namespace"));
    doc["linux"]["namespaces"].push_back({{"type", "user"}});
    CHECK_THAT(error_of(doc), Catch::Contains("needs uidMappings and gidMappings"));
    doc["linux"]["gidMappings"] = {{{"containerID", 0u}, {"hostID", 1000u}, {"size", 1u}}};
    auto s = rt::parse_spec(doc, "/b");
    REQUIRE(s.ok());
    REQUIRE(s->uid_mappings.size() == 1);
    CHECK(s->uid_mappings[0].host_id == 1000);
    doc["linux"]["gidMappings"][0]["size"] = 0u;
    CHECK_THAT(error_of(doc), Catch::Contains("`linux.gidMappings[0].size`"));
}

TEST_CASE("mount options become flags and data", "[spec][mounts]") {
    rt::Mount m;
    m.type = "tmpfs";
    m.options = {"nosuid", "noexec", "nodev", "ro", "mode=755", "size=1m", "rprivate"};
    REQUIRE(rt::parse_mount_options(m, "mounts[0]").ok());
    CHECK(m.flags == (MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY));
    CHECK(m.data == "mode=755,size=1m");
    CHECK(m.propagation == (MS_PRIVATE | MS_REC));
    CHECK_FALSE(m.is_bind());

    rt::Mount b;
    b.options = {"rbind", "ro", "rw"};
    REQUIRE(rt::parse_mount_options(b, "mounts[1]").ok());
    CHECK(b.is_bind());
    CHECK((b.flags & MS_REC) != 0);
    CHECK((b.flags & MS_RDONLY) == 0);
    CHECK((b.clear_flags & MS_RDONLY) != 0);

    rt::Mount r;
    r.type = "bind";
    r.options = {"rro"};
    REQUIRE(rt::parse_mount_options(r, "mounts[2]").ok());
    CHECK(r.recursive_readonly);
    CHECK(r.is_bind());
}

TEST_CASE("mounts: bind sources are resolved against the bundle, destinations checked", "[spec][mounts]") {
    auto doc = minimal();
    doc["mounts"] = {{{"destination", "/data"}, {"type", "none"}, {"source", "data"}, {"options", {"bind"}}},
                     {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}}};
    auto s = rt::parse_spec(doc, "/bundle");
    REQUIRE(s.ok());
    REQUIRE(s->mounts.size() == 2);
    CHECK(s->mounts[0].source == "/bundle/data");
    CHECK(s->mounts[0].type == "bind");
    CHECK(s->mounts[1].type == "proc");
    doc["mounts"][1]["destination"] = "/proc/../etc";
    CHECK_THAT(error_of(doc), Catch::Contains("`mounts[1].destination`"));
    doc["mounts"][1]["destination"] = "proc";
    CHECK_THAT(error_of(doc), Catch::Contains("not an absolute path"));
    doc["mounts"][1] = {{"destination", "/x"}};
    CHECK_THAT(error_of(doc), Catch::Contains("`mounts[1].type`: missing"));
}

TEST_CASE("devices", "[spec]") {
    auto doc = minimal();
    doc["linux"]["devices"] = {{{"path", "/dev/fuse"}, {"type", "c"}, {"major", 10}, {"minor", 229}, {"fileMode", 0666u}}};
    auto s = rt::parse_spec(doc, "/b");
    REQUIRE(s.ok());
    REQUIRE(s->devices.size() == 1);
    CHECK(s->devices[0].type == 'c');
    CHECK(s->devices[0].file_mode == 0666u);
    doc["linux"]["devices"][0]["type"] = "x";
    CHECK_THAT(error_of(doc), Catch::Contains("`linux.devices[0].type`"));
    doc["linux"]["devices"][0]["type"] = "b";
    doc["linux"]["devices"][0].erase("major");
    CHECK_THAT(error_of(doc), Catch::Contains("major and minor are required"));
}

TEST_CASE("device rules keep the default devices usable", "[spec]") {
    auto doc = minimal();
    doc["linux"]["resources"] = {{"devices", {{{"allow", false}, {"access", "rwm"}}}}};
    auto s = rt::parse_spec(doc, "/b");
    REQUIRE(s.ok());
    bool null_allowed = false;
    for (const auto &r : s->resources.devices)
        if (r.allow && r.type == 'c' && r.major == 1 && r.minor == 3) null_allowed = true;
    CHECK_FALSE(s->resources.devices.front().allow);
    CHECK(null_allowed);
}

TEST_CASE("misc linux fields", "[spec]") {
    auto doc = minimal();
    doc["linux"]["rootfsPropagation"] = "rshared";
    doc["linux"]["maskedPaths"] = {"/proc/kcore"};
    doc["linux"]["readonlyPaths"] = {"/proc/sys"};
    doc["linux"]["cgroupsPath"] = "/a/b";
    doc["hostname"] = "h";
    doc["linux"]["namespaces"].push_back({{"type", "uts"}});
    auto s = rt::parse_spec(doc, "/b");
    REQUIRE(s.ok());
    CHECK(s->rootfs_propagation == (MS_SHARED | MS_REC));
    CHECK(s->masked_paths == std::vector<std::string>{"/proc/kcore"});
    CHECK(s->cgroups_path == "/a/b");
    CHECK(s->hostname == "h");
    doc["linux"]["rootfsPropagation"] = "sideways";
    CHECK_THAT(error_of(doc), Catch::Contains("`linux.rootfsPropagation`"));
    doc = minimal();
    doc["hostname"] = "h";
    CHECK_THAT(error_of(doc), Catch::Contains("uts namespace"));
    doc = minimal();
    doc["linux"]["timeOffsets"] = {{"monotonic", {{"secs", 10}}}};
    CHECK_THAT(error_of(doc), Catch::Contains("without a time namespace"));
    doc["linux"]["namespaces"].push_back({{"type", "time"}});
    s = rt::parse_spec(doc, "/b");
    REQUIRE(s.ok());
    REQUIRE(s->time_offsets.size() == 1);
    CHECK(s->time_offsets[0].secs == 10);
}

TEST_CASE("exec --process files parse like process", "[spec]") {
    auto p = rt::parse_process(Value::parse(R"({"args": ["ls"], "env": ["A=b"], "terminal": true,
        "consoleSize": {"height": 24, "width": 80}, "user": {"uid": 5, "gid": 6, "umask": 18}})"),
                               "process");
    REQUIRE(p.ok());
    CHECK(p->terminal);
    CHECK(p->console_size->first == 24);
    CHECK(p->user.uid == 5);
    CHECK(p->user.umask == 18u);
    CHECK(p->cwd == "/");
    auto bad = rt::parse_process(Value::parse(R"({"args": ["ls"], "oomScoreAdj": 5000})"), "process");
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(bad.error().message(), Catch::Contains("`process.oomScoreAdj`"));
}

TEST_CASE("clone flags: created namespaces only; time and cgroup come later", "[namespaces]") {
    auto doc = minimal();
    doc["linux"]["namespaces"] = {{{"type", "mount"}},  {{"type", "pid"}},  {{"type", "network"}, {"path", "/x"}},
                                  {{"type", "cgroup"}}, {{"type", "time"}}, {{"type", "uts"}}};
    auto s = rt::parse_spec(doc, "/b");
    REQUIRE(s.ok());
    int f = rt::ns::clone_flags(*s);
    CHECK(f == (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS));
    CHECK(rt::ns::wants_new_cgroupns(*s));
    CHECK(rt::ns::unshare_after_join(*s) == 0);
    // Joining a user namespace by path: the others are unshared after setns.
    doc["linux"]["namespaces"].push_back({{"type", "user"}, {"path", "/proc/1/ns/user"}});
    s = rt::parse_spec(doc, "/b");
    REQUIRE(s.ok());
    CHECK(rt::ns::clone_flags(*s) == CLONE_NEWPID);
    CHECK(rt::ns::unshare_after_join(*s) == (CLONE_NEWNS | CLONE_NEWUTS));
}
