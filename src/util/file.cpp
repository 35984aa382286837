// File helpers; see file.hpp.
#include "util/file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "util/dir.hpp"
#include "util/failpoint.hpp"
#include "util/strings.hpp"

namespace util {

Result<std::string> read_all(int fd, size_t limit) {
    std::string out;
    char buf[16384];
    while (true) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error::from_errno("read");
        }
        if (n == 0) return out;
        if (out.size() + static_cast<size_t>(n) > limit)
            return Error::with_code(EFBIG, cat("read: more than ", limit, " bytes"));
        out.append(buf, static_cast<size_t>(n));
    }
}

Status write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error::from_errno("write");
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return ok();
}

Result<UniqueFd> open_file(const std::string &path, int flags, mode_t mode) {
    return open_at(AT_FDCWD, path, flags, mode);
}

Result<UniqueFd> open_at(int dirfd, const std::string &path, int flags, mode_t mode) {
    int fd = ::openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) return Error::from_errno(cat("open ", quote(path)));
    return UniqueFd(fd);
}

Result<std::string> read_file(const std::string &path, size_t limit) { return read_file_at(AT_FDCWD, path, limit); }

Result<std::string> read_file_at(int dirfd, const std::string &name, size_t limit) {
    auto fd = TRY(open_at(dirfd, name, O_RDONLY));
    return read_all(fd.get(), limit).context(cat("read ", quote(name)));
}

namespace {

/// A word of this process that the one before it with the same pid did not
/// have: berth as PID 1 is the same pid on every boot and takes the same
/// steps up to its first write, so pid and counter alone would name the
/// temporary a power cut left in the last boot (O_EXCL: EEXIST, and no
/// state written ever after).
uint64_t process_token() {
    static pid_t owner = 0;
    static uint64_t token = 0;
    if (owner != ::getpid()) {
        owner = ::getpid();
        if (::getrandom(&token, sizeof token, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof token)) {
            // Entropy not ready this early in a boot: the clock still differs.
            struct timespec ts {};
            ::clock_gettime(CLOCK_BOOTTIME, &ts);
            token = static_cast<uint64_t>(ts.tv_sec) * 1000000007u ^ static_cast<uint64_t>(ts.tv_nsec) ^
                    static_cast<uint64_t>(::time(nullptr)) << 32;
        }
    }
    return token;
}

std::string temp_name(const std::string &name) {
    static unsigned counter = 0;
    char token[17];
    std::snprintf(token, sizeof token, "%016llx", static_cast<unsigned long long>(process_token()));
    return cat(kTempPrefix, basename(name), '.', getpid(), '.', token, '.', ++counter);
}

/// A CLOEXEC fd of the directory `dirfd` names (AT_FDCWD: "."), owned by the caller.
Result<UniqueFd> own_dir(int dirfd) {
    if (dirfd == AT_FDCWD) return open_file(".", O_RDONLY | O_DIRECTORY);
    int fd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return Error::from_errno("dup directory fd");
    return UniqueFd(fd);
}

/// Puts the unsynced temporary `tmp` in the place of `name`. A rename over an
/// existing file makes ext4 allocate the new file's blocks at once (its
/// replace-by-rename heuristic), and freeing them at the next replacement
/// costs a synchronous discard on filesystems mounted with `discard`: several
/// milliseconds per state change on eMMC/SD gateways and virtual disks, and
/// flash wear. Exchanging the two names and unlinking the old file instead
/// keeps short-lived content in the page cache only. Readers see the old or
/// the new file at every instant, as with rename. Falls back to rename where
/// there is nothing to replace or the filesystem cannot exchange. With
/// `keep_old`, the old file stays at `tmp` (when the names were exchanged).
Status replace_unsynced(int tmp_dirfd, const std::string &tmp, int dirfd, const std::string &name, bool keep_old = false) {
    if (::renameat2(tmp_dirfd, tmp.c_str(), dirfd, name.c_str(), RENAME_EXCHANGE) == 0) {
        struct stat st;
        if (keep_old && ::fstatat(tmp_dirfd, tmp.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) return ok();
        if (::unlinkat(tmp_dirfd, tmp.c_str(), 0) == 0) return ok();
        // `name` was something rename would not have replaced (a directory): undo.
        int e = errno;
        (void)::renameat2(tmp_dirfd, tmp.c_str(), dirfd, name.c_str(), RENAME_EXCHANGE);
        return Error::with_code(e, "rename: the target cannot be replaced");
    }
    if (errno != ENOENT && errno != EINVAL && errno != ENOSYS && errno != EPERM && errno != ENOTSUP)
        return Error::from_errno("rename");
    if (::renameat(tmp_dirfd, tmp.c_str(), dirfd, name.c_str()) < 0) return Error::from_errno("rename");
    return ok();
}

}  // namespace

Result<AtomicFile> AtomicFile::create_in(UniqueFd dir, const std::string &name, mode_t mode, Durability durability) {
    std::string what = cat("write ", quote(name));
    AtomicFile f;
    f.dir_ = std::move(dir);
    f.name_ = name;
    f.durability_ = durability;
    TRY_CTX(failpoint("atomic_write.create"), what);
    std::string tmp;
    int raw = -1;
    // A name taken (a temporary of a process that had this pid and token,
    // left by a crash; the sweeps remove those): the next one.
    for (int tries = 0; raw < 0 && tries < 8; tries++) {
        tmp = temp_name(name);
        raw = ::openat(f.dir_.get(), tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (raw < 0 && errno != EEXIST) break;
    }
    if (raw < 0) return Error::from_errno(cat(what, ": create temporary"));
    f.fd_.reset(raw);
    f.tmp_ = std::move(tmp);  // from here the destructor unlinks it
    if (::fchmod(f.fd_.get(), mode) < 0) return Error::from_errno(cat(what, ": fchmod"));
    return f;
}

Result<AtomicFile> AtomicFile::create_at(int dirfd, const std::string &name, mode_t mode, Durability durability) {
    auto dir = TRY_CTX(own_dir(dirfd), cat("write ", quote(name)));
    return create_in(std::move(dir), name, mode, durability);
}

Result<AtomicFile> AtomicFile::create(const std::string &path, mode_t mode, Durability durability) {
    auto dir = TRY_CTX(open_file(dirname(path), O_RDONLY | O_DIRECTORY), cat("write ", quote(path)));
    return create_in(std::move(dir), basename(path), mode, durability).context(dirname(path));
}

Result<AtomicFile> AtomicFile::resume_at(int tmp_dirfd, const std::string &tmp_name, int dirfd, const std::string &name,
                                         mode_t mode, Durability durability) {
    std::string what = cat("write ", quote(name));
    AtomicFile f;
    f.dir_ = TRY_CTX(own_dir(dirfd), what);
    f.tmp_dir_ = TRY_CTX(own_dir(tmp_dirfd), what);
    f.name_ = name;
    f.durability_ = durability;
    f.keep_ = true;
    f.fd_ = TRY_CTX(open_at(f.tmp_dir_.get(), tmp_name, O_RDWR | O_CREAT | O_NOFOLLOW, mode), what);
    f.tmp_ = tmp_name;
    return f;
}

AtomicFile::AtomicFile(AtomicFile &&o) noexcept
    : dir_(std::move(o.dir_)), tmp_dir_(std::move(o.tmp_dir_)), fd_(std::move(o.fd_)), name_(std::move(o.name_)),
      tmp_(std::move(o.tmp_)), durability_(o.durability_), keep_(o.keep_), done_(std::exchange(o.done_, true)) {}

AtomicFile::~AtomicFile() {
    fd_.reset();
    // After a rename whose directory sync failed the temporary's name is
    // already gone (ENOENT): it was unique to this process, nothing else is hit.
    if (!done_ && !keep_ && !tmp_.empty()) ::unlinkat(tmp_dirfd(), tmp_.c_str(), 0);
}

Status AtomicFile::write(std::string_view data) {
    std::string what = cat("write ", quote(name_));
    TRY_CTX(failpoint("atomic_write.write"), what);
    return write_all(fd_.get(), data).context(what);
}

Status AtomicFile::commit() {
    std::string what = cat("write ", quote(name_));
    if (done_ || !fd_) return Error::msg(cat(what, ": already committed or discarded"));
    TRY_CTX(failpoint("atomic_write.fsync"), what);
    if (durability_ == Durability::PowerCut && ::fsync(fd_.get()) < 0) return Error::from_errno(cat(what, ": fsync"));
    fd_.reset();
    TRY_CTX(rename_durably_at(tmp_dirfd(), tmp_, dir_.get(), name_, durability_), what);
    done_ = true;
    return ok();
}

void AtomicFile::discard() {
    fd_.reset();
    if (!done_ && !tmp_.empty()) ::unlinkat(tmp_dirfd(), tmp_.c_str(), 0);
    done_ = true;
}

Status atomic_write_file_at(int dirfd, const std::string &name, std::string_view data, mode_t mode,
                            Durability durability) {
    auto f = TRY(AtomicFile::create_at(dirfd, name, mode, durability));
    TRY(f.write(data));
    return f.commit();
}

Status rewrite_file_at(int dirfd, const std::string &name, const std::string &spare, std::string_view data, mode_t mode) {
    std::string what = cat("write ", quote(name));
    int raw = ::openat(dirfd, spare.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (raw < 0) return Error::from_errno(cat(what, ": open ", quote(spare)));
    UniqueFd fd(raw);
    ScopeGuard unlink_spare([&] { ::unlinkat(dirfd, spare.c_str(), 0); });
    TRY_CTX(write_all(fd.get(), data), what);
    if (::fchmod(fd.get(), mode) < 0) return Error::from_errno(cat(what, ": fchmod"));
    fd.reset();
    TRY_CTX(replace_unsynced(dirfd, spare, dirfd, name, true), what);
    unlink_spare.dismiss();
    return ok();
}

Status atomic_write_file(const std::string &path, std::string_view data, mode_t mode, Durability durability) {
    auto f = TRY(AtomicFile::create(path, mode, durability));
    TRY(f.write(data));
    return f.commit();
}

Status atomic_symlink_at(int dirfd, const std::string &name, const std::string &target) {
    std::string tmp = temp_name(name);
    std::string what = cat("switch ", quote(name));
    TRY_CTX(failpoint("atomic_write.create"), what);
    if (::symlinkat(target.c_str(), dirfd, tmp.c_str()) < 0) return Error::from_errno(cat(what, ": symlink"));
    ScopeGuard unlink_tmp([&] { ::unlinkat(dirfd, tmp.c_str(), 0); });
    TRY_CTX(rename_durably_at(dirfd, tmp, dirfd, name), what);
    unlink_tmp.dismiss();
    return ok();
}

Status rename_durably_at(int from_dirfd, const std::string &from, int to_dirfd, const std::string &to,
                         Durability durability) {
    TRY(failpoint("atomic_write.rename"));
    if (durability != Durability::PowerCut) return replace_unsynced(from_dirfd, from, to_dirfd, to);
    if (::renameat(from_dirfd, from.c_str(), to_dirfd, to.c_str()) < 0) return Error::from_errno("rename");
    // The new name is in place; a failed directory sync is still reported,
    // because the rename may not survive a power cut.
    TRY(failpoint("atomic_write.dirsync"));
    return fsync_dirfd(to_dirfd);
}

Status move_durably(const std::string &from, const std::string &to) {
    if (::rename(from.c_str(), to.c_str()) < 0) return Error::from_errno(cat("rename ", quote(from), " to ", quote(to)));
    const std::string from_dir = dirname(from), to_dir = dirname(to);
    TRY(fsync_dir(to_dir));
    return from_dir == to_dir ? ok() : fsync_dir(from_dir);
}

Status fsync_dirfd(int dirfd) {
    if (dirfd == AT_FDCWD) return fsync_dir(".");
    if (::fsync(dirfd) < 0) return Error::from_errno("fsync directory");
    return ok();
}

Status fsync_dir(const std::string &path) {
    auto fd = TRY(open_file(path, O_RDONLY | O_DIRECTORY));
    if (::fsync(fd.get()) < 0) return Error::from_errno(cat("fsync ", quote(path)));
    return ok();
}

Status mkdir_p(const std::string &path, mode_t mode) {
    if (path.empty()) return ok();
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) return ok();
        return Error::with_code(ENOTDIR, cat("mkdir ", quote(path)));
    }
    std::string parent = dirname(path);
    if (parent != path) TRY(mkdir_p(parent, mode));
    if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST) return Error::from_errno(cat("mkdir ", quote(path)));
    return ok();
}

namespace {

Status remove_children(int dirfd, dev_t dev) {
    auto dir = TRY(Dir::of_fd(dirfd));
    while (const dirent *e = TRY(dir.next())) {
        std::string_view n = e->d_name;
        struct stat st;
        if (::fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) continue;
            return Error::from_errno(cat("stat ", quote(n)));
        }
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != dev) return Error::with_code(EBUSY, cat("remove ", quote(n), ": a mount point"));
            int child = ::openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child < 0) return Error::from_errno(cat("open ", quote(n)));
            UniqueFd cfd(child);
            TRY_CTX(remove_children(cfd.get(), dev), std::string(n));
            if (::unlinkat(dirfd, e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return Error::from_errno(cat("rmdir ", quote(n)));
        } else if (::unlinkat(dirfd, e->d_name, 0) < 0 && errno != ENOENT) {
            return Error::from_errno(cat("unlink ", quote(n)));
        }
    }
    return ok();
}

}  // namespace

Status remove_tree_at(int dirfd, const std::string &name) {
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return ok();
        return Error::from_errno(cat("stat ", quote(name)));
    }
    if (!S_ISDIR(st.st_mode)) {
        if (::unlinkat(dirfd, name.c_str(), 0) < 0 && errno != ENOENT)
            return Error::from_errno(cat("unlink ", quote(name)));
        return ok();
    }
    auto fd = TRY(open_at(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    TRY_CTX(remove_children(fd.get(), st.st_dev), cat("remove ", quote(name)));
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT)
        return Error::from_errno(cat("rmdir ", quote(name)));
    return ok();
}

Status remove_tree(const std::string &path) { return remove_tree_at(AT_FDCWD, path); }

bool path_exists(const std::string &path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

std::string path_join(std::string_view a, std::string_view b) {
    if (a.empty()) return std::string(b);
    if (b.empty()) return std::string(a);
    std::string out(a);
    if (out.back() != '/') out.push_back('/');
    while (!b.empty() && b.front() == '/') b.remove_prefix(1);
    out.append(b);
    return out;
}

std::string dirname(std::string_view path) {
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    auto pos = path.rfind('/');
    if (pos == std::string_view::npos) return ".";
    if (pos == 0) return "/";
    return std::string(path.substr(0, pos));
}

std::string basename(std::string_view path) {
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    auto pos = path.rfind('/');
    if (pos == std::string_view::npos) return std::string(path);
    return std::string(path.substr(pos + 1));
}

}  // namespace util
