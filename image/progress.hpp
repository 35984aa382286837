// Download progress on stderr: a one-line bar redrawn in place when stderr
// is a terminal, JSON lines otherwise (for the fleet agent and CI logs):
//   {"event":"progress","digest":"sha256:..","offset":N,"size":M,"resumedFrom":K}
//   {"event":"done","digest":"sha256:..","size":M}
// The library hands progress to a callback (FetchOptions::progress); this is
// the CLI's printer for it.
#pragma once

#include "image/fetch.hpp"

namespace img {

class ProgressPrinter {
public:
    /// `fd` is where to print (2); `quiet` prints nothing.
    explicit ProgressPrinter(int fd = 2, bool quiet = false);
    void operator()(const FetchProgress &p);
    /// Prints a free-form event ({"event":"<name>","detail":"..."} / a plain line).
    void note(std::string_view event, std::string_view detail);
    ProgressFn fn() {
        return [this](const FetchProgress &p) { (*this)(p); };
    }

private:
    int fd_;
    bool tty_;
    bool quiet_;
    int64_t start_ms_ = 0;  ///< when the current blob started
    std::string current_;   ///< the blob the bar shows
};

}  // namespace img
