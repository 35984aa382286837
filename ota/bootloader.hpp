// The bootloader: which root filesystem slot boots next, how many attempts
// it has left, and which slot this boot came from. One interface over three
// stores of the same variables, RAUC's names and semantics, so a board set
// up for RAUC works unchanged:
//
//   BOOT_ORDER="A B"   the slots the bootloader tries, in order
//   BOOT_A_LEFT=3      attempts left for A; the boot script decrements the
//   BOOT_B_LEFT=3      counter of the slot it boots and skips a slot at 0
//   BERTH_TRYING=B     berth's own: the slot being tried (the boot script
//                      ignores it; RAUC's variables alone cannot tell a
//                      slot on trial from a good one)
//
// A slot is bad when its counter is 0 or it is not in BOOT_ORDER, trying
// when BERTH_TRYING names it, good otherwise. Stores (BootEnv):
//   - U-Boot's environment through libubootenv (bootloader_uboot.cpp;
//     fw_env.config from the board profile; redundant copies where it
//     names two), opened on first use;
//   - GRUB's environment block, grubenv (bootloader_grub.cpp);
//   - a small file for development and tests (bootloader_file.cpp).
// Every write sets all the variables it changes at once (one env store,
// one block write, one atomic rename).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ota/board.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace ota {

using BootVars = std::map<std::string, std::string>;

/// A store of bootloader variables.
class BootEnv {
public:
    virtual ~BootEnv() = default;
    /// The variables of `names` that are set (others are absent from the map).
    virtual util::Result<BootVars> read(const std::vector<std::string> &names) = 0;
    /// Sets every variable of `vars` (an empty value unsets it) in one write;
    /// the others keep their values.
    virtual util::Status write(const BootVars &vars) = 0;
    /// "U-Boot environment (fw_env.config /etc/fw_env.config)", for messages.
    virtual std::string describe() const = 0;
};

std::unique_ptr<BootEnv> file_boot_env(std::string path);
std::unique_ptr<BootEnv> grub_boot_env(std::string grubenv);
std::unique_ptr<BootEnv> uboot_boot_env(std::string fw_env_config);
/// The store the board's bootloader section names.
std::unique_ptr<BootEnv> open_boot_env(const BootloaderSpec &spec);

enum class SlotHealth { Good, Trying, Bad };
std::string_view health_name(SlotHealth h);

struct SlotBoot {
    std::string name;
    SlotHealth health = SlotHealth::Bad;
    int left = 0;       ///< BOOT_<name>_LEFT
    int position = -1;  ///< its index in BOOT_ORDER; -1: not there
};

struct BootStatus {
    std::vector<SlotBoot> slots;     ///< in the board's order
    std::vector<std::string> order;  ///< BOOT_ORDER
    std::string trying;              ///< BERTH_TRYING; empty: none
    /// The slot the bootloader boots next: the first of BOOT_ORDER with
    /// attempts left; empty when none has (every slot bad).
    std::string next;
    const SlotBoot *slot(std::string_view name) const;
};

/// The slot this boot came from: `rauc.slot=` (or `berth.slot=`) on the
/// kernel command line, else the slot whose device is mounted at / in
/// `mountinfo` (/proc/self/mountinfo's text); an error naming both when
/// neither says.
util::Result<std::string> booted_slot(const Board &board, std::string_view cmdline, std::string_view mountinfo);
/// The same, reading /proc/cmdline and /proc/self/mountinfo.
util::Result<std::string> booted_slot(const Board &board);

class Bootloader {
public:
    /// `board` must outlive the Bootloader.
    Bootloader(const Board &board, std::unique_ptr<BootEnv> env);
    /// The board's own (open_boot_env); an error when it has no slots.
    static util::Result<Bootloader> open(const Board &board);

    /// The state; a clear error when it is missing (BOOT_ORDER unset),
    /// unreadable, or inconsistent (a word of BOOT_ORDER that is no slot of
    /// the board, a slot listed twice, a counter that is not 0-9, a slot in
    /// the order without a counter).
    util::Result<BootStatus> status();
    /// Puts `slot` first in BOOT_ORDER with `attempts` attempts and names it
    /// in BERTH_TRYING: the next boot tries it, and the bootloader falls back
    /// to the next slot of the order once its counter runs out.
    util::Status mark_try(std::string_view slot);
    /// Resets `slot`'s counter and puts it first; clears BERTH_TRYING when it
    /// named `slot`.
    util::Status mark_good(std::string_view slot);
    /// Sets `slot`'s counter to 0 and removes it from BOOT_ORDER; clears
    /// BERTH_TRYING when it named `slot`.
    util::Status mark_bad(std::string_view slot);
    /// Every slot bad (nothing left to boot): marks `booted`, the slot this
    /// boot came from and so the last that worked, good again. Returns what
    /// it found and did, for the caller to report; empty when some slot was
    /// bootable and nothing changed.
    util::Result<std::string> recover(std::string_view booted);

    const BootEnv &env() const { return *env_; }
    /// The counter a slot gets when tried or marked good.
    int attempts() const { return attempts_; }

private:
    util::Result<BootStatus> read_status(bool strict);
    util::Status check_slot(std::string_view slot) const;
    std::vector<std::string> names() const;

    const Board *board_;
    std::unique_ptr<BootEnv> env_;
    int attempts_ = 3;
};

namespace envtext {
/// Variables as `NAME=VALUE` lines, in order, a backslash escaping a
/// backslash or a newline in a value (GRUB's environment block format; the
/// file backend uses it too).
using Entries = std::vector<std::pair<std::string, std::string>>;
/// Parses lines up to the end of `text`, skipping `#` comment lines; a
/// line without `=` is an error.
util::Result<Entries> parse(std::string_view text);
std::string format(const Entries &entries);
/// `entries` with `vars` applied: a variable set in place (or appended),
/// an empty value removing it.
Entries apply(Entries entries, const BootVars &vars);
/// The values of `names` among `entries`.
BootVars pick(const Entries &entries, const std::vector<std::string> &names);
}  // namespace envtext

/// `berth slot status --json`: {"booted", "next", "trying", "order",
/// "slots": [{"name", "state", "left", "device"}]}.
util::json::Value boot_status_json(const Board &board, const BootStatus &st, std::string_view booted);

}  // namespace ota
