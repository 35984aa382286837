// The trust check made on a stored image before any of its layers is
// unpacked or run (by stage_bundle, stage.hpp): the same policy as `berth image pull`
// (docs/policy.md), applied again at every run, so an image that entered
// the store another way (`berth image import`, or a pull under an older
// policy) runs only if the policy in force accepts it.
//
// Signatures are looked for first in the store's signature record
// (image/signature_record.hpp: written by `berth image pull` and by this
// check), then in the image's registry; the ones that satisfied the policy
// are recorded, so a signed image keeps running on a device that is
// offline. They are verified again, under the keys of the policy in force,
// at every run.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "image/digest.hpp"
#include "image/policy.hpp"
#include "image/reference.hpp"
#include "image/registry.hpp"
#include "image/store.hpp"
#include "util/result.hpp"

namespace img {

struct TrustCheck {
    Reference ref;              ///< the name the image runs as (what the policy and signatures name)
    Digest manifest;            ///< the platform manifest the store's ref names
    std::optional<Digest> top;  ///< the index `manifest` was selected from, when known
    /// Opens the image's registry; called only when signatures are needed and none stored verify.
    std::function<util::Result<Registry *>()> registry;
};

/// Fails when the policy rejects `ref` whatever its signatures (a `reject`
/// requirement, the device default without keys): checked before a pull.
util::Status check_not_rejected(const Policy &policy, const Reference &ref);

/// Checks `c` against `policy`. Returns how it was accepted (for a log
/// line); the error names the policy scope and why the image is refused.
util::Result<std::string> check_trust(const Store &store, const Policy &policy, const TrustCheck &c);

}  // namespace img
