// Result<T> and Error: how every fallible function in berth reports failure.
//
// An Error carries the errno that caused it (0 when the failure is not a
// syscall's) and a context string that each layer extends on the way up:
// "create `web`: open `config.json`: No such file or directory". Library code
// never prints and never exits; only main() turns an Error into a message and
// an exit code. TRY() makes the error path one line, as SerenityOS's does.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace util {

struct Error {
    int code = 0;          ///< errno value; 0 when the failure is not a syscall's
    std::string context;   ///< what was being done, outermost first

    /// An error for the syscall that just failed: uses the current errno.
    static Error from_errno(std::string context);
    /// An error with an explicit errno value (may be 0).
    static Error with_code(int code, std::string context);
    /// A logical error (bad input, refused operation) with no errno.
    static Error msg(std::string context) { return Error{0, std::move(context)}; }

    /// Prefixes `outer: ` to the context, keeping the code.
    [[nodiscard]] Error wrap(std::string_view outer) &&;
    /// The one-line message: context, then `: strerror(code)` when code != 0.
    [[nodiscard]] std::string message() const;
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}
    template <typename U>
        requires(std::is_constructible_v<T, U &&> && !std::is_same_v<std::decay_t<U>, T> &&
                 !std::is_same_v<std::decay_t<U>, Error>)
    Result(U &&value) : v_(std::in_place_index<0>, T(std::forward<U>(value))) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T &value() & { return std::get<0>(v_); }
    const T &value() const & { return std::get<0>(v_); }
    T &&value() && { return std::get<0>(std::move(v_)); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }
    T &operator*() & { return value(); }
    const T &operator*() const & { return value(); }
    T &&operator*() && { return std::move(*this).value(); }

    const Error &error() const & { return std::get<1>(v_); }
    Error &&error() && { return std::get<1>(std::move(v_)); }

    /// Wraps the error (if any) with more context.
    Result context(std::string_view outer) && {
        if (!ok()) return std::move(*this).error().wrap(outer);
        return std::move(*this);
    }
    T value_or(T fallback) && { return ok() ? std::move(*this).value() : std::move(fallback); }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : err_(std::move(error)), failed_(true) {}

    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    void value() const {}
    const Error &error() const & { return err_; }
    Error &&error() && { return std::move(err_); }
    Result context(std::string_view outer) && {
        if (failed_) return std::move(err_).wrap(outer);
        return {};
    }

private:
    Error err_;
    bool failed_ = false;
};

using Status = Result<void>;

/// Returns a Result<void> success; reads better than `return {};` in long functions.
inline Status ok() { return {}; }

}  // namespace util

/// Evaluates a Result; on failure returns its Error from the enclosing
/// function, otherwise yields the value. `auto fd = TRY(open_dir(path));`
#define TRY(...)                                                  \
    __extension__({                                               \
        auto _try_result = (__VA_ARGS__);                         \
        if (!_try_result.ok()) return std::move(_try_result).error(); \
        std::move(_try_result).value();                           \
    })

/// Like TRY, but adds context to the error first: TRY_CTX(read(p), "read `" + p + "`").
#define TRY_CTX(expr, ctx)                                                        \
    __extension__({                                                               \
        auto _try_result = (expr);                                                \
        if (!_try_result.ok()) return std::move(_try_result).error().wrap(ctx);   \
        std::move(_try_result).value();                                           \
    })
