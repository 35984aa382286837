// Reproducible layers (see layer.hpp). The tar is written here, header by
// header, rather than through libarchive's writer, so that every byte is
// ours to fix: ustar headers with empty user and group names, a PAX record
// (under one fixed name) only for what ustar cannot hold (long names and
// link targets, large ids and sizes, xattrs), entries in byte order of
// their paths, mtimes clamped to the epoch. zlib's deflate at level 6
// writes the gzip wrapper with no file name and a zero time.
#include "cross/build/layer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace build {
namespace {

using util::cat;
using util::Error;

constexpr int kGzipLevel = 6;
constexpr size_t kBlock = 512;

struct Entry {
    std::string path;  ///< relative, no leading "./", no trailing '/'
    struct stat st;
};

/// Every entry under `dirfd`, depth first, not following symlinks.
util::Status walk(int dirfd, const std::string &prefix, std::vector<Entry> &out) {
    auto dir = TRY(util::Dir::of_fd(dirfd));
    while (const dirent *de = TRY(dir.next())) {
        Entry e;
        e.path = prefix.empty() ? std::string(de->d_name) : cat(prefix, "/", de->d_name);
        if (fstatat(dirfd, de->d_name, &e.st, AT_SYMLINK_NOFOLLOW) != 0)
            return Error::from_errno(cat("stat ", util::quote(e.path)));
        bool is_dir = S_ISDIR(e.st.st_mode);
        out.push_back(e);
        if (is_dir) {
            util::UniqueFd sub(openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!sub) return Error::from_errno(cat("open ", util::quote(e.path)));
            TRY(walk(sub.get(), e.path, out));
        }
    }
    return util::ok();
}

/// The xattrs a layer keeps: file capabilities and user.* (but not overlay's own).
util::Result<std::vector<std::pair<std::string, std::string>>> xattrs(int dirfd, const std::string &path) {
    std::vector<std::pair<std::string, std::string>> out;
    std::string proc = cat("/proc/self/fd/", dirfd, "/", path);
    char names[4096];
    ssize_t n = llistxattr(proc.c_str(), names, sizeof names);
    if (n < 0) {
        if (errno == ENOTSUP || errno == ENODATA) return out;
        return Error::from_errno(cat("list xattrs of ", util::quote(path)));
    }
    for (ssize_t i = 0; i < n;) {
        std::string name(names + i);
        i += ssize_t(name.size()) + 1;
        bool keep = name == "security.capability" || (name.rfind("user.", 0) == 0 && name.rfind("user.overlay.", 0) != 0);
        if (!keep) continue;
        char value[4096];
        ssize_t vn = lgetxattr(proc.c_str(), name.c_str(), value, sizeof value);
        if (vn < 0) return Error::from_errno(cat("read xattr ", name, " of ", util::quote(path)));
        out.emplace_back(name, std::string(value, size_t(vn)));
    }
    std::sort(out.begin(), out.end());
    return out;
}

/// Writes `v` as `width - 1` octal digits and a NUL; false when it does not fit.
bool put_octal(char *field, size_t width, uint64_t v) {
    std::string digits;
    do {
        digits.insert(digits.begin(), char('0' + (v & 7)));
        v >>= 3;
    } while (v);
    if (digits.size() > width - 1) return false;
    std::string padded(width - 1 - digits.size(), '0');
    padded += digits;
    memcpy(field, padded.data(), width - 1);
    field[width - 1] = 0;
    return true;
}

/// One PAX record: "<len> key=value\n", the length counting itself.
std::string pax_record(std::string_view key, std::string_view value) {
    size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
    size_t len = body + 1;
    while (cat(len).size() + body != len) len = cat(len).size() + body;
    return cat(len, " ", key, "=", value, "\n");
}

struct Header {
    std::string name, linkname;
    uint32_t mode = 0;
    uint64_t uid = 0, gid = 0, size = 0;
    int64_t mtime = 0;
    char type = '0';
    uint32_t devmajor = 0, devminor = 0;
};

/// The 512-byte ustar header of `h`; what does not fit goes into `pax`.
std::string ustar(const Header &h, std::string &pax) {
    std::string b(kBlock, '\0');
    char *p = b.data();
    if (h.name.size() <= 100) {
        memcpy(p, h.name.data(), h.name.size());
    } else {
        pax += pax_record("path", h.name);
        memcpy(p, h.name.data(), 100);
    }
    put_octal(p + 100, 8, h.mode & 07777);
    if (!put_octal(p + 108, 8, h.uid)) pax += pax_record("uid", cat(h.uid)), put_octal(p + 108, 8, 0);
    if (!put_octal(p + 116, 8, h.gid)) pax += pax_record("gid", cat(h.gid)), put_octal(p + 116, 8, 0);
    if (!put_octal(p + 124, 12, h.size)) pax += pax_record("size", cat(h.size)), put_octal(p + 124, 12, 0);
    put_octal(p + 136, 12, uint64_t(std::max<int64_t>(h.mtime, 0)));
    p[156] = h.type;
    if (h.linkname.size() <= 100) {
        memcpy(p + 157, h.linkname.data(), h.linkname.size());
    } else {
        pax += pax_record("linkpath", h.linkname);
        memcpy(p + 157, h.linkname.data(), 100);
    }
    memcpy(p + 257, "ustar", 6);
    memcpy(p + 263, "00", 2);
    put_octal(p + 329, 8, h.devmajor);
    put_octal(p + 337, 8, h.devminor);
    return b;
}

void checksum(std::string &b) {
    memset(b.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : b) sum += c;
    put_octal(b.data() + 148, 7, sum);
    b[155] = ' ';
}

/// The tar stream, compressed and hashed as it is written.
class LayerWriter {
public:
    explicit LayerWriter(int out_fd) : out_(out_fd) {}
    ~LayerWriter() {
        if (started_) deflateEnd(&z_);
    }

    util::Status start() {
        memset(&z_, 0, sizeof z_);
        // 15 + 16: a gzip wrapper; zlib writes it with no name and time 0.
        if (deflateInit2(&z_, kGzipLevel, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return Error::msg("gzip: deflateInit2 failed");
        started_ = true;
        return util::ok();
    }

    util::Status tar(std::string_view data) {
        tar_hash_.update(data);
        tar_bytes_ += data.size();
        return deflate_some(data, Z_NO_FLUSH);
    }

    util::Status finish() {
        TRY(tar(std::string(2 * kBlock, '\0')));
        return deflate_some({}, Z_FINISH);
    }

    img::Digest diff_id() { return tar_hash_.finish(); }
    img::Digest digest() { return gz_hash_.finish(); }
    uint64_t size() const { return gz_bytes_; }

private:
    util::Status deflate_some(std::string_view data, int flush) {
        z_.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data()));
        z_.avail_in = uInt(data.size());
        char buf[65536];
        for (;;) {
            z_.next_out = reinterpret_cast<Bytef *>(buf);
            z_.avail_out = sizeof buf;
            int rc = deflate(&z_, flush);
            if (rc == Z_STREAM_ERROR) return Error::msg("gzip: deflate failed");
            size_t have = sizeof buf - z_.avail_out;
            if (have) {
                gz_hash_.update(buf, have);
                gz_bytes_ += have;
                TRY_CTX(util::write_all(out_, std::string_view(buf, have)), "write layer");
            }
            if (flush == Z_FINISH ? rc == Z_STREAM_END : z_.avail_in == 0 && z_.avail_out != 0) break;
        }
        return util::ok();
    }

    int out_;
    z_stream z_{};
    bool started_ = false;
    img::Sha256 tar_hash_, gz_hash_;
    uint64_t tar_bytes_ = 0, gz_bytes_ = 0;
};

util::Status write_entry(LayerWriter &w, int rootfd, const Entry &e, int64_t epoch,
                         std::map<std::pair<dev_t, ino_t>, std::string> &links) {
    Header h;
    const struct stat &st = e.st;
    h.name = e.path;
    h.mode = st.st_mode & 07777;
    h.uid = st.st_uid;
    h.gid = st.st_gid;
    h.mtime = std::min<int64_t>(st.st_mtime, epoch);
    bool data = false;
    if (S_ISDIR(st.st_mode)) {
        h.type = '5';
        h.name += '/';
    } else if (S_ISREG(st.st_mode)) {
        auto key = std::make_pair(st.st_dev, st.st_ino);
        auto seen = st.st_nlink > 1 ? links.find(key) : links.end();
        if (seen != links.end()) {
            h.type = '1';
            h.linkname = seen->second;
        } else {
            if (st.st_nlink > 1) links[key] = e.path;
            h.type = '0';
            h.size = uint64_t(st.st_size);
            data = true;
        }
    } else if (S_ISLNK(st.st_mode)) {
        h.type = '2';
        std::string target(size_t(st.st_size) + 1, '\0');
        ssize_t n = readlinkat(rootfd, e.path.c_str(), target.data(), target.size());
        if (n < 0) return Error::from_errno(cat("readlink ", util::quote(e.path)));
        target.resize(size_t(n));
        h.linkname = target;
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        h.type = S_ISCHR(st.st_mode) ? '3' : '4';
        h.devmajor = major(st.st_rdev);
        h.devminor = minor(st.st_rdev);
    } else if (S_ISFIFO(st.st_mode)) {
        h.type = '6';
    } else {
        return util::ok();  // sockets have no place in a layer
    }
    std::string pax;
    std::string header = ustar(h, pax);
    for (const auto &[name, value] : TRY(xattrs(rootfd, e.path))) pax += pax_record(cat("SCHILY.xattr.", name), value);
    if (!pax.empty()) {
        Header ph;
        ph.name = "././@PaxHeader";
        ph.mode = 0644;
        ph.size = pax.size();
        ph.type = 'x';
        std::string unused;
        std::string phb = ustar(ph, unused);
        checksum(phb);
        TRY(w.tar(phb));
        pax.resize((pax.size() + kBlock - 1) / kBlock * kBlock, '\0');
        TRY(w.tar(pax));
    }
    checksum(header);
    TRY(w.tar(header));
    if (!data) return util::ok();
    auto fd = TRY(util::open_at(rootfd, e.path, O_RDONLY | O_NOFOLLOW));
    uint64_t left = h.size;
    char buf[65536];
    while (left > 0) {
        ssize_t n = read(fd.get(), buf, std::min<uint64_t>(sizeof buf, left));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::from_errno(cat("read ", util::quote(e.path)));
        if (n == 0) return Error::msg(cat(util::quote(e.path), " changed while it was written into the layer"));
        TRY(w.tar(std::string_view(buf, size_t(n))));
        left -= uint64_t(n);
    }
    if (size_t pad = h.size % kBlock) TRY(w.tar(std::string(kBlock - pad, '\0')));
    return util::ok();
}

}  // namespace

util::Result<LayerBlob> write_layer(img::Store &store, const std::string &tree_dir, int64_t epoch) {
    auto root = TRY(util::open_file(tree_dir, O_RDONLY | O_DIRECTORY));
    std::vector<Entry> entries;
    TRY_CTX(walk(root.get(), "", entries), cat("layer of ", util::quote(tree_dir)));
    std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) { return a.path < b.path; });
    // The compressed blob goes to an unnamed file in the store's filesystem,
    // then into the store (which hashes it again on the way in).
    util::UniqueFd tmp(open(store.root().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!tmp) return Error::from_errno(cat("create a temporary file in ", util::quote(store.root())));
    LayerWriter w(tmp.get());
    TRY(w.start());
    std::map<std::pair<dev_t, ino_t>, std::string> links;
    for (const Entry &e : entries) TRY_CTX(write_entry(w, root.get(), e, epoch, links), cat("layer of ", util::quote(tree_dir)));
    TRY(w.finish());
    LayerBlob out;
    out.diff_id = w.diff_id();
    out.digest = w.digest();
    out.size = w.size();
    if (lseek(tmp.get(), 0, SEEK_SET) != 0) return Error::from_errno("rewind the layer");
    TRY_CTX(store.put_blob_fd(out.digest, tmp.get()), "store the layer");
    return out;
}

}  // namespace build
