// DynLib: a shared library opened on first use (dlopen), not at exec.
//
// The runtime path (`berth create/start/run ID`, PID 1) must start as fast and
// as small as crun: it needs only libc, libseccomp and libcap (libstdc++ is
// linked statically).
// OpenSSL and libarchive (and, before berth had its own HTTP client,
// libcurl with some thirty more) cost milliseconds and megabytes of RSS at
// every exec when the binary links them. So
// image/ declares them as DynLibs and calls them through forwarding
// definitions (image/dynlibs.cpp); the first call, or an explicit load(),
// opens the library.
#pragma once

#include <mutex>
#include <span>
#include <string>

#include "util/result.hpp"

namespace util {

class DynLib {
public:
    /// `soname` is what dlopen gets ("libssl.so.3"); `what` names it in
    /// errors; `symbols` are the names callers will ask symbol() for.
    constexpr DynLib(const char *soname, const char *what, std::span<const char *const> symbols)
        : soname_(soname), what_(what), symbols_(symbols) {}
    DynLib(const DynLib &) = delete;
    DynLib &operator=(const DynLib &) = delete;

    /// Opens the library once and checks that it has every one of `symbols`
    /// (an older library may lack one); later calls return the first outcome.
    Status load();
    /// The address of `name`, one of `symbols`. Callers check load() first
    /// (image/ does, where it opens the store or a registry connection); a
    /// forwarder reached without that, on a machine without the library, is
    /// a bug that aborts with one line on stderr rather than calling null.
    void *symbol(const char *name);

    const char *soname() const { return soname_; }

private:
    const char *soname_;
    const char *what_;
    std::span<const char *const> symbols_;
    std::once_flag once_;
    void *handle_ = nullptr;
    std::string error_;
};

}  // namespace util
