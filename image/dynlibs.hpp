// The shared libraries of image/ (libcurl, OpenSSL's libcrypto, libarchive,
// zlib), opened on first use rather than at exec (util/dynlib.hpp says why).
// berth does not link them: image/dynlibs.cpp defines each function image/
// calls with the library's own prototype and forwards it to the symbol.
// A function newly called from image/ needs a line in its library's list
// there, X(name, (parameters), (arguments)) (the link fails
// with "undefined reference" until it has one).
#pragma once

#include "util/dynlib.hpp"

namespace img::dynlibs {

extern util::DynLib curl, crypto, archive, zlib;

/// Opens libcrypto, libarchive and zlib: Store::open calls it, so every
/// image command fails with one clear line when one is missing, before it
/// changes anything.
util::Status load_local();
/// Opens libcurl (and what it needs): Registry::open calls it, so commands
/// that never talk to a registry (import, ls, run of a stored image) do
/// not map its forty libraries.
util::Status load_remote();

}  // namespace img::dynlibs
