// Builds tar layers in memory for tests with libarchive's writer, which
// writes whatever path, link target or size it is given: the hostile
// fixtures are made by the tests themselves.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "image/manifest.hpp"

class TarBuilder {
public:
    explicit TarBuilder(img::Compression c = img::Compression::None) : a_(archive_write_new()) {
        archive_write_set_format_pax_restricted(a_);
        if (c == img::Compression::Gzip) archive_write_add_filter_gzip(a_);
        if (c == img::Compression::Zstd) archive_write_add_filter_zstd(a_);
        archive_write_set_bytes_in_last_block(a_, 1);
        if (archive_write_open(a_, this, nullptr, write_cb, nullptr) != ARCHIVE_OK)
            throw std::runtime_error(archive_error_string(a_));
    }
    ~TarBuilder() {
        if (a_) archive_write_free(a_);
    }

    struct Opts {
        Opts(unsigned m = 0644, long u = 0, long g = 0, long t = 1700000000,
             std::vector<std::pair<std::string, std::string>> x = {})
            : mode(m), uid(u), gid(g), mtime(t), xattrs(std::move(x)) {}
        unsigned mode;
        long uid, gid;
        long mtime;
        std::vector<std::pair<std::string, std::string>> xattrs;
    };

    TarBuilder &file(const std::string &path, const std::string &data, Opts o = Opts()) {
        return add(path, AE_IFREG, o, data, "", "", 0, 0, static_cast<int64_t>(data.size()));
    }
    TarBuilder &dir(const std::string &path, Opts o = Opts(0755)) { return add(path, AE_IFDIR, o, "", "", "", 0, 0, 0); }
    TarBuilder &symlink(const std::string &path, const std::string &target) {
        return add(path, AE_IFLNK, Opts(0777), "", target, "", 0, 0, 0);
    }
    TarBuilder &hardlink(const std::string &path, const std::string &target) {
        return add(path, AE_IFREG, Opts(), "", "", target, 0, 0, 0);
    }
    TarBuilder &chardev(const std::string &path, unsigned maj, unsigned min) {
        return add(path, AE_IFCHR, Opts(0600), "", "", "", maj, min, 0);
    }
    TarBuilder &blockdev(const std::string &path, unsigned maj, unsigned min) {
        return add(path, AE_IFBLK, Opts(0600), "", "", "", maj, min, 0);
    }
    TarBuilder &fifo(const std::string &path) { return add(path, AE_IFIFO, Opts(0644), "", "", "", 0, 0, 0); }

    std::string finish() {
        archive_write_close(a_);
        archive_write_free(a_);
        a_ = nullptr;
        return std::move(out_);
    }

    /// Rewrites the size field of the ustar header at `off` of a plain tar
    /// (and its checksum): a header that lies about the size.
    static void patch_size(std::string &tar, size_t off, unsigned long long size) {
        char field[13];
        snprintf(field, sizeof field, "%011llo", size);
        tar.replace(off + 124, 12, std::string(field, 11) + '\0');
        tar.replace(off + 148, 8, "        ");
        unsigned sum = 0;
        for (size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(tar[off + i]);
        char ck[9];
        snprintf(ck, sizeof ck, "%06o", sum);
        tar.replace(off + 148, 8, std::string(ck, 6) + '\0' + ' ');
    }

private:
    TarBuilder &add(const std::string &path, unsigned type, const Opts &o, const std::string &data, const std::string &symlink,
                    const std::string &hardlink, unsigned maj, unsigned min, int64_t size) {
        archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, path.c_str());
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, o.mode);
        archive_entry_set_uid(e, o.uid);
        archive_entry_set_gid(e, o.gid);
        archive_entry_set_mtime(e, o.mtime, 0);
        archive_entry_set_size(e, size);
        if (!symlink.empty()) archive_entry_set_symlink(e, symlink.c_str());
        if (!hardlink.empty()) {
            archive_entry_set_hardlink(e, hardlink.c_str());
            archive_entry_set_size(e, 0);
        }
        if (type == AE_IFCHR || type == AE_IFBLK) {
            archive_entry_set_rdevmajor(e, maj);
            archive_entry_set_rdevminor(e, min);
        }
        for (const auto &[k, v] : o.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
        if (archive_write_header(a_, e) != ARCHIVE_OK) throw std::runtime_error(archive_error_string(a_));
        if (!data.empty()) archive_write_data(a_, data.data(), data.size());
        archive_entry_free(e);
        return *this;
    }
    static la_ssize_t write_cb(archive *, void *self, const void *buf, size_t len) {
        static_cast<TarBuilder *>(self)->out_.append(static_cast<const char *>(buf), len);
        return static_cast<la_ssize_t>(len);
    }
    archive *a_;
    std::string out_;
};
