// The trust policy: which keys must have signed which images, modelled on
// containers-policy.json (docs/policy.md):
//
//   {"default": [{"type": "reject"}],
//    "transports": {"docker": {
//        "registry.example:5000/app": [{"type": "sigstoreSigned", "keyPath": "/etc/berth/app.pub",
//                                       "signedIdentity": {"type": "matchRepository"}}],
//        "registry.example:5000":     [{"type": "insecureAcceptAnything"}]}}}
//
// The most specific scope wins: the full repository, then each parent
// namespace, then the registry host, then "*.domain" wildcards, then the
// transport's "" entry, then "default". Every requirement of the chosen
// list must hold. With no policy file the device default applies: images
// must be sigstore-signed by one of the keys pinned under <root>/trust/*.pub,
// and with no such keys nothing is accepted: nothing unsigned ever runs.
#pragma once

#include <string>
#include <vector>

#include "image/reference.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace img {

enum class IdentityMatch { RepoDigestOrExact, Repository, ExactReference, ExactRepository };

struct Requirement {
    enum class Type { AcceptAnything, Reject, SigstoreSigned } type = Type::Reject;
    std::vector<std::string> keys_pem;  ///< SigstoreSigned: public keys (PEM), any one may sign
    IdentityMatch identity = IdentityMatch::RepoDigestOrExact;
    std::string identity_value;  ///< ExactReference / ExactRepository: the reference or repository
};

struct PolicyDecision {
    std::string scope;  ///< which scope matched ("default" for the default)
    std::vector<Requirement> requirements;
};

class Policy {
public:
    static util::Result<Policy> load(const std::string &path);
    /// `base_dir` resolves relative keyPath entries.
    static util::Result<Policy> parse(std::string_view json, std::string_view what, const std::string &base_dir = "");
    /// The device default: sigstoreSigned by any key in `trust_dir`/*.pub; reject if there is none.
    static util::Result<Policy> device_default(const std::string &trust_dir);

    /// The requirements for an image of `ref`.
    PolicyDecision lookup(const Reference &ref) const;

private:
    std::vector<Requirement> default_;
    std::vector<std::pair<std::string, std::vector<Requirement>>> scopes_;  ///< docker transport
    bool has_transport_default_ = false;
    std::vector<Requirement> transport_default_;
};

/// Does a signature's `docker-reference` satisfy `req`'s identity rule for
/// an image pulled as `pulled`? The error says why not.
util::Status match_identity(const Requirement &req, const Reference &pulled, std::string_view signed_reference);

}  // namespace img
