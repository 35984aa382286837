// Unit tests of ota/bootloader: RAUC's BOOT_ORDER / BOOT_x_LEFT semantics
// over the file backend, the clear errors for missing or inconsistent
// state, recovery when every slot is bad, the booted slot from the kernel
// command line; then the GRUB backend against grub-editenv's own block and
// the U-Boot backend (libubootenv) against environment images made with
// mkenvimage, with redundant copies, read back with fw_printenv.
#include <catch2/catch.hpp>

#include "ota/bootloader.hpp"
#include "scratch.hpp"
#include "util/strings.hpp"

using namespace ota;
using util::cat;

namespace {

Board board_with(BootloaderKind kind, const std::string &env) {
    Board b;
    b.name = "test";
    b.slots = {SlotSpec{"A", {Location::File, "/slots/a.img"}, 0}, SlotSpec{"B", {Location::File, "/slots/b.img"}, 0}};
    b.bootloader = BootloaderSpec{kind, env, 3};
    return b;
}

struct FileBoard {
    ota_test::Scratch dir;
    Board board = board_with(BootloaderKind::File, dir.at("boot.env"));
    Bootloader boot{board, file_boot_env(dir.at("boot.env"))};
    std::string env() { return util::read_file(dir.at("boot.env")).value_or("<missing>"); }
};

BootStatus status_of(Bootloader &b) {
    auto st = b.status();
    INFO((st.ok() ? "" : st.error().message()));
    REQUIRE(st.ok());
    return *st;
}

bool have(const char *tool) { return ota_test::sh(cat("command -v ", tool, " >/dev/null 2>&1")) == 0; }

std::string run(const std::string &cmd) {
    std::string out;
    FILE *p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
}

/// The shared scenario of every backend: good A, try B, B fails, back to A.
void check_semantics(Bootloader &boot) {
    REQUIRE(boot.mark_good("A").ok());
    auto st = status_of(boot);
    CHECK(st.order == std::vector<std::string>{"A"});
    CHECK(st.slot("A")->health == SlotHealth::Good);
    CHECK(st.slot("A")->left == 3);
    CHECK(st.slot("B")->health == SlotHealth::Bad);
    CHECK(st.next == "A");

    REQUIRE(boot.mark_try("B").ok());
    st = status_of(boot);
    CHECK(st.order == std::vector<std::string>{"B", "A"});
    CHECK(st.slot("B")->health == SlotHealth::Trying);
    CHECK(st.slot("B")->left == 3);
    CHECK(st.trying == "B");
    CHECK(st.next == "B");

    REQUIRE(boot.mark_bad("B").ok());
    st = status_of(boot);
    CHECK(st.order == std::vector<std::string>{"A"});
    CHECK(st.slot("B")->health == SlotHealth::Bad);
    CHECK(st.slot("B")->left == 0);
    CHECK(st.trying.empty());
    CHECK(st.next == "A");

    REQUIRE(boot.mark_try("B").ok());
    REQUIRE(boot.mark_good("B").ok());
    st = status_of(boot);
    CHECK(st.order == std::vector<std::string>{"B", "A"});
    CHECK(st.slot("B")->health == SlotHealth::Good);
    CHECK(st.trying.empty());
}

}  // namespace

TEST_CASE("the file backend follows RAUC's boot-order semantics", "[bootloader]") {
    FileBoard f;
    check_semantics(f.boot);
    CHECK(f.env() == "BOOT_A_LEFT=3\nBOOT_ORDER=B A\nBOOT_B_LEFT=3\n");
}

TEST_CASE("a slot whose counter ran out is bad", "[bootloader]") {
    FileBoard f;
    f.dir.write("boot.env", "BOOT_ORDER=B A\nBOOT_A_LEFT=2\nBOOT_B_LEFT=0\nBERTH_TRYING=B\n");
    auto st = status_of(f.boot);
    CHECK(st.slot("B")->health == SlotHealth::Bad);
    CHECK(st.slot("A")->health == SlotHealth::Good);
    CHECK(st.next == "A");
}

TEST_CASE("missing bootloader state is a clear error", "[bootloader]") {
    FileBoard f;
    auto st = f.boot.status();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message() == cat("bootloader state (state file ", f.dir.at("boot.env"),
                                      ") is missing: BOOT_ORDER is not set (run `berth slot mark-good` on the booted "
                                      "slot to initialize it)"));
}

TEST_CASE("a boot order naming an unknown slot is inconsistent", "[bootloader]") {
    FileBoard f;
    f.dir.write("boot.env", "BOOT_ORDER=A C\nBOOT_A_LEFT=3\n");
    auto st = f.boot.status();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message().ends_with("is inconsistent: BOOT_ORDER names `C`, which is no slot of the board"));
}

TEST_CASE("a slot in the order without a counter is inconsistent", "[bootloader]") {
    FileBoard f;
    f.dir.write("boot.env", "BOOT_ORDER=A B\nBOOT_A_LEFT=3\n");
    auto st = f.boot.status();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message().ends_with("is inconsistent: slot B is in BOOT_ORDER but BOOT_B_LEFT is not set"));
}

TEST_CASE("a counter that is not a number is inconsistent", "[bootloader]") {
    FileBoard f;
    f.dir.write("boot.env", "BOOT_ORDER=A\nBOOT_A_LEFT=x\n");
    auto st = f.boot.status();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message().ends_with("is inconsistent: BOOT_A_LEFT=`x` is not a counter 0-9"));
}

TEST_CASE("marking an unknown slot is refused", "[bootloader]") {
    FileBoard f;
    auto st = f.boot.mark_try("C");
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message() == "no slot `C` on board `test` (slots: A, B)");
}

TEST_CASE("every slot bad: the booted slot is marked good again and reported", "[bootloader]") {
    FileBoard f;
    f.dir.write("boot.env", "BOOT_ORDER=\nBOOT_A_LEFT=0\nBOOT_B_LEFT=0\n");
    CHECK(status_of(f.boot).next.empty());
    auto r = f.boot.recover("A");
    REQUIRE(r.ok());
    CHECK(*r == "every slot was bad (BOOT_ORDER=``): marked the booted slot A good again");
    auto st = status_of(f.boot);
    CHECK(st.next == "A");
    CHECK(st.slot("A")->left == 3);
    CHECK(*f.boot.recover("A") == "");
}

TEST_CASE("the booted slot comes from rauc.slot= or berth.slot=", "[bootloader]") {
    Board b = board_with(BootloaderKind::File, "/x");
    CHECK(*booted_slot(b, "console=ttyAMA0 rauc.slot=B", "") == "B");
    CHECK(*booted_slot(b, "berth.slot=A", "") == "A");
    auto bad = booted_slot(b, "rauc.slot=C", "");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message() == "the kernel command line says rauc.slot=C, which is no slot of board `test`");
}

TEST_CASE("without a slot on the command line or a slot mounted at /, the booted slot is an error", "[bootloader]") {
    Board b = board_with(BootloaderKind::File, "/x");
    auto r = booted_slot(b, "quiet", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("cannot tell the booted slot") == 0);
}

TEST_CASE("the GRUB backend reads and writes grub-editenv's block in place", "[bootloader][grub]") {
    if (!have("grub-editenv")) {
        WARN("grub-editenv missing (grub-common): using a known-good block");
    }
    ota_test::Scratch dir;
    const std::string env = dir.at("grubenv");
    if (have("grub-editenv")) {
        REQUIRE(ota_test::sh(cat("grub-editenv ", env, " create && grub-editenv ", env, " set other=kept")) == 0);
    } else {
        std::string block = "# GRUB Environment Block\nother=kept\n";
        block.resize(1024, '#');
        dir.write("grubenv", block);
    }
    Board b = board_with(BootloaderKind::Grub, env);
    Bootloader boot(b, grub_boot_env(env));
    check_semantics(boot);
    auto block = util::read_file(env);
    REQUIRE(block.ok());
    CHECK(block->size() == 1024);
    CHECK(block->starts_with("# GRUB Environment Block\nother=kept\n"));
    if (have("grub-editenv")) {
        std::string listed = run(cat("grub-editenv ", env, " list"));
        CHECK(listed == "other=kept\nBOOT_A_LEFT=3\nBOOT_ORDER=B A\nBOOT_B_LEFT=3\n");
        // GRUB's own edit is read back by berth.
        REQUIRE(ota_test::sh(cat("grub-editenv ", env, " set BOOT_B_LEFT=1")) == 0);
        CHECK(status_of(boot).slot("B")->left == 1);
    }
}

TEST_CASE("a file that is not a GRUB environment block is refused", "[bootloader][grub]") {
    ota_test::Scratch dir;
    const std::string env = dir.write("grubenv", "BOOT_ORDER=A\n");
    Board b = board_with(BootloaderKind::Grub, env);
    Bootloader boot(b, grub_boot_env(env));
    auto st = boot.status();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message().find("not a GRUB environment block") != std::string::npos);
}

namespace {

/// Two redundant copies of a U-Boot environment made by mkenvimage, and
/// the fw_env.config naming them.
struct UBootImage {
    ota_test::Scratch dir;
    std::string config = dir.at("fw_env.config");
    explicit UBootImage(const std::string &vars) {
        dir.write("env.txt", vars);
        REQUIRE(ota_test::sh(cat("cd ", dir.path, " && mkenvimage -s 0x4000 -r -o env0.bin env.txt && ",
                                 "mkenvimage -s 0x4000 -r -o env1.bin env.txt")) == 0);
        dir.write("fw_env.config", cat(dir.at("env0.bin"), " 0x0 0x4000\n", dir.at("env1.bin"), " 0x0 0x4000\n"));
    }
    std::string printenv(const std::string &name) {
        return run(cat("fw_printenv -c ", config, " -n ", name, " 2>/dev/null"));
    }
};

/// True (and says why) when this machine cannot load libubootenv: a cross
/// build's sysroot without it, say.
bool no_libubootenv(Bootloader &boot) {
    auto st = boot.status();
    if (st.ok() || st.error().message().find("libubootenv") == std::string::npos) return false;
    WARN("skipped: " << st.error().message());
    return true;
}

}  // namespace

TEST_CASE("the U-Boot backend follows the semantics on a redundant environment", "[bootloader][uboot]") {
    if (!have("mkenvimage") || !have("fw_printenv")) {
        WARN("skipped: mkenvimage (u-boot-tools) or fw_printenv (libubootenv-tool) missing");
        return;
    }
    UBootImage img("bootcmd=run distro_bootcmd\nBOOT_ORDER=A\nBOOT_A_LEFT=3\nBOOT_B_LEFT=0\n");
    Board b = board_with(BootloaderKind::UBoot, img.config);
    Bootloader boot(b, uboot_boot_env(img.config));
    if (no_libubootenv(boot)) return;
    auto st = boot.status();
    REQUIRE(st.ok());
    CHECK(st->order == std::vector<std::string>{"A"});
    check_semantics(boot);
    CHECK(img.printenv("BOOT_ORDER") == "B A\n");
    CHECK(img.printenv("BOOT_B_LEFT") == "3\n");
    CHECK(img.printenv("bootcmd") == "run distro_bootcmd\n");
}

TEST_CASE("the U-Boot backend writes the other copy, so a torn write leaves the old one", "[bootloader][uboot]") {
    if (!have("mkenvimage") || !have("fw_printenv")) {
        WARN("skipped: mkenvimage or fw_printenv missing");
        return;
    }
    UBootImage img("BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n");
    Board b = board_with(BootloaderKind::UBoot, img.config);
    Bootloader boot(b, uboot_boot_env(img.config));
    if (no_libubootenv(boot)) return;
    const std::string before0 = *util::read_file(img.dir.at("env0.bin"));
    const std::string before1 = *util::read_file(img.dir.at("env1.bin"));
    REQUIRE(boot.mark_try("B").ok());
    const std::string after0 = *util::read_file(img.dir.at("env0.bin"));
    const std::string after1 = *util::read_file(img.dir.at("env1.bin"));
    // Exactly one copy's variables changed.
    bool changed0 = after0.substr(5) != before0.substr(5), changed1 = after1.substr(5) != before1.substr(5);
    CHECK(changed0 != changed1);
    // Tearing the new copy (a bad CRC) leaves the old state readable.
    const std::string torn = changed0 ? img.dir.at("env0.bin") : img.dir.at("env1.bin");
    REQUIRE(ota_test::sh(cat("printf 'XXXX' | dd of=", torn, " bs=1 seek=0 conv=notrunc status=none")) == 0);
    auto st = status_of(boot);
    CHECK(st.order == std::vector<std::string>{"A", "B"});
    CHECK(st.trying.empty());
}

TEST_CASE("a U-Boot environment without a valid copy is a clear error", "[bootloader][uboot]") {
    ota_test::Scratch dir;
    dir.write("env0.bin", std::string(0x4000, '\xff'));
    std::string config = dir.write("fw_env.config", cat(dir.at("env0.bin"), " 0x0 0x4000\n"));
    Board b = board_with(BootloaderKind::UBoot, config);
    Bootloader boot(b, uboot_boot_env(config));
    auto st = boot.status();
    REQUIRE_FALSE(st.ok());
    INFO(st.error().message());
    CHECK(st.error().message().find("read the bootloader state (U-Boot environment of " + config + ")") == 0);
}
