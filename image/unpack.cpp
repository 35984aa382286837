// Streaming, containment-safe layer unpacking (see unpack.hpp).
//
// The pipeline is: fd -> [libarchive "raw" reader with the gzip/zstd
// filter, or ISA-L's gzip where installed: unpack_gunzip.hpp] -> our callback, which hashes the uncompressed bytes (diff_id)
// and enforces the size and ratio limits -> libarchive's tar reader ->
// entries created here with *at() calls. libarchive never touches the disk.
// The fd is a stored blob (unpack_layer) or, during a pull, one end of a
// socketpair whose other end the download writes (StreamingUnpack, which
// runs this pipeline in a thread of its own); either way the tree goes to
// a LayerTmp that only a rename makes a layer.
#include "image/unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "image/unpack_gunzip.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using util::cat;
using util::Error;
using util::quote;
using ArchivePtr = util::CPtr<archive, archive_read_free>;

constexpr size_t kBufSize = 64 * 1024;

/// The decompressing, hashing, limit-checking source the tar reader reads.
struct Source {
    int fd = -1;
    Compression compression = Compression::None;
    const UnpackLimits *limits = nullptr;
    ArchivePtr raw;  ///< decompressor (raw format + filter); null for plain tar or `fast`
    std::unique_ptr<FastGunzip> fast;  ///< gzip through ISA-L, where it is installed
    Sha256 hash;
    uint64_t compressed = 0;
    uint64_t total = 0;
    bool eof = false;
    std::string error;  ///< set when a callback fails; wins over libarchive's message
    std::vector<char> buf = std::vector<char>(kBufSize);

    static la_ssize_t raw_read(archive *, void *self, const void **out) {
        auto *s = static_cast<Source *>(self);
        for (;;) {
            ssize_t n = ::read(s->fd, s->buf.data(), s->buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                s->error = cat("read layer: ", std::strerror(errno));
                return -1;
            }
            s->compressed += static_cast<uint64_t>(n);
            *out = s->buf.data();
            return n;
        }
    }

    /// Fills `out` with up to `len` uncompressed bytes; 0 at the end.
    ssize_t next(char *out, size_t len) {
        if (eof) return 0;
        ssize_t n;
        if (fast) {
            n = fast->read(out, len);
            compressed = fast->compressed();
            if (n < 0) {
                error = fast->error();
                return -1;
            }
        } else if (!raw) {
            for (;;) {
                n = ::read(fd, out, len);
                if (n < 0 && errno == EINTR) continue;
                break;
            }
            if (n < 0) {
                error = cat("read layer: ", std::strerror(errno));
                return -1;
            }
            compressed += static_cast<uint64_t>(n);
        } else {
            n = archive_read_data(raw.get(), out, len);
            if (n < 0) {
                if (error.empty()) error = cat("decompress layer: ", archive_error_string(raw.get()));
                return -1;
            }
        }
        if (n == 0) {
            eof = true;
            return 0;
        }
        total += static_cast<uint64_t>(n);
        hash.update(out, static_cast<size_t>(n));
        if (total > limits->max_bytes) {
            error = cat("layer is larger than the limit of ", limits->max_bytes, " bytes uncompressed");
            return -1;
        }
        if (total > limits->ratio_floor && compressed > 0 && total / compressed > limits->ratio) {
            error = cat("layer expands more than ", limits->ratio, " times (", total, " bytes from ", compressed,
                        "): refused as a decompression bomb");
            return -1;
        }
        return n;
    }

    std::vector<char> tar_buf = std::vector<char>(kBufSize);
    static la_ssize_t tar_read(archive *, void *self, const void **out) {
        auto *s = static_cast<Source *>(self);
        *out = s->tar_buf.data();
        return s->next(s->tar_buf.data(), s->tar_buf.size());
    }

    util::Status open() {
        if (compression == Compression::None) return util::ok();
        if (compression == Compression::Gzip && (fast = FastGunzip::open(fd))) return util::ok();
        raw.reset(archive_read_new());
        if (!raw) return Error::msg("archive_read_new failed");
        int r = compression == Compression::Gzip ? archive_read_support_filter_gzip(raw.get())
                                                 : archive_read_support_filter_zstd(raw.get());
        if (r != ARCHIVE_OK) return Error::msg(cat("layer decompression not available: ", archive_error_string(raw.get())));
        archive_read_support_format_raw(raw.get());
        if (archive_read_open(raw.get(), this, nullptr, raw_read, nullptr) != ARCHIVE_OK)
            return Error::msg(cat("open layer stream: ", error.empty() ? archive_error_string(raw.get()) : error.c_str()));
        archive_entry *e = nullptr;
        if (archive_read_next_header(raw.get(), &e) != ARCHIVE_OK)
            return Error::msg(cat("open layer stream: ", error.empty() ? archive_error_string(raw.get()) : error.c_str()));
        int want = compression == Compression::Gzip ? ARCHIVE_FILTER_GZIP : ARCHIVE_FILTER_ZSTD;
        if (archive_filter_code(raw.get(), 0) != want)
            return Error::msg(compression == Compression::Gzip ? "layer is not gzip-compressed" : "layer is not zstd-compressed");
        return util::ok();
    }
};

/// Splits an entry path into clean components: no empty, `.` or `..`.
util::Result<std::vector<std::string>> clean_path(std::string_view p) {
    std::vector<std::string> out;
    for (auto &c : util::split(p, '/')) {
        if (c.empty() || c == ".") continue;
        if (c == "..") return Error::msg(cat("entry ", quote(p), ": `..` in path"));
        out.push_back(std::move(c));
    }
    return out;
}

struct DirMeta {
    std::string path;
    mode_t mode;
    timespec mtime;
};

class Extractor {
public:
    Extractor(int root, const UnpackLimits &limits) : root_(root), limits_(limits), is_root_(::geteuid() == 0) {}

    util::Status entry(archive *a, archive_entry *e);
    util::Status finish();

private:
    util::Result<int> parent_fd(const std::vector<std::string> &parts);
    util::Status remove_existing(const std::string &name, bool keep_dir);
    util::Status write_file(archive *a, int dirfd, const std::string &name, archive_entry *e);
    util::Status set_meta(int dirfd, const std::string &name, archive_entry *e, int fd);
    util::Status set_xattrs(int fd, archive_entry *e, const std::string &what);

    int root_;
    const UnpackLimits &limits_;
    bool is_root_;
    /// The directory of the current entry and its path: the only owner of
    /// that fd. parent_fd() lends it; nothing closes it while an entry is
    /// handled (a closed number may already be another file's: the
    /// streaming unpack runs beside the download). Replacing an entry never
    /// changes what its parent resolves to, so the fd stays valid until an
    /// entry in another directory comes.
    std::string cached_parent_ = "\x01";  ///< path of cached_fd_ (never a real path initially)
    util::UniqueFd cached_fd_;
    uint64_t file_bytes_ = 0;
    std::vector<DirMeta> dirs_;
};

util::Result<int> Extractor::parent_fd(const std::vector<std::string> &parts) {
    std::vector<std::string> dir(parts.begin(), parts.end() - 1);
    std::string p = util::join(dir, "/");
    if (p != cached_parent_ || !cached_fd_) {
        cached_fd_.reset();
        cached_parent_ = "\x01";
        auto fd = TRY(util::mkdir_all_in_root(root_, p.empty() ? "." : p, 0755, util::Scope::Beneath));
        cached_fd_ = std::move(fd);
        cached_parent_ = p;
    }
    return cached_fd_.get();
}

/// Removes `name` from the current entry's directory (cached_fd_) so a
/// later entry of the same name replaces it: the last one wins, as with
/// tar and containerd. A directory stays when `keep_dir` (it is merged).
util::Status Extractor::remove_existing(const std::string &name, bool keep_dir) {
    struct stat st;
    if (::fstatat(cached_fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return util::ok();
        return Error::from_errno(cat("stat ", quote(name)));
    }
    if (keep_dir && S_ISDIR(st.st_mode)) return util::ok();
    return util::remove_tree_at(cached_fd_.get(), name);
}

util::Status Extractor::set_xattrs(int fd, archive_entry *e, const std::string &what) {
    archive_entry_xattr_reset(e);
    const char *name;
    const void *value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        std::string_view n = name;
        // overlayfs markers come only from whiteouts, never from the archive.
        if (n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.")) continue;
        if (!is_root_ && !n.starts_with("user.")) continue;
        if (::fsetxattr(fd, name, value, size, 0) < 0 && errno != ENOTSUP)
            return Error::from_errno(cat(what, ": set xattr ", quote(n)));
    }
    return util::ok();
}

util::Status Extractor::set_meta(int dirfd, const std::string &name, archive_entry *e, int fd) {
    std::string what = cat("entry ", quote(archive_entry_pathname(e)));
    mode_t type = archive_entry_filetype(e);
    if (is_root_) {
        uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
        gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
        int r = fd >= 0 ? ::fchown(fd, uid, gid) : ::fchownat(dirfd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
        if (r < 0) return Error::from_errno(cat(what, ": chown"));
    }
    if (type != AE_IFLNK) {  // after chown, which clears set-id bits
        mode_t mode = archive_entry_perm(e) & 07777;
        int r = fd >= 0 ? ::fchmod(fd, mode) : ::fchmodat(dirfd, name.c_str(), mode, 0);
        if (r < 0) return Error::from_errno(cat(what, ": chmod"));
    }
    timespec ts[2] = {{archive_entry_atime(e), archive_entry_atime_nsec(e)},
                      {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
    if (!archive_entry_atime_is_set(e)) ts[0] = ts[1];
    int r = fd >= 0 ? ::futimens(fd, ts) : ::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
    if (r < 0) return Error::from_errno(cat(what, ": set times"));
    return util::ok();
}

util::Status Extractor::write_file(archive *a, int dirfd, const std::string &name, archive_entry *e) {
    std::string what = cat("entry ", quote(archive_entry_pathname(e)));
    int64_t size = archive_entry_size(e);
    if (size < 0 || static_cast<uint64_t>(size) > limits_.max_bytes - file_bytes_)
        return Error::msg(cat(what, ": files larger than the limit of ", limits_.max_bytes, " bytes"));
    file_bytes_ += static_cast<uint64_t>(size);
    auto fd = TRY_CTX(util::open_at(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600), what);
    int64_t pos = 0;
    for (;;) {
        const void *block;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(a, &block, &len, &off);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return Error::msg(cat(what, ": ", archive_error_string(a)));
        if (off < 0 || off > size || static_cast<int64_t>(len) > size - off)
            return Error::msg(cat(what, ": data beyond the size in its header"));
        if (off != pos && ::lseek(fd.get(), off, SEEK_SET) < 0) return Error::from_errno(cat(what, ": seek"));
        TRY_CTX(util::write_all(fd.get(), std::string_view(static_cast<const char *>(block), len)), what);
        pos = off + static_cast<int64_t>(len);
    }
    if (pos != size && ::ftruncate(fd.get(), size) < 0) return Error::from_errno(cat(what, ": truncate"));
    // Large files start their writeback now (a hint; the syncfs before the
    // layer is renamed into place is what waits for the disk).
    if (size >= (1 << 20)) (void)::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
    TRY(set_xattrs(fd.get(), e, what));
    return set_meta(dirfd, name, e, fd.get());
}

util::Status Extractor::entry(archive *a, archive_entry *e) {
    const char *raw_path = archive_entry_pathname(e);
    if (!raw_path) return Error::msg("entry without a path");
    std::string what = cat("entry ", quote(raw_path));
    auto parts = TRY(clean_path(raw_path));
    if (parts.empty()) return util::ok();  // "./": the target itself
    const std::string &base = parts.back();
    int dirfd = TRY_CTX(parent_fd(parts), what);

    // Whiteouts become overlayfs markers.
    if (base.starts_with(".wh.")) {
        if (base == ".wh..wh..opq") {
            auto d = TRY_CTX(util::open_at(dirfd, ".", O_RDONLY | O_DIRECTORY), what);
            if (::fsetxattr(d.get(), "trusted.overlay.opaque", "y", 1, 0) < 0)
                return Error::from_errno(cat(what, ": mark directory opaque"));
            return util::ok();
        }
        std::string target = base.substr(4);
        if (target.empty() || target == "." || target == ".." || target.starts_with(".wh."))
            return Error::msg(cat(what, ": invalid whiteout"));
        // A whiteout hides lower layers only: an entry of this layer with the same name stays.
        struct stat st;
        if (::fstatat(dirfd, target.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return util::ok();
        if (::mknodat(dirfd, target.c_str(), S_IFCHR | 0, makedev(0, 0)) < 0)
            return Error::from_errno(cat(what, ": create whiteout"));
        return util::ok();
    }

    if (const char *link = archive_entry_hardlink(e)) {
        auto tparts = TRY_CTX(clean_path(link), what);
        if (tparts.empty()) return Error::msg(cat(what, ": hardlink to the layer root"));
        TRY_CTX(remove_existing(base, false), what);
        auto target = TRY_CTX(util::open_in_root(root_, util::join(tparts, "/"), O_PATH | O_NOFOLLOW, 0, util::Scope::Beneath),
                              cat(what, ": hardlink target"));
        struct stat st;
        if (::fstat(target.get(), &st) < 0) return Error::from_errno(cat(what, ": hardlink target"));
        if (S_ISDIR(st.st_mode)) return Error::msg(cat(what, ": hardlink to a directory"));
        if (::linkat(target.get(), "", dirfd, base.c_str(), AT_EMPTY_PATH) < 0)
            return Error::from_errno(cat(what, ": link"));
        return util::ok();
    }

    mode_t type = archive_entry_filetype(e);
    switch (type) {
    case AE_IFDIR: {
        TRY_CTX(remove_existing(base, true), what);
        if (::mkdirat(dirfd, base.c_str(), 0700) < 0 && errno != EEXIST) return Error::from_errno(cat(what, ": mkdir"));
        auto d = TRY_CTX(util::open_at(dirfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW), what);
        TRY(set_xattrs(d.get(), e, what));
        if (is_root_ && ::fchown(d.get(), static_cast<uid_t>(archive_entry_uid(e)), static_cast<gid_t>(archive_entry_gid(e))) < 0)
            return Error::from_errno(cat(what, ": chown"));
        // Mode and mtime last: adding children changes the mtime, and a 0500 directory would stop us.
        dirs_.push_back({util::join(parts, "/"), static_cast<mode_t>(archive_entry_perm(e) & 07777),
                         {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}});
        return util::ok();
    }
    case AE_IFREG:
        TRY_CTX(remove_existing(base, false), what);
        return write_file(a, dirfd, base, e);
    case AE_IFLNK: {
        const char *target = archive_entry_symlink(e);
        if (!target) return Error::msg(cat(what, ": symlink without a target"));
        TRY_CTX(remove_existing(base, false), what);
        if (::symlinkat(target, dirfd, base.c_str()) < 0) return Error::from_errno(cat(what, ": symlink"));
        return set_meta(dirfd, base, e, -1);
    }
    case AE_IFCHR:
    case AE_IFBLK:
        // Not created (docs/store.md, "Device nodes"): a layer's 7:0 would
        // be the host's loop device in the container. Devices come from the
        // runtime config only, into the container's own /dev.
        return util::ok();
    case AE_IFIFO:
        TRY_CTX(remove_existing(base, false), what);
        if (::mknodat(dirfd, base.c_str(), S_IFIFO | 0600, 0) < 0) return Error::from_errno(cat(what, ": mkfifo"));
        return set_meta(dirfd, base, e, -1);
    default:
        return Error::msg(cat(what, ": unsupported entry type ", static_cast<unsigned>(type)));
    }
}

util::Status Extractor::finish() {
    cached_fd_.reset();
    // Deepest first, so setting a parent's mtime is the last change to it.
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
        auto d = util::open_in_root(root_, it->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, util::Scope::Beneath);
        if (!d) continue;  // replaced by a later entry
        if (::fchmod(d->get(), it->mode) < 0) return Error::from_errno(cat("chmod ", quote(it->path)));
        timespec ts[2] = {it->mtime, it->mtime};
        if (::futimens(d->get(), ts) < 0) return Error::from_errno(cat("set times of ", quote(it->path)));
    }
    return util::ok();
}

}  // namespace

bool zstd_supported() { return std::string_view(archive_version_details()).find("libzstd") != std::string_view::npos; }

util::Result<UnpackStats> unpack_stream(int in_fd, Compression compression, int target_dirfd, const UnpackLimits &limits) {
    Source src;
    src.fd = in_fd;
    src.compression = compression;
    src.limits = &limits;
    TRY(src.open());
    ArchivePtr tar(archive_read_new());
    if (!tar) return Error::msg("archive_read_new failed");
    archive_read_support_format_tar(tar.get());
    auto fail = [&](std::string_view where) {
        return Error::msg(cat(where, ": ", src.error.empty() ? archive_error_string(tar.get()) : src.error.c_str()));
    };
    if (archive_read_open(tar.get(), &src, nullptr, Source::tar_read, nullptr) != ARCHIVE_OK) return fail("read layer");
    Extractor ex(target_dirfd, limits);
    uint64_t entries = 0;
    for (;;) {
        archive_entry *e = nullptr;
        int r = archive_read_next_header(tar.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return fail("read layer");
        if (++entries > limits.max_entries) return Error::msg(cat("layer has more than ", limits.max_entries, " entries"));
        TRY_CTX(util::failpoint("unpack.entry"), "unpack");
        if (auto st = ex.entry(tar.get(), e); !st) {
            if (!src.error.empty()) return Error::msg(src.error);
            return std::move(st).error();
        }
    }
    // The diff_id covers the whole stream, padding after the end-of-archive
    // blocks included (the tar reader is done with its buffer).
    for (;;) {
        ssize_t n = src.next(src.tar_buf.data(), src.tar_buf.size());
        if (n < 0) return Error::msg(src.error);
        if (n == 0) break;
    }
    TRY(ex.finish());
    UnpackStats stats{src.hash.finish(), src.total, src.compressed, entries};
    return stats;
}

LayerTmp::LayerTmp(LayerTmp &&o) noexcept
    : store_(o.store_), diff_id_(o.diff_id_), tmp_(std::exchange(o.tmp_, std::string())), lock_(std::move(o.lock_)),
      rootfs_(std::move(o.rootfs_)), sealed_(o.sealed_) {}

LayerTmp::~LayerTmp() {
    rootfs_.reset();
    if (!tmp_.empty()) (void)util::remove_tree(tmp_);
}

util::Result<std::optional<LayerTmp>> LayerTmp::begin(Store &store, const Digest &diff_id) {
    std::string what = cat("unpack layer ", diff_id.str());
    LayerTmp t(store, diff_id);
    t.lock_ = TRY_CTX(store.lock_layer(diff_id), what);
    if (store.has_layer(diff_id)) return std::optional<LayerTmp>();
    std::string tmp = util::path_join(util::path_join(store.root(), "layers"), cat(".tmp-", diff_id.hex(), '.', ::getpid()));
    TRY_CTX(util::remove_tree(tmp), what);
    t.tmp_ = tmp;
    TRY_CTX(util::mkdir_p(tmp + "/rootfs", 0755), what);
    t.rootfs_ = TRY_CTX(util::open_file(tmp + "/rootfs", O_RDONLY | O_DIRECTORY), what);
    return std::optional<LayerTmp>(std::move(t));
}

util::Status LayerTmp::seal(const Descriptor &layer, const UnpackStats &stats) {
    std::string what = cat("unpack layer ", layer.digest.str());
    if (!(stats.diff_id == diff_id_))
        return Error::msg(cat(what, ": uncompressed content hashes to ", stats.diff_id.str(), ", the config says ", diff_id_.str()));
    util::json::Value meta = util::json::Value::object();
    meta["diffID"] = diff_id_.str();
    meta["blob"] = layer.digest.str();
    meta["mediaType"] = layer.media_type;
    meta["size"] = stats.tar_bytes;
    // Inside the temporary directory, which is the unit made atomic by the
    // rename: the syncfs below makes it durable with the tree.
    {
        auto fd = TRY_CTX(util::open_file(tmp_ + "/layer.json", O_WRONLY | O_CREAT | O_EXCL, 0644), what);
        TRY_CTX(util::write_all(fd.get(), util::json::dump(meta) + "\n"), cat(what, ": write layer.json"));
    }
    TRY_CTX(util::failpoint("unpack.sync"), what);
    if (::syncfs(rootfs_.get()) < 0) return Error::from_errno(cat(what, ": syncfs"));
    sealed_ = true;
    return util::ok();
}

util::Status LayerTmp::commit(const Descriptor &layer) {
    std::string what = cat("unpack layer ", layer.digest.str());
    if (!sealed_) return Error::msg(cat(what, ": not complete"));
    TRY_CTX(util::failpoint("unpack.rename"), what);
    auto layers = TRY_CTX(util::open_file(util::dirname(tmp_), O_RDONLY | O_DIRECTORY), what);
    TRY_CTX(util::rename_durably_at(layers.get(), util::basename(tmp_), layers.get(), std::string(diff_id_.hex())), what);
    tmp_.clear();
    return util::ok();
}

util::Status unpack_layer(Store &store, const Descriptor &layer, const Digest &diff_id, const UnpackLimits &limits) {
    std::string what = cat("unpack layer ", layer.digest.str());
    Compression comp = TRY_CTX(layer_compression(layer.media_type), what);
    auto tmp = TRY(LayerTmp::begin(store, diff_id));
    if (!tmp) return util::ok();
    auto in = TRY_CTX(store.open_blob(layer.digest), what);
    auto stats = TRY_CTX(unpack_stream(in.get(), comp, tmp->rootfs_fd(), limits), what);
    TRY(tmp->seal(layer, stats));
    return tmp->commit(layer);
}

// ---- StreamingUnpack

util::Result<std::unique_ptr<StreamingUnpack>> StreamingUnpack::start(Store &store, const Descriptor &layer,
                                                                       const Digest &diff_id, const UnpackLimits &limits) {
    std::string what = cat("unpack layer ", layer.digest.str());
    Compression comp = TRY_CTX(layer_compression(layer.media_type), what);
    // Also the first failpoint of this process when none was reached
    // before: the table is then loaded here, before a second thread exists.
    TRY_CTX(util::failpoint("unpack.stream"), what);
    auto tmp = TRY(LayerTmp::begin(store, diff_id));
    if (!tmp) return std::unique_ptr<StreamingUnpack>();
    std::unique_ptr<StreamingUnpack> s(new StreamingUnpack(store, layer, std::move(*tmp), limits));
    s->compression_ = comp;
    // A socket rather than a pipe: send(MSG_NOSIGNAL) reports a reader that
    // has gone as EPIPE without raising SIGPIPE in the process.
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return Error::from_errno(cat(what, ": socketpair"));
    s->write_fd_.reset(sv[0]);
    s->read_fd_.reset(sv[1]);
    if (::shutdown(sv[1], SHUT_WR) < 0 || ::shutdown(sv[0], SHUT_RD) < 0) return Error::from_errno(cat(what, ": shutdown"));
    // Room for a few received chunks in the kernel (not in our RSS) so the two
    // sides rarely wait for each other; the kernel caps it at wmem_max.
    int sz = 1 << 20;
    (void)::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    pthread_attr_t attr;
    if (int e = pthread_attr_init(&attr); e != 0) return Error::with_code(e, cat(what, ": start unpacker"));
    (void)pthread_attr_setstacksize(&attr, 1 << 20);
    int e = pthread_create(&s->thread_, &attr, &StreamingUnpack::run, s.get());
    pthread_attr_destroy(&attr);
    if (e != 0) return Error::with_code(e, cat(what, ": start unpacker"));
    s->running_ = true;
    return s;
}

void *StreamingUnpack::run(void *self) {
    auto *s = static_cast<StreamingUnpack *>(self);
    auto stats = unpack_stream(s->read_fd_.get(), s->compression_, s->tmp_.rootfs_fd(), s->limits_);
    // The rest of the stream is not needed (an error, or bytes past the end
    // of the archive): closing makes a writer blocked in send() get EPIPE.
    s->read_fd_.reset();
    // Checked and synced here, while the download's side syncs the blob and
    // goes on with the next layer; only the rename waits for the digest.
    if (!stats) {
        s->result_.emplace(std::move(stats).error().wrap(cat("unpack layer ", s->layer_.digest.str())));
    } else {
        s->result_.emplace(s->tmp_.seal(s->layer_, *stats));
    }
    return nullptr;
}

void StreamingUnpack::end_stream() {
    write_fd_.reset();  // EOF for the unpacker
    if (running_) {
        pthread_join(thread_, nullptr);
        running_ = false;
    }
}

StreamingUnpack::~StreamingUnpack() { end_stream(); }

util::Status StreamingUnpack::feed(std::string_view data) {
    while (!data.empty() && write_fd_) {
        ssize_t n = ::send(write_fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            end_stream();  // the unpacker stopped reading: it has a result
            break;
        }
        if (n < 0) return Error::from_errno("pass the layer to the unpacker");
        data.remove_prefix(static_cast<size_t>(n));
    }
    if (!write_fd_ && result_ && !*result_)  // code 0: not a transfer error, never retried
        return Error::msg(result_->error().message());
    return util::ok();
}

util::Status StreamingUnpack::commit() {
    std::string what = cat("unpack layer ", layer_.digest.str());
    end_stream();
    if (!result_) return Error::msg(cat(what, ": the unpacker did not finish"));
    if (!*result_) return std::move(*result_).error();  // names the layer
    // Only bytes that became the verified blob may become a layer.
    if (!store_.has_blob(layer_.digest)) return Error::msg(cat(what, ": the blob was not verified and stored"));
    return tmp_.commit(layer_);
}

}  // namespace img
