// Unit tests of ota/board: the board profile's fields, strictness (an
// unknown or bad field names its path), relative paths, and where berth
// finds the profile.
#include <catch2/catch.hpp>

#include "ota/board.hpp"
#include "scratch.hpp"

using namespace ota;

namespace {

constexpr const char *kFull = R"({
  "name": "qemu-virt-armhf",
  "slots": [
    {"name": "A", "partlabel": "rootfs_a", "size": 268435456},
    {"name": "B", "device": "/dev/vda3"}
  ],
  "bootloader": {"kind": "uboot", "env": "fw_env.config", "attempts": 3},
  "data": {"partuuid": "1234-04", "fstype": "ext4", "mount": "/var/lib/berth"},
  "watchdog": {"device": "/dev/watchdog0", "timeout": "20s"},
  "console": {"device": "ttyAMA0", "baud": 115200},
  "kernel": {"version": "5.10", "cgroup": "hybrid", "overlayfs": true},
  "apps": {"devices": ["/dev/ttyUSB*"], "capabilities": ["CAP_NET_ADMIN"]}
})";

std::string error_of(std::string_view doc) {
    auto b = parse_board(doc, "/boards/x");
    REQUIRE_FALSE(b.ok());
    return b.error().message();
}

}  // namespace

TEST_CASE("a full board profile is read field by field", "[board]") {
    auto b = parse_board(kFull, "/boards/qemu");
    INFO((b.ok() ? "" : b.error().message()));
    REQUIRE(b.ok());
    CHECK(b->name == "qemu-virt-armhf");
    REQUIRE(b->slots.size() == 2);
    CHECK(b->slots[0].name == "A");
    CHECK(b->slots[0].where.path() == "/dev/disk/by-partlabel/rootfs_a");
    CHECK(b->slots[0].size == 268435456);
    CHECK(b->slots[1].where.path() == "/dev/vda3");
    REQUIRE(b->bootloader);
    CHECK(b->bootloader->kind == BootloaderKind::UBoot);
    CHECK(b->bootloader->env == "/boards/qemu/fw_env.config");
    CHECK(b->bootloader->attempts == 3);
    REQUIRE(b->data);
    CHECK(b->data->where.path() == "/dev/disk/by-partuuid/1234-04");
    CHECK(b->watchdog->device == "/dev/watchdog0");
    CHECK(b->watchdog->timeout_ms == 20000);
    CHECK(b->console->device == "ttyAMA0");
    CHECK(b->kernel.version == "5.10");
    CHECK(b->kernel.cgroup == "hybrid");
    CHECK(b->kernel.overlayfs == true);
    CHECK(b->apps.devices == std::vector<std::string>{"/dev/ttyUSB*"});
    CHECK(b->slot("B") == &b->slots[1]);
    CHECK(b->slot("C") == nullptr);
}

TEST_CASE("a board profile with only apps has no slots", "[board]") {
    auto b = parse_board(R"({"name": "bare", "apps": {}})");
    REQUIRE(b.ok());
    CHECK(b->slots.empty());
    CHECK_FALSE(b->bootloader);
}

TEST_CASE("an unknown board field is refused with its path", "[board]") {
    CHECK(error_of(R"({"name": "x", "rootfs": 1})") == "rootfs: unknown field");
    CHECK(error_of(R"({"name": "x", "kernel": {"arch": "arm"}})") == "kernel.arch: unknown field");
    CHECK(error_of(R"({"name": "x", "slots": [{"name": "A", "file": "a"}, {"name": "B", "file": "b", "fs": 1}],
                      "bootloader": {"kind": "file", "env": "e"}})") == "slots[1].fs: unknown field");
}

TEST_CASE("a slot named two ways is refused", "[board]") {
    CHECK(error_of(R"({"slots": [{"name": "A", "device": "/dev/vda2", "label": "a"}]})") ==
          "slots[0].label: a slot or partition is named one way only (device, label, partlabel, uuid, partuuid or file)");
}

TEST_CASE("a slot without a location is refused", "[board]") {
    CHECK(error_of(R"({"slots": [{"name": "A"}]})") ==
          "slots[0]: missing its location: one of device, label, partlabel, uuid, partuuid or file");
}

TEST_CASE("a board with one slot is refused", "[board]") {
    CHECK(error_of(R"({"slots": [{"name": "A", "file": "a"}], "bootloader": {"kind": "file", "env": "e"}})") ==
          "slots: expected at least two slots (A/B), got one");
}

TEST_CASE("two slots with one name are refused", "[board]") {
    CHECK(error_of(R"({"slots": [{"name": "A", "file": "a"}, {"name": "A", "file": "b"}],
                      "bootloader": {"kind": "file", "env": "e"}})") == "slots[1].name: `A` names two slots");
}

TEST_CASE("two slots at one place are refused", "[board]") {
    CHECK(error_of(R"({"slots": [{"name": "A", "file": "a"}, {"name": "B", "file": "a"}],
                      "bootloader": {"kind": "file", "env": "e"}})") ==
          "slots[1]: file /boards/x/a is the place of another slot too");
}

TEST_CASE("slots without a bootloader are refused", "[board]") {
    CHECK(error_of(R"({"slots": [{"name": "A", "file": "a"}, {"name": "B", "file": "b"}]})") ==
          "bootloader: missing (a board with slots needs a bootloader)");
}

TEST_CASE("an unknown bootloader kind is refused", "[board]") {
    CHECK(error_of(R"({"bootloader": {"kind": "barebox", "env": "e"}})") ==
          "bootloader.kind: expected `uboot`, `grub` or `file`, got `barebox`");
}

TEST_CASE("a device slot outside /dev is refused", "[board]") {
    CHECK(error_of(R"({"slots": [{"name": "A", "device": "/tmp/a"}]})") ==
          "slots[0].device: expected a path under /dev/, got `/tmp/a`");
}

TEST_CASE("a relative path climbing out of the profile's directory is refused", "[board]") {
    CHECK(error_of(R"({"bootloader": {"kind": "file", "env": "../e"}})") ==
          "bootloader.env: expected a clean path (no `.`, `..`, `//` or trailing `/`), got `../e`");
}

TEST_CASE("a bad kernel version is refused", "[board]") {
    CHECK(error_of(R"({"kernel": {"version": "five"}})") ==
          "kernel.version: expected a kernel version such as \"5.10\", got `five`");
}

TEST_CASE("a board key written twice is refused", "[board]") {
    CHECK(error_of(R"({"name": "a", "name": "b"})") == "name: this key is written twice in its object");
}

TEST_CASE("load_board resolves paths against the profile's directory", "[board]") {
    ota_test::Scratch dir;
    std::string path = dir.write("board.json", R"({"name": "dev", "slots": [{"name": "A", "file": "a.img"},
        {"name": "B", "file": "/abs/b.img"}], "bootloader": {"kind": "file", "env": "boot.env"}})");
    auto b = load_board(path);
    REQUIRE(b.ok());
    CHECK(b->slots[0].where.path() == dir.at("a.img"));
    CHECK(b->slots[1].where.path() == "/abs/b.img");
    CHECK(b->bootloader->env == dir.at("boot.env"));
}

TEST_CASE("a board profile error names the file", "[board]") {
    ota_test::Scratch dir;
    std::string path = dir.write("board.json", R"({"name": 3})");
    auto b = load_board(path);
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().message() == path + ": name: expected a string, got an integer");
}

TEST_CASE("the board path comes from the flag, then the kernel command line", "[board]") {
    CHECK(*board_path("/flag.json", "berth.board=/cmd.json") == "/flag.json");
    CHECK(*board_path("", "console=ttyAMA0 berth.board=/boards/x.json quiet") == "/boards/x.json");
}

TEST_CASE("the default board path counts only when neither the flag nor the command line names one", "[board]") {
    ota_test::Scratch dir;
    std::string def = dir.write("board.json", R"({"name": "default"})");
    auto f = find_board("/flag.json", "berth.board=/cmd.json", def);
    REQUIRE(f.ok());
    CHECK(f->path == "/flag.json");
    CHECK(f->from == "--board");
    f = find_board("", "quiet berth.board=/cmd.json", def);
    REQUIRE(f.ok());
    CHECK(f->path == "/cmd.json");
    CHECK(f->from == "berth.board= on the kernel command line");
    f = find_board("", "console=ttyAMA0 quiet\n", def);
    REQUIRE(f.ok());
    CHECK(f->path == def);
    CHECK(f->from == "the default path");
}

TEST_CASE("no board is an ENOENT error naming the three ways", "[board]") {
    ota_test::Scratch dir;
    auto f = find_board("", "berth.board= quiet", dir.path + "/absent.json");
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().code == ENOENT);
    CHECK(f.error().message().find("give --board, berth.board= on the kernel command line, or install ") != std::string::npos);
}

TEST_CASE("--board none means no board even where the command line and the default path name one", "[board]") {
    ota_test::Scratch dir;
    std::string def = dir.write("board.json", R"({"name": "default"})");
    auto f = find_board("none", "berth.board=/cmd.json", def);
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().code == ENOENT);
    CHECK(f.error().message().starts_with("no board profile (--board none)"));
}

TEST_CASE("the last kernel command line value counts", "[board]") {
    CHECK(cmdline_value("rauc.slot=A rauc.slot=B\n", "rauc.slot") == std::optional<std::string>("B"));
    CHECK(cmdline_value("xrauc.slot=A", "rauc.slot") == std::nullopt);
}
