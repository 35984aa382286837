// Helpers for the cgroup controller tests: fake controller files in a
// temporary directory (as the kernel would present them) and read-back.
#pragma once

#include <fcntl.h>

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>

#include "runtime/cgroup_backend.hpp"
#include "util/file.hpp"

/// Creates `files` in `dir` (and `dir`), each holding `content`.
inline void touch(const std::string &dir, std::initializer_list<const char *> files, const char *content = "") {
    REQUIRE(util::mkdir_p(dir).ok());
    for (const char *f : files) {
        auto fd = util::open_file(util::path_join(dir, f), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        REQUIRE(fd.ok());
        REQUIRE(util::write_all(fd->get(), content).ok());
    }
}

/// A controller file's value, or "<missing>".
inline std::string rd(const std::string &dir, const char *file) {
    return rt::cgroup::read_value(dir, file).value_or("<missing>");
}

/// The error message of a failed status; empty on success.
inline std::string msg(const util::Status &s) { return s.ok() ? std::string() : s.error().message(); }
