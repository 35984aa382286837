// String helpers used instead of <sstream>: concatenation of strings and
// numbers through to_chars, integer parsing through from_chars, splitting.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace util {

namespace detail {
inline void append_one(std::string &out, std::string_view s) { out.append(s); }
inline void append_one(std::string &out, const char *s) { out.append(s ? s : "(null)"); }
inline void append_one(std::string &out, const std::string &s) { out.append(s); }
inline void append_one(std::string &out, char c) { out.push_back(c); }
inline void append_one(std::string &out, bool b) { out.append(b ? "true" : "false"); }
template <typename N>
    requires(std::is_integral_v<N> && !std::is_same_v<N, bool> && !std::is_same_v<N, char>)
void append_one(std::string &out, N n) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, r.ptr);
}
void append_double(std::string &out, double d);
inline void append_one(std::string &out, double d) { append_double(out, d); }
}  // namespace detail

/// Concatenates strings, characters and numbers: cat("pid ", 42, " exited").
template <typename... Args>
std::string cat(const Args &...args) {
    std::string out;
    (detail::append_one(out, args), ...);
    return out;
}

/// `name` in backticks, the way berth quotes paths and names in messages.
inline std::string quote(std::string_view s) { return cat('`', s, '`'); }

/// Parses a whole string as an integer of type N; nullopt on any junk.
template <typename N>
std::optional<N> parse_int(std::string_view s, int base = 10) {
    N value{};
    if (s.empty()) return std::nullopt;
    auto r = std::from_chars(s.data(), s.data() + s.size(), value, base);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
    return value;
}

std::vector<std::string> split(std::string_view s, char sep);
std::string_view trim(std::string_view s);
std::string join(const std::vector<std::string> &parts, std::string_view sep);
std::string hex_encode(const unsigned char *data, size_t len);
/// The current UTC time as RFC 3339 with nanoseconds: "2026-11-23T10:00:00.123456789Z".
std::string rfc3339_now();

}  // namespace util
