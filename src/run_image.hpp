// `berth run IMAGE [CMD...]`: from an image reference to a finished
// container, in this process. The only code that uses both image/ and
// runtime/ (which know nothing of each other), hence here in src/:
//
//   1. the image: the store's, else pulled through the trust policy
//      (img::pull_image checks signatures before any layer is fetched);
//   2. the trust check of the stored image (image_trust.hpp), before any
//      layer is unpacked: what the policy refuses never reaches the disk
//      as a rootfs;
//   3. the layers unpacked (diff_ids checked), the bundle assembled under
//      <store>/containers/<id> (img::create_bundle: overlay, else a copy);
//   4. rt::run_container: create, start, wait, exit code (128+N on signal N).
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

/// The annotations an image container's config.json (and so its state) carries.
inline constexpr const char *kStoreAnnotation = "berth.store";            ///< the store holding its bundle
inline constexpr const char *kImageAnnotation = "berth.image";            ///< the reference it runs
inline constexpr const char *kManifestAnnotation = "berth.image.manifest";  ///< the manifest digest

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
