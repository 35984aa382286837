// `berth image pull|push|sign|verify`: the registry side of the image group.
// Each command turns its options into a Registry (transport, auth, retries),
// a Policy and a Store, then makes one library call (image/pull.hpp,
// image/push.hpp, image/signature.hpp). Progress goes to stderr (a display
// on a terminal, JSON lines otherwise, see --progress); results (digests)
// go to stdout.
#include <unistd.h>

#include "commands.hpp"
#include "image/policy.hpp"
#include "image/progress.hpp"
#include "image/pull.hpp"
#include "image/push.hpp"
#include "image/reference.hpp"
#include "image/registry.hpp"
#include "image/signature.hpp"
#include "image/store.hpp"
#include "registry_flags.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

std::string root_of(const cli::GlobalOptions &g, const util::ParsedArgs &a) { return cli::device_root(g, a, true).store(); }

util::Result<img::Registry> open_registry(const img::Reference &ref, const util::ParsedArgs &a) {
    return img::Registry::open(img::registry_host(ref), TRY(registry_options(a)));
}

auto printer_note(img::ProgressPrinter &p) {
    return [&p](std::string_view e, std::string_view d) { p.note(e, d); };
}

util::Result<int> run_pull(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto ref = TRY(img::Reference::parse(a.positional[0]));
    std::string root = root_of(g, a);
    img::PullOptions po;
    if (auto p = a.get("platform")) po.platform = TRY(img::Platform::parse(*p));
    auto policy = TRY(load_policy(root, a));
    po.policy = &policy;
    po.unpack = !a.has("no-unpack");
    img::ProgressPrinter printer(2, TRY(progress_mode(a)));
    po.fetch.progress = printer.fn();
    po.note = printer_note(printer);
    auto store = TRY(img::Store::open(root));
    auto reg = TRY(open_registry(ref, a));
    auto res = TRY_CTX(img::pull_image(reg, store, ref, po), util::cat("pull ", util::quote(ref.str())));
    printer.note("pulled", util::cat(res.ref_name, " ", res.manifest.str(), ": ", res.blobs_fetched, " blobs fetched (",
                                     res.downloaded, " bytes, ", res.resumed_bytes, " resumed, ", res.drops, " drops), ",
                                     res.blobs_skipped, " already stored, ", res.manifest_bytes, " manifest bytes"));
    TRY(util::write_all(1, res.manifest.str() + "\n"));
    return 0;
}

util::Result<int> run_push(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    const std::string &src_arg = a.positional[0];
    const std::string &dst_arg = a.positional.size() > 1 ? a.positional[1] : a.positional[0];
    auto dest = TRY(img::Reference::parse(dst_arg));
    img::PushSource src;
    if (src_arg.starts_with("oci:")) {
        std::string rest = src_arg.substr(4), tag;
        if (auto colon = rest.rfind(':'); colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
            tag = rest.substr(colon + 1);
            rest.resize(colon);
        }
        src = TRY(img::layout_source(rest, tag));
    } else {
        auto store = TRY(img::Store::open(root_of(g, a)));
        auto sref = TRY(img::Reference::parse(src_arg));
        src = TRY(img::store_source(store, img::store_ref_name(sref)));
    }
    img::PushOptions po;
    if (auto c = a.get("chunk-size")) po.chunk = TRY(parse_size(*c, "chunk-size"));
    po.mount_from = a.get("mount-from").value_or("");
    img::ProgressPrinter printer(2, TRY(progress_mode(a)));
    po.note = printer_note(printer);
    auto reg = TRY(open_registry(dest, a));
    auto res = TRY(img::push_image(reg, src, dest, po));
    printer.note("pushed", util::cat(dest.str(), " ", res.top.str(), ": ", res.uploaded, " uploaded (", res.bytes, " bytes), ",
                                     res.mounted, " mounted, ", res.existing, " already there"));
    TRY(util::write_all(1, res.top.str() + "\n"));
    return 0;
}

/// The digest a reference names in its registry (HEAD; the digest itself when given).
util::Result<img::Digest> resolve_digest(img::Registry &reg, const img::Reference &ref) {
    if (ref.digest) return *ref.digest;
    auto head = TRY(reg.head_manifest(ref.repository, ref.tag));
    if (head && head->digest) return *head->digest;
    auto m = TRY(reg.get_manifest(ref.repository, ref.tag));
    if (!m) return util::Error::msg(util::cat("image ", util::quote(ref.str()), " not found"));
    return m->digest;
}

util::Result<int> run_sign(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    auto ref = TRY(img::Reference::parse(a.positional[0]));
    auto keyfile = a.get("key");
    if (!keyfile) return util::Error::msg("--key FILE (a PEM ECDSA P-256 private key) is required");
    auto key = TRY(util::read_file(*keyfile, 64 << 10));
    auto reg = TRY(open_registry(ref, a));
    auto digest = TRY(resolve_digest(reg, ref));
    std::string identity = a.get("identity").value_or(ref.tag.empty() ? ref.name() : ref.name() + ":" + ref.tag);
    auto signed_digests = TRY_CTX(img::sign_image_and_platforms(reg, ref.repository, digest, identity, key),
                                  util::cat("sign ", util::quote(ref.str())));
    for (const auto &d : signed_digests) TRY(util::write_all(1, util::cat(d.str(), " ", identity, "\n")));
    return 0;
}

util::Result<int> run_verify(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto ref = TRY(img::Reference::parse(a.positional[0]));
    img::Policy policy = TRY(load_policy(root_of(g, a), a));
    if (auto k = a.get("key")) {
        auto pem = TRY(util::read_file(*k, 64 << 10));
        auto b64 = img::base64_encode(pem);
        policy = TRY(img::Policy::parse(util::cat(R"({"default":[{"type":"sigstoreSigned","keyData":")", b64, R"("}]})"), "--key"));
    }
    auto reg = TRY(open_registry(ref, a));
    auto digest = TRY(resolve_digest(reg, ref));
    std::vector<img::Digest> alternates;
    auto m = TRY(reg.get_manifest(ref.repository, digest.str()));
    if (m && img::is_index_type(m->media_type)) {
        img::Platform plat = img::Platform::host();
        if (auto p = a.get("platform")) plat = TRY(img::Platform::parse(*p));
        auto idx = TRY(img::parse_index(m->body));
        if (auto d = img::select_platform(idx, plat)) alternates.push_back(d->digest);
    }
    auto decision = policy.lookup(ref);
    TRY(img::enforce_policy(reg, decision, ref, digest, alternates));
    TRY(util::write_all(1, util::cat("verified ", ref.str(), " ", digest.str(), " (policy scope ", decision.scope, ")\n")));
    return 0;
}

#define BERTH_TRANSPORT_OPTIONS                                                                                    \
    {"store", 0, true, "DIR", "the store: the device root (default /var/lib/berth)"},                             \
        {"root", 0, true, "DIR", "an older name of --store"},                                                     \
        {"creds", 0, true, "FILE", "registry credentials, docker config.json format"},                           \
        {"ca", 0, true, "FILE", "trust this PEM CA bundle for TLS"},                                              \
        {"pin", 0, true, "sha256//B64", "pin the server's public key"},                                           \
        {"insecure-http", 0, false, nullptr, "plain http (loopback registries fall back to it by themselves)"},  \
        {"limit-rate", 0, true, "BYTES", "receive at most BYTES/s (k, M suffixes)"},                              \
        {"timeout", 0, true, "SECONDS", "give up a manifest or blob after SECONDS, retries included (default 900; 0: never)"}, \
        {"speed-limit", 0, true, "BYTES", "a transfer under BYTES/s for --speed-time has stalled (default 1k; 0: never)"},  \
        {"speed-time", 0, true, "SECONDS", "see --speed-limit (default 30)"},                                      \
        {"progress", 0, true, "MODE", "auto (a display on a terminal, else JSON lines), human, json or none"},  \
        {"retries", 0, true, "N", "attempts without progress before giving up (default 8)"},                     \
        {"retry-delay-ms", 0, true, "MS", "first backoff delay (default 500, doubles, jittered)"},                \
        {"quiet", 'q', false, nullptr, "no progress output"}

const util::OptSpec kPullOptions[] = {
    BERTH_TRANSPORT_OPTIONS,
    {"platform", 0, true, "OS/ARCH[/VARIANT]", "platform to select from an index (default: this machine)"},
    {"policy", 0, true, "FILE", "trust policy (default <store>/policy.json, else keys in <store>/trust)"},
    {"no-unpack", 0, false, nullptr, "store the blobs but do not unpack the layers"},
};
const util::OptSpec kPushOptions[] = {
    BERTH_TRANSPORT_OPTIONS,
    {"chunk-size", 0, true, "BYTES", "upload in chunks of BYTES (default: monolithic)"},
    {"mount-from", 0, true, "REPO", "try cross-repository blob mounts from REPO"},
};
const util::OptSpec kSignOptions[] = {
    BERTH_TRANSPORT_OPTIONS,
    {"key", 0, true, "FILE", "PEM ECDSA P-256 private key"},
    {"identity", 0, true, "REF", "docker-reference to sign (default: the image reference)"},
};
const util::OptSpec kVerifyOptions[] = {
    BERTH_TRANSPORT_OPTIONS,
    {"platform", 0, true, "OS/ARCH[/VARIANT]", "platform whose manifest signatures also count"},
    {"policy", 0, true, "FILE", "trust policy (default <store>/policy.json, else keys in <store>/trust)"},
    {"key", 0, true, "FILE", "verify against this PEM public key instead of the policy"},
};

const cli::Command kCommands[] = {
    {"pull", "[OPTIONS] IMAGE", "pull, verify and unpack an image from a registry", kPullOptions, 1, 1, false, run_pull},
    {"push", "[OPTIONS] SOURCE [DEST]", "push a stored image or oci:DIR[:TAG] to a registry", kPushOptions, 1, 2, false, run_push},
    {"sign", "[OPTIONS] --key FILE IMAGE", "sign an image and, for an index, each of its manifests", kSignOptions, 1, 1, false,
     run_sign},
    {"verify", "[OPTIONS] IMAGE", "check an image's signatures in its registry against the policy", kVerifyOptions, 1, 1,
     false, run_verify},
};

}  // namespace

std::span<const cli::Command> image_remote_commands() { return kCommands; }

}  // namespace cmd
