// The trust policy: which keys must have signed which images, in the format
// of containers-policy.json(5) (docs/policy.md lists what berth leaves out):
//
//   {"default": [{"type": "reject"}],
//    "transports": {"docker": {
//        "registry.example:5000/app": [{"type": "sigstoreSigned", "keyPath": "/etc/berth/app.pub",
//                                       "signedIdentity": {"type": "matchRepository"}}],
//        "registry.example:5000":     [{"type": "insecureAcceptAnything"}]}}}
//
// Parsing is as strict as upstream's and stricter where berth lacks a
// feature: an unknown, duplicated or unsupported key (Rekor, Fulcio, PKI,
// GPG) makes the whole policy invalid, never silently weaker. Every image
// berth handles, pulled or imported, is looked up in the `docker`
// transport by its name; the scopes of upstream's other transports are
// checked for syntax and never apply. The most specific scope wins: the
// image itself (`host/repo@sha256:...`, `host/repo:tag`), the repository,
// each parent namespace, the registry host[:port], `*.domain` wildcards
// from the longest, the transport's "" entry, then "default". Every
// requirement of the chosen list must hold. With no policy file the device
// default applies: images must be sigstore-signed by one of the keys pinned
// under <root>/trust/*.pub, and with no such keys nothing is accepted.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "image/reference.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace img {

/// signedIdentity: what a signature's docker-reference must say.
enum class IdentityMatch { RepoDigestOrExact, Exact, Repository, ExactReference, ExactRepository, RemapIdentity };

struct Requirement {
    enum class Type { AcceptAnything, Reject, SigstoreSigned } type = Type::Reject;
    std::vector<std::string> keys_pem;  ///< SigstoreSigned: public keys (PEM), any one may sign
    IdentityMatch identity = IdentityMatch::RepoDigestOrExact;
    std::string identity_value;  ///< ExactReference / ExactRepository: the reference or repository
    std::string prefix;          ///< RemapIdentity: replaced in the image's name ...
    std::string signed_prefix;   ///< ... by this before matching as RepoDigestOrExact
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
    std::map<std::string, std::vector<Requirement>> scopes_;  ///< docker transport; "" is its default
};

/// The docker-transport scopes that can apply to `ref`, most specific first
/// (containers-policy.json(5)), ending with "" (the transport default).
std::vector<std::string> docker_scopes(const Reference &ref);

/// Does a signature's `docker-reference` satisfy `req`'s identity rule for
/// an image pulled as `pulled`? The error says why not.
util::Status match_identity(const Requirement &req, const Reference &pulled, std::string_view signed_reference);

}  // namespace img
