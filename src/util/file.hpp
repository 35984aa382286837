// Whole-file I/O and the one crash-safe way berth writes persistent state.
//
// read_all/write_all loop over EINTR and short transfers. Every persistent
// file is written through AtomicFile (streaming) or atomic_write_file (a
// string at once, built on it): a temporary beside the target, written,
// fsynced, renamed over the target, and the directory fsynced, so after a
// power cut the target holds either the old or the new content, never a mix.
// rename_durably_at is the last two steps alone, for a finished temporary
// directory (an unpacked layer). The durability (power cut or process crash
// only) is a parameter; every step has a failpoint (util/failpoint.hpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace util {

/// Reads until EOF. Fails with EFBIG when more than `limit` bytes arrive.
Result<std::string> read_all(int fd, size_t limit = SIZE_MAX);
/// Writes all of `data`, retrying on EINTR and short writes.
Status write_all(int fd, std::string_view data);

/// open(2) with O_CLOEXEC added; the error names the path.
Result<UniqueFd> open_file(const std::string &path, int flags, mode_t mode = 0);
Result<UniqueFd> open_at(int dirfd, const std::string &path, int flags, mode_t mode = 0);

Result<std::string> read_file(const std::string &path, size_t limit = SIZE_MAX);
Result<std::string> read_file_at(int dirfd, const std::string &name, size_t limit = SIZE_MAX);

/// What an atomic write must survive. PowerCut fsyncs the file and its
/// directory; ProcessCrash only swaps the names, for files on tmpfs (the
/// runtime's state under /run, pid files) that a power cut erases anyway; on
/// a disk it never forces the blocks of short-lived content to be allocated.
enum class Durability { PowerCut, ProcessCrash };

/// A file written crash-safely: the content goes to a temporary, which
/// commit() makes the target (fsync, rename over it, fsync the directory).
/// Destroyed before commit() (any failure on the way), it unlinks the
/// temporary, so the target keeps its old content (or stays absent) and
/// nothing else is left. Holds its own directory fd: the caller's may close.
///
/// Failpoints, in order: atomic_write.create, atomic_write.write (each
/// write()), atomic_write.fsync, atomic_write.rename, atomic_write.dirsync.
class AtomicFile {
public:
    /// Creates the temporary `.berth-tmp-<name>.<pid>.<token>.<n>` in `dirfd` (O_EXCL,
    /// `mode` exactly, whatever the umask) for `name` in the same directory.
    static Result<AtomicFile> create_at(int dirfd, const std::string &name, mode_t mode = 0644,
                                        Durability durability = Durability::PowerCut);
    /// Same, for a path; the parent directory must exist.
    static Result<AtomicFile> create(const std::string &path, mode_t mode = 0644,
                                     Durability durability = Durability::PowerCut);
    /// Opens (creating it when missing) a resumable temporary: `tmp_name` in
    /// `tmp_dirfd`, which commit() renames to `name` in `dirfd` (the same
    /// filesystem). Unlike a created one it is kept when destroyed
    /// uncommitted: a partial download resumes from it (docs/store.md);
    /// discard() removes it.
    static Result<AtomicFile> resume_at(int tmp_dirfd, const std::string &tmp_name, int dirfd, const std::string &name,
                                        mode_t mode = 0644, Durability durability = Durability::PowerCut);
    AtomicFile(AtomicFile &&other) noexcept;
    AtomicFile &operator=(AtomicFile &&) = delete;
    AtomicFile(const AtomicFile &) = delete;
    AtomicFile &operator=(const AtomicFile &) = delete;
    ~AtomicFile();

    /// The temporary's fd (O_RDWR) for streaming writes; -1 after commit().
    int fd() const { return fd_.get(); }
    /// Appends `data` to the temporary.
    Status write(std::string_view data);
    /// fsync (PowerCut), rename over the target, fsync its directory
    /// (PowerCut). After a failed directory sync the target may already be
    /// the new content; the error says the rename may not survive a power cut.
    Status commit();
    /// Removes the temporary now, even a resumable one.
    void discard();

private:
    AtomicFile() = default;
    static Result<AtomicFile> create_in(UniqueFd dir, const std::string &name, mode_t mode, Durability durability);
    int tmp_dirfd() const { return tmp_dir_ ? tmp_dir_.get() : dir_.get(); }

    UniqueFd dir_;      ///< the target's directory
    UniqueFd tmp_dir_;  ///< the temporary's, when not dir_ (resume_at)
    UniqueFd fd_;       ///< the temporary; closed by commit()
    std::string name_, tmp_;
    Durability durability_ = Durability::PowerCut;
    bool keep_ = false;  ///< resumable: destroyed uncommitted, the temporary stays
    bool done_ = false;  ///< committed or discarded: the destructor leaves the name alone
};

/// Writes `data` to `name` in `dirfd` through an AtomicFile: on any failure
/// the old content (or absence) is kept and no temporary is left behind.
Status atomic_write_file_at(int dirfd, const std::string &name, std::string_view data, mode_t mode = 0644,
                            Durability durability = Durability::PowerCut);
/// Same, for a path; the parent directory must exist.
Status atomic_write_file(const std::string &path, std::string_view data, mode_t mode = 0644,
                         Durability durability = Durability::PowerCut);
/// Replaces `name` in `dirfd` as atomic_write_file does with ProcessCrash,
/// but writes through `spare`, which then holds the displaced content and is
/// reused by the next call: a file rewritten several times in a row costs
/// one inode (an ext4 inode allocation skips over the inodes freed moments
/// ago, a large part of a container's start). Callers serialize the calls
/// for one `spare` (a lock), and remove it with the directory.
Status rewrite_file_at(int dirfd, const std::string &name, const std::string &spare, std::string_view data,
                       mode_t mode = 0644);
/// Atomically replaces `name` in `dirfd` with a symlink to `target` (pointer
/// switches). Failpoints: atomic_write.{create,rename,dirsync}.
Status atomic_symlink_at(int dirfd, const std::string &name, const std::string &target);
/// The last steps of every atomic write: renames the finished `from` (in
/// `from_dirfd`) to `to` (in `to_dirfd`, the same filesystem), then fsyncs
/// `to_dirfd` (PowerCut). For a temporary directory made durable by its
/// writer (an unpacked layer). Failpoints: atomic_write.{rename,dirsync}.
Status rename_durably_at(int from_dirfd, const std::string &from, int to_dirfd, const std::string &to,
                         Durability durability = Durability::PowerCut);

/// Moves `from` to `to` (paths on one filesystem; a file, a directory or a
/// link) so that the move survives a power cut: rename, then fsync the
/// directory it left and the one it entered. For moving existing data (a
/// migration, a retired key), not for new content: that is AtomicFile's.
Status move_durably(const std::string &from, const std::string &to);

/// Prefix of the temporaries AtomicFile creates; fsck-style cleanups remove them.
inline constexpr std::string_view kTempPrefix = ".berth-tmp-";

/// fsync(2) on an open directory (AT_FDCWD: the current one).
Status fsync_dirfd(int dirfd);
Status fsync_dir(const std::string &path);
/// Creates `path` and its missing parents.
Status mkdir_p(const std::string &path, mode_t mode = 0755);
/// Removes a file or a directory tree; does not cross into other mounts; ENOENT is success.
Status remove_tree(const std::string &path);
Status remove_tree_at(int dirfd, const std::string &name);
bool path_exists(const std::string &path);

std::string path_join(std::string_view a, std::string_view b);
std::string dirname(std::string_view path);
std::string basename(std::string_view path);

}  // namespace util
