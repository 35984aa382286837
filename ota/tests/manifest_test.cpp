// The update manifest parser and the board's app limits: a full manifest
// read field by field, each kind of bad input refused with the field's path
// in a one-line message, the start order, the digest of the exact bytes, and
// the devices and capabilities a board profile allows.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "image/digest.hpp"
#include "ota/manifest.hpp"
#include "util/file.hpp"
#include "util/json.hpp"

using namespace ota;
using util::json::Value;

namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');
const std::string kImage = "localhost:5000/sensor@" + kDigest;

/// The docs' example: two containers, one depends on the other, an http
/// health check, a volume.
const char *const kFull = R"({
  "version": 7,
  "name": "sensor 2.0",
  "health_window": "90s",
  "containers": [
    {
      "name": "web",
      "image": "localhost:5000/web:2.0@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
      "args": ["--port", "8080"],
      "env": ["MODE=gateway", "EMPTY="],
      "workdir": "/srv",
      "user": "1000:1000",
      "depends_on": ["sensor"],
      "restart": "on-failure:5",
      "health": {"kind": "http", "port": 8080, "path": "/healthz", "interval": "2s", "timeout": 500,
                 "start_period": "1m", "retries": 4},
      "resources": {"memory": "64m", "cpus": 0.5, "pids": 100},
      "network": "host",
      "stop_signal": "SIGINT",
      "stop_grace": "3s"
    },
    {
      "name": "sensor",
      "image": "localhost:5000/sensor@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "restart": "always",
      "health": {"kind": "exec", "command": ["/bin/check", "-q"]},
      "devices": [{"path": "/dev/ttyUSB0", "permissions": "rw"}, {"path": "/dev/i2c-1"}],
      "capabilities": ["CAP_NET_ADMIN"],
      "network": "none",
      "volumes": [{"name": "readings", "path": "/var/lib/sensor"},
                  {"name": "calib", "path": "/etc/calib", "readonly": true}],
      "stop_signal": 10
    }
  ]
})";

Value full() { return Value::parse(kFull); }

/// A one-container manifest to modify.
Value minimal() {
    return Value{
        {"version", 1}, {"name", "app"}, {"containers", Value::array({Value{{"name", "app"}, {"image", kImage}}})}};
}

/// `doc` with the value at JSON pointer `where` replaced by (or set to) `v`.
Value with(Value doc, const std::string &where, Value v) {
    doc[Value::json_pointer(where)] = std::move(v);
    return doc;
}

/// `doc` without the field at JSON pointer `where`.
Value without(Value doc, const std::string &where) {
    auto ptr = Value::json_pointer(where);
    doc[ptr.parent_pointer()].erase(ptr.back());
    return doc;
}

/// Parsing `doc` fails with a one-line message containing `expected`.
void refused(const Value &doc, const std::string &expected) {
    auto r = parse_revision(doc.dump());
    INFO(doc.dump());
    REQUIRE_FALSE(r.ok());
    std::string m = r.error().message();
    INFO(m);
    CHECK(m.find(expected) != std::string::npos);
    CHECK(m.find('\n') == std::string::npos);
}

/// `doc` parsed; it must be valid.
Revision parsed(const Value &doc) {
    auto r = parse_revision(doc.dump());
    INFO((r.ok() ? std::string() : r.error().message()));
    REQUIRE(r.ok());
    return *r;
}

/// A manifest of containers named `names`, each depending on the names paired with it.
Value with_dependencies(const std::vector<std::pair<std::string, std::vector<std::string>>> &names) {
    Value doc = minimal();
    Value c = doc["containers"][0];
    doc["containers"] = Value::array();
    for (const auto &[name, deps] : names) {
        c["name"] = name;
        c["depends_on"] = deps;
        doc["containers"].push_back(c);
    }
    return doc;
}

/// A board profile written to a temporary file, removed at the end of the scope.
struct BoardFile {
    explicit BoardFile(const std::string &json) {
        char tmpl[] = "/tmp/berth-board-XXXXXX";
        int fd = mkstemp(tmpl);
        REQUIRE(fd >= 0);
        close(fd);
        path = tmpl;
        REQUIRE(util::atomic_write_file(path, json).ok());
    }
    ~BoardFile() { unlink(path.c_str()); }
    std::string path;
};

AppLimits limits_of(const std::string &json) {
    BoardFile f(json);
    auto l = load_app_limits(f.path);
    INFO((l.ok() ? std::string() : l.error().message()));
    REQUIRE(l.ok());
    return *l;
}

}  // namespace

TEST_CASE("a full manifest is read field by field", "[manifest]") {
    auto r = parse_revision(kFull);
    INFO((r.ok() ? std::string() : r.error().message()));
    REQUIRE(r.ok());
    const Revision &rev = *r;
    CHECK(rev.version == 7);
    CHECK(rev.name == "sensor 2.0");
    CHECK(rev.health_window_ms == 90000);
    REQUIRE(rev.containers.size() == 2);

    const ContainerSpec &sensor = rev.containers[0];  // web depends on it: started first
    CHECK(sensor.name == "sensor");
    CHECK(sensor.index == 1);
    CHECK(sensor.image == kImage);
    CHECK(sensor.args.empty());
    CHECK(sensor.restart.kind == RestartPolicy::Always);
    CHECK(sensor.health.kind == HealthKind::Exec);
    CHECK(sensor.health.command == std::vector<std::string>{"/bin/check", "-q"});
    CHECK(sensor.health.interval_ms == 10000);  // defaults
    CHECK(sensor.health.timeout_ms == 5000);
    CHECK(sensor.health.retries == 3);
    REQUIRE(sensor.devices.size() == 2);
    CHECK(sensor.devices[0].path == "/dev/ttyUSB0");
    CHECK(sensor.devices[0].permissions == "rw");
    CHECK(sensor.devices[1].path == "/dev/i2c-1");
    CHECK(sensor.devices[1].permissions == "rwm");
    CHECK(sensor.capabilities == std::vector<std::string>{"CAP_NET_ADMIN"});
    CHECK(sensor.network == NetworkMode::None);
    REQUIRE(sensor.volumes.size() == 2);
    CHECK(sensor.volumes[0].name == "readings");
    CHECK(sensor.volumes[0].path == "/var/lib/sensor");
    CHECK_FALSE(sensor.volumes[0].readonly);
    CHECK(sensor.volumes[1].readonly);
    CHECK(sensor.stop_signal == 10);
    CHECK(sensor.stop_grace_ms == 10000);
    CHECK(sensor.memory_bytes == 0);
    CHECK(sensor.cpu_millis == 0);
    CHECK(sensor.pids == 0);

    const ContainerSpec &web = rev.containers[1];
    CHECK(web.name == "web");
    CHECK(web.index == 0);
    CHECK(web.image == "localhost:5000/web:2.0@sha256:" + std::string(64, 'b'));
    CHECK(web.args == std::vector<std::string>{"--port", "8080"});
    CHECK(web.env == std::vector<std::string>{"MODE=gateway", "EMPTY="});
    CHECK(web.workdir == "/srv");
    CHECK(web.user == "1000:1000");
    CHECK(web.depends_on == std::vector<std::string>{"sensor"});
    CHECK(web.restart.kind == RestartPolicy::OnFailure);
    CHECK(web.restart.max_retries == 5);
    CHECK(web.health.kind == HealthKind::Http);
    CHECK(web.health.port == 8080);
    CHECK(web.health.path == "/healthz");
    CHECK(web.health.interval_ms == 2000);
    CHECK(web.health.timeout_ms == 500);
    CHECK(web.health.start_period_ms == 60000);
    CHECK(web.health.retries == 4);
    CHECK(web.memory_bytes == 64u << 20);
    CHECK(web.cpu_millis == 500);
    CHECK(web.pids == 100);
    CHECK(web.network == NetworkMode::Host);
    CHECK(web.stop_signal == 2);
    CHECK(web.stop_grace_ms == 3000);

    CHECK(rev.digest == img::Digest::of(kFull).str());
    CHECK(container_id(rev, web) == "web.r7");
}

TEST_CASE("defaults of a minimal manifest", "[manifest]") {
    auto r = parse_revision(minimal().dump());
    REQUIRE(r.ok());
    CHECK(r->health_window_ms == 120000);
    const ContainerSpec &c = r->containers[0];
    CHECK(c.restart.kind == RestartPolicy::No);
    CHECK(c.health.kind == HealthKind::None);
    CHECK(c.network == NetworkMode::Private);
    CHECK(c.stop_signal == 15);
    CHECK(c.stop_grace_ms == 10000);
}

TEST_CASE("an unknown field at top level is refused with its name", "[manifest]") {
    refused(with(minimal(), "/signatures", Value::object()), "signatures: unknown field");
}

namespace {
Value system_part() {
    return Value::parse(R"({"image": "localhost:5000/rootfs@sha256:)" + std::string(64, 'b') +
                        R"(", "size": 67108864, "version": 4, "min_version": 2, "max_version": 3, "fstype": "squashfs"})");
}
}  // namespace

TEST_CASE("the system part is read field by field", "[manifest][system]") {
    auto r = parse_revision(with(minimal(), "/system", system_part()).dump());
    INFO((r.ok() ? "" : r.error().message()));
    REQUIRE(r.ok());
    REQUIRE(r->system);
    CHECK(r->system->image == "localhost:5000/rootfs@sha256:" + std::string(64, 'b'));
    CHECK(r->system->size == 67108864);
    CHECK(r->system->version == 4);
    CHECK(r->system->min_version == 2);
    CHECK(r->system->max_version == 3);
    CHECK(r->system->fstype == "squashfs");
}

TEST_CASE("a manifest without a system part has none", "[manifest][system]") {
    auto r = parse_revision(minimal().dump());
    REQUIRE(r.ok());
    CHECK_FALSE(r->system);
}

TEST_CASE("a system part without its required fields is refused", "[manifest][system]") {
    Value s = system_part();
    s.erase("size");
    refused(with(minimal(), "/system", s), "system.size: missing (a required field)");
}

TEST_CASE("a system image not pinned by digest is refused", "[manifest][system]") {
    Value s = system_part();
    s["image"] = "localhost:5000/rootfs:4";
    refused(with(minimal(), "/system", s), "system.image: `localhost:5000/rootfs:4` is not pinned by digest");
}

TEST_CASE("an unknown system filesystem type is refused", "[manifest][system]") {
    Value s = system_part();
    s["fstype"] = "btrfs";
    refused(with(minimal(), "/system", s), "system.fstype: expected `squashfs`, `erofs` or `ext4`, got `btrfs`");
}

TEST_CASE("a system version range upside down is refused", "[manifest][system]") {
    Value s = system_part();
    s["max_version"] = 1;
    refused(with(minimal(), "/system", s), "system.max_version: expected at least min_version (2), got 1");
}

TEST_CASE("an unknown field in a container is refused with its path", "[manifest]") {
    refused(with(full(), "/containers/1/healthz", 1), "containers[1].healthz: unknown field");
}

TEST_CASE("an unknown field in a health check is refused with its path", "[manifest]") {
    refused(with(full(), "/containers/0/health/verb", "GET"), "containers[0].health.verb: unknown field");
}

TEST_CASE("an unknown field in resources is refused with its path", "[manifest]") {
    refused(with(full(), "/containers/0/resources/swap", "1g"), "containers[0].resources.swap: unknown field");
}

TEST_CASE("an unknown field in a device is refused with its path", "[manifest]") {
    refused(with(full(), "/containers/1/devices/1/major", 4), "containers[1].devices[1].major: unknown field");
}

TEST_CASE("an unknown field in a volume is refused with its path", "[manifest]") {
    refused(with(full(), "/containers/1/volumes/0/size", 4), "containers[1].volumes[0].size: unknown field");
}

TEST_CASE("an unknown field whose name is not a plain word is shown quoted", "[manifest]") {
    refused(with(minimal(), "/containers/0/a b", 1), "containers[0].\"a b\": unknown field");
}

TEST_CASE("a key written twice in one object is refused", "[manifest]") {
    std::string doc = minimal().dump();
    doc.insert(doc.find("\"name\":\"app\",\"image\""), "\"name\":\"other\",");
    auto r = parse_revision(doc);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "containers[0].name: this key is written twice in its object");
}

TEST_CASE("a value of the wrong type is refused with the expected type", "[manifest]") {
    refused(with(minimal(), "/version", "1"), "version: expected an integer above 0, got a string");
    refused(with(minimal(), "/containers/0/args", "run"),
            "containers[0].args: expected an array of strings, got a string");
    refused(with(minimal(), "/containers/0/env", Value::array({1})),
            "containers[0].env[0]: expected a string, got an integer");
    refused(with(minimal(), "/containers", Value::object()),
            "containers: expected a non-empty array of containers, got an object");
    refused(with(minimal(), "/containers/0/volumes", Value::array({"data"})),
            "containers[0].volumes[0]: expected an object, got a string");
}

TEST_CASE("null is a wrong type, not an absent field", "[manifest]") {
    refused(with(minimal(), "/containers/0/workdir", nullptr), "containers[0].workdir: expected a string, got null");
}

TEST_CASE("a missing required field is refused with its path", "[manifest]") {
    refused(without(minimal(), "/version"), "version: missing");
    refused(without(minimal(), "/containers/0/image"), "containers[0].image: missing");
    refused(without(full(), "/containers/1/volumes/0/path"), "containers[1].volumes[0].path: missing");
}

TEST_CASE("an empty container list is refused", "[manifest]") {
    refused(with(minimal(), "/containers", Value::array()), "containers: expected a non-empty array of containers");
}

TEST_CASE("more containers than the limit are refused", "[manifest]") {
    Value doc = minimal();
    for (int i = 0; i < 256; i++) doc["containers"].push_back(doc["containers"][0]);
    refused(doc, "containers: expected at most 256 containers, got 257");
}

TEST_CASE("a version of zero or below is refused", "[manifest]") {
    refused(with(minimal(), "/version", 0), "version: expected an integer above 0, got 0");
    refused(with(minimal(), "/version", -3), "version: expected an integer above 0, got -3");
    refused(with(minimal(), "/version", 1.0), "version: expected an integer above 0, got a number");
}

TEST_CASE("an image named by a tag alone is refused", "[manifest]") {
    refused(with(minimal(), "/containers/0/image", "localhost:5000/sensor:1.0"),
            "containers[0].image: `localhost:5000/sensor:1.0` is not pinned by digest");
}

TEST_CASE("an image reference that does not parse is refused", "[manifest]") {
    refused(with(minimal(), "/containers/0/image", "localhost:5000/Sensor@" + kDigest), "containers[0].image: ");
    refused(with(minimal(), "/containers/0/image", "localhost:5000/sensor@sha256:abc"), "containers[0].image: ");
}

TEST_CASE("an image without a registry is refused", "[manifest]") {
    refused(with(minimal(), "/containers/0/image", "busybox@" + kDigest), "containers[0].image: ");
}

TEST_CASE("a bad container name is refused", "[manifest]") {
    for (const std::string &name : {std::string("Web"), std::string("-web"), std::string(64, 'a'), std::string()})
        refused(with(minimal(), "/containers/0/name", name), "containers[0].name: expected a name of 1-63 characters");
}

TEST_CASE("a duplicate container name is refused", "[manifest]") {
    refused(with(without(full(), "/containers/0/depends_on"), "/containers/1/name", "web"),
            "containers[1].name: `web` is already the name of containers[0]");
}

TEST_CASE("a dependency on a container not in the revision is refused", "[manifest]") {
    refused(with(full(), "/containers/0/depends_on", Value::array({"sensor", "db"})),
            "containers[0].depends_on[1]: no container named `db` in this revision");
}

TEST_CASE("a container depending on itself is refused", "[manifest]") {
    refused(with(full(), "/containers/1/depends_on", Value::array({"sensor"})),
            "containers[1].depends_on[0]: `sensor` cannot depend on itself");
}

TEST_CASE("a dependency listed twice is refused", "[manifest]") {
    refused(with(full(), "/containers/0/depends_on", Value::array({"sensor", "sensor"})),
            "containers[0].depends_on[1]: `sensor` is listed twice");
}

TEST_CASE("a dependency cycle is refused and named", "[manifest]") {
    refused(with_dependencies({{"a", {"b"}}, {"b", {"c"}}, {"c", {"d"}}, {"d", {"b"}}}),
            "containers[1].depends_on: dependency cycle: b -> c -> d -> b");
}

TEST_CASE("containers come in dependency order, otherwise in document order", "[manifest]") {
    Revision rev = parsed(with_dependencies({{"e", {"a", "d"}}, {"b", {"c"}}, {"d", {}}, {"c", {}}, {"a", {}}}));
    std::vector<std::string> order;
    for (const auto &c : rev.containers) order.push_back(c.name);
    CHECK(order == std::vector<std::string>{"d", "c", "b", "a", "e"});
}

TEST_CASE("containers without dependencies keep the document order", "[manifest]") {
    Revision rev = parsed(with_dependencies({{"z", {}}, {"a", {}}, {"m", {}}}));
    std::vector<std::string> order;
    for (const auto &c : rev.containers) order.push_back(c.name);
    CHECK(order == std::vector<std::string>{"z", "a", "m"});
}

TEST_CASE("a bad restart policy is refused", "[manifest]") {
    refused(with(minimal(), "/containers/0/restart", "sometimes"),
            "containers[0].restart: expected `no`, `on-failure`, `always` or `unless-stopped`, got `sometimes`");
    refused(with(minimal(), "/containers/0/restart", "on-failure:0"),
            "containers[0].restart: expected `on-failure:N` with N >= 1, got `on-failure:0`");
    refused(with(minimal(), "/containers/0/restart", "on-failure:x"), "containers[0].restart: expected `on-failure:N`");
}

TEST_CASE("a health port out of range is refused", "[manifest]") {
    refused(with(full(), "/containers/0/health/port", 70000),
            "containers[0].health.port: expected an integer 1-65535, got 70000");
    refused(with(full(), "/containers/0/health/port", 0),
            "containers[0].health.port: expected an integer 1-65535, got 0");
}

TEST_CASE("an unknown health kind is refused", "[manifest]") {
    refused(with(full(), "/containers/0/health/kind", "grpc"),
            "containers[0].health.kind: expected `exec`, `http`, `tcp` or `ready`, got `grpc`");
}

TEST_CASE("an http or tcp health check without a port is refused", "[manifest]") {
    refused(without(full(), "/containers/0/health/port"), "containers[0].health.port: missing (required by kind http)");
    refused(with(without(without(full(), "/containers/0/health/path"), "/containers/0/health/port"),
                 "/containers/0/health/kind", "tcp"),
            "containers[0].health.port: missing (required by kind tcp)");
}

TEST_CASE("an exec health check without a command is refused", "[manifest]") {
    refused(with(full(), "/containers/1/health/command", Value::array()),
            "containers[1].health.command: expected a non-empty command");
    refused(without(full(), "/containers/1/health/command"),
            "containers[1].health.command: missing (required by kind exec)");
}

TEST_CASE("a health field another kind uses is refused", "[manifest]") {
    refused(with(full(), "/containers/1/health/port", 80), "containers[1].health.port: not used by kind exec");
    refused(with(full(), "/containers/1/health/path", "/"), "containers[1].health.path: not used by kind exec");
    refused(with(full(), "/containers/0/health/command", Value::array({"true"})),
            "containers[0].health.command: not used by kind http");
}

TEST_CASE("an http health path not starting with a slash is refused", "[manifest]") {
    refused(with(full(), "/containers/0/health/path", "healthz"), "containers[0].health.path: expected an http path");
}

TEST_CASE("a bad duration is refused", "[manifest]") {
    for (const char *bad : {"2 s", "1.5s", "0s", "5", "s", "10sec", "-1s"})
        refused(with(full(), "/containers/0/health/interval", bad),
                "containers[0].health.interval: expected a duration");
    refused(with(full(), "/containers/0/stop_grace", "25h"), "containers[0].stop_grace: expected a duration");
    refused(with(full(), "/health_window", 2.5), "health_window: expected a duration");
    refused(with(full(), "/health_window", "9999999999999999h"), "health_window: expected a duration");
    refused(with(full(), "/health_window", -5), "health_window: expected a duration");
}

TEST_CASE("durations are strings with a unit or integer milliseconds", "[manifest]") {
    for (auto [given, ms] : std::vector<std::pair<Value, int64_t>>{
             {"250ms", 250}, {"10s", 10000}, {"2m", 120000}, {"1h", 3600000}, {1500, 1500}})
        CHECK(parsed(with(minimal(), "/health_window", given)).health_window_ms == ms);
}

TEST_CASE("a volume on or under a system directory is refused", "[manifest]") {
    for (const char *path : {"/", "/proc", "/proc/sys", "/sys/fs", "/dev", "/dev/shm"})
        refused(with(full(), "/containers/1/volumes/0/path", path),
                "containers[1].volumes[0].path: a volume cannot be mounted");
}

TEST_CASE("a volume path that is not clean and absolute is refused", "[manifest]") {
    for (const char *path : {"data", "/data/../proc", "/data/", "//data", "/data/./x"})
        refused(with(full(), "/containers/1/volumes/0/path", path),
                "containers[1].volumes[0].path: expected a clean absolute path");
}

TEST_CASE("a bad volume name is refused", "[manifest]") {
    refused(with(full(), "/containers/1/volumes/1/name", "../etc"), "containers[1].volumes[1].name: expected a name");
}

TEST_CASE("a volume path mounted twice in one container is refused", "[manifest]") {
    refused(with(full(), "/containers/1/volumes/1/path", "/var/lib/sensor"),
            "containers[1].volumes[1].path: /var/lib/sensor is mounted twice");
}

TEST_CASE("a volume path that only starts like a system directory is accepted", "[manifest]") {
    CHECK(parsed(with(full(), "/containers/1/volumes/0/path", "/devices")).containers[0].volumes[0].path == "/devices");
}

TEST_CASE("a capability without CAP_ is refused with the right spelling", "[manifest]") {
    refused(with(full(), "/containers/1/capabilities", Value::array({"NET_ADMIN"})),
            "containers[1].capabilities[0]: `NET_ADMIN` is not a capability name: write `CAP_NET_ADMIN`");
    refused(with(full(), "/containers/1/capabilities", Value::array({"cap_net_admin"})),
            "containers[1].capabilities[0]: `cap_net_admin` is not a capability name: write `CAP_NET_ADMIN`");
}

TEST_CASE("an unknown capability is refused", "[manifest]") {
    refused(with(full(), "/containers/1/capabilities", Value::array({"CAP_NET_ADMIN", "CAP_FLY"})),
            "containers[1].capabilities[1]: expected a capability name such as `CAP_NET_ADMIN`, got `CAP_FLY`");
}

TEST_CASE("a device outside /dev is refused", "[manifest]") {
    refused(with(full(), "/containers/1/devices/0/path", "/etc/passwd"),
            "containers[1].devices[0].path: expected a device node under /dev/");
    refused(with(full(), "/containers/1/devices/0/path", "/dev/../etc/passwd"),
            "containers[1].devices[0].path: expected a clean absolute path");
}

TEST_CASE("device permissions outside rwm are refused", "[manifest]") {
    for (const char *perm : {"rx", "rr", ""})
        refused(with(full(), "/containers/1/devices/0/permissions", perm),
                "containers[1].devices[0].permissions: expected a non-empty subset of `rwm`");
}

TEST_CASE("a device listed twice is refused", "[manifest]") {
    refused(with(full(), "/containers/1/devices/1/path", "/dev/ttyUSB0"),
            "containers[1].devices[1].path: /dev/ttyUSB0 is listed twice");
}

TEST_CASE("a bad memory size is refused", "[manifest]") {
    for (Value bad : {Value("64x"), Value(4096), Value("m"), Value(-5), Value("99999999999999999999g")})
        refused(with(full(), "/containers/0/resources/memory", bad),
                "containers[0].resources.memory: expected a memory size");
}

TEST_CASE("memory sizes take k, m and g suffixes or bytes", "[manifest]") {
    for (auto [given, bytes] : std::vector<std::pair<Value, uint64_t>>{
             {"2048k", 2048ull << 10}, {"1G", 1ull << 30}, {2097152, 2097152}, {"2097152", 2097152}})
        CHECK(parsed(with(minimal(), "/containers/0/resources/memory", given)).containers[0].memory_bytes == bytes);
}

TEST_CASE("a cpu count of zero or below is refused", "[manifest]") {
    refused(with(full(), "/containers/0/resources/cpus", 0), "containers[0].resources.cpus: expected a number of CPUs");
    refused(with(full(), "/containers/0/resources/cpus", -1),
            "containers[0].resources.cpus: expected a number of CPUs");
}

TEST_CASE("a pids limit of zero is refused", "[manifest]") {
    refused(with(full(), "/containers/0/resources/pids", 0),
            "containers[0].resources.pids: expected an integer 1-4194304");
}

TEST_CASE("an env entry without KEY= is refused", "[manifest]") {
    refused(with(minimal(), "/containers/0/env", Value::array({"NOVALUE"})),
            "containers[0].env[0]: expected KEY=VALUE");
    refused(with(minimal(), "/containers/0/env", Value::array({"=1"})), "containers[0].env[0]: expected KEY=VALUE");
}

TEST_CASE("an env key set twice is refused", "[manifest]") {
    refused(with(minimal(), "/containers/0/env", Value::array({"A=1", "A=2"})),
            "containers[0].env[1]: `A` is set twice");
}

TEST_CASE("a relative workdir is refused", "[manifest]") {
    refused(with(minimal(), "/containers/0/workdir", "srv"), "containers[0].workdir: expected a clean absolute path");
}

TEST_CASE("a malformed user is refused", "[manifest]") {
    for (const char *user : {"a:b:c", "", ":0", "a b"})
        refused(with(minimal(), "/containers/0/user", user), "containers[0].user: expected user[:group]");
}

TEST_CASE("an unknown network mode is refused", "[manifest]") {
    refused(with(minimal(), "/containers/0/network", "bridge"),
            "containers[0].network: expected `private`, `host` or `none`, got `bridge`");
}

TEST_CASE("an unknown stop signal is refused", "[manifest]") {
    refused(with(minimal(), "/containers/0/stop_signal", "SIGFOO"),
            "containers[0].stop_signal: expected a signal name");
    refused(with(minimal(), "/containers/0/stop_signal", 99),
            "containers[0].stop_signal: expected an integer 1-64, got 99");
}

TEST_CASE("stop signals are taken with or without SIG, or as numbers", "[manifest]") {
    for (auto [given, sig] : std::vector<std::pair<Value, int>>{{"SIGTERM", 15}, {"TERM", 15}, {15, 15}, {"KILL", 9}})
        CHECK(parsed(with(minimal(), "/containers/0/stop_signal", given)).containers[0].stop_signal == sig);
}

TEST_CASE("a string holding a NUL is refused", "[manifest]") {
    refused(with(minimal(), "/containers/0/args", Value::array({std::string("a\0b", 3)})),
            "containers[0].args[0]: contains a NUL character");
}

TEST_CASE("a document that is not JSON is refused with where it breaks", "[manifest]") {
    auto r = parse_revision("{\"version\": 1,\n \"name\": }");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().starts_with("manifest: line 2"));
}

TEST_CASE("a document that is not an object is refused", "[manifest]") {
    auto r = parse_revision("[]");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "document: expected an object, got an array");
}

TEST_CASE("control characters in a value do not break the one-line message", "[manifest]") {
    refused(with(minimal(), "/containers/0/network", "a\nb"),
            "containers[0].network: expected `private`, `host` or `none`, got \"a\\nb\"");
}

TEST_CASE("the digest is of the exact bytes, whitespace included", "[manifest]") {
    std::string compact = minimal().dump();
    std::string spaced = minimal().dump(2);
    auto a = parse_revision(compact), b = parse_revision(spaced);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a->digest == img::Digest::of(compact).str());
    CHECK(b->digest == img::Digest::of(spaced).str());
    CHECK(a->digest != b->digest);
    CHECK(a->digest.starts_with("sha256:"));
    CHECK(a->digest.size() == 7 + 64);
}

TEST_CASE("the container id joins name and version", "[manifest]") {
    Revision rev;
    rev.version = 42;
    ContainerSpec c;
    c.name = "sensor";
    CHECK(container_id(rev, c) == "sensor.r42");
}

TEST_CASE("board app limits are read from the apps object of a full profile", "[limits]") {
    AppLimits l = limits_of(
        R"({"name": "qemu", "slots": [{"name": "A", "file": "/a.img"}, {"name": "B", "file": "/b.img"}],
            "bootloader": {"kind": "file", "env": "/boot.env"},
            "apps": {"devices": ["/dev/ttyUSB*"], "capabilities": ["CAP_NET_ADMIN"]}})");
    CHECK(l.devices == std::vector<std::string>{"/dev/ttyUSB*"});
    CHECK(l.capabilities == std::vector<std::string>{"CAP_NET_ADMIN"});
}

TEST_CASE("a board profile without apps allows nothing", "[limits]") {
    AppLimits none = limits_of(R"({"name": "bare"})");
    CHECK(none.devices.empty());
    CHECK(none.capabilities.empty());
}

TEST_CASE("a board profile with an unknown field in apps is refused", "[limits]") {
    BoardFile f(R"({"apps": {"devices": [], "mounts": []}})");
    auto l = load_app_limits(f.path);
    REQUIRE_FALSE(l.ok());
    CHECK(l.error().message() == f.path + ": apps.mounts: unknown field");
}

TEST_CASE("a board device pattern outside /dev is refused", "[limits]") {
    BoardFile f(R"({"apps": {"devices": ["ttyUSB*"]}})");
    auto l = load_app_limits(f.path);
    REQUIRE_FALSE(l.ok());
    CHECK(l.error().message() == f.path + ": apps.devices[0]: expected a pattern under /dev/, got `ttyUSB*`");
}

TEST_CASE("a board capability without CAP_ is refused", "[limits]") {
    BoardFile f(R"({"apps": {"capabilities": ["SYS_ADMIN"]}})");
    auto l = load_app_limits(f.path);
    REQUIRE_FALSE(l.ok());
    CHECK(l.error().message() ==
          f.path + ": apps.capabilities[0]: `SYS_ADMIN` is not a capability name: write `CAP_SYS_ADMIN`");
}

TEST_CASE("a missing board profile is an error with ENOENT", "[limits]") {
    auto l = load_app_limits("/nonexistent/board.json");
    REQUIRE_FALSE(l.ok());
    CHECK(l.error().code == ENOENT);
}

TEST_CASE("devices and capabilities the board allows pass the limits", "[limits]") {
    CHECK(check_limits(parsed(full()), AppLimits{{"/dev/ttyUSB*", "/dev/i2c-[0-9]"}, {"CAP_NET_ADMIN"}}).ok());
}

TEST_CASE("a device no board pattern matches is refused with its document path", "[limits]") {
    // sensor is containers[1] in the document, started (and stored) first.
    Revision rev = parsed(with(full(), "/containers/1/devices/1/path", "/dev/mem"));
    auto s = check_limits(rev, AppLimits{{"/dev/ttyUSB*", "/dev/i2c-*"}, {"CAP_NET_ADMIN"}});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message() == "containers[1].devices[1]: /dev/mem is not allowed by the board profile");
}

TEST_CASE("a device pattern's star does not cross a slash", "[limits]") {
    Revision rev =
        parsed(with(full(), "/containers/1/devices", Value::array({Value{{"path", "/dev/bus/usb/001/002"}}})));
    CHECK_FALSE(check_limits(rev, AppLimits{{"/dev/*"}, {"CAP_NET_ADMIN"}}).ok());
    CHECK(check_limits(rev, AppLimits{{"/dev/bus/usb/*/*"}, {"CAP_NET_ADMIN"}}).ok());
}

TEST_CASE("a capability the board does not list is refused with its path", "[limits]") {
    auto s = check_limits(parsed(full()), AppLimits{{"/dev/*"}, {}});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message() == "containers[1].capabilities[0]: CAP_NET_ADMIN is not allowed by the board profile");
}

TEST_CASE("capabilities of the default set need no board permission", "[limits]") {
    Revision rev = parsed(with(minimal(), "/containers/0/capabilities", Value::array({"CAP_CHOWN", "CAP_KILL"})));
    CHECK(check_limits(rev, AppLimits{}).ok());
}

TEST_CASE("an empty profile allows no device", "[limits]") {
    auto s = check_limits(parsed(full()), AppLimits{});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message() == "containers[1].devices[0]: /dev/ttyUSB0 is not allowed by the board profile");
}
