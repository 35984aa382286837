// `berth run [OPTIONS] IMAGE [CMD [ARG...]]`: the image mode of `run`.
// cmd_runtime.cpp decides the mode (image_mode()) and hands the parsed
// arguments here; this file turns them into ImageRunOptions (the registry
// flags are `berth image pull`'s) and makes one call, run_image().
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>

#include "cmd_run_image.hpp"
#include "image/progress.hpp"
#include "image/reference.hpp"
#include "registry_flags.hpp"
#include "runtime/exe_protect.hpp"
#include "run_image.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

using util::cat;
using util::quote;

// The image-mode options; cmd_runtime.cpp appends them to runc's `run` options.
const util::OptSpec kImageOptions[] = {
    {"name", 0, true, "NAME", "with IMAGE: the container id (default: <image name>-<8 hex>)"},
    {"rm", 0, false, nullptr, "with IMAGE: remove the container, its cgroup, mounts and bundle when it exits"},
    {"tty", 't', false, nullptr, "with IMAGE: give the process a terminal"},
    {"env", 'e', true, "KEY=VALUE", "with IMAGE: set an environment variable (repeatable)"},
    {"hostname", 0, true, "NAME", "with IMAGE: the container's hostname (default: its id)"},
    {"read-only", 0, false, nullptr, "with IMAGE: mount the root filesystem read-only"},
    {"store", 0, true, "DIR", "with IMAGE: the image store (default /var/lib/berth)"},
    {"policy", 0, true, "FILE", "with IMAGE: trust policy (default <store>/policy.json, else keys in <store>/trust)"},
    {"platform", 0, true, "OS/ARCH[/VARIANT]", "with IMAGE: platform to select from an index (default: this machine)"},
    {"creds", 0, true, "FILE", "with IMAGE: registry credentials, docker config.json format"},
    {"ca", 0, true, "FILE", "with IMAGE: trust this PEM CA bundle for TLS"},
    {"pin", 0, true, "sha256//B64", "with IMAGE: pin the registry's public key"},
    {"insecure-http", 0, false, nullptr, "with IMAGE: plain http (loopback registries fall back to it by themselves)"},
    {"limit-rate", 0, true, "BYTES", "with IMAGE: receive at most BYTES/s (k, M suffixes)"},
    {"timeout", 0, true, "SECONDS", "with IMAGE: give up a manifest or blob after SECONDS, retries included (default 900)"},
    {"speed-limit", 0, true, "BYTES", "with IMAGE: a transfer under BYTES/s for --speed-time has stalled (default 1k)"},
    {"speed-time", 0, true, "SECONDS", "with IMAGE: see --speed-limit (default 30)"},
    {"progress", 0, true, "MODE", "with IMAGE: auto (a display on a terminal, else JSON lines), human, json or none"},
    {"retries", 0, true, "N", "with IMAGE: attempts without progress before giving up (default 8)"},
    {"retry-delay-ms", 0, true, "MS", "with IMAGE: first backoff delay (default 500, doubles, jittered)"},
    {"quiet", 'q', false, nullptr, "with IMAGE: no pull progress output"},
};

// runc options that mean nothing for an image (the bundle is berth's; the
// run is in the foreground, and --rm chooses whether the container stays).
constexpr std::string_view kRuncOnly[] = {"bundle", "detach", "keep", "console-socket", "preserve-fds"};

/// The store directory (--store, also the global one; the global --root is
/// the runtime's state here), created, as an absolute path without symlinks
/// (`berth delete` recognizes the bundle by its path).
util::Result<std::string> store_dir(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    std::string dir = cli::device_root(g, a, false).store();
    TRY_CTX(util::mkdir_p(dir, 0755), cat("store ", quote(dir)));
    char buf[PATH_MAX];
    if (!::realpath(dir.c_str(), buf)) return util::Error::from_errno(cat("store ", quote(dir)));
    return std::string(buf);
}

}  // namespace

std::span<const util::OptSpec> image_run_options() { return kImageOptions; }

bool image_mode(const util::ParsedArgs &a) {
    // A container id is [A-Za-z0-9_+.-] only; every image reference names a
    // registry ("host/repo"), so it has a '/'; ':' and '@' (tag, digest)
    // cannot be in an id either.
    if (a.has("bundle") || a.positional.empty()) return false;
    return a.positional[0].find_first_of("/:@") != std::string::npos;
}

bool image_only_option(std::string_view name) {
    return std::any_of(std::begin(kImageOptions), std::end(kImageOptions), [&](const auto &o) { return name == o.name; });
}

util::Result<int> run_image_command(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    for (const auto &[name, value] : a.options)
        if (std::find(std::begin(kRuncOnly), std::end(kRuncOnly), name) != std::end(kRuncOnly))
            return cli::usage_error(cat("run: --", name, " is for OCI bundles, not with an IMAGE (see `berth run --help`)"));
    for (const auto &e : a.get_all("env"))
        if (e.find('=') == std::string::npos || e[0] == '=')
            return cli::usage_error(cat("run: --env: expected KEY=VALUE, got ", quote(e)));

    ImageRunOptions o;
    o.image = a.positional[0];
    TRY(img::Reference::parse(o.image));  // before the store is created
    o.args.assign(a.positional.begin() + 1, a.positional.end());
    o.env = a.get_all("env");
    o.name = a.get("name").value_or("");
    o.hostname = a.get("hostname").value_or("");
    o.remove = a.has("rm");
    o.tty = a.has("tty");
    o.read_only = a.has("read-only");
    if (auto p = a.get("platform")) o.platform = TRY(img::Platform::parse(*p));
    o.state_root = g.root.value_or(rt::kDefaultStateRoot);
    o.pid_file = a.get("pid-file").value_or("");
    if (!o.pid_file.empty() && o.pid_file[0] != '/') {
        char buf[PATH_MAX];
        if (::getcwd(buf, sizeof buf)) o.pid_file = util::path_join(buf, o.pid_file);
    }
    o.no_pivot = a.has("no-pivot");
    o.no_new_keyring = a.has("no-new-keyring");
    o.systemd_cgroup = g.systemd_cgroup;

    auto reg_opts = TRY(registry_options(a));
    o.store_root = TRY(store_dir(g, a));
    auto policy = TRY(load_policy(o.store_root, a));
    o.policy = &policy;
    o.open_registry = [&reg_opts](const img::Reference &ref) { return img::Registry::open(img::registry_host(ref), reg_opts); };
    img::ProgressPrinter printer(2, TRY(progress_mode(a)));
    o.fetch.progress = printer.fn();
    o.note = [&printer](std::string_view e, std::string_view d) { printer.note(e, d); };
    // The arguments are good and nothing is done yet: may re-exec berth from
    // a view a container cannot write (runtime/exe_protect.hpp).
    TRY(rt::exe_protect::protect_self(o.state_root));
    return run_image(o);
}

}  // namespace cmd
