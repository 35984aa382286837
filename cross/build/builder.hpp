// `berth build`: a Containerfile and a context directory -> an OCI image in
// berth's store (DESIGN.md, "Formats": image builds; docs/build.md).
//
// Stages are planned from the parsed Containerfile (containerfile.hpp); the
// base image comes from the store, a registry or an OCI layout through
// image/. Every instruction that changes files makes one layer: COPY and ADD
// natively (write_layer over a staged tree), RUN through the Runner seam
// (berth's runtime on an overlay of the stage's layers, under qemu-user for
// a foreign platform); the others change only the config. The result is
// reproducible: entries sorted, times clamped to SOURCE_DATE_EPOCH (or 0),
// no host names or build times in config or history, gzip without name or
// time at a fixed level, base layers reused byte for byte. A layer cache
// keyed by the parent's chain and the instruction with its inputs skips an
// unchanged step.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "image/digest.hpp"
#include "image/manifest.hpp"
#include "image/reference.hpp"
#include "image/store.hpp"
#include "util/result.hpp"

namespace build {

/// One RUN step for the Runner: run `argv` in a container whose root is an
/// overlay of `lower_dirs` (extracted layers, the topmost first, as overlayfs'
/// lowerdir lists them) with `upper_dir` (empty, created by the builder) as
/// its upper layer and `work_dir` as overlay's workdir. When it returns, the
/// overlay is unmounted and `upper_dir` holds exactly the step's changes in
/// OCI layer form (overlay whiteouts converted to .wh. files, opaque
/// directories marked with .wh..wh..opq), ready for write_layer.
struct RunRequest {
    /// A host path bound into the step's container (RUN --mount, a RUN
    /// heredoc's script). Its mount point, when the runtime had to create
    /// it, is taken out of the layer again.
    struct Mount {
        std::string source;
        std::string target;
        bool readonly = true;
    };
    std::vector<std::string> lower_dirs;
    std::string upper_dir;
    std::string work_dir;
    std::vector<std::string> argv;
    std::vector<std::string> env;  ///< "K=V"
    std::string cwd = "/";
    std::string user;              ///< "uid[:gid]" or a name from the rootfs' /etc/passwd; empty: root
    std::string platform;          ///< "linux/arm/v7"; foreign ones run under qemu-user (binfmt F)
    bool host_network = true;      ///< as podman build's default
    int stdout_fd = 1;             ///< the step's output goes here (and stderr too)
    std::vector<Mount> mounts;
};

/// How RUN steps run: implemented in src/ over runtime/ (src/cmd/build_run.cpp),
/// since cross/ does not depend on runtime/. Tests may pass a fake.
class Runner {
public:
    virtual ~Runner() = default;
    /// Fails with the step's exit status ("exit status 2") or what kept it
    /// from running (a missing binfmt registration names what to install).
    virtual util::Status run(const RunRequest &req) = 0;
};

struct BuildOptions {
    std::string context_dir;
    std::string containerfile;                    ///< empty: <context>/Containerfile, else Dockerfile
    std::vector<std::string> platforms;           ///< empty: the host's
    std::vector<std::string> tags;                ///< -t REF
    std::map<std::string, std::string> build_args;
    std::optional<std::string> target;            ///< --target STAGE
    bool no_cache = false;
    std::optional<int64_t> source_date_epoch;     ///< else SOURCE_DATE_EPOCH from the environment, else 0
    std::optional<std::string> oci_output_dir;    ///< --output type=oci,dest=DIR
    std::string work_root;                        ///< scratch space for overlays and staged trees
    int log_fd = 2;                               ///< "STEP 2/5: RUN ..." lines and RUN output
    /// The build may mount a scratch tmpfs for base layers (layer_trees.hpp):
    /// this process has a mount namespace of its own, where the mount
    /// vanishes with it however it ends.
    bool scratch_tmpfs = false;
    /// Brings a base image the store lacks into it (a registry pull under
    /// the trust policy, as `berth run IMAGE` does) and returns its top
    /// digest; unset: FROM takes only stored images, layouts and stages.
    std::function<util::Result<img::Digest>(const img::Reference &, const img::Platform &)> pull;
};

struct PlatformResult {
    std::string platform;
    img::Digest manifest;   ///< the image manifest in the store
    img::Digest config;
};

struct BuildResult {
    std::vector<PlatformResult> images;
    std::optional<img::Digest> index;  ///< several platforms: the image index naming them
};

/// Builds every platform; tags the result in the store under each -t name.
/// Nothing is tagged unless every platform built.
util::Result<BuildResult> build(img::Store &store, const BuildOptions &options, Runner &runner);

}  // namespace build
