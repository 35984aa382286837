// Error formatting. strerror() wording matches what runc and crun print.
#include "util/result.hpp"

#include <cstring>

namespace util {

Error Error::from_errno(std::string context) { return Error{errno, std::move(context)}; }

Error Error::with_code(int code, std::string context) { return Error{code, std::move(context)}; }

Error Error::wrap(std::string_view outer) && {
    if (outer.empty()) return std::move(*this);
    std::string joined;
    joined.reserve(outer.size() + 2 + context.size());
    joined.append(outer);
    if (!context.empty()) {
        joined.append(": ");
        joined.append(context);
    }
    context = std::move(joined);
    return std::move(*this);
}

std::string Error::message() const {
    std::string out = context;
    if (code != 0) {
        if (!out.empty()) out.append(": ");
        out.append(strerror(code));
    }
    if (out.empty()) out = "unknown error";
    return out;
}

}  // namespace util
