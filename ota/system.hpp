// ota::BoardSystem: the updater's ota::System on a real board (the daemon's):
// the board profile's slots and bootloader, the slot this boot came from
// (rauc.slot=/berth.slot= or the root mount), the kernel's boot id, and the
// install of a manifest's system image, a blob in an OCI registry, streamed
// into the inactive slot by ota::SlotInstaller (resume state under
// <device root>/slots).
//
// Test builds take BERTH_BOOTED (the booted slot) and BERTH_BOOT_ID from
// the environment (util::test_hook_env), so a test plays a reboot into
// another slot by restarting the daemon; a device never does (its
// environment comes from the kernel command line).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "image/reference.hpp"
#include "image/registry.hpp"
#include "ota/board.hpp"
#include "ota/bootloader.hpp"
#include "ota/updater.hpp"
#include "util/result.hpp"

namespace ota {

class BoardSystem : public System {
public:
    using OpenRegistry = std::function<util::Result<img::Registry>(const img::Reference &)>;
    /// Runs the install apart (the daemon: in a child process, its loop
    /// turning meanwhile); unset: in this process.
    using RunApart = std::function<util::Status(const char *what, const std::function<util::Status()> &fn)>;

    /// The board's bootloader and booted slot; an error when the board has
    /// no slots or the booted slot cannot be told.
    static util::Result<std::unique_ptr<BoardSystem>> open(Board board, std::string state_dir, OpenRegistry open_registry);

    Bootloader &bootloader() override { return *boot_; }
    std::string booted() override { return booted_; }
    std::string boot_id() override { return boot_id_; }
    util::Result<std::string> install(const SystemSpec &spec) override;

    const Board &board() const { return board_; }
    void run_apart(RunApart fn) { run_apart_ = std::move(fn); }

private:
    BoardSystem(Board board, std::string state_dir, OpenRegistry open_registry)
        : board_(std::move(board)), state_dir_(std::move(state_dir)), open_registry_(std::move(open_registry)) {}

    Board board_;
    std::string state_dir_;
    OpenRegistry open_registry_;
    RunApart run_apart_;
    std::unique_ptr<Bootloader> boot_;
    std::string booted_, boot_id_;
};

}  // namespace ota
