// check_platform_runnable against a fake host (binfmt_misc's files, the
// binfmt.d registrations, the interpreter) under a temporary root: every
// missing piece gives its one clause with what to run or install. The
// foreign platform is arm/v7 on an amd64 host and amd64 elsewhere (the
// armhf build runs these tests under qemu-user).
#include <catch2/catch.hpp>
#include <elf.h>
#include <sys/stat.h>

#include <cstring>

#include "cross/build/binfmt.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/tests/tmpdir.hpp"

namespace {

struct Foreign {
    std::string platform, qemu;
    unsigned char elf_class;
    uint16_t machine;
};

Foreign foreign() {
    if (build::host_platform() == "linux/amd64") return {"linux/arm/v7", "arm", ELFCLASS32, EM_ARM};
    return {"linux/amd64", "x86_64", ELFCLASS64, EM_X86_64};
}

std::string hex2(unsigned v) {
    const char *d = "0123456789abcdef";
    return {d[(v >> 4) & 15], d[v & 15]};
}

/// The magic and mask Debian's qemu-user-static registers, in the hex the
/// entry's file shows.
std::pair<std::string, std::string> magic_mask(const Foreign &f) {
    // e_ident: magic, class, little-endian, version 1, any OS ABI, padding;
    // then e_type ET_EXEC (the mask's fe lets ET_DYN through) and e_machine.
    std::string magic = "7f454c46" + hex2(f.elf_class) + "010100" + std::string(16, '0') + "0200" + hex2(f.machine & 0xff) +
                        hex2(f.machine >> 8);
    std::string mask = "ffffffffffffff00fffffffffffffffffeffffff";
    return {magic, mask};
}

/// A minimal 64-bit ELF file: one program header, PT_INTERP or PT_LOAD.
std::string elf(bool dynamic) {
    Elf64_Ehdr eh{};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_phoff = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    Elf64_Phdr ph{};
    ph.p_type = dynamic ? PT_INTERP : PT_LOAD;
    return std::string(reinterpret_cast<const char *>(&eh), sizeof eh) +
           std::string(reinterpret_cast<const char *>(&ph), sizeof ph);
}

/// A fake host root: set up piece by piece.
struct Host {
    TempDir t;
    Foreign f = foreign();
    std::string misc = t / "proc/sys/fs/binfmt_misc";
    std::string interp = "/usr/libexec/qemu-binfmt/" + f.qemu + "-binfmt-P";
    std::string conf = "/usr/lib/binfmt.d/qemu-" + f.qemu + ".conf";

    void mount() {
        REQUIRE(util::mkdir_p(misc));
        REQUIRE(util::atomic_write_file(misc + "/register", ""));
        REQUIRE(util::atomic_write_file(misc + "/status", "enabled\n"));
    }
    void install(bool dynamic = false) {
        REQUIRE(util::mkdir_p(util::dirname(t.path + interp)));
        REQUIRE(util::atomic_write_file(t.path + interp, elf(dynamic), 0755));
        REQUIRE(util::mkdir_p(util::dirname(t.path + conf)));
        REQUIRE(util::atomic_write_file(t.path + conf, ":qemu-" + f.qemu + ":M::...:...:" + interp + ":OPF\n"));
    }
    void register_entry(const std::string &name = "", const std::string &flags = "POF", bool enabled = true) {
        auto [magic, mask] = magic_mask(f);
        std::string text = std::string(enabled ? "enabled" : "disabled") + "\ninterpreter " + interp + "\nflags: " + flags +
                           "\noffset 0\nmagic " + magic + "\nmask " + mask + "\n";
        REQUIRE(util::atomic_write_file(misc + "/" + (name.empty() ? "qemu-" + f.qemu : name), text));
    }
    util::Status check() { return build::check_platform_runnable(f.platform, t.path); }
    std::string error() {
        auto r = check();
        REQUIRE(!r);
        return r.error().message();
    }
};

bool has(const std::string &msg, const std::string &part) {
    INFO(msg);
    INFO(part);
    return msg.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("the host's own platform needs no binfmt_misc", "[binfmt]") {
    Host h;  // nothing at all under the fake root
    CHECK(build::check_platform_runnable(build::host_platform(), h.t.path));
}

TEST_CASE("an unknown platform is named in the error", "[binfmt]") {
    auto r = build::check_platform_runnable("linux/mips", "/nonexistent");
    REQUIRE(!r);
    CHECK(has(r.error().message(), "`linux/mips`"));
}

TEST_CASE("binfmt_misc not mounted: the mount command, then the registration", "[binfmt]") {
    Host h;
    h.install();
    std::string e = h.error();
    CHECK(has(e, "cannot run " + h.f.platform + " programs"));
    CHECK(has(e, "binfmt_misc is not mounted: run `mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc`"));
    CHECK(has(e, "qemu-" + h.f.qemu + " is not registered: run `cat " + h.conf + " > /proc/sys/fs/binfmt_misc/register`"));
    CHECK(e.find('\n') == std::string::npos);
}

TEST_CASE("qemu-user-static not installed: install it, then register", "[binfmt]") {
    Host h;
    h.mount();
    CHECK(has(h.error(), "qemu-" + h.f.qemu + " is not registered: install qemu-user-static (`apt-get install qemu-user-static`), "
                         "then run `cat " + h.conf + " > /proc/sys/fs/binfmt_misc/register`"));
}

TEST_CASE("installed but not registered: the registration command alone", "[binfmt]") {
    Host h;
    h.mount();
    h.install();
    std::string e = h.error();
    CHECK(has(e, "qemu-" + h.f.qemu + " is not registered: run `cat " + h.conf + " > /proc/sys/fs/binfmt_misc/register`"));
    CHECK(!has(e, "install"));
}

TEST_CASE("binfmt_misc disabled as a whole", "[binfmt]") {
    Host h;
    h.mount();
    h.install();
    h.register_entry();
    REQUIRE(util::atomic_write_file(h.misc + "/status", "disabled\n"));
    CHECK(has(h.error(), "binfmt_misc is disabled: run `echo 1 > /proc/sys/fs/binfmt_misc/status`"));
}

TEST_CASE("the platform's entry disabled", "[binfmt]") {
    Host h;
    h.mount();
    h.install();
    h.register_entry("", "POF", false);
    CHECK(has(h.error(), "qemu-" + h.f.qemu + " is registered but disabled: run `echo 1 > /proc/sys/fs/binfmt_misc/qemu-" +
                             h.f.qemu + "`"));
}

TEST_CASE("registered without the F flag: unregister, then register Debian's entry", "[binfmt]") {
    Host h;
    h.mount();
    h.install();
    h.register_entry("", "OC");
    std::string e = h.error();
    CHECK(has(e, "qemu-" + h.f.qemu + " is registered without the F flag (flags: OC)"));
    CHECK(has(e, "run `echo -1 > /proc/sys/fs/binfmt_misc/qemu-" + h.f.qemu + "`, then run `cat " + h.conf +
                     " > /proc/sys/fs/binfmt_misc/register`"));
}

TEST_CASE("the registered interpreter missing", "[binfmt]") {
    Host h;
    h.mount();
    h.register_entry();
    CHECK(has(h.error(), "the interpreter " + h.interp + " of qemu-" + h.f.qemu + " is missing: install qemu-user-static"));
}

TEST_CASE("a dynamically linked interpreter (qemu-user, not qemu-user-static)", "[binfmt]") {
    Host h;
    h.mount();
    h.install(true);
    h.register_entry();
    CHECK(has(h.error(), "the interpreter " + h.interp + " of qemu-" + h.f.qemu +
                             " is dynamically linked and cannot run inside a container: install qemu-user-static"));
}

TEST_CASE("every piece in place: runnable, whatever the entry is called", "[binfmt]") {
    Host h;
    h.mount();
    h.install();
    h.register_entry("some-other-name");
    auto r = h.check();
    if (!r) FAIL(r.error().message());
}

TEST_CASE("an entry for another architecture does not count", "[binfmt]") {
    Host h;
    h.mount();
    h.install();
    Foreign other = h.f.qemu == "arm" ? Foreign{"", "aarch64", ELFCLASS64, EM_AARCH64} : Foreign{"", "arm", ELFCLASS32, EM_ARM};
    auto [magic, mask] = magic_mask(other);
    REQUIRE(util::atomic_write_file(h.misc + "/qemu-other", "enabled\ninterpreter " + h.interp + "\nflags: POF\noffset 0\nmagic " +
                                                                magic + "\nmask " + mask + "\n"));
    CHECK(has(h.error(), "qemu-" + h.f.qemu + " is not registered"));
}
