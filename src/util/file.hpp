// Whole-file I/O and the one crash-safe way berth writes persistent state.
//
// read_all/write_all loop over EINTR and short transfers. atomic_write_file is
// the only writer of state files: it writes a temporary in the same directory,
// fsyncs it, renames it over the target and fsyncs the directory, so after a
// power cut the target holds either the old or the new content, never a mix.
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

/// Writes `data` to `name` in `dirfd` crash-safely (temp, fsync, rename,
/// fsync dir). On any failure the old content (or absence) is kept and no
/// temporary is left behind. Failpoints: atomic_write.{create,write,fsync,rename,dirsync}.
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
/// Atomically replaces `name` in `dirfd` with a symlink to `target` (pointer switches).
Status atomic_symlink_at(int dirfd, const std::string &name, const std::string &target);

/// Prefix of the temporaries atomic_write_file creates; fsck-style cleanups remove them.
inline constexpr std::string_view kTempPrefix = ".berth-tmp-";

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
