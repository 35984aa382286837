// `berth run IMAGE`: pull, trust check, unpack, bundle, run (see run_image.hpp).
#include "run_image.hpp"

#include <signal.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <optional>

#include "image/image.hpp"
#include "image/pull.hpp"
#include "image/rootfs.hpp"
#include "image/store.hpp"
#include "image_trust.hpp"
#include "runtime/container.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

using util::cat;
using util::Error;
using util::quote;

/// "<last repository component>-<8 hex>": readable in `berth list`, and a
/// valid container id (repository components are [a-z0-9._-]).
std::string generate_id(const img::Reference &ref) {
    std::string base = ref.repository.substr(ref.repository.rfind('/') + 1);
    unsigned char rnd[4];
    if (::getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof rnd)) {
        // Kernels before 3.17, or an unseeded pool at boot: the clock and pid suffice for uniqueness.
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC, &ts);
        uint32_t v = static_cast<uint32_t>(ts.tv_nsec) ^ (static_cast<uint32_t>(::getpid()) << 16);
        for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = static_cast<unsigned char>(v >> (8 * i));
    }
    return cat(base.empty() ? "image" : base, '-', util::hex_encode(rnd, sizeof rnd));
}

/// The manifest the store holds for `ref`, if any.
util::Result<std::optional<img::Digest>> stored_manifest(const img::Store &store, const img::Reference &ref) {
    for (const std::string &name : {img::store_ref_name(ref), ref.str()}) {
        auto d = TRY(store.get_ref(name));
        if (!d) continue;
        // A reference pinned to a digest must name what the store holds;
        // else it is pulled (by digest: only what is missing is fetched).
        if (ref.digest && !(*ref.digest == *d)) return std::nullopt;
        return d;
    }
    return std::nullopt;
}

/// Blocks the signals a user or a supervisor stops us with, from the moment
/// a bundle exists until it is cleaned up: run_container forwards them to
/// the container meanwhile, and a signal arriving outside its wait stays
/// pending until the cleanup is done instead of leaving a mounted bundle.
class SignalBlock {
public:
    SignalBlock() {
        sigset_t set;
        sigemptyset(&set);
        for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&set, s);
        sigprocmask(SIG_BLOCK, &set, &old_);
    }
    ~SignalBlock() { sigprocmask(SIG_SETMASK, &old_, nullptr); }
    SignalBlock(const SignalBlock &) = delete;
    SignalBlock &operator=(const SignalBlock &) = delete;

private:
    sigset_t old_;
};

/// The volume directories create_bundle makes for `image` (see img::runtime_config).
std::vector<std::string> volume_dirs(const img::Store &store, const img::StoredImage &image, const std::string &prefix) {
    std::vector<std::string> out;
    for (const auto &dest : image.config.volumes) {
        std::string name = prefix;
        for (char ch : dest) name += ch == '/' ? '_' : ch;
        out.push_back(util::path_join(store.root() + "/volumes", name));
    }
    return out;
}

}  // namespace

util::Result<int> run_image(const ImageRunOptions &o) {
    if (!o.policy) return Error::msg("run an image without a policy");
    auto ref = TRY(img::Reference::parse(o.image));
    std::string id = o.name.empty() ? generate_id(ref) : o.name;
    TRY_CTX(rt::validate_id(id), "--name");
    if (util::path_exists(rt::state_dir(o.state_root, id)))
        return Error::with_code(EEXIST, cat("container ", quote(id), " already exists (`berth delete ", id, "` removes it)"));
    auto store = TRY(img::Store::open(o.store_root));
    if (util::path_exists(cat(store.root(), "/containers/", id)))
        return Error::with_code(EEXIST, cat("a bundle for container ", quote(id), " already exists in ", quote(store.root())));
    auto note = [&](std::string_view e, std::string_view d) {
        if (o.note) o.note(e, d);
    };

    // The registry, opened once and only when needed; closed before the
    // container is cloned.
    std::optional<img::Registry> reg;
    auto registry = [&]() -> util::Result<img::Registry *> {
        if (!reg) reg.emplace(TRY(o.open_registry(ref)));
        return &*reg;
    };

    // 1. The image: the store's, else pulled (the pull checks signatures
    // before it fetches any blob; an outright rejection needs no registry).
    TRY(check_not_rejected(*o.policy, ref));
    std::optional<img::Digest> top;
    img::Digest manifest;
    if (auto d = TRY(stored_manifest(store, ref))) {
        manifest = *d;
    } else {
        img::PullOptions po;
        po.platform = o.platform;
        po.policy = o.policy;
        po.fetch = o.fetch;
        po.note = o.note;
        po.unpack = false;  // step 3, after the trust check
        auto res = TRY_CTX(img::pull_image(*TRY(registry()), store, ref, po), cat("pull ", quote(ref.str())));
        note("pulled", cat(res.ref_name, " ", res.manifest.str()));
        manifest = res.manifest;
        if (!(res.top == res.manifest)) top = res.top;
    }
    auto image = TRY_CTX(img::load_image(store, manifest, o.platform, true), cat("image ", quote(ref.str())));

    // 2. Trust, before anything is unpacked.
    cmd::TrustCheck tc{ref, image.manifest_digest, top, registry};
    auto how = TRY(check_trust(store, *o.policy, tc));
    note("trusted", how);
    reg.reset();

    // 3. Layers and bundle.
    TRY_CTX(img::unpack_image(store, image), cat("image ", quote(ref.str())));
    img::RuntimeConfigOptions rc;
    rc.args = o.args;
    rc.extra_env = o.env;
    rc.hostname = o.hostname.empty() ? id : o.hostname;
    rc.terminal = o.tty;
    rc.readonly_rootfs = o.read_only;
    rc.volume_prefix = id;
    rc.annotations = {{kStoreAnnotation, store.root()}, {kImageAnnotation, ref.str()}, {kManifestAnnotation, manifest.str()}};
    // Volumes of a container with a generated name are anonymous: --rm
    // removes the ones this run created. Named containers keep theirs.
    std::vector<std::string> anonymous_volumes;
    if (o.remove && o.name.empty())
        for (auto &v : volume_dirs(store, image, id))
            if (!util::path_exists(v)) anonymous_volumes.push_back(std::move(v));

    SignalBlock block;
    util::ScopeGuard undo_volumes([&] {
        for (const auto &v : anonymous_volumes) (void)util::remove_tree(v);
    });
    auto bundle = TRY(img::create_bundle(store, id, image, img::RootfsMode::Auto, rc));
    util::ScopeGuard undo_bundle([&] {
        if (auto st = img::remove_bundle(store, id); !st) util::log::warn(st.error().message());
    });

    // 4. Run.
    rt::CreateOptions co;
    co.root = o.state_root;
    co.id = id;
    co.bundle = bundle.dir;
    co.pid_file = o.pid_file;
    co.no_pivot = o.no_pivot;
    co.no_new_keyring = o.no_new_keyring;
    co.systemd_cgroup = o.systemd_cgroup;
    auto code = rt::run_container(co, false, !o.remove);
    if (!code) {
        // The runtime undoes a failed create itself; a state left by a
        // failure after the start goes too, since its bundle does.
        if (util::path_exists(rt::state_dir(o.state_root, id))) (void)rt::delete_container(o.state_root, id, true);
        return std::move(code).error();
    }
    // From here on the bundle stays (without --rm) or goes here, where an
    // error can still be reported.
    undo_bundle.dismiss();
    undo_volumes.dismiss();
    if (o.remove) {
        TRY_CTX(img::remove_bundle(store, id), cat("container ", quote(id), " exited with ", *code));
        for (const auto &v : anonymous_volumes) TRY(util::remove_tree(v));
    }
    return *code;
}

util::Status remove_image_bundle(const rt::State &st) {
    std::string store_root;
    for (const auto &[k, v] : st.annotations)
        if (k == kStoreAnnotation) store_root = v;
    if (store_root.empty() || st.bundle != cat(store_root, "/containers/", st.id)) return util::ok();
    if (!util::path_exists(st.bundle)) return util::ok();  // removed by hand: nothing to do, and no store to create
    auto store = TRY(img::Store::open(store_root));
    return img::remove_bundle(store, st.id);
}

}  // namespace cmd
