// Internal to the security area: a JSON accessor for unsigned fields that
// also accepts non-negative integers stored as signed (values built in code,
// e.g. `{"errnoRet", 38}`, are signed in nlohmann; parsed text is unsigned).
#pragma once

#include <cerrno>

#include "util/json.hpp"
#include "util/strings.hpp"

namespace rt::security::detail {

inline util::Result<std::optional<uint64_t>> opt_u64(const util::json::Value &obj, std::string_view key,
                                                     std::string_view where) {
    if (obj.is_object()) {
        auto it = obj.find(std::string(key));
        if (it != obj.end() && it->is_number_integer() && !it->is_number_unsigned() && it->template get<int64_t>() >= 0)
            return std::optional<uint64_t>(static_cast<uint64_t>(it->template get<int64_t>()));
    }
    return util::json::opt_uint(obj, key, where);
}

}  // namespace rt::security::detail
