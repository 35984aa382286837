// Content digests ("sha256:<64 hex>") and a streaming SHA-256 whose state
// can be saved and restored, so a download interrupted by a power cut
// resumes without hashing its prefix again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace img {

/// A validated digest. Only sha256 is accepted (what every registry serves).
class Digest {
public:
    /// An empty digest (str() == ""), only a placeholder until assigned.
    Digest() = default;
    /// Parses "sha256:<64 lowercase hex>"; anything else is an error naming it.
    static util::Result<Digest> parse(std::string_view s);
    static Digest of(std::string_view data);
    /// The same digest computed without OpenSSL (digest_small.cpp): for short
    /// documents hashed in a process that must not map libcrypto (the daemon).
    static Digest of_small(std::string_view data);
    /// Hashes what `fd` holds from its offset to EOF; each chunk read also
    /// goes to `each` when set (to copy while hashing), whose error stops it.
    static util::Result<Digest> of_fd(int fd, const std::function<util::Status(std::string_view)> &each = {});
    const std::string &str() const { return s_; }   ///< "sha256:ab..."
    std::string_view hex() const { return s_.size() > 7 ? std::string_view(s_).substr(7) : std::string_view(); }
    bool empty() const { return s_.empty(); }
    bool operator==(const Digest &o) const { return s_ == o.s_; }
    bool operator<(const Digest &o) const { return s_ < o.s_; }

private:
    friend class Sha256;
    explicit Digest(std::string s) : s_(std::move(s)) {}
    std::string s_;
};

/// Streaming SHA-256 (OpenSSL). The state is a plain byte string between
/// blocks: save_state() after any update(), restore_state() later, possibly
/// in another process, and continue.
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256 &) = delete;
    Sha256 &operator=(const Sha256 &) = delete;
    void update(const void *data, size_t len);
    void update(std::string_view s) { update(s.data(), s.size()); }
    uint64_t bytes() const { return bytes_; }
    /// Finishes and returns the digest; the object is then reset.
    Digest finish();
    std::string save_state() const;
    util::Status restore_state(std::string_view state);

private:
    struct Impl;
    Impl *impl_;
    uint64_t bytes_ = 0;
};

}  // namespace img
