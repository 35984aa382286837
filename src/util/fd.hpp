// Owning handles: UniqueFd for file descriptors and CPtr for the C libraries'
// objects (archive, EVP_MD_CTX, scmp_filter_ctx, cap_t, X509 ...).
#pragma once

#include <memory>
#include <utility>

namespace util {

/// A move-only file descriptor. Closes exactly once; close() is never retried
/// on EINTR (Linux has released the fd whatever close returns).
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd &&other) noexcept : fd_(other.release()) {}
    UniqueFd &operator=(UniqueFd &&other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    UniqueFd(const UniqueFd &) = delete;
    UniqueFd &operator=(const UniqueFd &) = delete;
    ~UniqueFd() { reset(); }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    explicit operator bool() const { return valid(); }
    /// Gives up ownership; the handle becomes empty (-1).
    int release() { return std::exchange(fd_, -1); }
    /// Closes the current fd (if any) and takes ownership of `fd`.
    void reset(int fd = -1);

private:
    int fd_ = -1;  ///< -1 when empty
};

/// Calls a C library's free function: CPtr<archive, archive_read_free>.
template <auto Fn>
struct FnDeleter {
    template <typename T>
    void operator()(T *p) const {
        if (p) Fn(p);
    }
};
template <typename T, auto Fn>
using CPtr = std::unique_ptr<T, FnDeleter<Fn>>;

/// Runs a function at scope exit unless dismissed: the undo half of a step.
template <typename F>
class ScopeGuard {
public:
    explicit ScopeGuard(F f) : f_(std::move(f)) {}
    ScopeGuard(const ScopeGuard &) = delete;
    ScopeGuard &operator=(const ScopeGuard &) = delete;
    ~ScopeGuard() {
        if (armed_) f_();
    }
    void dismiss() { armed_ = false; }

private:
    F f_;
    bool armed_ = true;
};

}  // namespace util
