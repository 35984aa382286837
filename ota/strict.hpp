// Strict JSON readers for berth's own documents: the update manifest
// (ota/manifest.cpp) and the board profile (ota/board.cpp). Each object is
// read by walking its keys in document order and dispatching on the name,
// so a key nobody asked for is an "unknown field" at its path; a key
// written twice in one object is refused (parsers differ on which copy
// wins). Every error is one line, "<path>: <what was expected>", with the
// path as a JSON path into the document ("containers[1].health.port").
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "util/json.hpp"
#include "util/result.hpp"
#include "util/strings.hpp"

namespace ota::strict {

using util::json::Value;

/// "path: why". No errno: the message is the whole story.
util::Error bad(std::string_view path, std::string_view why);
/// The document parsed as JSON, its syntax error (with line and column) as a plain message.
util::Result<Value> parse_json(std::string_view text, std::string_view what);
/// Refuses a key written twice in one object, naming the second copy's path.
util::Status no_duplicate_keys(std::string_view document);

/// A string from the document as a message shows it: in backticks, or JSON
/// escaped when it holds anything that could break the one-line message;
/// cut to 64 bytes.
std::string shown(std::string_view s);
/// `parent.key` (a key that is not a plain word is shown JSON-quoted).
std::string key_path(std::string_view parent, std::string_view key);
std::string item_path(std::string_view parent, size_t i);
util::Error wrong_type(std::string_view path, std::string_view expected, const Value &got);
util::Error unknown_field(std::string_view parent, std::string_view key);
/// Checks that `v` is an object holding every key of `required`.
util::Status object_with(const Value &v, std::string_view path, std::initializer_list<std::string_view> required);

util::Result<std::string> text(const Value &v, std::string_view path);
util::Result<std::vector<std::string>> texts(const Value &v, std::string_view path);
util::Result<bool> boolean(const Value &v, std::string_view path);
/// An integer in [lo, hi].
util::Result<int64_t> integer(const Value &v, std::string_view path, int64_t lo, int64_t hi);
/// A duration in milliseconds: an integer (milliseconds) or a string of
/// digits with a unit, "500ms", "10s", "2m", "1h"; at least `min_ms`, at
/// most a day.
util::Result<int64_t> duration(const Value &v, std::string_view path, int64_t min_ms);
/// A clean absolute path: starts with `/`, no empty, `.` or `..` component,
/// no trailing `/` (except `/` itself).
bool clean_absolute(std::string_view p);
util::Result<std::string> absolute_path(const Value &v, std::string_view path);
/// Capability names as the kernel spells them ("CAP_NET_ADMIN"), each once
/// (manifest.cpp, which knows the names).
util::Result<std::vector<std::string>> capabilities(const Value &v, std::string_view path);

/// A JSON string naming a value of an enumeration.
template <typename T>
struct Named {
    std::string_view name;
    T value;
};

/// The value `choices` names by the string at `path`.
template <typename T, size_t N>
util::Result<T> choice(const Value &v, std::string_view path, const Named<T> (&choices)[N]) {
    std::string expected;
    for (size_t i = 0; i < N; i++)
        expected += util::cat(i == 0 ? "" : i + 1 < N ? ", " : " or ", util::quote(choices[i].name));
    if (!v.is_string()) return wrong_type(path, expected, v);
    const auto &s = v.get_ref<const std::string &>();
    for (const auto &c : choices)
        if (c.name == s) return c.value;
    return bad(path, util::cat("expected ", expected, ", got ", shown(s)));
}

}  // namespace ota::strict
