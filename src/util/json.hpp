// JSON: nlohmann's ordered value type, a parser that reports where input is
// malformed, and typed accessors whose errors name the offending field
// ("`process.args`: expected an array of strings, got a number").
//
// berth is built without exceptions, so nlohmann's throwing calls (at(),
// get<T>() on the wrong type, dump() of invalid UTF-8) must not be used on
// untrusted data: go through the helpers here.
#pragma once

#ifndef JSON_NO_IO
#define JSON_NO_IO 1
#endif
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace util::json {

using Value = nlohmann::ordered_json;

/// Parses `text`; `what` names the input in the error ("config.json: line 3, column 7: ...").
Result<Value> parse(std::string_view text, std::string_view what);
/// Serializes; invalid UTF-8 is replaced rather than aborting. indent < 0: one line.
std::string dump(const Value &v, int indent = -1);

/// "a string", "an object", ... for error messages.
const char *type_name(const Value &v);
/// `parent.key`, or `key` at top level.
std::string field_path(std::string_view parent, std::string_view key);

// Typed accessors on an object. `where` is the object's own path ("process").
// Absent or null keys give nullopt / nullptr; a present key of the wrong type is an error.
Result<std::optional<std::string>> opt_string(const Value &obj, std::string_view key, std::string_view where);
Result<std::string> req_string(const Value &obj, std::string_view key, std::string_view where);
Result<std::optional<int64_t>> opt_int(const Value &obj, std::string_view key, std::string_view where);
Result<std::optional<uint64_t>> opt_uint(const Value &obj, std::string_view key, std::string_view where);
Result<std::optional<double>> opt_number(const Value &obj, std::string_view key, std::string_view where);
Result<std::optional<bool>> opt_bool(const Value &obj, std::string_view key, std::string_view where);
Result<const Value *> opt_object(const Value &obj, std::string_view key, std::string_view where);
Result<const Value *> opt_array(const Value &obj, std::string_view key, std::string_view where);
Result<std::vector<std::string>> opt_string_array(const Value &obj, std::string_view key, std::string_view where);
/// Checks that `v` is an object; `where` names it.
Status expect_object(const Value &v, std::string_view where);

}  // namespace util::json
