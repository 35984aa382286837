// The content store: blobs by digest, resumable ingest files, refs and the
// locks that let two processes write the same store (see store.hpp).
//
// Every file is written through util::AtomicFile (temporary, fsync, rename,
// fsync the directory): a blob is hashed before its temporary is committed
// under blobs/sha256/, under the blob's flock, and a downloaded one is its
// resumable ingest file committed the same way; a ref is one small JSON file
// replaced by util::atomic_write_file. Nothing is ever edited in place, so
// a power cut at any instant leaves the old or the new state.
#include "image/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "image/dynlibs.hpp"
#include "util/dir.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/flock.hpp"
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

}  // namespace

util::Result<Store> Store::open(const std::string &root) {
    if (root.empty()) return Error::msg("store root is empty");
    // Every image command opens the store first: a missing library stops it
    // here, in one line, before anything is written.
    TRY(dynlibs::load_local());
    util::DeviceRoot dev(root);
    std::vector<std::string> dirs = {dev.containers(), dev.volumes()};
    for (const char *sub : {"blobs/sha256", "ingest", "layers", "refs", "locks"}) dirs.push_back(util::path_join(root, sub));
    for (const auto &dir : dirs) TRY_CTX(util::mkdir_p(dir, 0700), cat("open store ", quote(root)));
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
    return put_blob_with(d, [&](util::AtomicFile &f) -> util::Status {
        TRY(util::failpoint("store.put.write"));
        return f.write(data);
    });
}

util::Status Store::put_blob_fd(const Digest &d, int in) { return put_blob_fd(d, in, nullptr); }

util::Status Store::put_blob_fd(const Digest &d, int in, const std::function<util::Status(std::string_view)> &each) {
    return put_blob_with(d, [&](util::AtomicFile &f) -> util::Status {
        auto got = TRY(Digest::of_fd(in, [&](std::string_view chunk) -> util::Status {
            TRY(util::failpoint("store.put.write"));
            if (each) TRY(each(chunk));
            return f.write(chunk);
        }));
        if (!(got == d)) return Error::msg(cat("content hashes to ", got.str()));
        return util::ok();
    });
}

util::Status Store::put_blob_with(const Digest &d, const std::function<util::Status(util::AtomicFile &)> &fill) {
    std::string what = cat("store blob ", d.str());
    auto shared = TRY_CTX(lock_shared(), what);
    auto lock = TRY_CTX(lock_blob(d), what);
    if (has_blob(d)) return util::ok();
    // A temporary beside the blob (fsck removes a stale one); gone unless committed.
    auto file = TRY_CTX(util::AtomicFile::create(blob_path(d)), what);
    TRY_CTX(fill(file), what);
    TRY_CTX(util::failpoint("store.put.rename"), what);
    return file.commit().context(what);
}

std::string Store::ingest_path(const Digest &d) const { return cat(root_, "/ingest/", d.hex()); }
std::string Store::ingest_state_path(const Digest &d) const { return cat(root_, "/ingest/", d.hex(), ".state"); }

util::Result<util::UniqueFd> Store::lock_blob(const Digest &d) const {
    return util::lock_file(cat(root_, "/ingest/", d.hex(), ".lock"), LOCK_EX);
}

util::Result<util::AtomicFile> Store::open_ingest(const Digest &d) const {
    std::string what = cat("partial blob ", d.str());
    auto ingest = TRY_CTX(util::open_file(cat(root_, "/ingest"), O_RDONLY | O_DIRECTORY), what);
    auto blobs = TRY_CTX(util::open_file(cat(root_, "/blobs/sha256"), O_RDONLY | O_DIRECTORY), what);
    std::string hex(d.hex());
    return util::AtomicFile::resume_at(ingest.get(), hex, blobs.get(), hex).context(what);
}

util::Status Store::commit_ingest(const Digest &d, uint64_t size, bool verified) {
    std::string what = cat("commit blob ", d.str());
    // open_ingest creates a missing partial; there is nothing to commit then.
    if (!util::path_exists(ingest_path(d))) return Error::with_code(ENOENT, cat(what, ": no partial download"));
    auto partial = TRY_CTX(open_ingest(d), what);
    return commit_ingest(partial, d, size, verified);
}

util::Status Store::commit_ingest(util::AtomicFile &partial, const Digest &d, uint64_t size, bool verified) {
    std::string what = cat("commit blob ", d.str());
    struct stat st;
    if (::fstat(partial.fd(), &st) < 0) return Error::from_errno(cat(what, ": stat"));
    if (static_cast<uint64_t>(st.st_size) != size)
        return Error::msg(cat(what, ": size is ", st.st_size, ", expected ", size));
    if (!verified) {
        if (::lseek(partial.fd(), 0, SEEK_SET) < 0) return Error::from_errno(cat(what, ": seek"));
        Digest got = TRY_CTX(Digest::of_fd(partial.fd()), what);
        if (!(got == d)) return Error::msg(cat(what, ": content hashes to ", got.str()));
    }
    TRY_CTX(util::failpoint("store.commit.rename"), what);
    TRY_CTX(partial.commit(), what);
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
    for (const auto &n : TRY(util::list_dir(cat(root_, "/blobs/sha256"))))
        if (auto d = Digest::parse(cat("sha256:", n)); d) out.push_back(*d);
    return out;
}

util::Result<util::UniqueFd> Store::lock_shared() const { return util::lock_file(cat(root_, "/locks/store"), LOCK_SH); }
util::Result<util::UniqueFd> Store::lock_exclusive() const { return util::lock_file(cat(root_, "/locks/store"), LOCK_EX); }

std::string Store::signature_record_path(const Digest &manifest) const {
    return cat(root_, "/signatures/", manifest.hex(), ".json");
}

std::string Store::layer_path(const Digest &diff_id) const { return cat(root_, "/layers/", diff_id.hex()); }

bool Store::has_layer(const Digest &diff_id) const {
    struct stat st;
    return ::lstat(cat(layer_path(diff_id), "/rootfs").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

util::Result<util::UniqueFd> Store::lock_layer(const Digest &diff_id) const {
    return util::lock_file(cat(root_, "/locks/layer-", diff_id.hex()), LOCK_EX);
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
    std::vector<std::string> files;
    for (auto &n : TRY(util::list_dir(dir)))
        if (!n.starts_with(util::kTempPrefix)) files.push_back(std::move(n));
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
