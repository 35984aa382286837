// host_platform and check_platform_runnable: see binfmt.hpp.
//
// A foreign platform's binaries are recognised by their ELF header: the
// check builds the first 20 bytes of an executable of that platform and
// looks for an enabled binfmt_misc entry whose magic and mask match it at
// offset 0, whatever the entry is called. Each missing piece adds one
// clause saying what to run or install, in the order they have to be done:
//   binfmt_misc mounted -> enabled -> an entry for the platform -> that
//   entry enabled -> flag F (the kernel opens the interpreter when it is
//   registered, so it works inside a container's root) -> the interpreter
//   file present -> statically linked (inside the container there is no
//   host libc for a dynamic one).
// The commands named are Debian's: qemu-user-static ships one
// /usr/lib/binfmt.d/qemu-<arch>.conf per architecture, flag F included.
#include "cross/build/binfmt.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <optional>
#include <vector>

#include "image/manifest.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace build {
namespace {

using util::cat;
using util::Error;
using util::quote;

constexpr const char *kBinfmtMisc = "/proc/sys/fs/binfmt_misc";

struct Arch {
    const char *platform;  ///< canonical: "linux/arm/v7"
    const char *qemu;      ///< qemu-user's name for it: qemu-<qemu>
    unsigned char elf_class, elf_data;
    uint16_t machine;
};

constexpr std::array<Arch, 7> kArches{{
    {"linux/amd64", "x86_64", ELFCLASS64, ELFDATA2LSB, EM_X86_64},
    {"linux/arm64", "aarch64", ELFCLASS64, ELFDATA2LSB, EM_AARCH64},
    {"linux/arm/v7", "arm", ELFCLASS32, ELFDATA2LSB, EM_ARM},
    {"linux/386", "i386", ELFCLASS32, ELFDATA2LSB, EM_386},
    {"linux/riscv64", "riscv64", ELFCLASS64, ELFDATA2LSB, EM_RISCV},
    {"linux/ppc64le", "ppc64le", ELFCLASS64, ELFDATA2LSB, EM_PPC64},
    {"linux/s390x", "s390x", ELFCLASS64, ELFDATA2MSB, EM_S390},
}};

/// "linux/arm" and its variants, "linux/arm64/v8" -> the table's entry.
const Arch *find_arch(std::string_view platform) {
    std::string p(platform);
    if (p == "linux/arm" || p == "linux/arm/v6" || p == "linux/arm/v5") p = "linux/arm/v7";
    if (p == "linux/arm64/v8") p = "linux/arm64";
    for (const auto &a : kArches)
        if (p == a.platform) return &a;
    return nullptr;
}

/// The first 20 bytes of an executable (e_type ET_EXEC, or ET_DYN for a
/// PIE) of `a`: the part binfmt_misc's qemu entries match.
std::string elf_head(const Arch &a, uint16_t type) {
    std::string h(20, '\0');
    h[0] = 0x7f, h[1] = 'E', h[2] = 'L', h[3] = 'F';
    h[EI_CLASS] = static_cast<char>(a.elf_class);
    h[EI_DATA] = static_cast<char>(a.elf_data);
    h[EI_VERSION] = EV_CURRENT;
    bool le = a.elf_data == ELFDATA2LSB;
    auto put16 = [&](size_t at, uint16_t v) {
        h[at + (le ? 0 : 1)] = static_cast<char>(v & 0xff);
        h[at + (le ? 1 : 0)] = static_cast<char>(v >> 8);
    };
    put16(16, type);
    put16(18, a.machine);
    return h;
}

std::optional<std::string> unhex(std::string_view s) {
    if (s.size() % 2) return std::nullopt;
    std::string out;
    for (size_t i = 0; i < s.size(); i += 2) {
        auto b = util::parse_int<unsigned>(s.substr(i, 2), 16);
        if (!b) return std::nullopt;
        out.push_back(static_cast<char>(*b));
    }
    return out;
}

/// One binfmt_misc entry, as its file under binfmt_misc shows it.
struct Entry {
    std::string name;
    bool enabled = false;
    std::string interpreter, flags, magic, mask;
    size_t offset = 0;
};

Entry parse_entry(const std::string &name, const std::string &text) {
    Entry e;
    e.name = name;
    for (const auto &line : util::split(text, '\n')) {
        auto sp = line.find(' ');
        std::string key = line.substr(0, sp), val = sp == std::string::npos ? "" : line.substr(sp + 1);
        if (line == "enabled") e.enabled = true;
        else if (key == "interpreter") e.interpreter = val;
        else if (key == "flags:") e.flags = val;
        else if (key == "offset") e.offset = util::parse_int<size_t>(val).value_or(0);
        else if (key == "magic") e.magic = unhex(val).value_or("");
        else if (key == "mask") e.mask = unhex(val).value_or("");
    }
    return e;
}

/// Does the magic entry `e` take a file starting with `head`?
bool matches(const Entry &e, const std::string &head) {
    if (e.magic.empty() || e.offset + e.magic.size() > head.size()) return false;
    for (size_t i = 0; i < e.magic.size(); i++) {
        unsigned char m = i < e.mask.size() ? static_cast<unsigned char>(e.mask[i]) : 0xff;
        if ((static_cast<unsigned char>(head[e.offset + i]) & m) != (static_cast<unsigned char>(e.magic[i]) & m)) return false;
    }
    return true;
}

/// The enabled-or-not entry that takes both an executable and a PIE of `a`.
std::optional<Entry> find_entry(const std::string &misc, const Arch &a) {
    auto names = util::list_dir(misc);
    if (!names) return std::nullopt;
    std::optional<Entry> disabled;
    for (const auto &n : *names) {
        if (n == "register" || n == "status") continue;
        auto text = util::read_file(cat(misc, "/", n), 1 << 16);
        if (!text) continue;
        Entry e = parse_entry(n, *text);
        if (!matches(e, elf_head(a, ET_EXEC)) || !matches(e, elf_head(a, ET_DYN))) continue;
        if (e.enabled) return e;
        disabled = e;
    }
    return disabled;
}

/// Does the ELF file at `path` name a program interpreter (dynamic linker)?
util::Result<bool> dynamically_linked(const std::string &path) {
    auto fd = TRY(util::open_file(path, O_RDONLY));
    auto read_at = [&](void *buf, size_t len, off_t at) {
        return ::pread(fd.get(), buf, len, at) == static_cast<ssize_t>(len);
    };
    unsigned char ident[EI_NIDENT];
    if (!read_at(ident, sizeof ident, 0) || ident[0] != 0x7f || ident[1] != 'E' || ident[2] != 'L' || ident[3] != 'F')
        return Error::msg("not an ELF file");
    auto has_interp = [&]<typename Ehdr, typename Phdr>() -> util::Result<bool> {
        Ehdr eh;
        if (!read_at(&eh, sizeof eh, 0)) return Error::msg("a truncated ELF header");
        for (unsigned i = 0; i < eh.e_phnum; i++) {
            Phdr ph;
            if (!read_at(&ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph))) return Error::msg("truncated program headers");
            if (ph.p_type == PT_INTERP) return true;
        }
        return false;
    };
    // The host reads its own byte order only; qemu's interpreters are host binaries.
    if (ident[EI_CLASS] == ELFCLASS64) return has_interp.template operator()<Elf64_Ehdr, Elf64_Phdr>();
    return has_interp.template operator()<Elf32_Ehdr, Elf32_Phdr>();
}

/// The binfmt.d file that registers qemu-<arch> (as a host path), if installed.
std::optional<std::string> find_conf(const std::string &root, const Arch &a) {
    for (const char *dir : {"/etc/binfmt.d", "/run/binfmt.d", "/usr/lib/binfmt.d"}) {
        std::string p = cat(dir, "/qemu-", a.qemu, ".conf");
        if (util::path_exists(root + p)) return p;
    }
    return std::nullopt;
}

/// What kept `a` from running here; empty when nothing did.
std::vector<std::string> missing_pieces(const Arch &a, const std::string &root) {
    std::vector<std::string> out;
    const std::string misc = root + kBinfmtMisc;
    const std::string qemu = cat("qemu-", a.qemu);
    auto conf = find_conf(root, a);
    const std::string reg = cat("`cat ", conf.value_or(cat("/usr/lib/binfmt.d/", qemu, ".conf")), " > ", kBinfmtMisc, "/register`");
    const std::string install = "install qemu-user-static (`apt-get install qemu-user-static`)";
    // What registers the platform: the file is there once the package is.
    const std::string registration = conf ? cat("run ", reg) : cat(install, ", then run ", reg);

    if (!util::path_exists(misc + "/register")) {
        out.push_back(cat("binfmt_misc is not mounted: run `mount -t binfmt_misc binfmt_misc ", kBinfmtMisc, "`"));
        out.push_back(cat(qemu, " is not registered: ", registration));
        return out;
    }
    auto status = util::read_file(misc + "/status", 64);
    if (status && util::trim(*status) == "disabled")
        out.push_back(cat("binfmt_misc is disabled: run `echo 1 > ", kBinfmtMisc, "/status`"));
    auto e = find_entry(misc, a);
    if (!e) {
        out.push_back(cat(qemu, " is not registered: ", registration));
        return out;
    }
    const std::string unregister = cat("`echo -1 > ", kBinfmtMisc, "/", e->name, "`");
    if (!e->enabled) out.push_back(cat(e->name, " is registered but disabled: run `echo 1 > ", kBinfmtMisc, "/", e->name, "`"));
    if (e->flags.find('F') == std::string::npos) {
        out.push_back(cat(e->name, " is registered without the F flag (flags: ", e->flags.empty() ? "none" : e->flags,
                          "), so its interpreter cannot be found inside a container: run ", unregister, ", then ",
                          registration));
        return out;
    }
    if (!util::path_exists(root + e->interpreter)) {
        out.push_back(cat("the interpreter ", e->interpreter, " of ", e->name, " is missing: ", install, ", then run ",
                          unregister, " and ", reg));
        return out;
    }
    auto dynamic = dynamically_linked(root + e->interpreter);
    if (dynamic && *dynamic)
        out.push_back(cat("the interpreter ", e->interpreter, " of ", e->name,
                          " is dynamically linked and cannot run inside a container: ", install, ", then run ",
                          unregister, " and ", reg));
    return out;
}

}  // namespace

std::string host_platform() {
    std::string p = img::Platform::host().str();
    const Arch *a = find_arch(p);
    return a ? a->platform : p;
}

util::Status check_platform_runnable(const std::string &platform) { return check_platform_runnable(platform, ""); }

util::Status check_platform_runnable(const std::string &platform, const std::string &host_root) {
    const Arch *want = find_arch(platform);
    if (!want) return Error::msg(cat("platform ", quote(platform), " is not one RUN steps can run (",
                                     "linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/riscv64, linux/ppc64le, linux/s390x)"));
    const Arch *host = find_arch(host_platform());
    if (!host) return Error::msg(cat("this host's platform ", quote(host_platform()), " runs no RUN steps"));
    // The same, or what the host's CPU runs itself: 32-bit x86 on amd64, 32-bit ARM on arm64.
    if (want == host || (host == find_arch("linux/amd64") && want == find_arch("linux/386")) ||
        (host == find_arch("linux/arm64") && want == find_arch("linux/arm/v7")))
        return util::ok();
    auto pieces = missing_pieces(*want, host_root);
    if (pieces.empty()) return util::ok();
    return Error::msg(cat("cannot run ", want->platform, " programs on this ", host->platform, " host: ",
                          util::join(pieces, "; ")));
}

}  // namespace build
