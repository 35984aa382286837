// Staging an app revision: every container of the revision becomes a bundle
// (rootfs + config.json) under <device root>/containers/<container_id>,
// through img::stage_bundle (image pulled or found under the trust policy,
// verified, unpacked), with the manifest's overrides, resources, devices,
// capabilities, network and named volumes in its config.json. The running
// revision is not touched: nothing here stops or starts anything.
//
// All or nothing: when one container fails, the bundles this call made are
// removed and the error names the container and what was wrong ("stage
// `web`: ..."). Host devices the manifest names are stat'ed before anything
// is made. Named volumes are created when missing (owned as the image's
// directory at their path, else as the container's user) and never
// touched again, emptied or removed here; image volumes (VOLUME) live at volumes/<name>_<path>, as
// for `berth run --name`.
//
// Bundles already there for an id are kept (a revision staged again, a
// rollback target) when complete -- config.json is the last thing written --
// and of the same document (berth.revision.digest); a partial one is rebuilt.
// A complete bundle of another document with the same version is an error,
// never reused nor replaced here (it might be running): the updater removes
// the bundles of a revision it rolled back (remove_revision_bundles), since
// a fixed document may come back with that version (the minimum rises only
// at COMMIT).
//
// Faults: a full disk (or any error) while staging removes, on the way out,
// the bundles, new image volumes and notify directories this call made; the
// running revision's bundles are never touched. A crash (power cut, kill -9)
// in the middle leaves what this call had made so far: bundles of the
// staging revision, complete or partial. The daemon, resuming with a
// staging revision in the updater's state, calls remove_revision_bundles of
// that revision before anything else (and stage_revision again if it goes
// on with it); unpacked layers and blobs no bundle uses are the store gc's.
// Mounts do not survive a reboot, nor does the run directory (a tmpfs):
// stage_revision mounts a kept bundle's rootfs again (img::mount_bundle)
// and makes its notify directory again, so staging the committed or the
// previous revision after a boot makes it ready to start; a daemon starting
// bundles without staging them first must do both itself.
#pragma once

#include <functional>
#include <string>

#include "image/manifest.hpp"
#include "image/policy.hpp"
#include "image/registry.hpp"
#include "image/store.hpp"
#include "ota/manifest.hpp"
#include "util/device_root.hpp"
#include "util/result.hpp"

namespace ota {

struct StageContext {
    util::DeviceRoot root;
    const img::Policy *policy = nullptr;  ///< required
    img::Platform platform = img::Platform::host();
    std::function<util::Result<img::Registry>(const img::Reference &)> open_registry;
    std::function<void(std::string_view event, std::string_view detail)> note;
    /// Optional: the bytes of the images' blobs on disk so far in this call
    /// (every container's together, a resumed download's earlier bytes
    /// included), called as they arrive.
    std::function<void(uint64_t bytes)> on_bytes;
    /// The daemon's runtime directory (/run/berth): a container with a
    /// `ready` health check gets notify_dir(run_dir, id) bind-mounted at
    /// /run/berth-notify and NOTIFY_SOCKET=/run/berth-notify/notify.sock.
    std::string run_dir = "/run/berth";
};

/// The host directory holding the notify socket of container `id`.
std::string notify_dir(std::string_view run_dir, std::string_view id);
inline constexpr const char *kNotifySocketInContainer = "/run/berth-notify/notify.sock";

/// The annotations of a staged revision's config.json.
inline constexpr const char *kRevisionAnnotation = "berth.revision";  ///< the version
inline constexpr const char *kAppAnnotation = "berth.app";            ///< the container's name
inline constexpr const char *kRevisionDigestAnnotation = "berth.revision.digest";  ///< the document's digest

/// Stages every container of `rev`. Bundles that already exist for an id
/// (a revision staged before, a rollback target) are kept as they are.
util::Status stage_revision(const Revision &rev, const StageContext &ctx);
/// Removes the bundles of `rev` (their rootfs mounts and writable layers);
/// volumes stay. Missing bundles are fine.
util::Status remove_revision_bundles(const Revision &rev, const util::DeviceRoot &root);

}  // namespace ota
