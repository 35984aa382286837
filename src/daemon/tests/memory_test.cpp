// Unit tests of src/daemon/memory: what release_idle_memory() gives back
// (a clean file mapping's resident pages, dead stack) and what it must
// keep (a private file mapping's copy-on-write pages, as the binary's
// relocated read-only data is). The residency checks read smaps and are
// skipped under qemu-user (BERTH_EMULATED), whose /proc/self/smaps is the host's: there only the heap goes back.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "daemon/memory.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace {

constexpr size_t kPages = 64;

/// A temporary file of kPages pages of `fill`, unlinked; its fd.
int temp_file(char fill) {
    char path[] = "/tmp/berth-memory-test-XXXXXX";
    int fd = ::mkostemp(path, O_CLOEXEC);
    REQUIRE(fd >= 0);
    ::unlink(path);
    std::string data(kPages * size_t(::getpagesize()), fill);
    REQUIRE(::write(fd, data.data(), data.size()) == ssize_t(data.size()));
    return fd;
}

/// smaps' Rss of the mapping starting at `addr`, in kB (-1: not found).
long rss_kb(const void *addr) {
    auto smaps = util::read_file("/proc/self/smaps");
    REQUIRE(smaps);
    char head[32];
    std::snprintf(head, sizeof head, "%lx-", reinterpret_cast<unsigned long>(addr));
    size_t at = smaps->find(util::cat("\n", head));
    if (at == std::string::npos) return -1;
    size_t rss = smaps->find("\nRss:", at + 1);
    REQUIRE(rss != std::string::npos);
    return std::strtol(smaps->c_str() + rss + 5, nullptr, 10);
}

bool emulated() { return std::getenv("BERTH_EMULATED") != nullptr; }

/// Touches `kb` KiB of stack below this frame; returns a sum of it.
__attribute__((noinline)) int deep(size_t kb) {
    volatile char buf[1024];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = char(i);
    return buf[kb % sizeof buf] + (kb > 1 ? deep(kb - 1) : 0);
}

}  // namespace

TEST_CASE("release_idle_memory keeps the copy-on-write pages of a private file mapping", "[memory]") {
    int fd = temp_file('a');
    size_t len = kPages * size_t(::getpagesize());
    // As the binary's relocated data: written once, then read-only.
    auto *p = static_cast<char *>(::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
    REQUIRE(p != MAP_FAILED);
    std::memset(p, 'b', size_t(::getpagesize()));
    REQUIRE(::mprotect(p, len, PROT_READ) == 0);
    (void)svc::release_idle_memory();
    CHECK(p[0] == 'b');
    CHECK(p[::getpagesize() - 1] == 'b');
    CHECK(p[::getpagesize()] == 'a');
    ::munmap(p, len);
    ::close(fd);
}

TEST_CASE("release_idle_memory gives back a clean file mapping's pages, readable again", "[memory]") {
    int fd = temp_file('c');
    size_t len = kPages * size_t(::getpagesize());
    auto *p = static_cast<const char *>(::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, 0));
    REQUIRE(p != MAP_FAILED);
    long sum = 0;
    for (size_t i = 0; i < len; i += size_t(::getpagesize())) sum += p[i];
    CHECK(sum == long(kPages) * 'c');
    auto r = svc::release_idle_memory();
    if (!emulated()) {
        CHECK(r.mappings > 0);
        CHECK(rss_kb(p) == 0);
    }
    CHECK(p[len - 1] == 'c');
    ::munmap(const_cast<char *>(p), len);
    ::close(fd);
}

TEST_CASE("release_idle_memory gives back the stack below its caller, usable again", "[memory]") {
    CHECK(deep(64) != 0);  // 64 KiB of stack resident
    auto r = svc::release_idle_memory();
    if (!emulated()) CHECK(r.stack_bytes > 0);
    CHECK(deep(96) != 0);
}
