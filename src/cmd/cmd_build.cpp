// `berth build [OPTIONS] CONTEXT`: a Containerfile into an image in the
// store (cross/build/builder.hpp; docs/build.md). Glue only: the options
// become build::BuildOptions, RUN steps go to the runner of build_run.hpp,
// base images the store lacks are pulled under the trust policy (as
// `berth image pull` does), and with --push each tag goes to its registry
// (as `berth image push` does), signed with --sign-key (as `berth image
// sign` does). The top digest (the manifest, or the index for several
// platforms) goes to stdout; the steps go to stderr. `berth build prune`
// cleans the build cache (cross/build/prune.hpp).
#include <time.h>
#include <unistd.h>

#include "build_run.hpp"
#include "commands.hpp"
#include "cross/build/builder.hpp"
#include "cross/build/image_config.hpp"
#include "cross/build/prune.hpp"
#include "image/pull.hpp"
#include "image/push.hpp"
#include "image/registry.hpp"
#include "image/signature.hpp"
#include "image/store.hpp"
#include "registry_flags.hpp"
#include "util/file.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

using util::cat;
using util::Error;
using util::quote;

util::Result<img::Registry> open_registry(const img::Reference &ref, const util::ParsedArgs &a) {
    return img::Registry::open(img::registry_host(ref), TRY(registry_options(a)));
}

std::string absolute(const std::string &p) {
    if (!p.empty() && p.front() == '/') return p;
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return p;
    return util::path_join(cwd, p);
}

/// --output type=oci,dest=DIR -> DIR.
util::Result<std::string> oci_output(const std::string &spec) {
    std::string type, dest;
    for (const auto &kv : util::split(spec, ',')) {
        size_t eq = kv.find('=');
        std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
        if (k == "type") type = v;
        else if (k == "dest") dest = v;
        else return Error::msg(cat("--output: unknown key ", quote(k)));
    }
    if (type != "oci") return Error::msg(cat("--output: only type=oci is supported, not ", quote(type)));
    if (dest.empty()) return Error::msg("--output type=oci needs dest=DIR");
    return absolute(dest);
}

/// Pushes the built image under `tag` and, with a key, signs it there.
util::Status push_tag(const img::Store &store, const std::string &tag, const util::ParsedArgs &a) {
    auto ref = TRY_CTX(img::Reference::parse(tag), cat("--push ", quote(tag), " (a tag with its registry)"));
    auto src = TRY(img::store_source(store, img::store_ref_name(ref)));
    auto reg = TRY(open_registry(ref, a));
    auto pushed = TRY_CTX(img::push_image(reg, src, ref, {}), cat("push ", quote(ref.str())));
    if (auto keyfile = a.get("sign-key")) {
        auto key = TRY(util::read_file(*keyfile, 64 << 10));
        std::string identity = ref.tag.empty() ? ref.name() : ref.name() + ":" + ref.tag;
        TRY_CTX(img::sign_image_and_platforms(reg, ref.repository, pushed.top, identity, key), cat("sign ", quote(ref.str())));
    }
    return util::ok();
}

/// `berth build prune [--all] [--keep-storage SIZE] [--until DURATION]`.
util::Result<int> run_prune(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    for (const char *k : {"file", "tag", "platform", "build-arg", "target", "no-cache", "timestamp", "output", "push", "sign-key"})
        if (a.has(k)) return Error::msg(cat("--", k, " is not an option of berth build prune"));
    build::PruneOptions po;
    if (auto k = a.get("keep-storage")) po.keep_bytes = TRY_CTX(build::parse_size(*k), "--keep-storage");
    if (auto u = a.get("until")) po.unused_for_s = TRY_CTX(build::parse_duration(*u), "--until") / 1000000000;
    if (a.has("all") && (po.keep_bytes || po.unused_for_s)) return Error::msg("--all removes everything: no --keep-storage or --until with it");
    auto store = TRY(img::Store::open(cli::device_root(g, a, true).store()));
    auto rep = TRY(build::prune(store, po, ::time(nullptr)));
    TRY(util::write_all(1, cat("removed ", rep.entries_removed, " cached steps (", rep.entries_kept, " kept), ", rep.blobs_removed,
                               " blobs (", rep.bytes_freed, " bytes), ", rep.layers_removed, " unpacked layers, ",
                               rep.cache_mounts_removed, " cache mounts, ", rep.scratch_removed, " scratch directories\n")));
    return 0;
}

util::Result<int> run_build(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    // `berth build prune`: a context directory of that name is ./prune.
    if (a.positional[0] == "prune") return run_prune(g, a);
    for (const char *k : {"all", "keep-storage", "until"})
        if (a.has(k)) return Error::msg(cat("--", k, " is an option of berth build prune"));
    build::BuildOptions o;
    o.context_dir = absolute(a.positional[0]);
    if (auto f = a.get("file")) o.containerfile = absolute(*f);
    for (const auto &p : a.get_all("platform"))
        for (const auto &one : util::split(p, ','))
            if (!one.empty()) o.platforms.push_back(one);
    o.tags = a.get_all("tag");
    for (const auto &kv : a.get_all("build-arg")) {
        size_t eq = kv.find('=');
        if (eq == std::string::npos) {
            // --build-arg NAME: the value from this environment, as docker takes it.
            if (const char *v = getenv(kv.c_str())) o.build_args[kv] = v;
            continue;
        }
        o.build_args[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    o.target = a.get("target");
    o.no_cache = a.has("no-cache");
    if (auto t = a.get("timestamp")) {
        auto v = util::parse_int<int64_t>(*t);
        if (!v || *v < 0) return Error::msg(cat("--timestamp: not a number of seconds: ", quote(*t)));
        o.source_date_epoch = *v;
    }
    if (auto out = a.get("output")) o.oci_output_dir = TRY(oci_output(*out));
    if (a.has("push") && o.tags.empty()) return Error::msg("--push needs at least one -t REGISTRY/REPO:TAG");
    if (a.has("sign-key") && !a.has("push")) return Error::msg("--sign-key signs what --push pushes: give --push too");

    std::string root = cli::device_root(g, a, true).store();
    auto store = TRY(img::Store::open(root));
    auto policy = TRY(load_policy(root, a));
    o.pull = [&](const img::Reference &ref, const img::Platform &p) -> util::Result<img::Digest> {
        img::PullOptions po;
        po.platform = p;
        po.policy = &policy;
        auto reg = TRY(open_registry(ref, a));
        auto res = TRY_CTX(img::pull_image(reg, store, ref, po), cat("pull ", quote(ref.str())));
        return res.top;
    };
    auto runner = make_build_runner(kBuildStateRoot, &o.scratch_tmpfs);
    auto res = TRY(build::build(store, o, *runner));
    if (a.has("push"))
        for (const auto &t : o.tags) TRY(push_tag(store, t, a));
    img::Digest top = res.index ? *res.index : res.images[0].manifest;
    TRY(util::write_all(1, top.str() + "\n"));
    return 0;
}

const util::OptSpec kBuildOptions[] = {
    {"file", 'f', true, "FILE", "the Containerfile (default CONTEXT/Containerfile, else CONTEXT/Dockerfile)"},
    {"tag", 't', true, "REF", "name the result in the store (repeatable; no registry: localhost/)"},
    {"platform", 0, true, "OS/ARCH[/VARIANT][,...]", "build for these platforms (default: this machine's); several make an index"},
    {"build-arg", 0, true, "K=V", "set a build argument (repeatable)"},
    {"target", 0, true, "STAGE", "build up to this stage"},
    {"no-cache", 0, false, nullptr, "run every step again"},
    {"timestamp", 0, true, "SECONDS", "the time every layer, config and history entry carries (default SOURCE_DATE_EPOCH, else 0)"},
    {"output", 'o', true, "type=oci,dest=DIR", "also write the result as an OCI layout"},
    {"push", 0, false, nullptr, "push each -t to its registry"},
    {"sign-key", 0, true, "FILE", "sign what --push pushes with this PEM ECDSA P-256 private key"},
    {"store", 0, true, "DIR", "the store: the device root (default /var/lib/berth)"},
    {"policy", 0, true, "FILE", "trust policy for base images pulled (default <store>/policy.json, else keys in <store>/trust)"},
    {"creds", 0, true, "FILE", "registry credentials, docker config.json format"},
    {"ca", 0, true, "FILE", "trust this PEM CA bundle for TLS"},
    {"insecure-http", 0, false, nullptr, "plain http (loopback registries fall back to it by themselves)"},
    {"all", 0, false, nullptr, "prune: remove every cached step (the default without a bound)"},
    {"keep-storage", 0, true, "SIZE", "prune: keep the most recently used cached layers up to SIZE (512M, 2G)"},
    {"until", 0, true, "DURATION", "prune: remove what was not used for DURATION (30m, 48h, 1h30m)"},
};

const cli::Command kCommands[] = {
    {"build", "[OPTIONS] CONTEXT | prune [--all|--keep-storage SIZE|--until DURATION]",
     "build an image from a Containerfile; prune: clean the build cache", kBuildOptions, 1, 1, false, run_build},
};

}  // namespace

std::span<const cli::Command> build_commands() { return kCommands; }

}  // namespace cmd
