// gzip through ISA-L for layer unpacking (see unpack_gunzip.hpp).
#include "image/unpack_gunzip.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "util/strings.hpp"

#ifdef BERTH_HAVE_ISAL
#include <isa-l/igzip_lib.h>

#include "util/dynlib.hpp"
#endif

namespace img {

#ifdef BERTH_HAVE_ISAL

using util::cat;

namespace {

constexpr size_t kInSize = 256 * 1024;

constexpr const char *kIsalSymbols[] = {"isal_inflate_init", "isal_inflate_reset", "isal_inflate"};
// Opened on first use, as image/'s other libraries are (util/dynlib.hpp);
// optional: unpack.cpp falls back to zlib without it.
util::DynLib isal("libisal.so.2", "ISA-L (libisal.so.2)", kIsalSymbols);

struct Isal {
    decltype(&::isal_inflate_init) init;
    decltype(&::isal_inflate_reset) reset;
    decltype(&::isal_inflate) inflate;
};

const Isal *isal_functions() {
    static const Isal *fns = []() -> const Isal * {
        if (!isal.load()) return nullptr;
        static Isal f{reinterpret_cast<decltype(&::isal_inflate_init)>(isal.symbol("isal_inflate_init")),
                      reinterpret_cast<decltype(&::isal_inflate_reset)>(isal.symbol("isal_inflate_reset")),
                      reinterpret_cast<decltype(&::isal_inflate)>(isal.symbol("isal_inflate"))};
        return &f;
    }();
    return fns;
}

}  // namespace

struct FastGunzip::State {
    inflate_state s;
};

FastGunzip::FastGunzip(int fd) : fd_(fd), state_(new State), in_(new uint8_t[kInSize]) {}
FastGunzip::~FastGunzip() = default;

std::unique_ptr<FastGunzip> FastGunzip::open(int fd) {
    // BERTH_INFLATE=zlib keeps libarchive's zlib filter even where ISA-L is
    // installed: the tests run the unpacker both ways on such machines.
    if (const char *v = std::getenv("BERTH_INFLATE"); v && std::string_view(v) == "zlib") return nullptr;
    const Isal *f = isal_functions();
    if (!f) return nullptr;
    std::unique_ptr<FastGunzip> g(new FastGunzip(fd));
    f->init(&g->state_->s);
    g->state_->s.crc_flag = ISAL_GZIP;  // the header parsed, the CRC-32 checked
    g->state_->s.next_in = g->in_.get();
    g->state_->s.avail_in = 0;
    return g;
}

bool FastGunzip::refill() {
    inflate_state &s = state_->s;
    if (s.avail_in > 0 && s.next_in != in_.get()) std::memmove(in_.get(), s.next_in, s.avail_in);
    s.next_in = in_.get();
    for (;;) {
        ssize_t n = ::read(fd_, in_.get() + s.avail_in, kInSize - s.avail_in);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error_ = cat("read layer: ", std::strerror(errno));
            return false;
        }
        if (n == 0) in_eof_ = true;
        compressed_ += uint64_t(n);
        s.avail_in += uint32_t(n);
        return true;
    }
}

ssize_t FastGunzip::read(char *out, size_t len) {
    const Isal *f = isal_functions();
    inflate_state &s = state_->s;
    if (len > UINT32_MAX) len = UINT32_MAX;
    while (!done_) {
        if (s.block_state == ISAL_BLOCK_FINISH) {
            // A member ended: another follows only where its magic does.
            while (s.avail_in < 2 && !in_eof_)
                if (!refill()) return -1;
            if (s.avail_in < 2 || s.next_in[0] != 0x1f || s.next_in[1] != 0x8b) {
                done_ = true;
                break;
            }
            uint8_t *next = s.next_in;
            uint32_t avail = s.avail_in;
            f->reset(&s);
            s.crc_flag = ISAL_GZIP;
            s.next_in = next;
            s.avail_in = avail;
        }
        if (s.avail_in == 0 && !in_eof_ && !refill()) return -1;
        s.next_out = reinterpret_cast<uint8_t *>(out);
        s.avail_out = uint32_t(len);
        int r = f->inflate(&s);
        size_t produced = len - s.avail_out;
        if (r != ISAL_DECOMP_OK) {
            error_ = first_ && r == ISAL_INVALID_WRAPPER ? "layer is not gzip-compressed"
                     : r == ISAL_INCORRECT_CHECKSUM      ? "decompress layer: the gzip CRC does not match the data"
                                                         : cat("decompress layer: corrupt gzip data (igzip error ", r, ")");
            return -1;
        }
        if (produced > 0) first_ = false;
        if (produced > 0) return ssize_t(produced);
        if (s.block_state == ISAL_BLOCK_FINISH) continue;
        if (in_eof_ && s.avail_in == 0) {
            error_ = "decompress layer: the gzip stream is truncated";
            return -1;
        }
        if (s.avail_in > 0 && s.avail_in == kInSize) {
            error_ = "decompress layer: igzip made no progress";
            return -1;
        }
        if (!refill()) return -1;
    }
    return 0;
}

#else  // ISA-L not built in

struct FastGunzip::State {};
FastGunzip::FastGunzip(int fd) : fd_(fd) {}
FastGunzip::~FastGunzip() = default;
std::unique_ptr<FastGunzip> FastGunzip::open(int) { return nullptr; }
bool FastGunzip::refill() { return false; }
ssize_t FastGunzip::read(char *, size_t) { return -1; }

#endif

}  // namespace img
