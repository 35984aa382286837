// Store checking and repair (see fsck.hpp).
#include "image/fsck.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "image/image.hpp"
#include "image/store_scan.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using scan::hex_digest;
using scan::list_dir;
using scan::lock_busy;

using util::cat;
using util::Error;
using util::quote;

}  // namespace

util::Result<FsckReport> fsck(Store &store, bool repair) {
    auto lock = TRY_CTX(store.lock_exclusive(), "fsck");
    FsckReport rep;
    const std::string &root = store.root();
    auto problem = [&](std::string msg, const std::string &remove_path) {
        if (repair && !remove_path.empty()) {
            if (util::remove_tree(remove_path)) {
                msg += " (removed)";
                ++rep.repaired;
            } else {
                msg += " (could not remove)";
            }
        }
        rep.problems.push_back(std::move(msg));
    };

    // ingest/: partial downloads are kept only with their resume state.
    std::string ingest = root + "/ingest";
    auto names = list_dir(ingest);
    for (const auto &n : names) {
        std::string p = ingest + "/" + n;
        std::string hex = n.substr(0, n.find('.'));
        if (n.ends_with(".lock")) continue;
        if (hex_digest(hex) && lock_busy(cat(ingest, "/", hex, ".lock"))) continue;  // being written now
        if (n.starts_with(util::kTempPrefix) || n.ends_with(".put") || n.starts_with(".import-")) {
            problem(cat("stale temporary ", quote("ingest/" + n)), p);
        } else if (n.ends_with(".state")) {
            if (!util::path_exists(cat(ingest, "/", hex))) problem(cat("resume state without data ", quote("ingest/" + n)), p);
        } else if (hex_digest(n)) {
            struct stat st;
            if (::stat(cat(p, ".state").c_str(), &st) < 0 || st.st_size == 0)
                problem(cat("partial download without resume state ", quote("ingest/" + n)), p);
        } else {
            problem(cat("unknown file ", quote("ingest/" + n)), p);
        }
    }

    // blobs/: every file is named by its digest and hashes to it.
    std::string blobs = root + "/blobs/sha256";
    for (const auto &n : list_dir(blobs)) {
        std::string p = blobs + "/" + n;
        auto d = hex_digest(n);
        if (n.starts_with(util::kTempPrefix)) {  // a put cut short (store.cpp)
            problem(cat("stale temporary ", quote("blobs/sha256/" + n)), p);
            continue;
        }
        if (!d) {
            problem(cat("stray file ", quote("blobs/sha256/" + n)), p);
            continue;
        }
        ++rep.blobs_checked;
        auto fd = util::open_file(p, O_RDONLY);
        if (!fd) {
            problem(cat("blob ", d->str(), ": ", fd.error().message()), p);
            continue;
        }
        auto got = Digest::of_fd(fd->get());
        if (!got || !(*got == *d))
            problem(cat("corrupted blob ", d->str(), " (", got ? cat("content hashes to ", got->str()) : got.error().message(), ")"), p);
    }

    // layers/: complete layers only (a rootfs and a layer.json naming the directory's diff_id).
    std::string layers = root + "/layers";
    for (const auto &n : list_dir(layers)) {
        std::string p = layers + "/" + n;
        if (n.starts_with(".tmp-")) {
            std::string hex = n.substr(5, 64);
            if (lock_busy(cat(root, "/locks/layer-", hex))) continue;
            problem(cat("unfinished layer ", quote("layers/" + n)), p);
            continue;
        }
        auto d = hex_digest(n);
        if (!d) {
            problem(cat("stray entry ", quote("layers/" + n)), p);
            continue;
        }
        ++rep.layers_checked;
        auto meta = util::read_file(p + "/layer.json", 1 << 16);
        bool ok = meta && store.has_layer(*d);
        if (ok) {
            auto v = util::json::parse(*meta, "layer.json");
            ok = v && v->is_object() && v->contains("diffID") && (*v)["diffID"].is_string() &&
                 (*v)["diffID"].get<std::string>() == d->str();
        }
        if (!ok) problem(cat("incomplete layer ", d->str()), p);
    }

    // signatures/: records named <manifest hex>.json, of a stored manifest.
    std::string sigs = root + "/signatures";
    for (const auto &n : list_dir(sigs)) {
        std::string p = sigs + "/" + n;
        if (n.starts_with(util::kTempPrefix)) {
            problem(cat("stale temporary ", quote("signatures/" + n)), p);
            continue;
        }
        auto d = n.ends_with(".json") ? hex_digest(std::string_view(n).substr(0, n.size() - 5)) : std::nullopt;
        if (!d) {
            problem(cat("stray entry ", quote("signatures/" + n)), p);
            continue;
        }
        auto text = util::read_file(p, 4 << 20);
        auto v = text ? util::json::parse(*text, n) : util::Result<util::json::Value>(Error::msg("unreadable"));
        if (!v || !v->is_object()) {
            problem(cat("unreadable signature record ", quote("signatures/" + n)), p);
        } else if (!store.has_blob(*d)) {
            problem(cat("signature record of a manifest not in the store ", quote("signatures/" + n)), p);
        }
    }

    // refs/: each names a manifest that is present and complete.
    std::string refs = root + "/refs";
    for (const auto &n : list_dir(refs)) {
        std::string p = refs + "/" + n;
        if (n.starts_with(util::kTempPrefix)) {
            problem(cat("stale temporary ", quote("refs/" + n)), p);
            continue;
        }
        ++rep.refs_checked;
        auto text = util::read_file(p, 1 << 16);
        auto v = text ? util::json::parse(*text, n) : util::Result<util::json::Value>(Error::msg("unreadable"));
        std::optional<Digest> d;
        std::string name = n;
        if (v && v->is_object()) {
            if (auto s = util::json::req_string(*v, "digest", n); s)
                if (auto pd = Digest::parse(*s); pd) d = *pd;
            if (auto s = util::json::req_string(*v, "name", n); s) name = *s;
        }
        if (!d) {
            problem(cat("unreadable ref ", quote("refs/" + n)), p);
            continue;
        }
        auto img = load_image(store, *d, Platform::host(), true);
        if (!img) problem(cat("ref ", quote(name), ": ", img.error().message()), p);
    }
    return rep;
}

}  // namespace img
