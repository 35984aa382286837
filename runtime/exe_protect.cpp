// Protection of the berth binary (CVE-2019-5736) and the berth-dmz
// trampoline; see exe_protect.hpp.
#include "runtime/exe_protect.hpp"

#include <fcntl.h>
#include <link.h>
#include <linux/memfd.h>
#include <linux/mount.h>
#include <linux/prctl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "runtime/dmz_blob.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/syscalls.hpp"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

extern char **environ;

namespace rt::exe_protect {
namespace {

using util::Error;

constexpr const char kSelfExe[] = "/proc/self/exe";
/// Set across the re-exec to our process name: a berth that still finds
/// itself unprotected then fails instead of re-executing forever.
constexpr const char kReexecEnv[] = "_BERTH_EXE_PROTECT";
constexpr int kSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

/// A memfd that may be executed: MFD_EXEC where the kernel knows it (6.3+,
/// where vm.memfd_noexec may make it the exception), else the old default.
util::Result<util::UniqueFd> exec_memfd(const char *name) {
    int fd = static_cast<int>(::syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC));
    if (fd < 0 && errno == EINVAL) fd = static_cast<int>(::syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (fd < 0) return Error::from_errno("memfd_create");
    return util::UniqueFd(fd);
}

util::Status copy_all(int from, int to) {
    struct stat st;
    if (::fstat(from, &st) < 0) return Error::from_errno("stat the berth binary");
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = ::sendfile(to, from, &off, static_cast<size_t>(st.st_size - off));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::from_errno("copy the berth binary");
        if (n == 0) return Error::msg("copy the berth binary: it shrank while being copied");
    }
    return util::ok();
}

/// 1. A detached, read-only bind mount of the binary: no copy.
util::Result<util::UniqueFd> readonly_view() {
    int fd = util::sys::open_tree(AT_FDCWD, kSelfExe, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0) return Error::from_errno("open_tree");
    util::UniqueFd view(fd);
    util::sys::MountAttr attr{MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0};
    if (util::sys::mount_setattr(view.get(), "", AT_EMPTY_PATH, attr) < 0) return Error::from_errno("mount_setattr");
    return view;
}

/// Makes a filled memfd read-only and executable for good.
util::Status seal_executable(int mem, const char *what) {
    if (::fchmod(mem, 0555) < 0) return Error::from_errno(util::cat("chmod ", what));
    if (::fcntl(mem, F_ADD_SEALS, kSeals) < 0) return Error::from_errno(util::cat("seal ", what));
    return util::ok();
}

/// 2. A sealed memfd copy.
util::Result<util::UniqueFd> sealed_copy(int self) {
    auto mem = TRY(exec_memfd("berth"));
    TRY(copy_all(self, mem.get()));
    TRY(seal_executable(mem.get(), "the copy"));
    return mem;
}

/// 3. An unlinked copy in `dir`, reopened read-only (an fd open for
/// writing would make the exec fail with ETXTBSY).
util::Result<util::UniqueFd> tmpfile_copy(int self, const std::string &dir) {
    TRY(util::mkdir_p(dir, 0700));
    auto w = TRY(util::open_file(dir, O_TMPFILE | O_RDWR, 0500));
    TRY(copy_all(self, w.get()));
    return util::open_file(util::cat("/proc/self/fd/", w.get()), O_RDONLY);
}

/// A mapping of the berth binary, from /proc/self/maps.
struct ExeMapping {
    uintptr_t start = 0, end = 0;
    off_t offset = 0;
    int prot = 0;
};

/// The mappings of the file with `st`'s device and inode.
util::Result<std::vector<ExeMapping>> exe_mappings(const struct stat &st) {
    auto maps = TRY(util::read_file("/proc/self/maps", 4 << 20));
    std::vector<ExeMapping> out;
    for (const auto &line : util::split(maps, '\n')) {
        // start-end perms offset major:minor inode [path]
        auto f = util::split(line, ' ');
        if (f.size() < 5 || util::parse_int<ino_t>(f[4]).value_or(0) != st.st_ino) continue;
        auto range = util::split(f[0], '-');
        auto dev = util::split(f[3], ':');
        if (range.size() != 2 || dev.size() != 2 || f[1].size() < 3) continue;
        auto major = util::parse_int<unsigned>(dev[0], 16), minor = util::parse_int<unsigned>(dev[1], 16);
        if (!major || !minor || makedev(*major, *minor) != st.st_dev) continue;
        ExeMapping m;
        m.start = util::parse_int<uintptr_t>(range[0], 16).value_or(0);
        m.end = util::parse_int<uintptr_t>(range[1], 16).value_or(0);
        m.offset = util::parse_int<off_t>(f[2], 16).value_or(-1);
        m.prot = (f[1][0] == 'r' ? PROT_READ : 0) | (f[1][1] == 'w' ? PROT_WRITE : 0) | (f[1][2] == 'x' ? PROT_EXEC : 0);
        if (m.start == 0 || m.end <= m.start || m.offset < 0) return Error::msg(util::cat("/proc/self/maps: cannot parse ", util::quote(line)));
        out.push_back(m);
    }
    return out;
}

/// The address ranges of the main program that were written since it was
/// loaded (PT_LOAD segments with PF_W, and PT_GNU_RELRO, which the
/// dynamic linker relocated before making it read-only), page-rounded.
std::vector<std::pair<uintptr_t, uintptr_t>> written_ranges() {
    std::vector<std::pair<uintptr_t, uintptr_t>> out;
    ::dl_iterate_phdr(
        [](struct dl_phdr_info *info, size_t, void *data) -> int {
            auto &ranges = *static_cast<std::vector<std::pair<uintptr_t, uintptr_t>> *>(data);
            const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
            for (int i = 0; i < info->dlpi_phnum; i++) {
                const auto &ph = info->dlpi_phdr[i];
                if (!(ph.p_type == PT_GNU_RELRO || (ph.p_type == PT_LOAD && (ph.p_flags & PF_W)))) continue;
                uintptr_t lo = (info->dlpi_addr + ph.p_vaddr) & ~(page - 1);
                uintptr_t hi = (info->dlpi_addr + ph.p_vaddr + ph.p_memsz + page - 1) & ~(page - 1);
                ranges.emplace_back(lo, hi);
            }
            return 1;  // the first object is the main program
        },
        &out);
    return out;
}

/// Moves the contents of [start, end) into anonymous memory at the same
/// address, with `prot`. Writes nothing of the program's own data between
/// the copy and the move (both are libc calls on locals).
util::Status move_to_anonymous(uintptr_t start, uintptr_t end, int prot) {
    size_t len = end - start;
    void *tmp = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tmp == MAP_FAILED) return Error::from_errno("mmap");
    std::memcpy(tmp, reinterpret_cast<void *>(start), len);
    if (::mprotect(tmp, len, prot) < 0 ||
        ::mremap(tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void *>(start)) == MAP_FAILED) {
        int e = errno;
        ::munmap(tmp, len);
        return Error::with_code(e, "mremap");
    }
    return util::ok();
}

/// CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the effective set.
bool may_set_exe_file() {
    struct {
        uint32_t version;
        int pid;
    } header = {0x20080522, 0};  // _LINUX_CAPABILITY_VERSION_3
    struct {
        uint32_t effective, permitted, inheritable;
    } data[2] = {};
    if (::syscall(SYS_capget, &header, data) < 0) return false;
    auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1; };
    return has(21 /* CAP_SYS_ADMIN */) || has(40 /* CAP_CHECKPOINT_RESTORE */);
}

/// Makes `view` (read-only view or sealed copy of the binary) this
/// process's executable without an exec, so what clones it inherits it:
/// the binary's read-only mappings are mapped again from `view` (the same
/// bytes), the written ones (RELRO, data) move to anonymous memory, so
/// that nothing maps the old file any more, which PR_SET_MM_MAP requires
/// to set exe_fd (it needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE).
/// Every other field of the map is given as it is (/proc/self/stat).
util::Status adopt_exe(int self, int view_fd) {
    // A view from open_tree is an O_PATH fd: mmap needs the file open.
    auto view_file = TRY(util::open_file(util::cat("/proc/self/fd/", view_fd), O_RDONLY));
    const int view = view_file.get();
    struct stat st;
    if (::fstat(self, &st) < 0) return Error::from_errno("stat the berth binary");
    // The fields PR_SET_MM_MAP sets, as they are: /proc/self/stat fields
    // 26-28 (start_code end_code start_stack) and 45-51 (start_data end_data
    // start_brk arg_start arg_end env_start env_end).
    auto stat_text = TRY(util::read_file("/proc/self/stat", 1 << 16));
    size_t paren = stat_text.rfind(')');
    if (paren == std::string::npos) return Error::msg("/proc/self/stat: no `)`");
    auto fields = util::split(std::string_view(stat_text).substr(paren + 2), ' ');  // fields[0] is field 3
    auto field = [&](size_t n) -> uint64_t {
        return n - 3 < fields.size() ? util::parse_int<uint64_t>(util::trim(fields[n - 3])).value_or(0) : 0;
    };
    // Another thread could write the data segment between its copy and
    // its move: single-threaded only (field 20, num_threads).
    if (field(20) != 1) return Error::msg("more than one thread");
    struct prctl_mm_map map = {};
    map.start_code = field(26);
    map.end_code = field(27);
    map.start_stack = field(28);
    map.start_data = field(45);
    map.end_data = field(46);
    map.start_brk = field(47);
    map.arg_start = field(48);
    map.arg_end = field(49);
    map.env_start = field(50);
    map.env_end = field(51);
    map.brk = static_cast<uint64_t>(::syscall(SYS_brk, 0));
    map.exe_fd = static_cast<uint32_t>(view);
    if (map.start_code == 0 || map.env_end == 0) return Error::msg("/proc/self/stat: no memory map fields");
    // Checked before anything is remapped: the capability, then the map
    // itself (exe_fd -1 changes nothing; EINVAL without CONFIG_CHECKPOINT_RESTORE).
    if (util::sys::disabled("pr_set_mm_map")) return Error::with_code(ENOSYS, "PR_SET_MM_MAP disabled");
    if (!may_set_exe_file()) return Error::with_code(EPERM, "neither CAP_SYS_ADMIN nor CAP_CHECKPOINT_RESTORE");
    map.exe_fd = static_cast<uint32_t>(-1);
    if (::prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0) < 0) return Error::from_errno("prctl PR_SET_MM_MAP");
    map.exe_fd = static_cast<uint32_t>(view);
    auto mappings = TRY(exe_mappings(st));
    if (mappings.empty()) return Error::msg("/proc/self/maps: the berth binary is not mapped");
    auto written = written_ranges();
    for (const auto &m : mappings) {
        bool was_written = false;
        for (const auto &[lo, hi] : written) was_written = was_written || (m.start < hi && lo < m.end);
        if (was_written || (m.prot & PROT_WRITE)) {
            TRY(move_to_anonymous(m.start, m.end, m.prot));
        } else if (::mmap(reinterpret_cast<void *>(m.start), m.end - m.start, m.prot, MAP_PRIVATE | MAP_FIXED, view, m.offset) ==
                   MAP_FAILED) {
            return Error::from_errno("mmap the view of the berth binary");
        }
    }
    if (::prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0) < 0) return Error::from_errno("prctl PR_SET_MM_MAP");
    return util::ok();
}

std::vector<std::string> own_argv() {
    auto cmdline = util::read_file("/proc/self/cmdline", 1 << 20);
    std::vector<std::string> args;
    if (!cmdline) return args;
    size_t start = 0;
    for (size_t i = 0; i < cmdline->size(); i++)
        if ((*cmdline)[i] == '\0') {
            args.emplace_back(cmdline->substr(start, i - start));
            start = i + 1;
        }
    return args;
}

}  // namespace

bool self_protected() {
    // A read-only mount or view, an immutable file, one we may not write.
    if (::faccessat(AT_FDCWD, kSelfExe, W_OK, AT_EACCESS) < 0 && (errno == EROFS || errno == EACCES || errno == EPERM))
        return true;
    int fd = ::open(kSelfExe, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    util::UniqueFd self(fd);
    // Our own sealed copy, or an unlinked copy only this process reaches.
    int seals = ::fcntl(self.get(), F_GET_SEALS);
    if (seals >= 0 && (seals & F_SEAL_WRITE)) return true;
    struct stat st;
    return ::fstat(self.get(), &st) == 0 && st.st_nlink == 0;
}

util::Status protect_self(const std::string &state_root) {
    const char *reexeced = ::getenv(kReexecEnv);
    if (self_protected()) {
        if (reexeced) {
            // An exec through /proc/self/fd/N named us "N": take our name back.
            ::prctl(PR_SET_NAME, reexeced, 0, 0, 0);
            ::unsetenv(kReexecEnv);
        }
        return util::ok();
    }
    if (reexeced) return Error::msg("the berth binary is still writable after re-executing from a protected view");
    auto self = TRY_CTX(util::open_file(kSelfExe, O_RDONLY), "protect the berth binary");
    std::string why;
    auto note = [&](const std::string &what, const Error &e) { why += util::cat(why.empty() ? "" : "; ", what, ": ", e.message()); };
    std::vector<std::string> args;
    std::vector<char *> argv;
    // Each view is adopted in place if it can be (no exec: true), else
    // exec'd; false when neither worked.
    auto attempt = [&](util::Result<util::UniqueFd> view, const std::string &what) -> util::Result<bool> {
        if (!view) {
            note(what, view.error());
            return false;
        }
        auto adopted = adopt_exe(self.get(), view->get());
        if (adopted && self_protected()) {
            util::log::debug("berth binary protected in place: ", what);
            return true;
        }
        if (!adopted) note(util::cat(what, " in place"), adopted.error());
        if (argv.empty()) {
            args = own_argv();
            if (args.empty()) return Error::msg("protect the berth binary: cannot read /proc/self/cmdline");
            for (auto &a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            char comm[17] = {};
            ::prctl(PR_GET_NAME, comm, 0, 0, 0);
            if (::setenv(kReexecEnv, comm[0] ? comm : "berth", 1) < 0) return Error::from_errno("protect the berth binary: setenv");
        }
        util::log::debug("berth binary protected by re-executing from the ", what);
        exec_fd(view->get(), argv.data(), environ);
        note(what, Error::from_errno("exec"));
        return false;
    };
    for (int way = 0; way < 3; way++) {
        auto done = way == 0   ? attempt(readonly_view(), "read-only view")
                    : way == 1 ? attempt(sealed_copy(self.get()), "sealed copy")
                               : attempt(tmpfile_copy(self.get(), state_root), util::cat("copy in ", state_root));
        if (!done || *done) {
            ::unsetenv(kReexecEnv);
            if (!done) return std::move(done).error();
            return util::ok();
        }
    }
    ::unsetenv(kReexecEnv);
    return Error::msg(util::cat("cannot protect the berth binary from being overwritten by a container (CVE-2019-5736): ", why,
                                "; install berth on a read-only mount to need none of these"));
}

util::Result<util::UniqueFd> dmz_fd() {
    auto m = TRY(exec_memfd("berth-dmz"));
    TRY(util::write_all(m.get(), std::string_view(reinterpret_cast<const char *>(kDmzBinary), kDmzBinary_size)));
    TRY(seal_executable(m.get(), "berth-dmz"));
    return m;
}

void exec_fd(int fd, char *const argv[], char *const envp[]) {
    // execve of the fd's /proc path first: seccomp profiles list execve far
    // more often than execveat (a default action of KILL would end us).
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ::execve(path, argv, envp);
    if (errno != ENOENT) return;
    ::syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
}

void exec_through_dmz(int dmz, const char *path, char *const argv[], char *const envp[]) {
    std::vector<char *> args;
    args.push_back(const_cast<char *>(path));
    for (char *const *a = argv; *a; a++) args.push_back(*a);
    args.push_back(nullptr);
    exec_fd(dmz, args.data(), envp);
}

}  // namespace rt::exe_protect
