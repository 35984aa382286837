// The device root: the one directory under which everything persistent
// lives (DESIGN.md, "Device state"): the image store, the containers of
// `berth run IMAGE`, volumes, app revisions and the trust root. Its default
// is written here only; commands take it from `--store` (docs/cli.md) and
// every layer asks DeviceRoot for a path instead of joining names itself.
// Ephemeral runtime state is elsewhere (/run/berth, runtime/state.hpp).
#pragma once

#include <string>
#include <string_view>

#include "util/file.hpp"

namespace util {

class DeviceRoot {
public:
    static constexpr std::string_view kDefault = "/var/lib/berth";

    explicit DeviceRoot(std::string dir = std::string(kDefault)) : dir_(std::move(dir)) {}

    const std::string &dir() const { return dir_; }
    /// The content store (blobs/, ingest/, layers/, refs/, signatures/,
    /// locks/) sits at the top of the root (docs/store.md).
    const std::string &store() const { return dir_; }
    /// Per-container bundles and writable layers: containers/<id>.
    std::string containers() const { return path_join(dir_, "containers"); }
    std::string container(std::string_view id) const { return path_join(containers(), id); }
    /// Persistent data no update, rollback or gc touches: volumes/<name>.
    std::string volumes() const { return path_join(dir_, "volumes"); }
    /// Applied update manifests and the current/previous/trying pointers.
    std::string revisions() const { return path_join(dir_, "revisions"); }
    /// The pinned public keys (trust/*.pub) of the default trust policy.
    std::string trust() const { return path_join(dir_, "trust"); }
    /// The operator's trust policy, used when --policy is not given.
    std::string policy() const { return path_join(dir_, "policy.json"); }

private:
    std::string dir_;
};

}  // namespace util
