// `berth run IMAGE [CMD...]`: from an image reference to a finished
// container, in this process. The only code that uses both image/ and
// runtime/ (which know nothing of each other), hence here in src/, and
// only glue: img::stage_bundle (image/stage.hpp) finds or pulls the image
// under the trust policy, checks it and assembles the bundle; run_bundle
// (run_bundle.hpp) creates, starts and waits for the container; exit code
// 128+N on signal N.
//
// Every step undoes itself on failure: a refused or broken image leaves no
// bundle, mount, cgroup or state. With `remove`, the container, its cgroup,
// its rootfs mount and its bundle go when it exits; without, `berth delete`
// removes them (remove_image_bundle()).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "image/fetch.hpp"
#include "image/manifest.hpp"
#include "image/policy.hpp"
#include "image/reference.hpp"
#include "image/registry.hpp"
#include "runtime/state.hpp"
#include "util/result.hpp"

namespace cmd {

struct ImageRunOptions {
    std::string image;        ///< the reference, as given
    std::string store_root;   ///< absolute
    std::string state_root;   ///< the runtime's (--root)
    std::string name;         ///< container id; empty: <repository's last component>-<8 hex>
    std::vector<std::string> args;  ///< replaces the image's Cmd (its Entrypoint stays)
    std::vector<std::string> env;   ///< KEY=VALUE, over the image's
    std::string hostname;     ///< empty: the container id
    bool remove = false;      ///< --rm
    bool tty = false;
    bool read_only = false;
    img::Platform platform = img::Platform::host();
    const img::Policy *policy = nullptr;  ///< required
    /// Opens the registry of a reference (the command's TLS, auth and retry flags).
    std::function<util::Result<img::Registry>(const img::Reference &)> open_registry;
    img::FetchOptions fetch;  ///< progress of a pull
    std::function<void(std::string_view event, std::string_view detail)> note;
    // Passed on to the runtime as `berth run` takes them.
    std::string pid_file;
    bool no_pivot = false;
    bool no_new_keyring = false;
    bool systemd_cgroup = false;
};

/// Runs the image; returns the container's exit code.
util::Result<int> run_image(const ImageRunOptions &o);

/// After `berth delete` of a container that `berth run IMAGE` made: removes
/// its bundle (unmounting its rootfs). Does nothing for other containers:
/// only a bundle at <berth.store>/containers/<id> is removed.
util::Status remove_image_bundle(const rt::State &st);

}  // namespace cmd
