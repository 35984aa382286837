// Test-only driver of ota::stage_revision for the registry test
// (stage_registry_test.py), until the daemon's CLI stages revisions:
//
//   stage_tool STORE MANIFEST [--policy P] [--run-dir D] [--remove]
//
// parses MANIFEST, then stages the revision into the device root STORE
// (the policy is P, else STORE/policy.json, else the device default), or
// with --remove removes its bundles. Prints the staged ids; on failure the
// error on stderr and exit 1.
#include <cstdio>
#include <cstring>
#include <string>

#include "image/policy.hpp"
#include "image/registry.hpp"
#include "ota/stage.hpp"
#include "util/file.hpp"

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: stage_tool STORE MANIFEST [--policy P] [--run-dir D] [--remove]\n");
        return 2;
    }
    util::DeviceRoot root(argv[1]);
    std::string policy_path, run_dir;
    bool remove = false;
    for (int i = 3; i < argc; i++) {
        if (!std::strcmp(argv[i], "--policy") && i + 1 < argc) policy_path = argv[++i];
        else if (!std::strcmp(argv[i], "--run-dir") && i + 1 < argc) run_dir = argv[++i];
        else if (!std::strcmp(argv[i], "--remove")) remove = true;
        else {
            std::fprintf(stderr, "stage_tool: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    auto fail = [](const util::Error &e) {
        std::fprintf(stderr, "stage_tool: %s\n", e.message().c_str());
        return 1;
    };
    auto doc = util::read_file(argv[2], 1 << 20);
    if (!doc) return fail(doc.error());
    auto rev = ota::parse_revision(*doc);
    if (!rev) return fail(rev.error());
    if (remove) {
        auto st = ota::remove_revision_bundles(*rev, root);
        return st ? 0 : fail(st.error());
    }
    auto policy = !policy_path.empty()                  ? img::Policy::load(policy_path)
                  : util::path_exists(root.policy()) ? img::Policy::load(root.policy())
                                                         : img::Policy::device_default(root.trust());
    if (!policy) return fail(policy.error());
    ota::StageContext ctx;
    ctx.root = root;
    ctx.policy = &*policy;
    ctx.open_registry = [](const img::Reference &ref) { return img::Registry::open(img::registry_host(ref), {}); };
    if (!run_dir.empty()) ctx.run_dir = run_dir;
    auto st = ota::stage_revision(*rev, ctx);
    if (!st) return fail(st.error());
    for (const auto &c : rev->containers) std::printf("%s\n", ota::container_id(*rev, c).c_str());
    return 0;
}
