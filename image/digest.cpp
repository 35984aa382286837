// SHA-256 digests for the content store, on OpenSSL's SHA256_CTX.
//
// The low-level SHA256_* API is deprecated in OpenSSL 3 but is the only one
// whose state is a plain struct: save_state() copies it (with a magic and
// the byte count) into a string that restore_state() accepts in another
// process, which is what resuming a download after a power cut needs. EVP
// has no portable way to export the midstate.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "image/digest.hpp"

#include <openssl/sha.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/strings.hpp"

namespace img {
namespace {

constexpr std::string_view kStateMagic = "berth-sha256-v1:";

bool is_lower_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace

util::Result<Digest> Digest::parse(std::string_view s) {
    if (!s.starts_with("sha256:"))
        return util::Error::msg(util::cat("digest ", util::quote(s.substr(0, 80)), ": only sha256 is supported"));
    std::string_view hex = s.substr(7);
    if (hex.size() != 64 || !is_lower_hex(hex))
        return util::Error::msg(util::cat("digest ", util::quote(s.substr(0, 80)), ": expected 64 lowercase hex digits"));
    return Digest(std::string(s));
}

Digest Digest::of(std::string_view data) {
    Sha256 h;
    h.update(data);
    return h.finish();
}

util::Result<Digest> Digest::of_fd(int fd, const std::function<util::Status(std::string_view)> &each) {
    Sha256 h;
    std::string buf(1 << 17, '\0');
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return util::Error::from_errno("read");
        if (n == 0) return h.finish();
        std::string_view chunk(buf.data(), static_cast<size_t>(n));
        h.update(chunk);
        if (each) TRY(each(chunk));
    }
}

struct Sha256::Impl {
    SHA256_CTX ctx;
};

Sha256::Sha256() : impl_(new Impl) { SHA256_Init(&impl_->ctx); }

Sha256::~Sha256() { delete impl_; }

void Sha256::update(const void *data, size_t len) {
    SHA256_Update(&impl_->ctx, data, len);
    bytes_ += len;
}

Digest Sha256::finish() {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_Final(md, &impl_->ctx);
    SHA256_Init(&impl_->ctx);
    bytes_ = 0;
    return Digest(util::cat("sha256:", util::hex_encode(md, sizeof md)));
}

std::string Sha256::save_state() const {
    std::string s(kStateMagic);
    s.append(reinterpret_cast<const char *>(&bytes_), sizeof bytes_);
    s.append(reinterpret_cast<const char *>(&impl_->ctx), sizeof impl_->ctx);
    return s;
}

util::Status Sha256::restore_state(std::string_view state) {
    if (state.size() != kStateMagic.size() + sizeof bytes_ + sizeof(SHA256_CTX) || !state.starts_with(kStateMagic))
        return util::Error::msg("sha256 state: not a saved state of this build");
    SHA256_CTX ctx;
    uint64_t bytes = 0;
    std::memcpy(&bytes, state.data() + kStateMagic.size(), sizeof bytes);
    std::memcpy(&ctx, state.data() + kStateMagic.size() + sizeof bytes, sizeof ctx);
    // The context's own bit count must agree with the byte count and the
    // buffered-byte count must be in range, or the state is corrupt.
    uint64_t bits = (static_cast<uint64_t>(ctx.Nh) << 32) | ctx.Nl;
    if (bits != bytes * 8 || ctx.num >= SHA256_CBLOCK || ctx.num != bytes % SHA256_CBLOCK || ctx.md_len != SHA256_DIGEST_LENGTH)
        return util::Error::msg("sha256 state: inconsistent saved state");
    impl_->ctx = ctx;
    bytes_ = bytes;
    return util::ok();
}

}  // namespace img
