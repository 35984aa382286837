// `berth slot status|install|mark-good|mark-bad`: the root filesystem slots
// of the board (ota/board.hpp, ota/bootloader.hpp, ota/slot.hpp). The board
// profile comes from --board, else berth.board= on the kernel command line,
// else /etc/berth/board.json; the booted slot from rauc.slot=/berth.slot=
// or the root mount, or --booted for a slot not really booted (a bench, a
// development machine; RAUC's --override-boot-slot).
#include <unistd.h>

#include <vector>

#include "commands.hpp"
#include "image/manifest.hpp"
#include "image/reference.hpp"
#include "image/registry.hpp"
#include "ota/board.hpp"
#include "ota/bootloader.hpp"
#include "ota/slot.hpp"
#include "registry_flags.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

using util::cat;

struct SlotContext {
    ota::Board board;
    std::string booted;  ///< empty when it cannot be told (status shows why)
    util::Error booted_error;
};

util::Result<SlotContext> context(const util::ParsedArgs &a) {
    auto cmdline = ota::kernel_cmdline();
    SlotContext c;
    c.board = TRY(ota::load_board(TRY(ota::board_path(a.get("board").value_or(""), cmdline))));
    if (auto b = a.get("booted")) {
        if (!c.board.slot(*b)) return util::Error::msg(cat("--booted: no slot ", util::quote(*b), " on the board"));
        c.booted = *b;
    } else if (auto b = ota::booted_slot(c.board); b) {
        c.booted = *b;
    } else {
        c.booted_error = std::move(b).error();
    }
    return c;
}

util::Result<int> run_status(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    auto c = TRY(context(a));
    auto boot = TRY(ota::Bootloader::open(c.board));
    auto st = TRY(boot.status());
    if (a.has("json")) {
        TRY(util::write_all(1, util::json::dump(ota::boot_status_json(c.board, st, c.booted), 2) + "\n"));
        return 0;
    }
    std::string out = cat("booted: ", c.booted.empty() ? "unknown (" + c.booted_error.message() + ")" : c.booted, "\n",
                          "next:   ", st.next.empty() ? "none (every slot is bad)" : st.next, "\n",
                          "order:  ", util::join(st.order, " "), "\n");
    for (const auto &s : st.slots)
        out += cat("slot ", s.name, ": ", ota::health_name(s.health), ", ", s.left, " attempts left, ",
                   c.board.slot(s.name)->where.describe(), "\n");
    TRY(util::write_all(1, out));
    return 0;
}

/// The blob a reference names: `repo@sha256:` of the blob itself with
/// --size, else the single layer of the image manifest it names.
util::Result<ota::SlotImage> remote_image(img::Registry &reg, const img::Reference &ref, const util::ParsedArgs &a) {
    if (auto size = a.get("size")) {
        if (!ref.digest) return util::Error::msg("--size needs a reference by digest (the blob's)");
        return ota::SlotImage{*ref.digest, TRY(parse_size(*size, "size"))};
    }
    auto m = TRY(reg.get_manifest(ref.repository, img::manifest_ref(ref)));
    if (!m) return util::Error::msg(cat(ref.str(), ": no such manifest"));
    auto manifest = TRY(img::parse_manifest(m->body));
    if (manifest.layers.size() != 1)
        return util::Error::msg(cat(ref.str(), ": a system image has exactly one layer (the root filesystem), this has ",
                                    manifest.layers.size()));
    return ota::SlotImage{manifest.layers[0].digest, static_cast<uint64_t>(manifest.layers[0].size)};
}

util::Result<int> run_install(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto c = TRY(context(a));
    if (c.booted.empty()) return std::move(c.booted_error).wrap("install");
    auto boot = TRY(ota::Bootloader::open(c.board));
    const std::string state_dir = util::path_join(cli::device_root(g, a, false).dir(), "slots");
    ota::SlotInstaller installer(c.board, boot, c.booted, state_dir);
    const std::string &source = a.positional[0];
    const std::string slot = a.get("slot").value_or("");
    ota::SlotInstallOptions opts;
    if (auto p = a.get("persist-bytes")) opts.persist_bytes = TRY(parse_size(*p, "persist-bytes"));
    ota::SlotImage image;
    if (auto d = a.get("digest")) image.digest = TRY(img::Digest::parse(*d));
    ota::SlotInstallStats stats;
    if (util::path_exists(source)) {
        stats = TRY(installer.from_file(source, image, slot, opts));
    } else {
        auto ref = TRY(img::Reference::parse(source));
        auto reg = TRY(img::Registry::open(img::registry_host(ref), TRY(registry_options(a))));
        image = TRY(remote_image(reg, ref, a));
        stats = TRY(installer.from_registry(reg, ref.repository, image, slot, opts));
    }
    if (!a.has("no-try")) TRY(boot.mark_try(stats.slot));
    TRY(util::write_all(1, cat("installed into slot ", stats.slot, ": ", stats.received, " bytes received, resumed at byte ",
                               stats.resumed_from, ", read back and verified",
                               a.has("no-try") ? "" : cat("; slot ", stats.slot, " is tried at the next boot"), "\n")));
    return 0;
}

util::Result<int> mark(const util::ParsedArgs &a, bool good) {
    auto c = TRY(context(a));
    std::string slot = a.positional.empty() ? c.booted : a.positional[0];
    if (slot.empty()) return std::move(c.booted_error).wrap(good ? "mark-good" : "mark-bad");
    auto boot = TRY(ota::Bootloader::open(c.board));
    TRY(good ? boot.mark_good(slot) : boot.mark_bad(slot));
    TRY(util::write_all(1, cat("slot ", slot, " marked ", good ? "good" : "bad", "\n")));
    return 0;
}

util::Result<int> run_mark_good(const cli::GlobalOptions &, const util::ParsedArgs &a) { return mark(a, true); }
util::Result<int> run_mark_bad(const cli::GlobalOptions &, const util::ParsedArgs &a) { return mark(a, false); }

#define BERTH_SLOT_OPTIONS                                                                            \
    {"board", 0, true, "FILE", "the board profile (default: berth.board= or /etc/berth/board.json)"}, \
        {"booted", 0, true, "SLOT", "take SLOT as the booted slot (a slot not really booted)"}

const util::OptSpec kStatusOptions[] = {BERTH_SLOT_OPTIONS, {"json", 0, false, nullptr, "print as JSON"}};
const util::OptSpec kMarkOptions[] = {BERTH_SLOT_OPTIONS};
const util::OptSpec kInstallOptions[] = {
    BERTH_SLOT_OPTIONS,
    {"store", 0, true, "DIR", "the device root holding the install's resume state (default /var/lib/berth)"},
    {"slot", 0, true, "SLOT", "the slot to write (default: the inactive one); never the booted one"},
    {"digest", 0, true, "sha256:HEX", "the image's digest (a file: default its own; a blob reference: the digest)"},
    {"size", 0, true, "BYTES", "with a reference to the blob itself: its size"},
    {"persist-bytes", 0, true, "BYTES", "fdatasync and save the resume state this often (default 8M)"},
    {"no-try", 0, false, nullptr, "write and verify only; do not ask the bootloader to try the slot"},
    {"creds", 0, true, "FILE", "registry credentials, docker config.json format"},
    {"ca", 0, true, "FILE", "trust this PEM CA bundle for TLS"},
    {"insecure-http", 0, false, nullptr, "plain http (loopback registries fall back to it by themselves)"},
    {"limit-rate", 0, true, "BYTES", "receive at most BYTES/s (k, M suffixes)"},
    {"timeout", 0, true, "SECONDS", "give up after SECONDS, retries included (default 900; 0: never)"},
    {"retries", 0, true, "N", "attempts without progress before giving up (default 8)"},
    {"retry-delay-ms", 0, true, "MS", "first backoff delay (default 500, doubles, jittered)"},
};

const cli::Command kSubcommands[] = {
    {"status", "[OPTIONS]", "the slots, the booted one and the bootloader's state", kStatusOptions, 0, 0, false,
     run_status},
    {"install", "[OPTIONS] FILE|REFERENCE", "write a root filesystem image into the inactive slot, verify it, try it",
     kInstallOptions, 1, 1, false, run_install},
    {"mark-good", "[OPTIONS] [SLOT]", "reset SLOT's boot counter and boot it first (default: the booted slot)",
     kMarkOptions, 0, 1, false, run_mark_good},
    {"mark-bad", "[OPTIONS] [SLOT]", "never boot SLOT again until it is installed (default: the booted slot)",
     kMarkOptions, 0, 1, false, run_mark_bad},
};

util::Result<int> run_slot(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    std::vector<std::string> args = a.positional;
    std::vector<char *> argv;
    for (auto &s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    return cli::dispatch(kSubcommands, "slot", g, static_cast<int>(args.size()), argv.data());
}

const cli::Command kCommands[] = {
    {"slot", "COMMAND [ARGS...]", "root filesystem slots: status, install, mark-good, mark-bad", {}, 0, -1, true,
     run_slot},
};

}  // namespace

std::span<const cli::Command> slot_commands() { return kCommands; }

}  // namespace cmd
