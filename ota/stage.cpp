// Staging an app revision into bundles, all or nothing (see stage.hpp):
// the host devices are checked first (nothing is made for a revision asking
// for a node the host lacks), then each container in start order goes
// through img::stage_bundle with the manifest's runtime options; a failure
// removes what this call made (bundles, their new image volumes, notify
// directories) and names the container.
#include "ota/stage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <map>
#include <optional>

#include "image/stage.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"

namespace ota {
namespace {

using util::cat;
using util::Error;
using util::quote;

/// The host nodes of `c`'s devices, stat'ed: a missing node or one that is
/// no device is an error naming the field (by its place in the document).
util::Result<std::vector<img::DeviceNode>> host_devices(const ContainerSpec &c) {
    std::vector<img::DeviceNode> out;
    for (size_t j = 0; j < c.devices.size(); j++) {
        const DeviceRule &d = c.devices[j];
        std::string field = cat("containers[", c.index, "].devices[", j, "]");
        struct stat st;
        if (::stat(d.path.c_str(), &st) < 0) return Error::from_errno(cat(field, ": ", quote(d.path)));
        if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
            return Error::msg(cat(field, ": ", quote(d.path), " is not a device node"));
        img::DeviceNode n;
        n.path = d.path;
        n.type = S_ISBLK(st.st_mode) ? 'b' : 'c';
        n.major = major(st.st_rdev);
        n.minor = minor(st.st_rdev);
        n.permissions = d.permissions;
        n.file_mode = st.st_mode & 0777;
        out.push_back(std::move(n));
    }
    return out;
}

/// The runtime options of container `c` from its manifest entry.
img::RuntimeConfigOptions runtime_options(const Revision &rev, const ContainerSpec &c, const StageContext &ctx,
                                          std::vector<img::DeviceNode> devices) {
    img::RuntimeConfigOptions o;
    o.hostname = c.name;
    o.args = c.args;
    o.extra_env = c.env;
    o.volumes_dir = ctx.root.volumes();
    o.volume_prefix = c.name;  // image volumes live on across revisions, as `berth run --name` keeps them
    o.annotations[kRevisionAnnotation] = cat(rev.version);
    o.annotations[kAppAnnotation] = c.name;
    if (!rev.digest.empty()) o.annotations[kRevisionDigestAnnotation] = rev.digest;
    if (c.pids > 0) o.pids_limit = static_cast<uint64_t>(c.pids);
    o.cwd = c.workdir;
    o.user = c.user;
    o.extra_capabilities = c.capabilities;
    o.devices = std::move(devices);
    o.memory_limit = c.memory_bytes;
    o.cpu_millis = c.cpu_millis;
    o.host_network = c.network == NetworkMode::Host;
    for (const auto &v : c.volumes) o.named_volumes.push_back({v.name, v.path, v.readonly});
    if (c.health.kind == HealthKind::Ready) {
        o.extra_mounts.push_back({notify_dir(ctx.run_dir, container_id(rev, c)), util::dirname(kNotifySocketInContainer), false});
        o.extra_env.push_back(cat("NOTIFY_SOCKET=", kNotifySocketInContainer));
    }
    return o;
}

/// What one call made, undone unless dismissed.
struct Made {
    img::Store *store = nullptr;
    std::vector<std::string> ids, volumes, notify_dirs;

    void undo() {
        for (const auto &id : ids) (void)img::remove_bundle(*store, id);
        for (const auto &v : volumes) (void)util::remove_tree(v);
        for (const auto &d : notify_dirs) (void)util::remove_tree(d);
    }
};

/// The notify directory of a container with a `ready` check, made when missing.
util::Status make_notify_dir(const Revision &rev, const ContainerSpec &c, const StageContext &ctx, Made &made) {
    if (c.health.kind != HealthKind::Ready) return util::ok();
    std::string dir = notify_dir(ctx.run_dir, container_id(rev, c));
    if (util::path_exists(dir)) return util::ok();
    TRY_CTX(util::mkdir_p(dir, 0755), "the notify directory");
    made.notify_dirs.push_back(dir);
    return util::ok();
}

/// A named volume this call created takes the owner and mode of the
/// image's directory at its path (as a Docker volume does on first use),
/// else the container's user's: an app running as a user can write to its
/// new volume. One that existed before is never touched.
util::Status init_volume(const std::string &vol_dir, int rootfd, const std::string &dest, const img::UserIds &user) {
    uid_t uid = user.uid;
    gid_t gid = user.gid;
    mode_t mode = 0755;
    if (auto in = util::open_in_root(rootfd, dest, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) {
        struct stat st;
        if (::fstat(in->get(), &st) < 0) return Error::from_errno(cat("stat the image's ", quote(dest)));
        uid = st.st_uid;
        gid = st.st_gid;
        mode = st.st_mode & 07777;
    }
    auto fd = TRY(util::open_file(vol_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (::fchown(fd.get(), uid, gid) < 0 || ::fchmod(fd.get(), mode) < 0) return Error::from_errno(cat("own ", quote(vol_dir)));
    return util::ok();
}

/// Stages container `c` as its bundle, recording in `made` what it creates.
util::Status stage_container(img::Store &store, const Revision &rev, const ContainerSpec &c,
                             std::vector<img::DeviceNode> devices, const StageContext &ctx, Made &made,
                             const img::ProgressFn &progress) {
    std::string id = container_id(rev, c);
    auto ref = TRY_CTX(img::Reference::parse(c.image), "image");
    std::vector<const VolumeMount *> new_volumes;
    for (const auto &v : c.volumes) {
        if (!img::valid_volume_name(v.name)) return Error::msg(cat("volume ", quote(v.name), ": not a valid volume name"));
        std::string dir = util::path_join(ctx.root.volumes(), v.name);
        if (util::path_exists(dir)) continue;
        TRY_CTX(util::mkdir_p(dir, 0755), cat("volume ", quote(v.name)));
        new_volumes.push_back(&v);
    }
    TRY(make_notify_dir(rev, c, ctx, made));
    img::StageOptions so;
    so.platform = ctx.platform;
    so.policy = ctx.policy;
    so.open_registry = ctx.open_registry;
    so.note = ctx.note;
    so.fetch.progress = progress;
    so.runtime = runtime_options(rev, c, ctx, std::move(devices));
    auto staged = TRY(img::stage_bundle(store, ref, id, so));
    made.ids.push_back(id);
    for (auto &v : staged.new_volumes) made.volumes.push_back(std::move(v));
    if (new_volumes.empty()) return util::ok();
    auto rootfd = TRY(util::open_file(staged.bundle.rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto user = TRY(img::resolve_user(rootfd.get(), c.user.empty() ? staged.image.config.user : c.user));
    for (const auto *v : new_volumes)
        TRY_CTX(init_volume(util::path_join(ctx.root.volumes(), v->name), rootfd.get(), v->path, user),
                cat("volume ", quote(v->name)));
    return util::ok();
}

/// Is the complete bundle at `dir` one of this revision's document? One
/// staged from another document of the same version (applied, rolled
/// back, then replaced) is not: it is refused, never silently reused.
util::Status check_kept(const std::string &dir, const Revision &rev) {
    if (rev.digest.empty()) return util::ok();
    auto text = TRY(util::read_file(util::path_join(dir, "config.json"), 16 << 20));
    auto cfg = TRY(util::json::parse(text, "config.json"));
    TRY(util::json::expect_object(cfg, "config.json"));
    std::string have;
    if (const auto *ann = TRY(util::json::opt_object(cfg, "annotations", "")))
        have = TRY(util::json::opt_string(*ann, kRevisionDigestAnnotation, "annotations")).value_or("");
    if (have != rev.digest)
        return Error::msg(cat("a bundle of another document of revision ", rev.version, " exists (",
                              have.empty() ? "unknown" : have, ")"));
    return util::ok();
}

}  // namespace

std::string notify_dir(std::string_view run_dir, std::string_view id) {
    return util::path_join(util::path_join(run_dir, "notify"), id);
}

util::Status stage_revision(const Revision &rev, const StageContext &ctx) {
    if (!ctx.policy) return Error::msg("stage a revision without a policy");
    // Every device first: a host without a node the manifest names stages nothing.
    std::vector<std::vector<img::DeviceNode>> devices;
    for (const auto &c : rev.containers) devices.push_back(TRY_CTX(host_devices(c), cat("stage ", quote(c.name))));

    auto store = TRY(img::Store::open(ctx.root.store()));
    Made made{&store, {}, {}, {}};
    util::ScopeGuard undo([&] { made.undo(); });
    // The bytes on disk of every blob fetched, summed for on_bytes.
    std::map<std::string, uint64_t> blob_bytes;
    uint64_t total = 0;
    img::ProgressFn progress;
    if (ctx.on_bytes)
        progress = [&](const img::FetchProgress &p) {
            if (!p.digest) return;
            uint64_t &b = blob_bytes[p.digest->str()];
            if (p.offset <= b) return;
            total += p.offset - b;
            b = p.offset;
            ctx.on_bytes(total);
        };
    for (size_t i = 0; i < rev.containers.size(); i++) {
        const ContainerSpec &c = rev.containers[i];
        std::string id = container_id(rev, c);
        // A complete bundle (config.json is the last thing create_bundle
        // writes) from an earlier staging of this revision stays as it is.
        if (util::path_exists(util::path_join(ctx.root.container(id), "config.json"))) {
            TRY_CTX(check_kept(ctx.root.container(id), rev), cat("stage ", quote(c.name)));
            // Its rootfs mount and its notify directory (on the run
            // directory's tmpfs) are gone after a reboot.
            TRY_CTX(img::mount_bundle(store, id), cat("stage ", quote(c.name)));
            TRY_CTX(make_notify_dir(rev, c, ctx, made), cat("stage ", quote(c.name)));
            if (ctx.note) ctx.note("kept", id);
            continue;
        }
        // A partial one, left by a crash in the middle of create_bundle, is rebuilt.
        if (util::path_exists(ctx.root.container(id)))
            TRY_CTX(img::remove_bundle(store, id), cat("stage ", quote(c.name), ": remove the partial bundle"));
        TRY_CTX(stage_container(store, rev, c, std::move(devices[i]), ctx, made, progress), cat("stage ", quote(c.name)));
        if (ctx.note) ctx.note("staged", id);
        TRY_CTX(util::failpoint("ota.stage.bundle"), cat("stage ", quote(c.name)));
    }
    undo.dismiss();
    return util::ok();
}

util::Status remove_revision_bundles(const Revision &rev, const util::DeviceRoot &root) {
    std::optional<img::Store> store;
    util::Status first = util::ok();
    for (const auto &c : rev.containers) {
        std::string id = container_id(rev, c);
        if (!util::path_exists(root.container(id))) continue;
        if (!store) {
            auto s = img::Store::open(root.store());
            if (!s) return std::move(s).error().wrap(cat("remove the bundles of revision ", rev.version));
            store.emplace(std::move(*s));
        }
        auto st = img::remove_bundle(*store, id);
        if (!st && first) first = std::move(st).error().wrap(cat("remove the bundle of ", quote(c.name)));
    }
    return first;
}

}  // namespace ota
