// The update manifest parser and the board's app limits: a full manifest
// read field by field, each kind of bad input refused with the field's path
// in a one-line message, the start order, the digest of the exact bytes, and
// the devices and capabilities a board profile allows.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
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
      "volumes": [{"name": "readings", "path": "/var/lib/sensor"}, {"name": "calib", "path": "/etc/calib", "readonly": true}],
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

/// `doc` changed by `change`, parsed: must fail with a one-line message containing `expected`.
void refused(Value doc, const std::function<void(Value &)> &change, const std::string &expected) {
    change(doc);
    auto r = parse_revision(doc.dump());
    INFO(doc.dump());
    REQUIRE_FALSE(r.ok());
    std::string m = r.error().message();
    INFO(m);
    CHECK(m.find(expected) != std::string::npos);
    CHECK(m.find('\n') == std::string::npos);
}

Value &first(Value &doc) { return doc["containers"][0]; }

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
    refused(
        minimal(), [](Value &d) { d["system"] = Value::object(); }, "system: unknown field");
}

TEST_CASE("an unknown field in a container is refused with its path", "[manifest]") {
    refused(
        full(), [](Value &d) { d["containers"][1]["healthz"] = 1; }, "containers[1].healthz: unknown field");
}

TEST_CASE("an unknown field in a health check is refused with its path", "[manifest]") {
    refused(
        full(), [](Value &d) { d["containers"][0]["health"]["verb"] = "GET"; },
        "containers[0].health.verb: unknown field");
}

TEST_CASE("unknown fields in resources, devices and volumes are refused with their paths", "[manifest]") {
    refused(
        full(), [](Value &d) { d["containers"][0]["resources"]["swap"] = "1g"; },
        "containers[0].resources.swap: unknown field");
    refused(
        full(), [](Value &d) { d["containers"][1]["devices"][1]["major"] = 4; },
        "containers[1].devices[1].major: unknown field");
    refused(
        full(), [](Value &d) { d["containers"][1]["volumes"][0]["size"] = 4; },
        "containers[1].volumes[0].size: unknown field");
}

TEST_CASE("a key written twice in one object is refused", "[manifest]") {
    std::string doc = minimal().dump();
    doc.insert(doc.find("\"name\":\"app\",\"image\""), "\"name\":\"other\",");
    auto r = parse_revision(doc);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("containers[0].name: this key is written twice") != std::string::npos);
}

TEST_CASE("a value of the wrong type is refused with the expected type", "[manifest]") {
    refused(
        minimal(), [](Value &d) { d["version"] = "1"; }, "version: expected an integer above 0, got a string");
    refused(
        minimal(), [](Value &d) { first(d)["args"] = "run"; },
        "containers[0].args: expected an array of strings, got a string");
    refused(
        minimal(), [](Value &d) { first(d)["env"] = Value::array({1}); },
        "containers[0].env[0]: expected a string, got an integer");
    refused(
        minimal(), [](Value &d) { d["containers"] = Value::object(); }, "containers: expected a non-empty array");
    refused(
        minimal(), [](Value &d) { first(d)["workdir"] = Value(); },
        "containers[0].workdir: expected a string, got null");
}

TEST_CASE("more containers than the limit are refused", "[manifest]") {
    refused(
        minimal(),
        [](Value &d) {
            for (int i = 0; i < 256; i++) d["containers"].push_back(first(d));
        },
        "containers: expected at most 256 containers, got 257");
}

TEST_CASE("a missing required field is refused with its path", "[manifest]") {
    refused(
        minimal(), [](Value &d) { d.erase("version"); }, "version: missing");
    refused(
        minimal(), [](Value &d) { first(d).erase("image"); }, "containers[0].image: missing");
    refused(
        minimal(), [](Value &d) { d["containers"] = Value::array(); }, "containers: expected a non-empty array");
}

TEST_CASE("a version of zero or below is refused", "[manifest]") {
    refused(
        minimal(), [](Value &d) { d["version"] = 0; }, "version: expected an integer above 0, got 0");
    refused(
        minimal(), [](Value &d) { d["version"] = -3; }, "version: expected an integer above 0, got -3");
}

TEST_CASE("an image named by a tag alone is refused", "[manifest]") {
    refused(
        minimal(), [](Value &d) { first(d)["image"] = "localhost:5000/sensor:1.0"; },
        "containers[0].image: `localhost:5000/sensor:1.0` is not pinned by digest");
}

TEST_CASE("an image reference that does not parse is refused", "[manifest]") {
    refused(
        minimal(), [](Value &d) { first(d)["image"] = "localhost:5000/Sensor@" + kDigest; }, "containers[0].image: ");
    refused(
        minimal(), [](Value &d) { first(d)["image"] = "localhost:5000/sensor@sha256:abc"; }, "containers[0].image: ");
}

TEST_CASE("a bad container name is refused", "[manifest]") {
    refused(
        minimal(), [](Value &d) { first(d)["name"] = "Web"; },
        "containers[0].name: expected a name of 1-63 characters");
    refused(
        minimal(), [](Value &d) { first(d)["name"] = "-web"; }, "containers[0].name: expected a name");
    refused(
        minimal(), [](Value &d) { first(d)["name"] = std::string(64, 'a'); }, "containers[0].name: expected a name");
    refused(
        minimal(), [](Value &d) { first(d)["name"] = ""; }, "containers[0].name: expected a name");
}

TEST_CASE("a duplicate container name is refused", "[manifest]") {
    refused(
        full(),
        [](Value &d) {
            d["containers"][1]["name"] = "web";
            d["containers"][0].erase("depends_on");
        },
        "containers[1].name: `web` is already the name of containers[0]");
}

TEST_CASE("a dependency on a container not in the revision is refused", "[manifest]") {
    refused(
        full(),
        [](Value &d) {
            d["containers"][0]["depends_on"] = Value::array({"sensor", "db"});
        },
        "containers[0].depends_on[1]: no container named `db`");
}

TEST_CASE("a container depending on itself is refused", "[manifest]") {
    refused(
        full(), [](Value &d) { d["containers"][1]["depends_on"] = Value::array({"sensor"}); },
        "containers[1].depends_on[0]: `sensor` cannot depend on itself");
}

TEST_CASE("a dependency cycle is refused and named", "[manifest]") {
    Value doc = minimal();
    Value c = first(doc);
    doc["containers"] = Value::array();
    for (const char *n : {"a", "b", "c", "d"}) {
        c["name"] = n;
        doc["containers"].push_back(c);
    }
    doc["containers"][0]["depends_on"] = Value::array({"b"});  // a -> b -> c -> d -> b
    doc["containers"][1]["depends_on"] = Value::array({"c"});
    doc["containers"][2]["depends_on"] = Value::array({"d"});
    doc["containers"][3]["depends_on"] = Value::array({"b"});
    refused(
        doc, [](Value &) {}, "containers[1].depends_on: dependency cycle: b -> c -> d -> b");
}

TEST_CASE("containers come in dependency order, otherwise in document order", "[manifest]") {
    Value doc = minimal();
    Value c = first(doc);
    doc["containers"] = Value::array();
    // e depends on a and d; b on c; d and c and a on nothing.
    for (auto [n, deps] : std::vector<std::pair<const char *, Value>>{{"e", Value::array({"a", "d"})},
                                                                      {"b", Value::array({"c"})},
                                                                      {"d", Value::array()},
                                                                      {"c", Value::array()},
                                                                      {"a", Value::array()}}) {
        c["name"] = n;
        c["depends_on"] = deps;
        doc["containers"].push_back(c);
    }
    auto r = parse_revision(doc.dump());
    REQUIRE(r.ok());
    std::vector<std::string> order;
    for (const auto &s : r->containers) order.push_back(s.name);
    CHECK(order == std::vector<std::string>{"d", "c", "b", "a", "e"});
}

TEST_CASE("a bad restart policy is refused", "[manifest]") {
    refused(
        minimal(), [](Value &d) { first(d)["restart"] = "sometimes"; },
        "containers[0].restart: expected `no`, `on-failure`, `always` or `unless-stopped`, got `sometimes`");
    refused(
        minimal(), [](Value &d) { first(d)["restart"] = "on-failure:0"; },
        "containers[0].restart: expected `on-failure:N` with N >= 1, got `on-failure:0`");
    refused(
        minimal(), [](Value &d) { first(d)["restart"] = "on-failure:x"; }, "containers[0].restart: expected");
}

TEST_CASE("a health port out of range is refused", "[manifest]") {
    refused(
        full(), [](Value &d) { d["containers"][0]["health"]["port"] = 70000; },
        "containers[0].health.port: expected an integer 1-65535, got 70000");
    refused(
        full(), [](Value &d) { d["containers"][0]["health"]["port"] = 0; },
        "containers[0].health.port: expected an integer 1-65535");
}

TEST_CASE("a health check missing what its kind needs is refused", "[manifest]") {
    refused(
        full(), [](Value &d) { d["containers"][0]["health"].erase("port"); },
        "containers[0].health.port: missing (required by kind http)");
    refused(
        full(), [](Value &d) { d["containers"][1]["health"]["command"] = Value::array(); },
        "containers[1].health.command: expected a non-empty command");
    refused(
        full(), [](Value &d) { d["containers"][1]["health"]["port"] = 80; },
        "containers[1].health.port: not used by kind exec");
    refused(
        full(), [](Value &d) { d["containers"][0]["health"]["path"] = "healthz"; },
        "containers[0].health.path: expected an http path");
    refused(
        full(), [](Value &d) { d["containers"][0]["health"]["kind"] = "grpc"; },
        "containers[0].health.kind: expected `exec`, `http`, `tcp` or `ready`, got `grpc`");
}

TEST_CASE("a bad duration is refused", "[manifest]") {
    refused(
        full(), [](Value &d) { d["containers"][0]["health"]["interval"] = "2 s"; },
        "containers[0].health.interval: expected a duration");
    refused(
        full(), [](Value &d) { d["containers"][0]["health"]["interval"] = "1.5s"; },
        "containers[0].health.interval: expected a duration");
    refused(
        full(), [](Value &d) { d["containers"][0]["health"]["interval"] = "0s"; },
        "containers[0].health.interval: expected a duration");
    refused(
        full(), [](Value &d) { d["containers"][0]["stop_grace"] = "25h"; },
        "containers[0].stop_grace: expected a duration");
    refused(
        full(), [](Value &d) { d["health_window"] = 2.5; }, "health_window: expected a duration");
    refused(
        full(), [](Value &d) { d["health_window"] = "9999999999999999h"; }, "health_window: expected a duration");
}

TEST_CASE("durations are strings with a unit or integer milliseconds", "[manifest]") {
    Value doc = minimal();
    for (auto [given, ms] : std::vector<std::pair<Value, int64_t>>{
             {"250ms", 250}, {"10s", 10000}, {"2m", 120000}, {"1h", 3600000}, {1500, 1500}}) {
        doc["health_window"] = given;
        auto r = parse_revision(doc.dump());
        REQUIRE(r.ok());
        CHECK(r->health_window_ms == ms);
    }
}

TEST_CASE("a bad volume is refused", "[manifest]") {
    for (const char *p : {"/", "/proc", "/proc/sys", "/sys/fs", "/dev", "/dev/shm"})
        refused(
            full(), [&](Value &d) { d["containers"][1]["volumes"][0]["path"] = p; },
            "containers[1].volumes[0].path: a volume cannot be mounted");
    refused(
        full(), [](Value &d) { d["containers"][1]["volumes"][0]["path"] = "data"; },
        "containers[1].volumes[0].path: expected a clean absolute path");
    refused(
        full(), [](Value &d) { d["containers"][1]["volumes"][0]["path"] = "/data/../proc"; },
        "containers[1].volumes[0].path: expected a clean absolute path");
    refused(
        full(), [](Value &d) { d["containers"][1]["volumes"][1]["name"] = "../etc"; },
        "containers[1].volumes[1].name: expected a name");
    refused(
        full(), [](Value &d) { d["containers"][1]["volumes"][1]["path"] = "/var/lib/sensor"; },
        "containers[1].volumes[1].path: /var/lib/sensor is mounted twice");
}

TEST_CASE("a volume path that only starts like a system directory is accepted", "[manifest]") {
    Value doc = full();
    doc["containers"][1]["volumes"][0]["path"] = "/devices";
    CHECK(parse_revision(doc.dump()).ok());
}

TEST_CASE("a bad capability is refused", "[manifest]") {
    refused(
        full(), [](Value &d) { d["containers"][1]["capabilities"] = Value::array({"NET_ADMIN"}); },
        "containers[1].capabilities[0]: `NET_ADMIN` is not a capability name: write `CAP_NET_ADMIN`");
    refused(
        full(), [](Value &d) { d["containers"][1]["capabilities"] = Value::array({"cap_net_admin"}); },
        "write `CAP_NET_ADMIN`");
    refused(
        full(),
        [](Value &d) {
            d["containers"][1]["capabilities"] = Value::array({"CAP_NET_ADMIN", "CAP_FLY"});
        },
        "containers[1].capabilities[1]: expected a capability name");
}

TEST_CASE("bad devices are refused", "[manifest]") {
    refused(
        full(), [](Value &d) { d["containers"][1]["devices"][0]["path"] = "/etc/passwd"; },
        "containers[1].devices[0].path: expected a device node under /dev/");
    refused(
        full(), [](Value &d) { d["containers"][1]["devices"][0]["permissions"] = "rx"; },
        "containers[1].devices[0].permissions: expected a non-empty subset of `rwm`");
    refused(
        full(), [](Value &d) { d["containers"][1]["devices"][0]["permissions"] = "rr"; },
        "containers[1].devices[0].permissions");
}

TEST_CASE("bad resources are refused", "[manifest]") {
    refused(
        full(), [](Value &d) { d["containers"][0]["resources"]["memory"] = "64x"; },
        "containers[0].resources.memory: expected a memory size");
    refused(
        full(), [](Value &d) { d["containers"][0]["resources"]["memory"] = 4096; },
        "containers[0].resources.memory: expected a memory size");
    refused(
        full(), [](Value &d) { d["containers"][0]["resources"]["memory"] = -5; },
        "containers[0].resources.memory: expected a memory size (\"64m\", \"1g\", \"512k\" or bytes) of at least 1m, "
        "got -5");
    refused(
        full(), [](Value &d) { d["containers"][0]["resources"]["cpus"] = 0; },
        "containers[0].resources.cpus: expected a number of CPUs");
    refused(
        full(), [](Value &d) { d["containers"][0]["resources"]["pids"] = 0; },
        "containers[0].resources.pids: expected an integer");
}

TEST_CASE("memory sizes take k, m and g suffixes or bytes", "[manifest]") {
    Value doc = minimal();
    for (auto [given, bytes] : std::vector<std::pair<Value, uint64_t>>{
             {"2048k", 2048ull << 10}, {"1G", 1ull << 30}, {2097152, 2097152}, {"2097152", 2097152}}) {
        first(doc)["resources"] = Value{{"memory", given}};
        auto r = parse_revision(doc.dump());
        REQUIRE(r.ok());
        CHECK(r->containers[0].memory_bytes == bytes);
    }
}

TEST_CASE("bad env, workdir, user, network and stop signal are refused", "[manifest]") {
    refused(
        minimal(), [](Value &d) { first(d)["env"] = Value::array({"NOVALUE"}); },
        "containers[0].env[0]: expected KEY=VALUE");
    refused(
        minimal(),
        [](Value &d) {
            first(d)["env"] = Value::array({"A=1", "A=2"});
        },
        "containers[0].env[1]: `A` is set twice");
    refused(
        minimal(), [](Value &d) { first(d)["workdir"] = "srv"; },
        "containers[0].workdir: expected a clean absolute path");
    refused(
        minimal(), [](Value &d) { first(d)["user"] = "a:b:c"; }, "containers[0].user: expected user[:group]");
    refused(
        minimal(), [](Value &d) { first(d)["network"] = "bridge"; },
        "containers[0].network: expected `private`, `host` or `none`");
    refused(
        minimal(), [](Value &d) { first(d)["stop_signal"] = "SIGFOO"; },
        "containers[0].stop_signal: expected a signal name");
    refused(
        minimal(), [](Value &d) { first(d)["stop_signal"] = 99; },
        "containers[0].stop_signal: expected an integer 1-64");
}

TEST_CASE("stop signals are taken with or without SIG, or as numbers", "[manifest]") {
    Value doc = minimal();
    for (auto [given, sig] : std::vector<std::pair<Value, int>>{{"SIGTERM", 15}, {"TERM", 15}, {15, 15}, {"KILL", 9}}) {
        first(doc)["stop_signal"] = given;
        auto r = parse_revision(doc.dump());
        REQUIRE(r.ok());
        CHECK(r->containers[0].stop_signal == sig);
    }
}

TEST_CASE("a document that is not JSON is refused with where it breaks", "[manifest]") {
    auto r = parse_revision("{\"version\": 1,\n \"name\": }");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("manifest: line 2") != std::string::npos);
    auto arr = parse_revision("[]");
    REQUIRE_FALSE(arr.ok());
    CHECK(arr.error().message().find("expected an object, got an array") != std::string::npos);
}

TEST_CASE("control characters in a value do not break the one-line message", "[manifest]") {
    refused(
        minimal(), [](Value &d) { first(d)["network"] = "a\nb"; },
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
}

TEST_CASE("the container id joins name and version", "[manifest]") {
    Revision rev;
    rev.version = 42;
    ContainerSpec c;
    c.name = "sensor";
    CHECK(container_id(rev, c) == "sensor.r42");
}

TEST_CASE("board app limits are read from the apps object", "[limits]") {
    AppLimits l = limits_of(
        R"({"name": "qemu", "slots": {"a": 1}, "apps": {"devices": ["/dev/ttyUSB*"], "capabilities": ["CAP_NET_ADMIN"]}})");
    CHECK(l.devices == std::vector<std::string>{"/dev/ttyUSB*"});
    CHECK(l.capabilities == std::vector<std::string>{"CAP_NET_ADMIN"});
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

TEST_CASE("a board profile with a bad pattern or capability is refused", "[limits]") {
    BoardFile dev(R"({"apps": {"devices": ["ttyUSB*"]}})");
    auto a = load_app_limits(dev.path);
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().message().find("apps.devices[0]: expected a pattern under /dev/") != std::string::npos);
    BoardFile cap(R"({"apps": {"capabilities": ["SYS_ADMIN"]}})");
    auto b = load_app_limits(cap.path);
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().message().find("apps.capabilities[0]: `SYS_ADMIN` is not a capability name") != std::string::npos);
}

TEST_CASE("a missing board profile is an error with ENOENT", "[limits]") {
    auto l = load_app_limits("/nonexistent/board.json");
    REQUIRE_FALSE(l.ok());
    CHECK(l.error().code == ENOENT);
}

TEST_CASE("devices and capabilities the board allows pass the limits", "[limits]") {
    auto rev = parse_revision(kFull);
    REQUIRE(rev.ok());
    CHECK(check_limits(*rev, AppLimits{{"/dev/ttyUSB*", "/dev/i2c-[0-9]"}, {"CAP_NET_ADMIN"}}).ok());
}

TEST_CASE("a device no board pattern matches is refused with its path", "[limits]") {
    Value doc = full();
    doc["containers"][1]["devices"][1]["path"] = "/dev/mem";
    auto rev = parse_revision(doc.dump());
    REQUIRE(rev.ok());
    auto s = check_limits(*rev, AppLimits{{"/dev/ttyUSB*", "/dev/i2c-*"}, {"CAP_NET_ADMIN"}});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message() == "containers[1].devices[1]: /dev/mem is not allowed by the board profile");
}

TEST_CASE("a device pattern's star does not cross a slash", "[limits]") {
    Value doc = full();
    doc["containers"][1]["devices"] = Value::array({Value{{"path", "/dev/bus/usb/001/002"}}});
    auto rev = parse_revision(doc.dump());
    REQUIRE(rev.ok());
    CHECK_FALSE(check_limits(*rev, AppLimits{{"/dev/*"}, {"CAP_NET_ADMIN"}}).ok());
    CHECK(check_limits(*rev, AppLimits{{"/dev/bus/usb/*/*"}, {"CAP_NET_ADMIN"}}).ok());
}

TEST_CASE("a capability the board does not list is refused with its path", "[limits]") {
    auto rev = parse_revision(kFull);
    REQUIRE(rev.ok());
    auto s = check_limits(*rev, AppLimits{{"/dev/*"}, {}});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message() == "containers[1].capabilities[0]: CAP_NET_ADMIN is not allowed by the board profile");
}

TEST_CASE("capabilities of the default set need no board permission", "[limits]") {
    Value doc = minimal();
    first(doc)["capabilities"] = Value::array({"CAP_CHOWN", "CAP_KILL"});
    auto rev = parse_revision(doc.dump());
    REQUIRE(rev.ok());
    CHECK(check_limits(*rev, AppLimits{}).ok());
}

TEST_CASE("an empty profile allows no device", "[limits]") {
    auto rev = parse_revision(kFull);
    REQUIRE(rev.ok());
    CHECK_FALSE(check_limits(*rev, AppLimits{}).ok());
}
