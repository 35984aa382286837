// ota::BoardSystem (system.hpp).
#include "ota/system.hpp"

#include "ota/slot.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace ota {

using util::cat;

util::Result<std::unique_ptr<BoardSystem>> BoardSystem::open(Board board, std::string state_dir,
                                                               OpenRegistry open_registry) {
    std::unique_ptr<BoardSystem> s(new BoardSystem(std::move(board), std::move(state_dir), std::move(open_registry)));
    s->boot_ = std::make_unique<Bootloader>(TRY(Bootloader::open(s->board_)));
    if (const char *b = util::test_hook_env("BERTH_BOOTED")) {
        if (!s->board_.slot(b)) return util::Error::msg(cat("BERTH_BOOTED: no slot ", util::quote(b), " on the board"));
        s->booted_ = b;
    } else {
        s->booted_ = TRY(booted_slot(s->board_));
    }
    if (const char *id = util::test_hook_env("BERTH_BOOT_ID")) {
        s->boot_id_ = id;
    } else {
        auto id_text = TRY_CTX(util::read_file("/proc/sys/kernel/random/boot_id", 256), "the boot id");
        s->boot_id_ = std::string(util::trim(id_text));
    }
    return s;
}

util::Result<std::string> BoardSystem::install(const SystemSpec &spec) {
    auto ref = TRY(img::Reference::parse(spec.image));
    if (!ref.digest) return util::Error::msg(cat("system image ", util::quote(spec.image), ": not pinned by digest"));
    const SlotSpec *target = TRY(inactive_slot(board_, booted_));
    auto body = [&]() -> util::Status {
        auto reg = TRY(open_registry_(ref));
        SlotInstaller installer(board_, *boot_, booted_, state_dir_);
        TRY(installer.from_registry(reg, ref.repository, SlotImage{*ref.digest, spec.size}, target->name));
        return util::ok();
    };
    TRY(run_apart_ ? run_apart_("system install", body) : body());
    return target->name;
}

}  // namespace ota
