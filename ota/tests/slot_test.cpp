// Unit tests of ota/slot: an install writes only the inactive slot, resumes
// after a SIGKILL from its persisted state (and its verified checkpoint),
// refuses a slot that reads back wrong, and never leaves a half-written
// slot bootable. Slots are image files; the bootloader is the file backend.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "ota/slot.hpp"
#include "scratch.hpp"
#include "util/strings.hpp"

using namespace ota;
using util::cat;

namespace {

constexpr uint64_t kImageSize = 6 << 20;

struct Rig {
    ota_test::Scratch dir;
    Board board;
    std::unique_ptr<Bootloader> boot;
    std::string image = dir.at("rootfs.img");
    std::string content;

    Rig() {
        board.name = "test";
        board.slots = {SlotSpec{"A", {Location::File, dir.at("a.img")}, 0},
                       SlotSpec{"B", {Location::File, dir.at("b.img")}, 0}};
        board.bootloader = BootloaderSpec{BootloaderKind::File, dir.at("boot.env"), 3};
        dir.write("a.img", "");
        dir.write("b.img", "old system B");
        std::mt19937_64 rng(42);
        content.resize(kImageSize);
        for (auto &ch : content) ch = static_cast<char>(rng());
        dir.write("rootfs.img", content);
        boot = std::make_unique<Bootloader>(board, file_boot_env(dir.at("boot.env")));
        REQUIRE(boot->mark_good("A").ok());
        REQUIRE(boot->mark_good("B").ok());  // B was a good slot before the install
        REQUIRE(boot->mark_good("A").ok());
    }
    SlotInstaller installer() { return SlotInstaller(board, *boot, "A", dir.at("state")); }
    SlotHealth health(const char *slot) {
        auto st = boot->status();
        REQUIRE(st.ok());
        return st->slot(slot)->health;
    }
    std::string slot_b() { return util::read_file(dir.at("b.img")).value_or(""); }
};

}  // namespace

TEST_CASE("an install into the booted slot is refused", "[slot]") {
    Rig r;
    auto res = r.installer().from_file(r.image, {}, "A");
    REQUIRE_FALSE(res.ok());
    CHECK(res.error().message() == "slot A is the booted slot: an install writes only the inactive slot");
    CHECK(r.health("A") == SlotHealth::Good);
}

TEST_CASE("an install writes the inactive slot and verifies it", "[slot]") {
    Rig r;
    auto res = r.installer().from_file(r.image, {}, "");
    INFO((res.ok() ? "" : res.error().message()));
    REQUIRE(res.ok());
    CHECK(res->slot == "B");
    CHECK(res->received == kImageSize);
    CHECK(r.slot_b() == r.content);
    CHECK_FALSE(util::path_exists(r.dir.at("state/B.json")));
}

TEST_CASE("an image with another digest than expected is refused and leaves the slot bad", "[slot]") {
    Rig r;
    SlotImage want{*img::Digest::parse("sha256:" + std::string(64, 'a')), 0};
    auto res = r.installer().from_file(r.image, want, "");
    REQUIRE_FALSE(res.ok());
    CHECK(res.error().message().find("the image has digest sha256:") != std::string::npos);
    CHECK(r.health("B") == SlotHealth::Bad);
}

TEST_CASE("a slot that reads back wrong is refused and stays bad", "[slot]") {
    Rig r;
    SlotInstallOptions opts;
    opts.before_readback = [](const std::string &path) {
        REQUIRE(ota_test::sh(cat("printf 'Z' | dd of=", path, " bs=1 seek=4096 conv=notrunc status=none")) == 0);
    };
    auto res = r.installer().from_file(r.image, {}, "", opts);
    REQUIRE_FALSE(res.ok());
    CHECK(res.error().message().find("slot B read back with digest") != std::string::npos);
    CHECK(r.health("B") == SlotHealth::Bad);
    // The next install starts over rather than trusting what was written.
    auto again = r.installer().from_file(r.image, {}, "");
    REQUIRE(again.ok());
    CHECK(again->resumed_from == 0);
}

namespace {

/// Runs an install in a child that SIGKILLs itself once `kill_at` bytes
/// are written; returns once it is dead.
void install_killed_at(Rig &r, uint64_t kill_at, uint64_t persist_bytes) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        SlotInstallOptions opts;
        opts.persist_bytes = persist_bytes;
        opts.progress = [&](uint64_t done, uint64_t) {
            if (done >= kill_at) ::kill(::getpid(), SIGKILL);
        };
        (void)r.installer().from_file(r.image, {}, "", opts);
        _exit(0);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
}

}  // namespace

TEST_CASE("an install killed mid-way resumes at its last checkpoint and the slot stays bad meanwhile", "[slot]") {
    Rig r;
    install_killed_at(r, (3 << 20) + 100000, 1 << 20);
    CHECK(r.health("B") == SlotHealth::Bad);
    auto res = r.installer().from_file(r.image, {}, "");
    INFO((res.ok() ? "" : res.error().message()));
    REQUIRE(res.ok());
    // Persisted at 3 MiB; the unsynced checkpoints carry it on to within 64 KiB + one write of the kill.
    CHECK(res->resumed_from > (3 << 20));
    CHECK(res->resumed_from <= (3 << 20) + 100000 + (256 << 10));
    CHECK(res->received == kImageSize - res->resumed_from);
    CHECK(r.slot_b() == r.content);
}

TEST_CASE("a checkpoint the slot does not match is ignored for the persisted state", "[slot]") {
    Rig r;
    install_killed_at(r, (2 << 20) + 500000, 1 << 20);
    // The bytes after the persisted 2 MiB did not reach the medium.
    REQUIRE(ota_test::sh(cat("printf 'Z' | dd of=", r.dir.at("b.img"), " bs=1 seek=", (2 << 20) + 1000,
                             " conv=notrunc status=none")) == 0);
    auto res = r.installer().from_file(r.image, {}, "");
    REQUIRE(res.ok());
    CHECK(res->resumed_from == (2 << 20));
    CHECK(r.slot_b() == r.content);
}

TEST_CASE("an install killed ten times fetches little more than the image", "[slot]") {
    Rig r;
    for (int i = 1; i <= 10; i++) install_killed_at(r, i * (kImageSize / 11), 8 << 20);
    auto res = r.installer().from_file(r.image, {}, "");
    REQUIRE(res.ok());
    CHECK(r.slot_b() == r.content);
    CHECK(res->resumed_from >= 10 * (kImageSize / 11));
}
