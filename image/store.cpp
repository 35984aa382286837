// The content store: blobs by digest, resumable ingest files, refs and the
// locks that let two processes write the same store (see store.hpp).
//
// Every blob enters blobs/sha256/ by a rename of a file that was hashed and
// fsynced first, under the blob's flock; a ref is one small JSON file
// replaced by util::atomic_write_file. Nothing is ever edited in place, so
// a power cut at any instant leaves the old or the new state.
#include "image/store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "image/dynlibs.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using util::cat;
using util::Error;
using util::quote;

/// Ref names become file names: '%', '/', ':' and '@' are %-escaped.
std::string escape_ref(std::string_view name) {
    std::string out;
    for (char c : name) {
        if (c == '%' || c == '/' || c == ':' || c == '@') {
            static const char hex[] = "0123456789ABCDEF";
            out += '%';
            out += hex[(static_cast<unsigned char>(c) >> 4) & 15];
            out += hex[static_cast<unsigned char>(c) & 15];
        } else {
            out += c;
        }
    }
    return out;
}

util::Result<util::UniqueFd> take_flock(const std::string &path, int op) {
    auto fd = TRY(util::open_file(path, O_RDWR | O_CREAT, 0600));
    while (::flock(fd.get(), op) < 0) {
        if (errno == EINTR) continue;
        return Error::from_errno(cat("lock ", quote(path)));
    }
    return fd;
}

util::Status hash_fd(int fd, Sha256 &h) {
    std::string buf(1 << 16, '\0');
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error::from_errno("read");
        }
        if (n == 0) return util::ok();
        h.update(buf.data(), static_cast<size_t>(n));
    }
}

}  // namespace

util::Result<Store> Store::open(const std::string &root) {
    if (root.empty()) return Error::msg("store root is empty");
    // Every image command opens the store first: a missing library stops it
    // here, in one line, before anything is written.
    TRY(dynlibs::load_local());
    for (const char *sub : {"", "blobs", "blobs/sha256", "ingest", "layers", "refs", "containers", "volumes", "locks"})
        TRY_CTX(util::mkdir_p(util::path_join(root, sub), 0700), cat("open store ", quote(root)));
    return Store(root);
}

std::string Store::blob_path(const Digest &d) const { return cat(root_, "/blobs/sha256/", d.hex()); }

bool Store::has_blob(const Digest &d) const {
    struct stat st;
    return ::stat(blob_path(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

util::Result<std::string> Store::read_blob(const Digest &d, size_t limit) const {
    return util::read_file(blob_path(d), limit).context(cat("read blob ", d.str()));
}

util::Result<util::UniqueFd> Store::open_blob(const Digest &d) const {
    return util::open_file(blob_path(d), O_RDONLY).context(cat("open blob ", d.str()));
}

util::Result<uint64_t> Store::blob_size(const Digest &d) const {
    struct stat st;
    if (::stat(blob_path(d).c_str(), &st) < 0) return Error::from_errno(cat("stat blob ", d.str()));
    return static_cast<uint64_t>(st.st_size);
}

util::Status Store::put_blob(const Digest &d, std::string_view data) {
    std::string what = cat("store blob ", d.str());
    Digest got = Digest::of(data);
    if (!(got == d)) return Error::msg(cat(what, ": content hashes to ", got.str()));
    auto shared = TRY_CTX(lock_shared(), what);
    auto lock = TRY_CTX(lock_blob(d), what);
    if (has_blob(d)) return util::ok();
    // Written as an ingest file (fsck knows those) and renamed into blobs/.
    std::string tmp = cat(root_, "/ingest/", d.hex(), ".put");
    {
        auto fd = TRY_CTX(util::open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644), what);
        TRY_CTX(util::failpoint("store.put.write"), what);
        TRY_CTX(util::write_all(fd.get(), data), what);
        if (::fsync(fd.get()) < 0) return Error::from_errno(cat(what, ": fsync"));
    }
    TRY_CTX(util::failpoint("store.put.rename"), what);
    if (::rename(tmp.c_str(), blob_path(d).c_str()) < 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return Error::with_code(e, cat(what, ": rename"));
    }
    return util::fsync_dir(cat(root_, "/blobs/sha256")).context(what);
}

util::Status Store::put_blob_fd(const Digest &d, int in) {
    std::string what = cat("store blob ", d.str());
    auto shared = TRY_CTX(lock_shared(), what);
    auto lock = TRY_CTX(lock_blob(d), what);
    if (has_blob(d)) return util::ok();
    std::string tmp = cat(root_, "/ingest/", d.hex(), ".put");
    util::ScopeGuard cleanup([&] { ::unlink(tmp.c_str()); });
    {
        auto fd = TRY_CTX(util::open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644), what);
        Sha256 h;
        std::string buf(1 << 17, '\0');
        for (;;) {
            ssize_t n = ::read(in, buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return Error::from_errno(cat(what, ": read"));
            if (n == 0) break;
            h.update(buf.data(), static_cast<size_t>(n));
            TRY_CTX(util::failpoint("store.put.write"), what);
            TRY_CTX(util::write_all(fd.get(), std::string_view(buf.data(), static_cast<size_t>(n))), what);
        }
        Digest got = h.finish();
        if (!(got == d)) return Error::msg(cat(what, ": content hashes to ", got.str()));
        if (::fsync(fd.get()) < 0) return Error::from_errno(cat(what, ": fsync"));
    }
    TRY_CTX(util::failpoint("store.put.rename"), what);
    if (::rename(tmp.c_str(), blob_path(d).c_str()) < 0) return Error::from_errno(cat(what, ": rename"));
    cleanup.dismiss();
    return util::fsync_dir(cat(root_, "/blobs/sha256")).context(what);
}

std::string Store::ingest_path(const Digest &d) const { return cat(root_, "/ingest/", d.hex()); }
std::string Store::ingest_state_path(const Digest &d) const { return cat(root_, "/ingest/", d.hex(), ".state"); }

util::Result<util::UniqueFd> Store::lock_blob(const Digest &d) const {
    return take_flock(cat(root_, "/ingest/", d.hex(), ".lock"), LOCK_EX);
}

util::Status Store::commit_ingest(const Digest &d, uint64_t size, bool verified) {
    std::string what = cat("commit blob ", d.str());
    std::string path = ingest_path(d);
    auto fd = TRY_CTX(util::open_file(path, O_RDONLY), what);
    struct stat st;
    if (::fstat(fd.get(), &st) < 0) return Error::from_errno(cat(what, ": stat"));
    if (static_cast<uint64_t>(st.st_size) != size)
        return Error::msg(cat(what, ": size is ", st.st_size, ", expected ", size));
    if (!verified) {
        Sha256 h;
        TRY_CTX(hash_fd(fd.get(), h), what);
        Digest got = h.finish();
        if (!(got == d)) return Error::msg(cat(what, ": content hashes to ", got.str()));
    }
    if (::fsync(fd.get()) < 0) return Error::from_errno(cat(what, ": fsync"));
    TRY_CTX(util::failpoint("store.commit.rename"), what);
    if (::rename(path.c_str(), blob_path(d).c_str()) < 0) return Error::from_errno(cat(what, ": rename"));
    TRY_CTX(util::fsync_dir(cat(root_, "/blobs/sha256")), what);
    if (::unlink(ingest_state_path(d).c_str()) < 0 && errno != ENOENT)
        return Error::from_errno(cat(what, ": remove state file"));
    return util::ok();
}

util::Status Store::remove_blob(const Digest &d) {
    if (::unlink(blob_path(d).c_str()) < 0 && errno != ENOENT) return Error::from_errno(cat("remove blob ", d.str()));
    return util::ok();
}

util::Result<std::vector<Digest>> Store::list_blobs() const {
    std::vector<Digest> out;
    std::string dir = cat(root_, "/blobs/sha256");
    DIR *dp = ::opendir(dir.c_str());
    if (!dp) return Error::from_errno(cat("list ", quote(dir)));
    while (auto *e = ::readdir(dp)) {
        auto d = Digest::parse(cat("sha256:", e->d_name));
        if (d) out.push_back(*d);
    }
    ::closedir(dp);
    std::sort(out.begin(), out.end());
    return out;
}

util::Result<util::UniqueFd> Store::lock_shared() const { return take_flock(cat(root_, "/locks/store"), LOCK_SH); }
util::Result<util::UniqueFd> Store::lock_exclusive() const { return take_flock(cat(root_, "/locks/store"), LOCK_EX); }

std::string Store::signature_record_path(const Digest &manifest) const {
    return cat(root_, "/signatures/", manifest.hex(), ".json");
}

std::string Store::layer_path(const Digest &diff_id) const { return cat(root_, "/layers/", diff_id.hex()); }

bool Store::has_layer(const Digest &diff_id) const {
    struct stat st;
    return ::lstat(cat(layer_path(diff_id), "/rootfs").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

util::Result<util::UniqueFd> Store::lock_layer(const Digest &diff_id) const {
    return take_flock(cat(root_, "/locks/layer-", diff_id.hex()), LOCK_EX);
}

util::Status Store::set_ref(const std::string &name, const Digest &manifest) {
    if (name.empty()) return Error::msg("set ref: empty name");
    util::json::Value v = util::json::Value::object();
    v["name"] = name;
    v["digest"] = manifest.str();
    return util::atomic_write_file(cat(root_, "/refs/", escape_ref(name)), util::json::dump(v) + "\n")
        .context(cat("set ref ", quote(name)));
}

util::Result<std::optional<Digest>> Store::get_ref(const std::string &name) const {
    std::string what = cat("ref ", quote(name));
    auto text = util::read_file(cat(root_, "/refs/", escape_ref(name)), 1 << 16);
    if (!text) {
        if (text.error().code == ENOENT) return std::optional<Digest>{};
        return std::move(text).error().wrap(what);
    }
    auto v = TRY_CTX(util::json::parse(*text, "ref"), what);
    TRY_CTX(util::json::expect_object(v, "ref"), what);
    auto ds = TRY_CTX(util::json::req_string(v, "digest", ""), what);
    auto d = TRY_CTX(Digest::parse(ds), what);
    return std::optional<Digest>(d);
}

util::Status Store::remove_ref(const std::string &name) {
    std::string path = cat(root_, "/refs/", escape_ref(name));
    if (::unlink(path.c_str()) < 0) {
        if (errno == ENOENT) return Error::with_code(ENOENT, cat("remove ref ", quote(name), ": no such image"));
        return Error::from_errno(cat("remove ref ", quote(name)));
    }
    return util::fsync_dir(cat(root_, "/refs")).context(cat("remove ref ", quote(name)));
}

util::Result<std::vector<std::pair<std::string, Digest>>> Store::list_refs() const {
    std::vector<std::pair<std::string, Digest>> out;
    std::string dir = cat(root_, "/refs");
    DIR *dp = ::opendir(dir.c_str());
    if (!dp) return Error::from_errno(cat("list ", quote(dir)));
    std::vector<std::string> files;
    while (auto *e = ::readdir(dp)) {
        std::string_view n = e->d_name;
        if (n == "." || n == ".." || n.starts_with(util::kTempPrefix)) continue;
        files.emplace_back(n);
    }
    ::closedir(dp);
    for (const auto &f : files) {
        auto text = util::read_file(cat(dir, "/", f), 1 << 16);
        if (!text) continue;  // removed meanwhile
        auto v = util::json::parse(*text, f);
        if (!v || !v->is_object()) continue;  // fsck reports these
        auto name = util::json::req_string(*v, "name", f);
        auto ds = util::json::req_string(*v, "digest", f);
        if (!name || !ds) continue;
        auto d = Digest::parse(*ds);
        if (!d) continue;
        out.emplace_back(*name, *d);
    }
    std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
    return out;
}

}  // namespace img
