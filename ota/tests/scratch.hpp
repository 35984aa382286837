// A temporary directory for ota/'s unit tests, removed at the end, with
// helpers to write files into it.
#pragma once

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <string>

#include "util/dir.hpp"
#include "util/file.hpp"

namespace ota_test {

struct Scratch {
    std::string path;
    Scratch() {
        std::string tmpl = "/tmp/berth-ota-XXXXXX";
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~Scratch() { (void)util::remove_tree(path); }
    Scratch(const Scratch &) = delete;
    Scratch &operator=(const Scratch &) = delete;

    std::string at(const std::string &name) const { return path + "/" + name; }
    std::string write(const std::string &name, const std::string &content) const {
        REQUIRE(util::atomic_write_file(at(name), content).ok());
        return at(name);
    }
};

/// Runs a shell command; its exit status.
inline int sh(const std::string &cmd) { return system(cmd.c_str()); }

}  // namespace ota_test
