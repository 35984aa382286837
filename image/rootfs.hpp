// Rootfs assembly for a container: overlayfs over the image's unpacked
// layers plus a per-container upper and work directory, or, where the
// kernel has no overlayfs, a flattened copy of the layers (applying the
// whiteout markers unpack.cpp stored) bind-mounted on itself. Either mount
// is nodev: no device node of an image opens in the container (its devices
// are in the /dev tmpfs the runtime fills from config.json). Writes the
// bundle's config.json, and records in containers/<id>/image.json which
// layers it uses so gc keeps them.
//
//   containers/<id>/rootfs      the mount point (overlay) or the copy
//   containers/<id>/upper,work  overlay's writable layer
//   containers/<id>/config.json the OCI runtime config (runtime/ runs the bundle)
#pragma once

#include <string>

#include "image/config.hpp"
#include "image/image.hpp"
#include "image/store.hpp"

namespace img {

enum class RootfsMode { Auto, Overlay, Flatten };

/// True when the kernel lists overlay in /proc/filesystems and a test mount
/// under `scratch_dir` succeeds (needs CAP_SYS_ADMIN). Cached per process.
bool overlay_available(const std::string &scratch_dir);

struct Bundle {
    std::string dir;     ///< containers/<id>
    std::string rootfs;  ///< dir + "/rootfs"
    bool overlay = false;
};

/// Creates containers/<id> with the rootfs (layers must be unpacked) and
/// config.json. An existing bundle for `id` is an error.
util::Result<Bundle> create_bundle(Store &store, const std::string &id, const StoredImage &image, RootfsMode mode,
                                   RuntimeConfigOptions opts);

/// Mounts the rootfs of the existing bundle containers/<id> again when it
/// is not mounted (mounts do not survive a reboot): the overlay over the
/// layers its image.json records, or the flattened copy bind-mounted nodev.
/// A mounted one is left as it is.
util::Status mount_bundle(Store &store, const std::string &id);

/// Unmounts and removes containers/<id> (volumes are never touched).
util::Status remove_bundle(Store &store, const std::string &id);

/// Copies the layer tree `src_dir` onto `dst_dir`, applying its overlay
/// whiteout markers (0/0 devices delete, opaque directories are emptied first).
util::Status apply_layer_copy(int src_dir, int dst_dir);

}  // namespace img
