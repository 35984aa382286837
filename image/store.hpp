// The content store at the top of the device root (util::DeviceRoot,
// default /var/lib/berth):
//
//   blobs/sha256/<hex>        manifests, configs and layers, verified before they land
//   blobs/sha256/.berth-tmp-* a blob being written (util::AtomicFile); removed unless committed
//   ingest/<hex>              partial downloads (+ <hex>.state: offset and hash state), resumable
//   layers/<hex>/rootfs       extracted layers (by diff_id), read-only, shared between images
//   layers/.tmp-<hex>.<pid>   a layer being unpacked; renamed into place only when complete
//   locks/                    flock files: store (shared by writers, exclusive for gc/fsck), layer-<hex>
//   refs/<escaped name>       name -> manifest digest (JSON)
//   signatures/<hex>.json     the signatures that admitted manifest <hex> (written
//                             by pull and `berth run IMAGE`), dropped by gc with the manifest
//
// Beside them, the device root's other parts (util::DeviceRoot):
//   containers/<id>/          per-container writable layer and bundle
//   volumes/<name>/           persistent data no update or rollback touches
// docs/store.md describes the layout and its formats for operators.
//
// Every file is written through util::AtomicFile or util::atomic_write_file
// (temporary, fsync, rename, fsync the directory; a downloaded blob is its
// resumable ingest file committed the same way), so a power cut leaves the
// store consistent: at worst a stale temporary that fsck removes. Writers
// take a per-blob flock so two pulls of the same blob do not collide.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "image/digest.hpp"
#include "util/device_root.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/result.hpp"

namespace img {

class Store {
public:
    /// Opens (creating the directories) the store at `root`.
    static util::Result<Store> open(const std::string &root);

    const std::string &root() const { return root_; }
    /// The device root the store is the top of: containers, volumes, trust.
    util::DeviceRoot device() const { return util::DeviceRoot(root_); }
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
    /// The partial download of `d` (ingest/<hex>, created when missing) as
    /// a resumable util::AtomicFile whose commit makes it blobs/sha256/<hex>;
    /// kept when dropped uncommitted. The caller holds lock_blob(d).
    util::Result<util::AtomicFile> open_ingest(const Digest &d) const;
    /// Commits a fully downloaded ingest file into blobs/ after checking its
    /// size and (when `verified` is false) hashing it again. Removes the
    /// state file. The caller holds lock_blob(d).
    util::Status commit_ingest(util::AtomicFile &partial, const Digest &d, uint64_t size, bool verified);
    /// Same, opening ingest/<hex> first (ENOENT when there is none).
    util::Status commit_ingest(const Digest &d, uint64_t size, bool verified);

    /// Stores the content read from `fd` (to EOF) after checking that it
    /// hashes to `d`; streams, so a layer never sits in memory.
    util::Status put_blob_fd(const Digest &d, int fd);
    /// Same, passing every chunk to `each` as it is read (a one-pass import
    /// feeds a StreamingUnpack); nothing is read when the blob is stored.
    util::Status put_blob_fd(const Digest &d, int fd, const std::function<util::Status(std::string_view)> &each);
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
    /// Writes blob `d` through `fill` into an AtomicFile and commits it,
    /// under the store's shared lock and the blob's lock; nothing when stored.
    util::Status put_blob_with(const Digest &d, const std::function<util::Status(util::AtomicFile &)> &fill);
    std::string root_;
};

}  // namespace img
