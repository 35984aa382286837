// Strict JSON readers shared by the update manifest and the board profile
// (strict.hpp says what "strict" means here).
#include "ota/strict.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "util/strings.hpp"

namespace ota::strict {

using util::cat;
using util::quote;

namespace {
constexpr int64_t kMaxDurationMs = 24LL * 3600 * 1000;  ///< one day: any longer is a unit mistake
}  // namespace

// ---- paths and messages ----------------------------------------------------

/// "path: why". No errno: the message is the whole story.
util::Error bad(std::string_view path, std::string_view why) { return util::Error::msg(cat(path, ": ", why)); }

/// The document parsed as JSON, its syntax error (with line and column) as a plain message.
util::Result<Value> parse_json(std::string_view text, std::string_view what) {
    auto v = util::json::parse(text, what);
    if (!v) return util::Error::msg(v.error().context);
    return std::move(v).value();
}

namespace {
bool plain_word(std::string_view s) {
    if (s.empty()) return false;
    for (char ch : s)
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-')) return false;
    return true;
}
}  // namespace

/// A string from the document as a message shows it: in backticks, or JSON
/// escaped when it holds anything that could break the one-line message;
/// cut to 64 bytes.
std::string shown(std::string_view s) {
    bool printable =
        std::all_of(s.begin(), s.end(), [](char ch) { return static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f; });
    std::string cut(s.substr(0, 64));
    if (s.size() > 64) cut += "...";
    return printable ? quote(cut) : util::json::dump(Value(cut));
}

/// `parent.key` (a key that is not a plain word is shown JSON-quoted).
std::string key_path(std::string_view parent, std::string_view key) {
    return util::json::field_path(parent,
                                  plain_word(key) ? std::string(key) : util::json::dump(Value(std::string(key))));
}
std::string item_path(std::string_view parent, size_t i) { return cat(parent, '[', i, ']'); }

util::Error wrong_type(std::string_view path, std::string_view expected, const Value &got) {
    return bad(path, cat("expected ", expected, ", got ", util::json::type_name(got)));
}
util::Error unknown_field(std::string_view parent, std::string_view key) {
    return bad(key_path(parent, key), "unknown field");
}

/// Checks that `v` is an object holding every key of `required`.
util::Status object_with(const Value &v, std::string_view path, std::initializer_list<std::string_view> required) {
    if (!v.is_object()) return wrong_type(path.empty() ? "document" : path, "an object", v);
    for (std::string_view k : required)
        if (!v.contains(std::string(k))) return bad(key_path(path, k), "missing (a required field)");
    return util::ok();
}

// ---- scalar readers ---------------------------------------------------------

util::Result<std::string> text(const Value &v, std::string_view path) {
    if (!v.is_string()) return wrong_type(path, "a string", v);
    const auto &s = v.get_ref<const std::string &>();
    if (s.find('\0') != std::string::npos) return bad(path, "contains a NUL character");
    return s;
}

util::Result<std::vector<std::string>> texts(const Value &v, std::string_view path) {
    if (!v.is_array()) return wrong_type(path, "an array of strings", v);
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); i++) out.push_back(TRY(text(v[i], item_path(path, i))));
    return out;
}

util::Result<bool> boolean(const Value &v, std::string_view path) {
    if (!v.is_boolean()) return wrong_type(path, "a boolean", v);
    return v.get<bool>();
}

/// An integer in [lo, hi].
util::Result<int64_t> integer(const Value &v, std::string_view path, int64_t lo, int64_t hi) {
    std::string expected = cat("an integer ", lo, "-", hi);
    if (!v.is_number_integer()) return wrong_type(path, expected, v);
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
        return bad(path, cat("expected ", expected, ", got ", v.get<uint64_t>()));
    int64_t n = v.get<int64_t>();
    if (n < lo || n > hi) return bad(path, cat("expected ", expected, ", got ", n));
    return n;
}

/// A duration in milliseconds: an integer (milliseconds) or a string of
/// digits with a unit, "500ms", "10s", "2m", "1h"; at least `min_ms`, at
/// most a day.
util::Result<int64_t> duration(const Value &v, std::string_view path, int64_t min_ms) {
    std::string expected =
        cat("a duration (\"500ms\", \"10s\", \"2m\", \"1h\" or integer milliseconds) from ", min_ms, "ms to 24h");
    int64_t ms = 0;
    if (v.is_number_integer()) {
        if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(kMaxDurationMs))
            return bad(path, cat("expected ", expected, ", got ", v.get<uint64_t>()));
        ms = v.get<int64_t>();
    } else if (v.is_string()) {
        std::string_view s = v.get_ref<const std::string &>();
        size_t digits = 0;
        while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') digits++;
        std::string_view unit = s.substr(digits);
        int64_t scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : unit == "h" ? 3600000 : 0;
        auto n = digits > 0 && digits <= 12 ? util::parse_int<int64_t>(s.substr(0, digits)) : std::nullopt;
        if (!n || scale == 0) return bad(path, cat("expected ", expected, ", got ", shown(s)));
        ms = *n * scale;  // at most 12 digits times an hour: no overflow
    } else {
        return wrong_type(path, expected, v);
    }
    if (ms < min_ms || ms > kMaxDurationMs) return bad(path, cat("expected ", expected, ", got ", ms, "ms"));
    return ms;
}


/// A clean absolute path: starts with `/`, no empty, `.` or `..` component,
/// no trailing `/` (except `/` itself).
bool clean_absolute(std::string_view p) {
    if (p.empty() || p[0] != '/') return false;
    if (p == "/") return true;
    for (const auto &part : util::split(p.substr(1), '/'))
        if (part.empty() || part == "." || part == "..") return false;
    return true;
}

util::Result<std::string> absolute_path(const Value &v, std::string_view path) {
    std::string s = TRY(text(v, path));
    if (!clean_absolute(s))
        return bad(path, cat("expected a clean absolute path (no `.`, `..`, `//` or trailing `/`), got ", shown(s)));
    return s;
}


namespace {

/// Finds a key written twice in one object. nlohmann keeps the last copy;
/// another parser may keep the first and read another manifest from the
/// same signed bytes.
class DuplicateKeys : public nlohmann::json_sax<Value> {
public:
    bool null() override { return value(); }
    bool boolean(bool) override { return value(); }
    bool number_integer(number_integer_t) override { return value(); }
    bool number_unsigned(number_unsigned_t) override { return value(); }
    bool number_float(number_float_t, const string_t &) override { return value(); }
    bool string(string_t &) override { return value(); }
    bool binary(binary_t &) override { return value(); }
    bool start_object(std::size_t) override { return open(false); }
    bool start_array(std::size_t) override { return open(true); }
    bool end_object() override { return close(); }
    bool end_array() override { return close(); }
    bool key(string_t &k) override {
        frames_.back().key = k;
        if (frames_.back().keys.insert(k).second) return true;
        duplicate = path();
        return false;
    }
    bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception &) override { return false; }

    std::string duplicate;  ///< the path of the second copy, once found

private:
    struct Frame {
        bool array = false;
        size_t items = 0;
        std::string key;
        std::set<std::string> keys;
    };
    bool value() {
        if (!frames_.empty() && frames_.back().array) frames_.back().items++;
        return true;
    }
    bool open(bool array) {
        value();
        frames_.push_back(Frame{array, 0, {}, {}});
        return true;
    }
    bool close() {
        frames_.pop_back();
        return true;
    }
    std::string path() const {
        std::string p;
        for (const auto &f : frames_) p = f.array ? item_path(p, f.items - 1) : key_path(p, f.key);
        return p;
    }
    std::vector<Frame> frames_;
};

}  // namespace

util::Status no_duplicate_keys(std::string_view document) {
    DuplicateKeys sax;
    Value::sax_parse(document.begin(), document.end(), &sax, nlohmann::detail::input_format_t::json, true);
    if (!sax.duplicate.empty()) return bad(sax.duplicate, "this key is written twice in its object");
    return util::ok();
}

}  // namespace ota::strict
