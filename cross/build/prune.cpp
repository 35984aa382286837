// The build cache's garbage collection (see prune.hpp).
#include "cross/build/prune.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <vector>

#include "image/fsck.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace build {
namespace {

using util::cat;
using util::Error;

struct Entry {
    std::string name;
    int64_t used = 0;  ///< mtime: the last hit
    std::string blob;  ///< "sha256:..."
    std::string layer_hex;
    uint64_t size = 0;
};

std::vector<std::string> names_in(const std::string &dir) { return util::list_dir(dir).value_or(std::vector<std::string>{}); }

util::Result<uint64_t> scaled(std::string_view s, const char *units, const uint64_t *factors, size_t n, const char *what) {
    uint64_t factor = 1;
    if (!s.empty())
        for (size_t i = 0; i < n; i++)
            if (s.back() == units[i]) {
                factor = factors[i];
                s.remove_suffix(1);
                break;
            }
    auto v = util::parse_int<uint64_t>(s);
    if (!v || *v > UINT64_MAX / factor) return Error::msg(cat("not ", what, ": ", util::quote(s)));
    return *v * factor;
}

}  // namespace

util::Result<uint64_t> parse_size(std::string_view s) {
    static const uint64_t f[] = {1024, uint64_t(1) << 20, uint64_t(1) << 30, uint64_t(1) << 40};
    return scaled(s, "KMGT", f, 4, "a size (512K, 100M, 2G)");
}

util::Result<PruneReport> prune(img::Store &store, const PruneOptions &o, int64_t now) {
    auto lock = TRY_CTX(store.lock_exclusive(), "prune");
    PruneReport rep;
    std::string cache = cat(store.root(), "/build-cache");
    std::vector<Entry> entries;
    for (const auto &n : names_in(cache)) {
        if (n.starts_with(".")) continue;  // a temporary of atomic_write_file
        Entry e;
        e.name = n;
        struct stat st;
        if (::stat(cat(cache, "/", n).c_str(), &st) == 0) e.used = st.st_mtim.tv_sec;
        if (auto text = util::read_file(cat(cache, "/", n), 1 << 16))
            if (auto v = util::json::parse(*text, "cache entry"); v && v->is_object()) {
                e.blob = v->value("digest", "");
                if (auto id = img::Digest::parse(v->value("diff_id", ""))) e.layer_hex = std::string(id->hex());
                e.size = uint64_t(std::max<int64_t>(0, v->value("size", int64_t(0))));
            }
        entries.push_back(std::move(e));
    }
    std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) { return a.used > b.used; });
    bool everything = !o.keep_bytes && !o.unused_for_s;
    uint64_t kept_bytes = 0;
    std::vector<Entry> removed;
    img::InUse use = TRY_CTX(img::in_use(store), "prune");
    for (auto &e : entries) {
        bool stale = o.unused_for_s && now - e.used > *o.unused_for_s;
        bool over = o.keep_bytes && kept_bytes + e.size > *o.keep_bytes;
        if (everything || stale || over) {
            if (::unlink(cat(cache, "/", e.name).c_str()) < 0 && errno != ENOENT)
                return Error::from_errno(cat("prune: remove cache entry ", e.name));
            ++rep.entries_removed;
            removed.push_back(std::move(e));
            continue;
        }
        kept_bytes += e.size;
        ++rep.entries_kept;
        use.blobs.insert(e.blob);
        use.layers.insert(e.layer_hex);
    }
    std::set<std::string> blobs_gone;
    for (const auto &e : removed) {
        if (auto d = img::Digest::parse(e.blob); d && !use.blobs.count(e.blob) && blobs_gone.insert(e.blob).second &&
                                                 store.has_blob(*d)) {
            rep.bytes_freed += store.blob_size(*d).value_or(0);
            TRY_CTX(store.remove_blob(*d), "prune");
            ++rep.blobs_removed;
        }
        if (!e.layer_hex.empty() && !use.layers.count(e.layer_hex) && util::path_exists(cat(store.root(), "/layers/", e.layer_hex))) {
            TRY_CTX(util::remove_tree(cat(store.root(), "/layers/", e.layer_hex)), "prune");
            use.layers.insert(e.layer_hex);  // once
            ++rep.layers_removed;
        }
    }
    if (rep.blobs_removed) TRY_CTX(util::fsync_dir(store.root() + "/blobs/sha256"), "prune");
    // RUN --mount=type=cache directories: by their last use too.
    std::string mounts = cat(store.root(), "/build-cache-mounts");
    for (const auto &n : names_in(mounts)) {
        struct stat st;
        std::string p = cat(mounts, "/", n);
        if (::stat(p.c_str(), &st) < 0) continue;
        if (!everything && !(o.unused_for_s && now - st.st_mtim.tv_sec > *o.unused_for_s)) continue;
        TRY_CTX(util::remove_tree(p), "prune");
        ++rep.cache_mounts_removed;
    }
    // Every build holds the lock shared: what is in build-tmp now was left by a killed one.
    std::string tmp = cat(store.root(), "/build-tmp");
    for (const auto &n : names_in(tmp)) {
        TRY_CTX(util::remove_tree(cat(tmp, "/", n)), "prune");
        ++rep.scratch_removed;
    }
    return rep;
}

}  // namespace build
