// Which cgroup layout the host has (v1, v2, hybrid), where a container's
// cgroup goes (linux.cgroupsPath, including systemd's "slice:prefix:name"
// form), and the device rules every container gets.
//
// systemd paths: berth does NOT talk to systemd over D-Bus (gateways often run
// without it, and a D-Bus client would cost more than the rest of the cgroup
// code). It maps "slice:prefix:name" to the directory systemd itself would use
// for that scope, `<slice expanded>/<prefix>-<name>.scope`, and manages that
// directory with the cgroupfs backends. systemd does not know about the scope,
// so it neither accounts for it nor removes it; berth's destroy does.
#include <cerrno>

#include "runtime/cgroup.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace rt::cgroup {

using util::cat;
using util::Error;
using util::quote;

const char *mode_name(Mode m) {
    switch (m) {
        case Mode::V1: return "v1";
        case Mode::V2: return "v2";
        case Mode::Hybrid: return "hybrid";
    }
    return "unknown";
}

util::Result<Mode> detect_mode(const std::string &root) {
    // cgroup.controllers exists only in cgroup2 directories.
    if (util::path_exists(util::path_join(root, "cgroup.controllers"))) return Mode::V2;
    if (!util::path_exists(root)) return Error::with_code(ENOENT, cat("no cgroup filesystem at ", quote(root)));
    if (util::path_exists(util::path_join(root, "unified/cgroup.controllers"))) return Mode::Hybrid;
    return Mode::V1;
}

namespace {

/// "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice", as systemd nests slices.
util::Result<std::string> expand_slice(std::string_view slice) {
    if (!slice.ends_with(".slice") || slice.find('/') != std::string_view::npos)
        return Error::with_code(EINVAL, cat("invalid systemd slice ", quote(slice)));
    if (slice == "-.slice") return std::string("/");
    std::string_view stem = slice.substr(0, slice.size() - 6);
    if (stem.empty() || stem.front() == '-' || stem.back() == '-' || stem.find("--") != std::string_view::npos)
        return Error::with_code(EINVAL, cat("invalid systemd slice ", quote(slice)));
    std::string out, prefix;
    for (const auto &part : util::split(stem, '-')) {
        prefix += prefix.empty() ? part : cat('-', part);
        out += cat('/', prefix, ".slice");
    }
    return out;
}

util::Result<std::string> systemd_path(const std::string &spec, const std::string &id) {
    auto parts = util::split(spec, ':');
    if (parts.size() != 3)
        return Error::with_code(EINVAL, cat("cgroupsPath ", quote(spec), ": expected `slice:prefix:name` with --systemd-cgroup"));
    std::string slice = TRY(expand_slice(parts[0].empty() ? "system.slice" : parts[0]));
    const std::string &prefix = parts[1];
    std::string name = parts[2].empty() ? id : parts[2];
    if (name.find('/') != std::string::npos || prefix.find('/') != std::string::npos)
        return Error::with_code(EINVAL, cat("cgroupsPath ", quote(spec), ": unit names cannot contain `/`"));
    std::string unit = name.ends_with(".slice") ? name : prefix.empty() ? cat(name, ".scope") : cat(prefix, '-', name, ".scope");
    return slice == "/" ? cat('/', unit) : cat(slice, '/', unit);
}

}  // namespace

util::Result<std::string> resolve_path(const std::string &cgroups_path, const std::string &container_id, bool systemd) {
    std::string raw;
    if (systemd && !cgroups_path.empty()) {
        raw = TRY(systemd_path(cgroups_path, container_id));
    } else if (systemd) {
        raw = TRY(systemd_path(cat("system.slice:berth:", container_id), container_id));
    } else {
        raw = cgroups_path.empty() ? cat("/berth/", container_id) : cgroups_path;
    }
    std::string out;
    for (const auto &part : util::split(raw, '/')) {
        if (part.empty() || part == ".") continue;
        if (part == "..") return Error::with_code(EINVAL, cat("cgroupsPath ", quote(raw), ": `..` is not allowed"));
        out += cat('/', part);
    }
    if (out.empty()) return Error::with_code(EINVAL, cat("cgroupsPath ", quote(raw), ": names the root cgroup"));
    return out;
}

std::vector<DeviceRule> default_device_rules() {
    auto c = [](int64_t major, int64_t minor) { return DeviceRule{true, 'c', major, minor, "rwm"}; };
    return {
        DeviceRule{true, 'c', -1, -1, "m"}, DeviceRule{true, 'b', -1, -1, "m"},
        c(1, 3), c(1, 5), c(1, 7), c(1, 8), c(1, 9),  // null zero full random urandom
        c(5, 0), c(5, 1), c(5, 2),                    // tty console ptmx
        c(136, -1),                                   // pts
    };
}

}  // namespace rt::cgroup
