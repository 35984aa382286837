// A stored revision that today's parser refuses: its manifest file was
// accepted by the berth that stored it, and a later berth's parser is
// stricter (a field retired, a check added). The updater cannot run such
// a revision, but must still be able to stop its containers and remove its
// bundles, or it would be stuck with it: a clean-up that fails on it every
// time, or a committed revision that can neither start nor be left.
#pragma once

#include <cstdint>

#include "ota/manifest.hpp"
#include "util/device_root.hpp"

namespace ota {

/// What can still be told of stored revision `version` without parsing it
/// as a manifest: the container names in its JSON's "containers" (when it
/// is JSON at all) and those of the bundles <name>.r<version> under the
/// device root. Only the version and the containers' names are set: enough
/// for Apps::stop and Apps::remove (container_id), never for a start.
Revision revision_to_clean_up(const util::DeviceRoot &root, uint64_t version);

}  // namespace ota
