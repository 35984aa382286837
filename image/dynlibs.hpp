// The shared libraries of image/ (OpenSSL's libcrypto and libssl, libarchive,
// zlib), opened on first use rather than at exec (util/dynlib.hpp says why).
// berth does not link them: image/dynlibs.cpp defines each function image/
// calls with the library's own prototype and forwards it to the symbol.
// A function newly called from image/ needs a line in its library's list
// there, X(name, (parameters), (arguments)) (the link fails
// with "undefined reference" until it has one).
#pragma once

#include "util/dynlib.hpp"

namespace img::dynlibs {

extern util::DynLib ssl, crypto, archive, zlib;

/// Opens libcrypto, libarchive and zlib: Store::open calls it, so every
/// image command fails with one clear line when one is missing, before it
/// changes anything.
util::Status load_local();
/// Opens what talking to a registry or a TUF repository needs before any
/// TLS (libcrypto, for digests and signatures): Http::create calls it.
util::Status load_remote();
/// Opens libssl (and libcrypto): the HTTP client calls it at its first
/// https:// connection, so plain-http work (a fleet refresh from a local
/// mirror) and commands that never talk to a server do not map it.
util::Status load_tls();

}  // namespace img::dynlibs
