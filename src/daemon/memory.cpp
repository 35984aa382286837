// svc::release_idle_memory; see memory.hpp. The mappings come from
// /proc/self/smaps: a header line per mapping ("start-end perms offset dev
// inode path"), then "Field: value kB" lines, of which Rss and Anonymous
// (copy-on-write pages of a private file mapping) matter here.
#include "daemon/memory.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <vector>

#include "util/file.hpp"
#include "util/strings.hpp"

namespace svc {

namespace {

constexpr size_t kSmapsMax = 1 << 20;
constexpr uintptr_t kStackMargin = 16 * 1024;  ///< kept below our frame (madvise's own call)

struct Mapping {
    uintptr_t start = 0, end = 0;
    std::string_view perms, path;
    uint64_t rss_kb = 0, anon_kb = 0;
};

/// "Name:   123 kB" -> 123 (0 when it does not parse).
uint64_t field_kb(std::string_view line) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return 0;
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    v = v.substr(0, v.find(' '));
    return util::parse_int<uint64_t>(v).value_or(0);
}

/// The header of a mapping, or nullopt for a field line.
std::optional<Mapping> header(std::string_view line) {
    auto dash = line.find('-'), sp = line.find(' ');
    if (dash == std::string_view::npos || sp == std::string_view::npos || dash > sp) return std::nullopt;
    auto start = util::parse_int<uintptr_t>(line.substr(0, dash), 16);
    auto end = util::parse_int<uintptr_t>(line.substr(dash + 1, sp - dash - 1), 16);
    if (!start || !end) return std::nullopt;
    Mapping m;
    m.start = *start;
    m.end = *end;
    std::vector<std::string_view> f;
    for (size_t i = 0; i < line.size() && f.size() < 6;) {
        while (i < line.size() && line[i] == ' ') i++;
        size_t j = f.size() == 5 ? line.size() : line.find(' ', i);
        if (j == std::string_view::npos) j = line.size();
        if (j > i) f.push_back(line.substr(i, j - i));
        i = j;
    }
    if (f.size() >= 2) m.perms = f[1];
    if (f.size() == 6) m.path = f[5];
    return m;
}

std::vector<Mapping> read_mappings(const std::string &smaps) {
    std::vector<Mapping> out;
    std::string_view rest = smaps;
    while (!rest.empty()) {
        auto nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        if (auto m = header(line)) out.push_back(*m);
        else if (!out.empty() && line.starts_with("Rss:")) out.back().rss_kb = field_kb(line);
        else if (!out.empty() && line.starts_with("Anonymous:")) out.back().anon_kb = field_kb(line);
    }
    return out;
}

/// A file's copy, never written: private, not writable, no copy-on-write page.
bool clean_file_copy(const Mapping &m) {
    return m.perms.size() == 4 && m.perms[1] != 'w' && m.perms[3] == 'p' && m.path.starts_with("/") &&
           m.anon_kb == 0 && m.rss_kb > 0;
}

}  // namespace

ReleasedMemory release_idle_memory() {
    ReleasedMemory r;
    ::malloc_trim(0);
    auto smaps = util::read_file("/proc/self/smaps", kSmapsMax);
    if (!smaps) return r;  // no /proc: only the heap goes back
    auto mappings = read_mappings(*smaps);
    // The smaps read must describe this very address space: the stack
    // mapping holds this frame. Under an emulator (qemu-user passes the
    // host's smaps through, with host addresses) it does not, and dropping
    // "its" ranges would zero live memory: then only the heap goes back.
    volatile char marker = 0;
    const uintptr_t here = reinterpret_cast<uintptr_t>(&marker);
    const Mapping *stack = nullptr;
    for (const auto &m : mappings)
        if (m.path == "[stack]" && here >= m.start && here < m.end) stack = &m;
    if (!stack) return r;
    for (const auto &m : mappings)
        if (clean_file_copy(m) && ::madvise(reinterpret_cast<void *>(m.start), m.end - m.start, MADV_DONTNEED) == 0) {
            r.mappings++;
            r.bytes += m.rss_kb * 1024;
        }
    // Everything below this frame (less the margin) is dead stack.
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    if (here > stack->start + kStackMargin) {
        uintptr_t cut = (here - kStackMargin) & ~(page - 1);
        if (::madvise(reinterpret_cast<void *>(stack->start), cut - stack->start, MADV_DONTNEED) == 0)
            r.stack_bytes = cut - stack->start;
    }
    ::malloc_trim(0);  // the smaps text
    return r;
}

}  // namespace svc
