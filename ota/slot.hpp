// Installing a root filesystem image into a slot (DESIGN.md, "System
// slot"): always the INACTIVE slot, never the one booted. The image (a blob
// in an OCI registry, fetched with Range resume by img::fetch_into, or a
// local file) is streamed through one fixed buffer into the slot while it
// is hashed; every `persist_bytes` the written bytes are fdatasync'ed and
// the offset with the hash state saved (img::resume_state, the format of
// pulls), so an install cut by a kill or a power cut resumes there. At the
// end the size and digest are checked, then the slot is read back from the
// medium (its page cache dropped first) and hashed again: only a slot that
// read back right is handed to the bootloader.
//
// Before the first byte is written the target slot is marked bad in the
// bootloader: a slot half-written (or written with a wrong image) is never
// bootable, whatever it held before.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "image/digest.hpp"
#include "image/registry.hpp"
#include "ota/board.hpp"
#include "ota/bootloader.hpp"
#include "util/result.hpp"

namespace ota {

struct SlotImage {
    img::Digest digest;
    uint64_t size = 0;
};

struct SlotInstallOptions {
    uint64_t persist_bytes = 8 << 20;  ///< fdatasync + save the resume state this often
    std::function<void(uint64_t done, uint64_t size)> progress;
    /// Test seam: called after the last byte is written and synced, before the read-back.
    std::function<void(const std::string &slot_path)> before_readback;
};

struct SlotInstallStats {
    std::string slot;           ///< the slot written
    uint64_t resumed_from = 0;  ///< bytes found written by an earlier, interrupted install
    uint64_t received = 0;      ///< bytes this call took from the source
    int drops = 0;              ///< registry transfers that failed and were resumed
};

/// The slot an install writes: `slot` when given (refused when it is the
/// booted one), else the first slot of the board that is not booted.
util::Result<const SlotSpec *> inactive_slot(const Board &board, std::string_view booted, std::string_view slot = {});

class SlotInstaller {
public:
    /// `state_dir` holds the resume state (<state_dir>/<slot>.json);
    /// `booted` is the slot this boot came from.
    SlotInstaller(const Board &board, Bootloader &boot, std::string booted, std::string state_dir)
        : board_(board), boot_(boot), booted_(std::move(booted)), state_dir_(std::move(state_dir)) {}

    /// Streams `file` into `slot` (empty: the inactive one). `image.digest`
    /// empty: the file's own digest (hashed first).
    util::Result<SlotInstallStats> from_file(const std::string &file, SlotImage image, std::string_view slot,
                                             const SlotInstallOptions &opts = {});
    /// Streams blob `image` of `repo` from `reg` into `slot`.
    util::Result<SlotInstallStats> from_registry(img::Registry &reg, const std::string &repo, const SlotImage &image,
                                                 std::string_view slot, const SlotInstallOptions &opts = {});

private:
    const Board &board_;
    Bootloader &boot_;
    std::string booted_;
    std::string state_dir_;
};

}  // namespace ota
