// `berth run IMAGE`: stage the image, run the bundle, clean up (see run_image.hpp).
#include "run_image.hpp"

#include <signal.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "image/stage.hpp"
#include "image/store.hpp"
#include "run_bundle.hpp"
#include "runtime/container.hpp"
#include "util/device_root.hpp"
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

}  // namespace

util::Result<int> run_image(const ImageRunOptions &o) {
    if (!o.policy) return Error::msg("run an image without a policy");
    auto ref = TRY(img::Reference::parse(o.image));
    std::string id = o.name.empty() ? generate_id(ref) : o.name;
    TRY_CTX(rt::validate_id(id), "--name");
    if (util::path_exists(rt::state_dir(o.state_root, id)))
        return Error::with_code(EEXIST, cat("container ", quote(id), " already exists (`berth delete ", id, "` removes it)"));
    auto store = TRY(img::Store::open(o.store_root));

    img::StageOptions so;
    so.platform = o.platform;
    so.policy = o.policy;
    so.open_registry = o.open_registry;
    so.fetch = o.fetch;
    so.note = o.note;
    so.runtime.args = o.args;
    so.runtime.extra_env = o.env;
    so.runtime.hostname = o.hostname.empty() ? id : o.hostname;
    so.runtime.terminal = o.tty;
    so.runtime.readonly_rootfs = o.read_only;
    so.runtime.volume_prefix = id;

    // The signals a user or a supervisor stops us with stay blocked from
    // the moment a bundle exists until it is cleaned up: run_bundle
    // forwards them to the container meanwhile, and one arriving outside
    // its wait stays pending until the cleanup is done instead of leaving
    // a mounted bundle.
    BlockedSignals blocked{SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    auto staged = TRY(img::stage_bundle(store, ref, id, so));
    // Volumes of a container with a generated name are anonymous: --rm
    // removes the ones this run created. Named containers keep theirs.
    std::vector<std::string> anonymous_volumes;
    if (o.remove && o.name.empty()) anonymous_volumes = staged.new_volumes;
    util::ScopeGuard undo_volumes([&] {
        for (const auto &v : anonymous_volumes) (void)util::remove_tree(v);
    });
    util::ScopeGuard undo_bundle([&] {
        if (auto st = img::remove_bundle(store, id); !st) util::log::warn(st.error().message());
    });

    rt::CreateOptions co;
    co.root = o.state_root;
    co.id = id;
    co.bundle = staged.bundle.dir;
    co.pid_file = o.pid_file;
    co.no_pivot = o.no_pivot;
    co.no_new_keyring = o.no_new_keyring;
    co.systemd_cgroup = o.systemd_cgroup;
    auto code = run_bundle(co, false, !o.remove);
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
        if (k == img::kStoreAnnotation) store_root = v;
    if (store_root.empty() || st.bundle != util::DeviceRoot(store_root).container(st.id)) return util::ok();
    if (!util::path_exists(st.bundle)) return util::ok();  // removed by hand: nothing to do, and no store to create
    auto store = TRY(img::Store::open(store_root));
    return img::remove_bundle(store, st.id);
}

}  // namespace cmd
