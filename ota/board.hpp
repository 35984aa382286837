// The board profile: boards/<name>/board.json (docs/board.md). What a board
// has (its root filesystem slots, the bootloader that chooses between them
// and where that bootloader keeps its state, the data partition holding the
// device root, the watchdog, the console, facts about its kernel) and what
// its apps may use (AppLimits). Parsed strictly, as the update manifest is
// (ota/strict.hpp): an unknown field, a wrong type or a bad value is an
// error naming the field's path ("slots[1].partlabel: unknown field").
//
// berth finds the profile by a flag, else `berth.board=` on the kernel
// command line, else /etc/berth/board.json (find_board()).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ota/manifest.hpp"
#include "util/result.hpp"

namespace ota {

/// Where a slot or the data partition is: exactly one way of naming it.
struct Location {
    enum Kind { Device, Label, PartLabel, Uuid, PartUuid, File };
    Kind kind = Device;
    std::string value;  ///< a /dev path, a label, a UUID, or an image file's path
    /// The path to open: the device, /dev/disk/by-{label,partlabel,uuid,partuuid}/<value>, or the file.
    std::string path() const;
    /// "device /dev/vda2", "partlabel rootfs_b", for messages.
    std::string describe() const;
};

struct SlotSpec {
    std::string name;  ///< the bootloader's name for it ("A", "B": BOOT_ORDER's words, rauc.slot=)
    Location where;
    uint64_t size = 0;  ///< the slot's capacity in bytes when known (an image larger is refused); 0: the device's
};

enum class BootloaderKind { UBoot, Grub, File };

struct BootloaderSpec {
    BootloaderKind kind = BootloaderKind::File;
    /// U-Boot: the fw_env.config naming the environment's copies; GRUB: the
    /// grubenv file; file: the state file. Absolute (a relative path in
    /// the profile is resolved against the profile's directory).
    std::string env;
    int attempts = 3;  ///< a slot's boot counter when it is tried or marked good (BOOT_x_LEFT)
};

struct DataSpec {
    Location where;
    std::string fstype = "ext4";
    std::string mount = "/var/lib/berth";  ///< the device root lives here
};

struct WatchdogSpec {
    std::string device = "/dev/watchdog";
    int64_t timeout_ms = 30000;
};

struct ConsoleSpec {
    std::string device;  ///< "ttyAMA0"
    uint32_t baud = 115200;
};

struct KernelFacts {
    std::string version;  ///< "5.10": the oldest kernel the board runs; empty: not said
    std::string cgroup;   ///< "v1", "v2" or "hybrid"; empty: detected at run time
    std::optional<bool> overlayfs;
};

struct Board {
    std::string name;
    std::vector<SlotSpec> slots;  ///< none on a board without system updates; else at least two
    std::optional<BootloaderSpec> bootloader;  ///< required when there are slots
    std::optional<DataSpec> data;
    std::optional<WatchdogSpec> watchdog;
    std::optional<ConsoleSpec> console;
    KernelFacts kernel;
    AppLimits apps;

    /// The slot named `name`, or null.
    const SlotSpec *slot(std::string_view name) const;
};

/// Parses a profile. Relative paths (an image-file slot, the bootloader's
/// env) are resolved against `base_dir` (the profile's directory).
util::Result<Board> parse_board(std::string_view document, std::string_view base_dir = "/");
/// Reads and parses the profile at `path`. A missing file is an error with errno ENOENT.
util::Result<Board> load_board(const std::string &path);

/// Where the profile berth uses is, and what named it.
struct BoardPath {
    std::string path;
    std::string_view from;  ///< "--board", "berth.board= on the kernel command line" or "the default path"
};

/// The default profile: the one a device image installs.
inline constexpr std::string_view kDefaultBoardPath = "/etc/berth/board.json";

/// The profile's path, first found of: `flag` when set, `berth.board=` in
/// `cmdline` (the kernel command line's text), `default_path` when it
/// exists. Named by the flag or the command line, the file must exist (a
/// missing one is load_board's error); with neither, an error with ENOENT
/// when `default_path` is not there either.
util::Result<BoardPath> find_board(const std::string &flag, std::string_view cmdline,
                                   std::string_view default_path = kDefaultBoardPath);
/// find_board(flag, cmdline)'s path.
util::Result<std::string> board_path(const std::string &flag, std::string_view cmdline);

/// The kernel command line (/proc/cmdline; in test builds the file
/// $BERTH_CMDLINE names instead); empty when it cannot be read.
std::string kernel_cmdline();

/// The value of `key=` in a kernel command line ("rauc.slot=B"); nullopt
/// when absent. The last one counts, as the kernel's parsers do.
std::optional<std::string> cmdline_value(std::string_view cmdline, std::string_view key);

}  // namespace ota
