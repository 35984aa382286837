// The ISA-L gzip reader of layer unpacking (image/unpack_gunzip.hpp):
// what it accepts and refuses is what libarchive's gzip filter (zlib)
// accepts and refuses. Skipped where berth is built without ISA-L or
// libisal.so.2 is missing (unpack.cpp then uses zlib).
#include <catch2/catch.hpp>

#include <unistd.h>
#include <zlib.h>

#include "image/unpack_gunzip.hpp"
#include "util/fd.hpp"

using namespace img;

namespace {

std::string gzip(const std::string &data) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out(deflateBound(&z, data.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data()));
    z.avail_in = uInt(data.size());
    z.next_out = reinterpret_cast<Bytef *>(out.data());
    z.avail_out = uInt(out.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

/// A pipe's read end holding `bytes` (written by a child, as a download would).
util::UniqueFd source(const std::string &bytes) {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(p[0]);
        size_t off = 0;
        while (off < bytes.size()) {
            ssize_t n = ::write(p[1], bytes.data() + off, std::min<size_t>(bytes.size() - off, 4000));
            if (n <= 0) ::_exit(1);
            off += size_t(n);
        }
        ::_exit(0);
    }
    ::close(p[1]);
    return util::UniqueFd(p[0]);
}

/// All of the output, or the error.
std::pair<std::string, std::string> gunzip(const std::string &bytes) {
    auto fd = source(bytes);
    auto g = FastGunzip::open(fd.get());
    std::string out;
    char buf[7000];
    for (;;) {
        ssize_t n = g->read(buf, sizeof buf);
        if (n < 0) return {out, g->error()};
        if (n == 0) return {out, ""};
        out.append(buf, size_t(n));
    }
}

std::string sample() {
    std::string s;
    for (int i = 0; i < 20000; i++) s += "line " + std::to_string(i * 7919 % 10007) + "\n";
    return s;
}

bool available() {
    auto fd = source("");
    return FastGunzip::open(fd.get()) != nullptr;
}

}  // namespace

TEST_CASE("the ISA-L gzip reader gives the data back", "[unpack][gunzip]") {
    if (!available()) {
        WARN("skipped: berth without ISA-L");
        return;
    }
    auto [out, err] = gunzip(gzip(sample()));
    CHECK(err == "");
    CHECK(out == sample());
}

TEST_CASE("the ISA-L gzip reader reads concatenated members as one stream", "[unpack][gunzip]") {
    if (!available()) return;
    auto [out, err] = gunzip(gzip("first member\n") + gzip(sample()) + gzip(""));
    CHECK(err == "");
    CHECK(out == "first member\n" + sample());
}

TEST_CASE("the ISA-L gzip reader ignores what follows the last member", "[unpack][gunzip]") {
    if (!available()) return;
    auto [out, err] = gunzip(gzip(sample()) + std::string(1024, '\0'));
    CHECK(err == "");
    CHECK(out == sample());
}

TEST_CASE("the ISA-L gzip reader refuses a truncated stream", "[unpack][gunzip]") {
    if (!available()) return;
    std::string z = gzip(sample());
    auto [out, err] = gunzip(z.substr(0, z.size() / 2));
    CHECK(err.find("truncated") != std::string::npos);
}

TEST_CASE("the ISA-L gzip reader refuses data whose CRC does not match", "[unpack][gunzip]") {
    if (!available()) return;
    std::string z = gzip(sample());
    z[z.size() - 8] ^= 1;  // the trailer's CRC-32
    auto [out, err] = gunzip(z);
    CHECK(err.find("CRC") != std::string::npos);
}

TEST_CASE("the ISA-L gzip reader refuses what is not gzip", "[unpack][gunzip]") {
    if (!available()) return;
    auto [out, err] = gunzip(sample());
    CHECK(err == "layer is not gzip-compressed");
}
