// Test helpers for tests that run real containers from a static busybox:
// the binary, a minimal rootfs, and a config.json running `sh -c script`.
// Header-only; Catch2 REQUIREs report what failed.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "runtime/features.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/process.hpp"

namespace rt::testing {

/// The host's static busybox, or nullptr.
inline const char *static_busybox() {
    for (const char *p : {"/bin/busybox", "/usr/bin/busybox"})
        if (::access(p, X_OK) == 0) return p;
    return nullptr;
}

/// bin/busybox, bin/sh and the usual mount points under `rootfs`.
inline void make_busybox_rootfs(const std::string &rootfs) {
    REQUIRE(util::mkdir_p(rootfs + "/bin"));
    for (const char *d : {"proc", "dev", "sys", "tmp"}) REQUIRE(util::mkdir_p(rootfs + "/" + d));
    REQUIRE(util::run_process({"cp", static_busybox(), rootfs + "/bin/busybox"}).value_or(1) == 0);
    REQUIRE(::symlink("busybox", (rootfs + "/bin/sh").c_str()) == 0);
}

/// The default root spec running `/bin/sh -c script`, without a terminal,
/// in cgroup `cgroup`.
inline util::json::Value sh_spec(const std::string &script, const std::string &cgroup) {
    auto spec = rt::default_spec(false, 0, 0);
    spec["process"]["terminal"] = false;
    spec["process"]["args"] = util::json::Value::array();
    for (const char *a : {"/bin/sh", "-c"}) spec["process"]["args"].push_back(a);
    spec["process"]["args"].push_back(script);
    spec["linux"]["cgroupsPath"] = cgroup;
    return spec;
}

}  // namespace rt::testing
