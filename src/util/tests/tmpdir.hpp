// A temporary directory removed at the end of a test.
#pragma once

#include <cstdlib>
#include <string>

#include "util/file.hpp"

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/berth-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { (void)util::remove_tree(path); }
    std::string operator/(const std::string &name) const { return path + "/" + name; }
};
