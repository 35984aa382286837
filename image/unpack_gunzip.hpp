// gzip decompression for layer unpacking through Intel's ISA-L (igzip),
// when berth was built with its header and libisal.so.2 is installed: it
// inflates about 3.5 times as fast as zlib on x86_64 (a 205 MB Debian layer,
// 77 MB compressed: 0.40 s of CPU against zlib's 1.5 s), which is most of
// what unpacking a large base layer costs. Without it, unpack.cpp uses
// libarchive's gzip filter (zlib), as before. Either way the result is
// checked the same way: gzip's CRC-32 here, the diff_id over the output in
// unpack.cpp.
//
// Like libarchive's filter it reads concatenated gzip members as one
// stream and ignores what follows the last member when that is not the
// start of another (the digest of the blob covers every byte anyway).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "util/result.hpp"

namespace img {

class FastGunzip {
public:
    /// A decompressor reading the gzip stream from `fd`; nullptr when
    /// ISA-L is not available (not built in, or the library is missing)
    /// or BERTH_INFLATE=zlib asks for zlib.
    static std::unique_ptr<FastGunzip> open(int fd);
    ~FastGunzip();

    /// Fills `out` with up to `len` bytes of output; 0 at the end of the
    /// stream; -1 with error() set on a read error or corrupt data.
    ssize_t read(char *out, size_t len);
    /// Compressed bytes read from the fd so far.
    uint64_t compressed() const { return compressed_; }
    const std::string &error() const { return error_; }

private:
    struct State;
    explicit FastGunzip(int fd);
    /// Reads more input after what is left unconsumed; false on a read error.
    bool refill();

    int fd_;
    std::unique_ptr<State> state_;
    std::unique_ptr<uint8_t[]> in_;
    uint64_t compressed_ = 0;
    bool in_eof_ = false;
    bool done_ = false;
    bool first_ = true;  ///< still in the first member's header
    std::string error_;
};

}  // namespace img
