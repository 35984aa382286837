// The content store under --root (default /var/lib/berth).
//
//   blobs/sha256/<hex>        manifests, configs and layers, verified before they land
//   ingest/<hex>              partial downloads (+ <hex>.state: offset and hash state), resumable
//   layers/<hex>/rootfs       extracted layers (by diff_id), read-only, shared between images
//   layers/.tmp-<hex>.<pid>   a layer being unpacked; renamed into place only when complete
//   locks/                    flock files: store (shared by writers, exclusive for gc/fsck), layer-<hex>
//   refs/<escaped name>       name -> manifest digest (JSON)
//   signatures/<hex>.json     the signatures that admitted manifest <hex> (written
//                             by pull and `berth run IMAGE`), dropped by gc with the manifest
//
// docs/store.md describes the layout and its formats for operators.
//   containers/<id>/          per-container writable layer and bundle
//   volumes/<name>/           persistent data no update or rollback touches
//
// Every change is a rename of a finished temporary (util::atomic_write_file
// or a rename of a verified ingest file), so a power cut leaves the store
// consistent: at worst a stale temporary that fsck removes. Writers take a
// per-blob flock so two pulls of the same blob do not collide.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "image/digest.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace img {

class Store {
public:
    /// Opens (creating the directories) the store at `root`.
    static util::Result<Store> open(const std::string &root);

    const std::string &root() const { return root_; }
    bool has_blob(const Digest &d) const;
    std::string blob_path(const Digest &d) const;
    util::Result<std::string> read_blob(const Digest &d, size_t limit = 64 << 20) const;
    /// Stores `data` after checking that it hashes to `d`.
    util::Status put_blob(const Digest &d, std::string_view data);

    /// The ingest area for partial downloads of `d`: the data file path and
    /// its resume-state file path (the registry client owns their content).
    std::string ingest_path(const Digest &d) const;
    std::string ingest_state_path(const Digest &d) const;
    /// Takes the exclusive per-blob lock (flock on ingest/<hex>.lock); held
    /// while the returned fd is open. Blocks until another writer finishes.
    util::Result<util::UniqueFd> lock_blob(const Digest &d) const;
    /// Moves a fully downloaded ingest file into blobs/ after checking its
    /// size and (when `verified` is false) hashing it again. Removes the
    /// state file. The caller holds lock_blob(d).
    util::Status commit_ingest(const Digest &d, uint64_t size, bool verified);

    /// Stores the content read from `fd` (to EOF) after checking that it
    /// hashes to `d`; streams, so a layer never sits in memory.
    util::Status put_blob_fd(const Digest &d, int fd);
    /// Opens a stored blob for reading (streaming unpack).
    util::Result<util::UniqueFd> open_blob(const Digest &d) const;
    /// Size of a stored blob.
    util::Result<uint64_t> blob_size(const Digest &d) const;
    /// Removes a blob (gc, fsck). The caller holds lock_blob(d) or lock_exclusive().
    util::Status remove_blob(const Digest &d);
    /// Every stored blob's digest (files in blobs/sha256 that name a digest).
    util::Result<std::vector<Digest>> list_blobs() const;

    /// Store-wide lock: writers (pull, import, run) hold it shared so gc and
    /// fsck, which hold it exclusive, never delete what is being written.
    util::Result<util::UniqueFd> lock_shared() const;
    util::Result<util::UniqueFd> lock_exclusive() const;

    /// Extracted layers, by diff_id: layers/<hex> (the rootfs is layers/<hex>/rootfs).
    std::string layer_path(const Digest &diff_id) const;
    bool has_layer(const Digest &diff_id) const;
    /// Exclusive lock for unpacking one layer (locks/layer-<hex>).
    util::Result<util::UniqueFd> lock_layer(const Digest &diff_id) const;

    /// Name references ("localhost:5000/app:1.0" -> manifest digest).
    util::Status set_ref(const std::string &name, const Digest &manifest);
    util::Result<std::optional<Digest>> get_ref(const std::string &name) const;
    util::Status remove_ref(const std::string &name);
    util::Result<std::vector<std::pair<std::string, Digest>>> list_refs() const;

    /// The signature record of a manifest: signatures/<hex>.json.
    std::string signature_record_path(const Digest &manifest) const;

private:
    explicit Store(std::string root) : root_(std::move(root)) {}
    std::string root_;
};

}  // namespace img
