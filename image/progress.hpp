// Download progress on stderr, for a person or for a program:
// - Human (a terminal): one line per blob, redrawn in place (bytes, rate,
//   ETA; "verified" once its digest matched, "unpacked" once its layer is
//   in the store), with the notes (platform, policy, result) above them;
// - Json (not a terminal, or --progress=json): one JSON object per line,
//   for the fleet agent and CI logs:
//     {"event":"progress","digest":"sha256:..","offset":N,"size":M,"resumedFrom":K}
//     {"event":"done","digest":"sha256:..","size":M}
//     {"event":"<note>","detail":"..."}
// - Quiet (-q): nothing.
// The library hands progress to a callback (FetchOptions::progress); this is
// the CLI's printer for it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "image/fetch.hpp"

namespace img {

enum class ProgressMode { Human, Json, Quiet };

/// Human when `fd` is a terminal, else Json.
ProgressMode auto_progress_mode(int fd);

class ProgressPrinter {
public:
    /// Prints to `fd` (2) in `mode`.
    explicit ProgressPrinter(int fd = 2, ProgressMode mode = ProgressMode::Json);
    void operator()(const FetchProgress &p);
    /// A free-form event ({"event":"<name>","detail":"..."} / a line above the blobs).
    void note(std::string_view event, std::string_view detail);
    ProgressFn fn() {
        return [this](const FetchProgress &p) { (*this)(p); };
    }

private:
    struct Row {
        std::string digest;
        uint64_t offset = 0, size = 0, resumed_from = 0;
        int64_t start_ms = 0;
        bool verified = false, unpacked = false;
    };
    /// Rewrites the rows in place, after `above` (a note line, or nothing).
    void redraw(std::string_view above = "");

    int fd_;
    ProgressMode mode_;
    std::vector<Row> rows_;
    size_t drawn_ = 0;  ///< rows on the screen, under the cursor's line
};

}  // namespace img
