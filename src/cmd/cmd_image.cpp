// `berth image <sub>`: the image store's local commands (import, export, ls,
// inspect, rm, gc, fsck) and, from cmd_image_remote.cpp, the registry ones
// (pull, push, sign, verify), grouped under one top-level "image" entry.
// Each command parses its arguments and makes one img:: call.
#include <vector>

#include "commands.hpp"
#include "image/fsck.hpp"
#include "image/image.hpp"
#include "image/layout.hpp"
#include "image/reference.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

using util::cat;

util::Result<img::Store> open_store(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    return img::Store::open(cli::device_root(g, a, true).store());
}

util::Result<img::Platform> platform_arg(const util::ParsedArgs &a) {
    if (auto p = a.get("platform")) return img::Platform::parse(*p);
    return img::Platform::host();
}

util::Result<int> run_import(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto store = TRY(open_store(g, a));
    // The name is a full reference; a short one only with --default-registry.
    auto ref = TRY(img::Reference::parse(a.positional[1], a.get("default-registry").value_or("")));
    img::ImportOptions o;
    o.ref_name = a.get("ref-name").value_or("");
    o.platform = TRY(platform_arg(a));
    o.unpack = !a.has("no-unpack");
    auto r = TRY(img::import_layout(store, a.positional[0], ref.str(), o));
    TRY(util::write_all(1, cat(ref.str(), ' ', r.manifest.str(), '\n')));
    return 0;
}

util::Result<int> run_export(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto store = TRY(open_store(g, a));
    auto top = TRY(img::find_image(store, a.positional[0]));
    auto image = TRY(img::load_image(store, top, TRY(platform_arg(a)), true));
    TRY(img::export_layout(store, image.manifest_digest, a.positional[1], a.get("ref-name").value_or("latest")));
    return 0;
}

util::Result<int> run_ls(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto store = TRY(open_store(g, a));
    auto refs = TRY(store.list_refs());
    if (a.has("json")) {
        util::json::Value out = util::json::Value::array();
        for (const auto &[name, d] : refs) {
            util::json::Value e = util::json::Value::object();
            e["name"] = name;
            e["digest"] = d.str();
            out.push_back(e);
        }
        TRY(util::write_all(1, util::json::dump(out, 2) + "\n"));
        return 0;
    }
    std::string out = "NAME                                               DIGEST\n";
    for (const auto &[name, d] : refs) {
        std::string n = name;
        if (n.size() < 50) n.resize(50, ' ');
        out += cat(n, ' ', d.str().substr(0, 19), '\n');
    }
    TRY(util::write_all(1, out));
    return 0;
}

util::Result<int> run_inspect(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto store = TRY(open_store(g, a));
    auto top = TRY(img::find_image(store, a.positional[0]));
    auto image = TRY(img::load_image(store, top, TRY(platform_arg(a)), false));
    util::json::Value v = util::json::Value::object();
    v["digest"] = image.manifest_digest.str();
    v["mediaType"] = image.manifest.media_type;
    v["platform"] = image.config.platform.str();
    v["config"] = image.manifest.config.digest.str();
    util::json::Value layers = util::json::Value::array();
    for (size_t i = 0; i < image.manifest.layers.size(); ++i) {
        const auto &l = image.manifest.layers[i];
        util::json::Value e = util::json::Value::object();
        e["digest"] = l.digest.str();
        e["mediaType"] = l.media_type;
        e["size"] = l.size;
        e["diffID"] = image.config.diff_ids[i].str();
        e["present"] = store.has_blob(l.digest);
        e["unpacked"] = store.has_layer(image.config.diff_ids[i]);
        layers.push_back(e);
    }
    v["layers"] = layers;
    util::json::Value c = util::json::Value::object();
    c["User"] = image.config.user;
    c["Env"] = image.config.env;
    c["Entrypoint"] = image.config.entrypoint;
    c["Cmd"] = image.config.cmd;
    c["WorkingDir"] = image.config.working_dir;
    c["Volumes"] = image.config.volumes;
    c["StopSignal"] = image.config.stop_signal;
    c["Labels"] = image.config.labels;
    v["imageConfig"] = c;
    TRY(util::write_all(1, util::json::dump(v, 2) + "\n"));
    return 0;
}

util::Result<int> run_rm(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto store = TRY(open_store(g, a));
    for (const auto &name : a.positional) {
        if (auto r = TRY(store.get_ref(name))) {
            TRY(store.remove_ref(name));
            continue;
        }
        auto ref = TRY(img::Reference::parse(name, a.get("default-registry").value_or("")));
        TRY(store.remove_ref(ref.str()));
    }
    return 0;
}

util::Result<int> run_gc(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto store = TRY(open_store(g, a));
    auto r = TRY(img::gc(store));
    TRY(util::write_all(1, cat("removed ", r.blobs_removed, " blobs (", r.bytes_freed, " bytes), ", r.layers_removed,
                               " layers, ", r.signatures_removed, " signature records and ", r.cache_entries_removed,
                               " build-cache entries\n")));
    return 0;
}

util::Result<int> run_fsck(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto store = TRY(open_store(g, a));
    bool repair = !a.has("check");
    auto r = TRY(img::fsck(store, repair));
    std::string out;
    for (const auto &p : r.problems) out += p + "\n";
    out += cat("checked ", r.blobs_checked, " blobs, ", r.layers_checked, " layers, ", r.refs_checked, " refs: ",
               r.problems.size(), " problems, ", r.repaired, " repaired\n");
    TRY(util::write_all(1, out));
    return r.problems.size() == static_cast<size_t>(r.repaired) ? 0 : 1;
}

// Every image command takes the store as `--store DIR` (docs/cli.md).
#define BERTH_STORE_OPTION {"store", 0, true, "DIR", "the store: the device root (default /var/lib/berth)"}

const util::OptSpec kImportOptions[] = {
    BERTH_STORE_OPTION,
    {"ref-name", 0, true, "NAME", "the layout's image to import (org.opencontainers.image.ref.name)"},
    {"platform", 0, true, "OS/ARCH[/VARIANT]", "platform to select from an index (default: this host's)"},
    {"no-unpack", 0, false, nullptr, "store the blobs only; unpack on first use"},
    {"default-registry", 0, true, "HOST", "registry for a NAME without one"},
};
const util::OptSpec kExportOptions[] = {
    BERTH_STORE_OPTION,
    {"ref-name", 0, true, "NAME", "ref name in the layout's index.json (default: latest)"},
    {"platform", 0, true, "OS/ARCH[/VARIANT]", "platform to select from an index"},
};
const util::OptSpec kLsOptions[] = {BERTH_STORE_OPTION, {"json", 0, false, nullptr, "print as JSON"}};
const util::OptSpec kInspectOptions[] = {BERTH_STORE_OPTION,
                                         {"platform", 0, true, "OS/ARCH[/VARIANT]", "platform to select from an index"}};
const util::OptSpec kRmOptions[] = {BERTH_STORE_OPTION, {"default-registry", 0, true, "HOST", "registry for a NAME without one"}};
const util::OptSpec kGcOptions[] = {BERTH_STORE_OPTION};
const util::OptSpec kFsckOptions[] = {BERTH_STORE_OPTION, {"check", 0, false, nullptr, "only report; exit 1 when anything is wrong"}};

const cli::Command kLocal[] = {
    {"import", "[OPTIONS] LAYOUT NAME", "import an OCI image layout (directory or tar) as NAME", kImportOptions, 2, 2, false,
     run_import},
    {"export", "[OPTIONS] IMAGE DIR", "write a stored image as an OCI image layout directory", kExportOptions, 2, 2, false,
     run_export},
    {"ls", "[--json]", "list stored images", kLsOptions, 0, 0, false, run_ls},
    {"inspect", "[OPTIONS] IMAGE", "show an image's manifest, layers and config", kInspectOptions, 1, 1, false, run_inspect},
    {"rm", "IMAGE...", "remove image names (gc frees their content)", kRmOptions, 1, -1, false, run_rm},
    {"gc", "", "free blobs and layers no image and no container uses", kGcOptions, 0, 0, false, run_gc},
    {"fsck", "[--check]", "check the store and repair it", kFsckOptions, 0, 0, false, run_fsck},
};

std::vector<cli::Command> sub_table() {
    std::vector<cli::Command> t(std::begin(kLocal), std::end(kLocal));
    auto remote = image_remote_commands();
    t.insert(t.end(), remote.begin(), remote.end());
    return t;
}

util::Result<int> run_image(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    std::vector<std::string> args = a.positional;
    std::vector<char *> argv;
    for (auto &s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    auto table = sub_table();
    return cli::dispatch(table, "image", g, static_cast<int>(args.size()), argv.data());
}

const cli::Command kCommands[] = {
    {"image", "COMMAND [ARGS...]", "manage images: import, pull, ls, inspect, rm, gc, fsck, push, sign, verify", {}, 0, -1,
     true, run_image},
};

}  // namespace

std::span<const cli::Command> image_commands() { return kCommands; }

}  // namespace cmd
