// What an idle daemon keeps mapped: after start-up and after an update the
// daemon idles for months, touching a few pages of code per timer. Most of
// its resident set by then is code and read-only data that start-up (or
// the update) faulted in, with the kernel's fault-around mapping 64 KiB
// about each fault, plus the stack the deepest call grew.
//
// release_idle_memory() gives back what the idle loop does not need:
//   - the free heap (malloc_trim);
//   - the page-table entries of clean, read-only, file-backed private
//     mappings (the binary's and the libraries' text and read-only data,
//     never a mapping with a copy-on-write page, so relocated data stays):
//     MADV_DONTNEED drops them from this process only; the pages stay in
//     the page cache, and the next touch is a minor fault (no I/O);
//   - the stack below the caller's frame, less a margin (zero pages again
//     on the next deep call).
// Nothing is lost: every page dropped is either a copy of a file's page
// cache or dead stack.
#pragma once

#include <cstdint>

namespace svc {

struct ReleasedMemory {
    int mappings = 0;       ///< file mappings whose page-table entries went
    uint64_t bytes = 0;     ///< of them resident before (smaps' Rss)
    uint64_t stack_bytes = 0;  ///< the stack range given back (resident or not)
};

/// Gives back what it can; a failure (no /proc) leaves the rest mapped.
/// The stack below the caller's frame is dead whatever the caller: a
/// shallow caller (the loop's callbacks) gives back the most.
ReleasedMemory release_idle_memory();

}  // namespace svc
