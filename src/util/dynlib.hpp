// DynLib: a shared library opened on first use (dlopen), not at exec.
//
// The runtime path (`berth create/start/run ID`, PID 1) must start as fast and
// as small as crun: it needs only libc, libseccomp and libcap (libstdc++ is
// linked statically).
// libcurl, OpenSSL and libarchive pull in some forty more libraries, which
// cost ~20 ms and ~8 MB of RSS at every exec when the binary links them. So
// image/ declares them as DynLibs and calls them through forwarding
// definitions (image/dynlibs.cpp); the first call, or an explicit load(),
// opens the library.
#pragma once

#include <mutex>
#include <string>

#include "util/result.hpp"

namespace util {

class DynLib {
public:
    /// `soname` is what dlopen gets ("libcurl.so.4"); `what` names it in errors.
    constexpr DynLib(const char *soname, const char *what) : soname_(soname), what_(what) {}
    DynLib(const DynLib &) = delete;
    DynLib &operator=(const DynLib &) = delete;

    /// Opens the library once; later calls return the first outcome.
    Status load();
    /// The address of `name`. Callers have checked load(): a library or
    /// symbol that is missing here is an installation error, reported in one
    /// line on stderr before the process exits with 127 (what a shell does
    /// for a command that is not found).
    void *symbol(const char *name);

    const char *soname() const { return soname_; }

private:
    const char *soname_;
    const char *what_;
    std::once_flag once_;
    void *handle_ = nullptr;
    std::string error_;
};

}  // namespace util
