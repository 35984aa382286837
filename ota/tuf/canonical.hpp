// Canonical JSON as TUF signs it: the OLPC dialect that securesystemslib,
// python-tuf and tuf-js write. Object keys sorted by their UTF-8 bytes (code
// point order), no whitespace, strings escaping only `"` and `\` (every other
// byte, control characters and non-ASCII included, goes out raw), integers
// only (a fraction or exponent is refused: no signer can have produced it),
// true/false/null as themselves.
//
// A signature covers the canonical form of the `signed` object, so the
// client parses what it received and re-serializes that part here; the file
// it stores is still the exact bytes received.
#pragma once

#include <string>

#include "util/json.hpp"
#include "util/result.hpp"

namespace ota::tuf {

/// The canonical serialization of `v`; an error names the first value that
/// has none (a non-integer number).
util::Result<std::string> canonical_json(const util::json::Value &v);

}  // namespace ota::tuf
