// Canonical JSON (see canonical.hpp): a recursive writer over nlohmann's
// values that sorts each object's keys itself (util::json::Value keeps them
// in file order).
#include "ota/tuf/canonical.hpp"

#include <algorithm>
#include <vector>

#include "util/strings.hpp"

namespace ota::tuf {
namespace {

void put_string(std::string &out, const std::string &s) {
    out.push_back('"');
    for (char c : s) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
}

util::Status put(std::string &out, const util::json::Value &v, int depth) {
    if (depth > 64) return util::Error::msg("canonical json: nested deeper than 64 levels");
    switch (v.type()) {
    case nlohmann::json::value_t::null: out += "null"; return util::ok();
    case nlohmann::json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return util::ok();
    case nlohmann::json::value_t::number_integer: out += util::cat(v.get<int64_t>()); return util::ok();
    case nlohmann::json::value_t::number_unsigned: out += util::cat(v.get<uint64_t>()); return util::ok();
    case nlohmann::json::value_t::number_float:
        return util::Error::msg("canonical json: a number that is not an integer has no canonical form");
    case nlohmann::json::value_t::string: put_string(out, v.get_ref<const std::string &>()); return util::ok();
    case nlohmann::json::value_t::array: {
        out.push_back('[');
        bool first = true;
        for (const auto &e : v) {
            if (!first) out.push_back(',');
            first = false;
            TRY(put(out, e, depth + 1));
        }
        out.push_back(']');
        return util::ok();
    }
    case nlohmann::json::value_t::object: {
        std::vector<const std::string *> keys;
        keys.reserve(v.size());
        for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(&it.key());
        // std::string compares as unsigned bytes: UTF-8 byte order is code point order.
        std::sort(keys.begin(), keys.end(), [](const std::string *a, const std::string *b) { return *a < *b; });
        out.push_back('{');
        bool first = true;
        for (const std::string *k : keys) {
            if (!first) out.push_back(',');
            first = false;
            put_string(out, *k);
            out.push_back(':');
            TRY(put(out, v.find(*k).value(), depth + 1));
        }
        out.push_back('}');
        return util::ok();
    }
    default: return util::Error::msg("canonical json: a value of an unsupported type");
    }
}

}  // namespace

util::Result<std::string> canonical_json(const util::json::Value &v) {
    std::string out;
    TRY(put(out, v, 0));
    return out;
}

}  // namespace ota::tuf
