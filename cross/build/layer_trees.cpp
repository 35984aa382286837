// Base layers' trees for a build: scratch first, the store's in a worker
// (see layer_trees.hpp).
#include "cross/build/layer_trees.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/unpack.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"

namespace build {
namespace {

using util::cat;
using util::Error;

/// The memory the kernel says is available (bytes); 0 when unknown.
uint64_t mem_available() {
    auto text = util::read_file("/proc/meminfo", 1 << 16);
    if (!text) return 0;
    for (const auto &line : util::split(*text, '\n')) {
        if (!line.starts_with("MemAvailable:")) continue;
        auto words = util::split(std::string(util::trim(line.substr(13))), ' ');
        if (auto kib = util::parse_int<uint64_t>(words.empty() ? "" : words[0])) return *kib * 1024;
    }
    return 0;
}

/// A guess of the layer's uncompressed size: gzip's trailer (the size
/// modulo 2^32), else five times the blob.
uint64_t expanded_size(const img::Store &store, const img::Descriptor &layer, img::Compression comp) {
    uint64_t blob = store.blob_size(layer.digest).value_or(0);
    if (comp == img::Compression::Gzip && blob >= 4) {
        if (auto fd = store.open_blob(layer.digest)) {
            unsigned char t[4];
            if (::pread(fd->get(), t, 4, off_t(blob - 4)) == 4) {
                uint64_t isize = t[0] | (uint64_t(t[1]) << 8) | (uint64_t(t[2]) << 16) | (uint64_t(t[3]) << 24);
                if (isize >= blob) return isize;
            }
        }
    }
    return blob * 5;
}

}  // namespace

bool mount_scratch(const std::string &dir) {
    if (!util::mkdir_p(dir, 0700)) return false;
    return ::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") == 0;
}

LayerTrees::~LayerTrees() {
    for (auto &w : workers_) {
        pid_t pid = w.child.pid();
        (void)w.child.kill(SIGKILL);
        (void)w.child.wait();
        (void)util::remove_tree(cat(store_.root(), "/layers/.tmp-", w.diff_hex, ".", pid));
    }
}

util::Status LayerTrees::need(const img::Descriptor &layer, const img::Digest &diff_id) {
    if (store_.has_layer(diff_id) || scratch_roots_.count(diff_id.str())) return util::ok();
    std::string what = cat("unpack layer ", layer.digest.str());
    auto comp = TRY_CTX(img::layer_compression(layer.media_type), what);
    uint64_t avail = mem_available();
    if (scratch_.empty() || avail == 0 || expanded_size(store_, layer, comp) > avail / 4)
        return img::unpack_layer(store_, layer, diff_id);

    // The store's copy, by a worker (a process: the build's RUN steps
    // clone the runtime's processes from this one, which must then hold no
    // lock of another thread), started first so that it has the other core
    // while this one extracts the scratch copy.
    TRY_CTX(util::failpoint("build.layer_worker"), what);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return Error::from_errno(cat(what, ": pipe"));
    util::UniqueFd rd(p[0]), wr(p[1]);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return Error::from_errno(cat(what, ": fork"));
    if (pid == 0) {
        util::become_worker_of(parent);
        rd.reset();
        auto st = img::unpack_layer(store_, layer, diff_id);
        if (!st) (void)util::write_all(wr.get(), st.error().message());
        ::_exit(st ? 0 : 1);
    }
    wr.reset();
    workers_.push_back(Worker{util::Child(pid), std::string(diff_id.hex()), std::move(rd)});

    std::string tree = cat(scratch_, "/", diff_id.hex());
    auto extracted = [&]() -> util::Status {
        TRY(util::mkdir_p(tree, 0755));
        auto dir = TRY(util::open_file(tree, O_RDONLY | O_DIRECTORY));
        auto in = TRY(store_.open_blob(layer.digest));
        auto stats = TRY(img::unpack_stream(in.get(), comp, dir.get()));
        if (!(stats.diff_id == diff_id))
            return Error::msg(cat("uncompressed content hashes to ", stats.diff_id.str(), ", the config says ", diff_id.str()));
        return util::ok();
    }();
    if (!extracted) {
        // The scratch filesystem full, say: the store's copy is then
        // waited for, and says what is really wrong, if anything.
        (void)util::remove_tree(tree);
        return finish();
    }
    scratch_roots_[diff_id.str()] = tree;
    return util::ok();
}

std::string LayerTrees::root(const img::Digest &diff_id) const {
    if (auto it = scratch_roots_.find(diff_id.str()); it != scratch_roots_.end() && !store_.has_layer(diff_id))
        return it->second;
    return cat(store_.layer_path(diff_id), "/rootfs");
}

util::Status LayerTrees::finish() {
    std::optional<util::Error> first;
    for (auto &w : workers_) {
        auto code = w.child.wait();
        std::string said = util::read_all(w.err.get(), 1 << 16).value_or("");
        if (!first && (!code || *code != 0))
            first = Error::msg(said.empty() ? cat("unpack layer ", w.diff_hex, ": the worker failed") : said);
    }
    workers_.clear();
    if (first) return *first;
    return util::ok();
}

}  // namespace build
