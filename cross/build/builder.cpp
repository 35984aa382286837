// The build itself (see builder.hpp): stages in order, each from its base
// (scratch, an earlier stage, the store, a registry, an OCI layout), its
// instructions applied one by one, the layers of COPY/ADD/RUN written by
// write_layer and cached by the chain of what came before; then the config
// and manifest into the store, an index for several platforms, the tags.
#include "cross/build/builder.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <set>

#include "cross/build/containerfile.hpp"
#include "cross/build/context.hpp"
#include "cross/build/image_config.hpp"
#include "cross/build/layer.hpp"
#include "cross/build/layer_trees.hpp"
#include "cross/build/layer_view.hpp"
#include "image/config.hpp"
#include "image/fsck.hpp"
#include "image/image.hpp"
#include "image/layout.hpp"
#include "image/pull.hpp"
#include "image/reference.hpp"
#include "image/rootfs.hpp"
#include "image/unpack.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/flock.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"

namespace build {
namespace {

using util::cat;
using util::Error;
using util::quote;
using util::json::Value;

struct Layer {
    img::Descriptor desc;
    img::Digest diff_id;
};

/// What this build wrote that another build cannot have written for it:
/// what undoing a failed build may consider its own.
struct Written {
    std::set<std::string> manifests;  ///< its configs, manifests and index
    std::set<std::string> cache;      ///< build-cache entry names
    std::set<std::string> bases;      ///< manifests (and indexes) it took as bases
    std::set<std::string> refs;       ///< the names its imports and pulls of bases set
};

/// A stage as far as it is built.
struct StageState {
    img::Platform platform;
    ConfigState cfg;
    std::vector<Layer> layers;
    std::map<std::string, std::string> args;  ///< ARGs declared in the stage, with their values
    std::string chain;                        ///< the cache chain: a digest of the base and every step so far
    bool built = false;
};

std::string arch_variant(const img::Platform &p) {
    // arm64's "v8" is its only variant: say none, as the automatic args do.
    return p.architecture == "arm64" && p.variant == "v8" ? "" : p.variant;
}

std::string platform_str(const img::Platform &p) {
    std::string v = arch_variant(p);
    return v.empty() ? cat(p.os, "/", p.architecture) : cat(p.os, "/", p.architecture, "/", v);
}

/// The config object with its members in the order podman writes them.
Value podman_order(const Value &c) {
    static const char *const kOrder[] = {"User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Healthcheck",
                                         "Volumes", "WorkingDir", "Labels", "StopSignal"};
    Value out = Value::object();
    for (const char *k : kOrder)
        if (c.contains(k)) out[k] = c[k];
    for (auto it = c.begin(); it != c.end(); ++it)
        if (!out.contains(it.key())) out[it.key()] = it.value();
    return out;
}

/// A COPY here-document's text with $NAME and ${NAME} replaced from
/// `vars` (an unset one is empty) and `\$` kept as `$`; quotes are text.
util::Result<std::string> expand_heredoc(std::string_view text, const std::map<std::string, std::string> &vars) {
    std::string out;
    for (size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        if (c == '\\' && i + 1 < text.size() && text[i + 1] == '$') {
            out += '$';
            i++;
            continue;
        }
        if (c != '$' || i + 1 >= text.size()) {
            out += c;
            continue;
        }
        size_t start = i + 1;
        bool braced = text[start] == '{';
        if (braced) start++;
        size_t end = start;
        while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) end++;
        if (end == start || (braced && (end >= text.size() || text[end] != '}'))) {
            out += c;
            continue;
        }
        auto v = vars.find(std::string(text.substr(start, end - start)));
        if (v != vars.end()) out += v->second;
        i = braced ? end : end - 1;
    }
    return out;
}

class Build {
public:
    Build(img::Store &store, const BuildOptions &o, Runner &runner, const Containerfile &cf, int64_t epoch,
          std::string work, Written &written, LayerTrees &trees)
        : store_(store), o_(o), runner_(runner), cf_(cf), epoch_(epoch), work_(std::move(work)), written_(written),
          trees_(trees) {}

    ~Build() {
        for (const auto &m : mounted_) (void)::umount2(m.c_str(), MNT_DETACH);
    }

    util::Result<PlatformResult> run(const img::Platform &target);

private:
    void log(std::string_view line) { (void)util::write_all(o_.log_fd, cat(line, "\n")); }
    util::Error err(int line, std::string_view what) { return line_error(cf_, line, what); }

    std::map<std::string, std::string> automatic_args(const img::Platform &target) const;
    util::Result<size_t> target_index() const;
    std::vector<bool> needed_stages(size_t target) const;
    util::Status build_stage(size_t i);
    util::Status from(size_t i, StageState &st);
    util::Status from_image(const std::string &name, StageState &st);
    util::Status step(const Instruction &in, StageState &st);
    util::Status copy(const Instruction &in, StageState &st, const std::map<std::string, std::string> &vars);
    util::Status run_step(const Instruction &in, StageState &st);
    /// A RUN --mount value with the stage's ARGs and ENV substituted.
    util::Result<std::string> expand_run_word(const Instruction &in, const std::string &raw, const StageState &st);
    /// Adds the mount to `req`; returns what of it enters the cache key
    /// (a bind's content digest).
    util::Result<std::string> run_mount(const Instruction &in, const RunMount &m, const StageState &st, RunRequest &req);
    /// The root of a stage or image named by --from (COPY, RUN --mount), read-only.
    util::Result<std::pair<std::string, std::string>> from_root(const Instruction &in, const std::string &from,
                                                                const StageState &st);
    util::Result<std::optional<size_t>> stage_named(const std::string &name, size_t before) const;
    /// The stage's flattened root (for COPY --from and user names), built once.
    util::Result<std::string> flattened(const StageState &st, const std::string &key);
    util::Result<std::pair<uid_t, gid_t>> chown_ids(const std::string &spec, const StageState &st, int line);
    /// Adds a layer made from `tree` (or taken from the cache under `key`).
    util::Status add_layer(StageState &st, const std::string &key, const std::string &tree, const std::string &created_by);
    util::Result<std::optional<Layer>> cached(const std::string &key);
    util::Status remember(const std::string &key, const Layer &l);
    util::Result<PlatformResult> commit(const StageState &st);
    /// The stage's extracted layers, topmost first.
    std::vector<std::string> layer_roots(const StageState &st) const {
        std::vector<std::string> roots;
        for (auto it = st.layers.rbegin(); it != st.layers.rend(); ++it) roots.push_back(trees_.root(it->diff_id));
        return roots;
    }
    std::string next_dir(std::string_view what) { return cat(work_, "/", what, "-", ++counter_); }

    img::Store &store_;
    const BuildOptions &o_;
    Runner &runner_;
    const Containerfile &cf_;
    int64_t epoch_;
    std::string work_;
    Written &written_;
    LayerTrees &trees_;
    int counter_ = 0;
    img::Platform target_;
    std::map<std::string, std::string> global_;  ///< ARGs before FROM, with the automatic ones
    std::vector<StageState> stages_;
    std::map<std::string, std::string> flat_;  ///< chain -> the stage's root (an overlay or a flattened copy)
    std::vector<std::string> mounted_;         ///< read-only overlays of stages, unmounted by the destructor
    std::vector<util::UniqueFd> step_locks_;   ///< RUN --mount=type=cache,sharing=locked, for the step
    int step_no_ = 0, steps_ = 0;
};

std::map<std::string, std::string> Build::automatic_args(const img::Platform &t) const {
    img::Platform b = img::Platform::host();
    return {
        {"TARGETPLATFORM", platform_str(t)}, {"TARGETOS", t.os}, {"TARGETARCH", t.architecture},
        {"TARGETVARIANT", arch_variant(t)}, {"BUILDPLATFORM", platform_str(b)}, {"BUILDOS", b.os},
        {"BUILDARCH", b.architecture}, {"BUILDVARIANT", arch_variant(b)},
    };
}

util::Result<std::optional<size_t>> Build::stage_named(const std::string &name, size_t before) const {
    std::string lower = name;
    for (char &c : lower) c = char(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    for (size_t i = 0; i < before && i < cf_.stages.size(); i++)
        if (cf_.stages[i].name == lower) return std::optional<size_t>(i);
    if (auto n = util::parse_int<size_t>(name); n && *n < before) return std::optional<size_t>(*n);
    return std::optional<size_t>();
}

util::Result<size_t> Build::target_index() const {
    if (!o_.target) return cf_.stages.size() - 1;
    auto i = TRY(stage_named(*o_.target, cf_.stages.size()));
    if (!i) return Error::msg(cat("--target ", *o_.target, ": no stage of that name in ", cf_.file_name));
    return *i;
}

std::vector<bool> Build::needed_stages(size_t target) const {
    std::vector<bool> need(cf_.stages.size(), false);
    need[target] = true;
    for (size_t i = target + 1; i-- > 0;) {
        if (!need[i]) continue;
        auto mark = [&](const std::string &raw) {
            auto name = expand_word(raw, global_, cf_.escape);
            if (!name) return;
            if (auto s = stage_named(*name, i); s && *s) need[**s] = true;
        };
        mark(cf_.stages[i].from.args[0]);
        for (const auto &in : cf_.stages[i].body) {
            if (auto f = in.flags.find("from"); f != in.flags.end()) mark(f->second);
            for (const auto &raw : in.mounts)
                if (auto m = parse_run_mount(raw); m && !m->from.empty()) mark(m->from);
        }
    }
    return need;
}

util::Result<PlatformResult> Build::run(const img::Platform &target) {
    target_ = target;
    global_ = automatic_args(target);
    for (const auto &in : cf_.pre_from_args) {
        for (const auto &w : in.args) {
            auto [name, def] = split_assignment(w);
            if (auto b = o_.build_args.find(name); b != o_.build_args.end()) {
                global_[name] = b->second;
            } else if (def) {
                auto v = expand_word(*def, global_, cf_.escape);
                if (!v) return err(in.line, cat("ARG ", name, ": ", v.error().context));
                global_[name] = *v;
            }  // else: declared without a value, which is not set (as podman has it)
        }
    }
    size_t target_i = TRY(target_index());
    auto need = needed_stages(target_i);
    steps_ = 0;
    for (size_t i = 0; i < cf_.stages.size(); i++)
        if (need[i]) steps_ += 1 + int(cf_.stages[i].body.size());
    step_no_ = 0;
    stages_.assign(cf_.stages.size(), StageState{});
    for (size_t i = 0; i <= target_i; i++)
        if (need[i]) TRY(build_stage(i));
    return commit(stages_[target_i]);
}

util::Status Build::build_stage(size_t i) {
    StageState &st = stages_[i];
    TRY(from(i, st));
    for (const auto &in : cf_.stages[i].body) TRY(step(in, st));
    st.built = true;
    return util::ok();
}

util::Status Build::from(size_t i, StageState &st) {
    const Instruction &in = cf_.stages[i].from;
    log(cat("STEP ", ++step_no_, "/", steps_, ": FROM ", in.raw));
    auto name = expand_word(in.args[0], global_, cf_.escape);
    if (!name) return err(in.line, cat("FROM: ", name.error().context));
    if (name->empty()) return err(in.line, "FROM: the image name is empty");
    st.platform = target_;
    if (auto p = in.flags.find("platform"); p != in.flags.end()) {
        auto ps = expand_word(p->second, global_, cf_.escape);
        if (!ps) return err(in.line, cat("FROM --platform: ", ps.error().context));
        auto parsed = img::Platform::parse(*ps);
        if (!parsed) return err(in.line, cat("FROM --platform: ", parsed.error().context));
        st.platform = *parsed;
    }
    if (auto s = TRY(stage_named(*name, i))) {
        if (!stages_[*s].built) TRY(build_stage(*s));
        const StageState &base = stages_[*s];
        st.cfg = base.cfg;
        st.cfg.cmd_set = false;
        st.layers = base.layers;
        st.platform = base.platform;
        st.chain = base.chain;
        return util::ok();
    }
    if (*name == "scratch") {
        st.cfg.config["Env"] = Value::array({kDefaultPath});
        st.chain = img::Digest::of(cat("scratch\n", platform_str(st.platform), "\n", epoch_)).str();
        return util::ok();
    }
    return from_image(*name, st).context(cat(cf_.file_name, ":", in.line, ": FROM ", *name));
}

util::Status Build::from_image(const std::string &name, StageState &st) {
    std::optional<img::Digest> top;
    if (name.rfind("oci:", 0) == 0) {
        // oci:DIR[:TAG]
        std::string spec = name.substr(4), tag;
        if (size_t colon = spec.rfind(':'); colon != std::string::npos && spec.find('/', colon) == std::string::npos) {
            tag = spec.substr(colon + 1);
            spec.resize(colon);
        }
        if (!spec.empty() && spec.front() != '/') spec = util::path_join(o_.context_dir, spec);
        img::ImportOptions io;
        io.ref_name = tag;
        io.platform = st.platform;
        io.unpack = !trees_.scratch();  // else trees_ unpacks, the fast way
        std::string ref_name = cat("oci:", spec, tag.empty() ? "" : ":", tag);
        written_.refs.insert(ref_name);
        auto r = TRY(img::import_layout(store_, spec, ref_name, io));
        written_.bases.insert(r.top.str());
        top = r.manifest;
    } else {
        auto ref = img::Reference::parse(name, "localhost");
        if (ref) {
            for (const std::string &n : {img::store_ref_name(*ref), ref->str()})
                if (!top)
                    if (auto d = TRY(store_.get_ref(n))) top = *d;
        }
        if (!top) {
            auto found = img::find_image(store_, name);
            if (found) top = *found;
        }
    }
    // The stored image, when it is for the platform (an index chose it; a
    // single manifest says its platform in its config, by select_platform's rules).
    std::optional<img::StoredImage> image;
    std::string other;  // what the store holds instead, for the error
    if (top) {
        auto stored = TRY(img::load_image(store_, *top, st.platform, true));
        const img::Platform &have = stored.config.platform;
        img::ImageIndex one;
        one.manifests.push_back(img::Descriptor{std::string(img::media::kOciManifest), stored.manifest_digest, 0, have, {}});
        if (!(stored.manifest_digest == *top) || have.architecture.empty() || img::select_platform(one, st.platform))
            image = std::move(stored);
        else
            other = cat("the image is for ", platform_str(have), ", not ", platform_str(st.platform));
    }
    // Else pulled, when the reference names its registry: a short name is never sent anywhere.
    if (auto full = img::Reference::parse(name); !image && name.rfind("oci:", 0) != 0 && full && o_.pull) {
        written_.refs.insert(img::store_ref_name(*full));
        written_.refs.insert(full->str());
        auto pulled = o_.pull(*full, st.platform);
        if (!pulled) return other.empty() ? std::move(pulled).error() : std::move(pulled).error().wrap(other);
        image = TRY(img::load_image(store_, *pulled, st.platform, true));
    }
    if (!image) return Error::msg(other.empty() ? "no such image in the store, and no registry to pull it from" : other);
    written_.bases.insert(image->manifest_digest.str());
    if (top) written_.bases.insert(top->str());
    for (size_t k = 0; k < image->manifest.layers.size(); k++)
        TRY(trees_.need(image->manifest.layers[k], image->config.diff_ids.at(k)));
    auto config_text = TRY(store_.read_blob(image->manifest.config.digest));
    auto config = TRY(util::json::parse(config_text, "base image config"));
    if (config.contains("config") && config["config"].is_object()) st.cfg.config = config["config"];
    if (config.contains("history") && config["history"].is_array()) st.cfg.history = config["history"];
    for (size_t k = 0; k < image->manifest.layers.size(); k++) {
        Layer l{image->manifest.layers[k], image->config.diff_ids.at(k)};
        l.desc.annotations.clear();
        if (l.desc.media_type == img::media::kDockerLayerGzip) l.desc.media_type = std::string(img::media::kOciLayerGzip);
        st.layers.push_back(std::move(l));
    }
    if (!image->config.platform.architecture.empty()) st.platform = image->config.platform;
    st.chain = img::Digest::of(cat("image\n", image->manifest_digest.str(), "\n", epoch_)).str();
    return util::ok();
}

util::Status Build::step(const Instruction &in, StageState &st) {
    log(cat("STEP ", ++step_no_, "/", steps_, ": ", in.keyword, " ", in.raw));
    // Substitution: the stage's ARGs, then its ENV over them.
    std::map<std::string, std::string> vars = st.args;
    for (const auto &[k, v] : st.cfg.env()) vars[k] = v;
    auto chain_with = [&](const std::string &what) { st.chain = img::Digest::of(cat(st.chain, "\n", what)).str(); };
    if (in.keyword == "ARG") {
        auto autos = automatic_args(st.platform);
        for (const auto &w : in.args) {
            auto [name, def] = split_assignment(w);
            std::optional<std::string> value;
            if (auto b = o_.build_args.find(name); b != o_.build_args.end()) value = b->second;
            else if (autos.count(name)) value = autos[name];
            else if (def) {
                auto v = expand_word(*def, vars, cf_.escape);
                if (!v) return err(in.line, cat("ARG ", name, ": ", v.error().context));
                value = *v;
            } else if (global_.count(name)) {
                value = global_[name];
            }
            // An ARG without a value is declared but not set: not in RUN's
            // environment nor in the history, as podman has it.
            if (!value) continue;
            st.args[name] = *value;
            vars[name] = *value;
            chain_with(cat("ARG ", name, "=", *value));
        }
        // podman names every ARG of the stage so far, sorted.
        std::vector<std::string> names;
        for (const auto &[k, v] : st.args) names.push_back(k);
        add_history(st.cfg, epoch_, cat("/bin/sh -c #(nop) ARG ", util::join(names, " ")), true);
        return util::ok();
    }
    if (in.keyword == "COPY" || in.keyword == "ADD") return copy(in, st, vars);
    if (in.keyword == "RUN") return run_step(in, st);
    TRY(apply_config_instruction(cf_, in, vars, epoch_, st.cfg));
    chain_with(util::json::dump(st.cfg.config));
    return util::ok();
}

util::Result<std::string> Build::flattened(const StageState &st, const std::string &key) {
    if (auto it = flat_.find(key); it != flat_.end()) return it->second;
    std::string dir = next_dir("root");
    TRY(util::mkdir_p(dir, 0755));
    auto dst = TRY(util::open_file(dir, O_RDONLY | O_DIRECTORY));
    for (const auto &l : st.layers) {
        auto src = TRY(util::open_file(trees_.root(l.diff_id), O_RDONLY | O_DIRECTORY));
        TRY(img::apply_layer_copy(src.get(), dst.get()));
    }
    flat_[key] = dir;
    return dir;
}

util::Result<std::pair<uid_t, gid_t>> Build::chown_ids(const std::string &spec, const StageState &st, int line) {
    std::string user = spec, group;
    if (size_t colon = spec.find(':'); colon != std::string::npos) {
        user = spec.substr(0, colon);
        group = spec.substr(colon + 1);
    }
    auto u = util::parse_int<uint32_t>(user);
    auto g = group.empty() ? u : util::parse_int<uint32_t>(group);
    if (u && g) return std::make_pair(uid_t(*u), gid_t(*g));
    // Names: from the stage's /etc/passwd and /etc/group, read from its layers.
    std::string dir = next_dir("etc");
    TRY(util::mkdir_p(cat(dir, "/etc"), 0755));
    for (const char *name : {"passwd", "group"}) {
        auto text = TRY(read_in_layers(layer_roots(st), cat("/etc/", name), 1 << 20));
        if (text) TRY(util::atomic_write_file(cat(dir, "/etc/", name), *text, 0644, util::Durability::ProcessCrash));
    }
    auto fd = TRY(util::open_file(dir, O_RDONLY | O_DIRECTORY));
    auto ids = img::resolve_user(fd.get(), spec);
    if (!ids) return err(line, cat("--chown=", spec, ": ", ids.error().context));
    return std::make_pair(uid_t(ids->uid), gid_t(ids->gid));
}

util::Status Build::copy(const Instruction &in, StageState &st, const std::map<std::string, std::string> &vars) {
    auto expand = [&](const std::string &w) -> util::Result<std::string> {
        auto e = expand_word(w, vars, cf_.escape);
        if (!e) return err(in.line, cat(in.keyword, ": ", e.error().context));
        return *e;
    };
    CopySpec spec;
    for (size_t k = 0; k + 1 < in.args.size(); k++) spec.sources.push_back(TRY(expand(in.args[k])));
    std::string dest = TRY(expand(in.args.back()));
    if (dest.empty()) return err(in.line, cat(in.keyword, ": empty destination"));
    if (dest.front() != '/') dest = cat(st.cfg.working_dir(), st.cfg.working_dir() == "/" ? "" : "/", dest);
    // Where it lands in the stage: through its symlinked directories, into an existing directory.
    auto where = resolve_in_layers(layer_roots(st), dest);
    if (!where) return err(in.line, cat(in.keyword, ": ", quote(dest), ": ", where.error().message()));
    bool into_dir = dest.back() == '/' || where->is_dir;
    spec.dest = where->path == "/" ? "/" : cat(where->path, into_dir ? "/" : "");
    spec.unpack_archives = in.keyword == "ADD";
    spec.epoch = epoch_;
    std::string flags_text;
    if (auto c = in.flags.find("chown"); c != in.flags.end()) {
        auto ids = TRY(chown_ids(TRY(expand(c->second)), st, in.line));
        spec.uid = ids.first;
        spec.gid = ids.second;
        flags_text += cat(" chown=", ids.first, ":", ids.second);
    }
    if (auto c = in.flags.find("chmod"); c != in.flags.end()) {
        auto m = util::parse_int<uint32_t>(TRY(expand(c->second)), 8);
        if (!m || *m > 07777) return err(in.line, cat(in.keyword, " --chmod=", c->second, ": not an octal mode"));
        spec.mode = mode_t(*m);
        flags_text += cat(" chmod=", c->second);
    }
    // ADD's URLs are fetched; the rest comes from the context or --from.
    std::vector<std::string> urls;
    if (in.keyword == "ADD") {
        std::vector<std::string> local;
        for (auto &s : spec.sources)
            (s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0 ? urls : local).push_back(std::move(s));
        spec.sources = std::move(local);
        if (urls.size() + spec.sources.size() > 1 && spec.dest.back() != '/')
            return err(in.line, "ADD: several sources need a destination directory ending in /");
    }
    std::optional<std::string> checksum;
    if (auto c = in.flags.find("checksum"); c != in.flags.end()) {
        if (urls.size() != 1 || !spec.sources.empty()) return err(in.line, "ADD --checksum: takes exactly one URL source");
        checksum = TRY(expand(c->second));
    }
    // Where from: the context, another stage, or an image.
    SourceRoot src;
    std::string from_text;
    if (auto f = in.flags.find("from"); f != in.flags.end()) {
        auto [root, chain] = TRY(from_root(in, TRY(expand(f->second)), st));
        src = TRY(open_root(root, cat("stage ", f->second)));
        from_text = cat(" from=", chain);
    } else if (!spec.sources.empty()) {
        src = TRY(open_context(o_.context_dir));
    }
    std::string tree = next_dir("copy");
    TRY(util::mkdir_p(tree, 0755));
    // Here-documents as sources (`COPY <<EOF /path`): files made from their text.
    std::vector<std::string> docs;
    for (auto it = spec.sources.begin(); it != spec.sources.end();) {
        auto h = heredoc_marker(*it);
        if (!h) {
            ++it;
            continue;
        }
        docs.push_back(h->name);
        it = spec.sources.erase(it);
    }
    if (!docs.empty() && (!spec.sources.empty() || !urls.empty()))
        return err(in.line, cat(in.keyword, ": here-documents and other sources in one instruction are not supported"));
    for (const auto &name : docs) {
        auto h = std::find_if(in.heredocs.begin(), in.heredocs.end(), [&](const Heredoc &d) { return d.name == name; });
        if (h == in.heredocs.end()) return err(in.line, cat(in.keyword, ": no here-document ", name));
        if (docs.size() > 1 && spec.dest.back() != '/')
            return err(in.line, cat(in.keyword, ": several here-documents need a destination directory ending in /"));
        std::string text = h->expand ? TRY(expand_heredoc(h->content, vars)) : h->content;
        std::string dest_path = spec.dest.back() == '/' ? cat(spec.dest, name) : spec.dest;
        std::string path = cat(tree, dest_path);
        TRY(util::mkdir_p(util::dirname(path), 0755));
        TRY(util::atomic_write_file(path, text, spec.mode.value_or(0644), util::Durability::ProcessCrash));
        if (::chmod(path.c_str(), spec.mode.value_or(0644)) < 0 || ::chown(path.c_str(), spec.uid.value_or(0), spec.gid.value_or(0)) < 0)
            return err(in.line, cat(in.keyword, ": ", quote(dest_path), ": ", std::strerror(errno)));
        timespec ts[2] = {{static_cast<time_t>(epoch_), 0}, {static_cast<time_t>(epoch_), 0}};
        (void)::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW);
    }
    for (const auto &u : urls)
        if (auto fetched = stage_url(u, checksum, spec, tree); !fetched)
            return err(in.line, cat(in.keyword, ": ", fetched.error().message()));
    auto digest = spec.sources.empty() ? tree_digest(tree, epoch_) : stage_copy(src, spec, tree);
    if (!digest) return err(in.line, cat(in.keyword, ": ", digest.error().message()));
    std::string kind = spec.sources.size() + urls.size() > 1 ? "multi" : "file";
    if (spec.sources.size() == 1) {
        struct stat sb;
        auto p = util::open_in_root(src.fd.get(), spec.sources[0], O_PATH, 0, util::Scope::InRoot);
        if (p && fstat(p->get(), &sb) == 0 && S_ISDIR(sb.st_mode)) kind = "dir";
    }
    std::string hex = digest->substr(7);
    std::string created_by = cat("/bin/sh -c #(nop) ", in.keyword, " ", kind, ":", hex, " in ", dest, " ");
    std::string key = img::Digest::of(cat(st.chain, "\n", created_by, flags_text, from_text)).str();
    TRY(add_layer(st, key, tree, created_by));
    (void)util::remove_tree(tree);
    return util::ok();
}

util::Result<std::pair<std::string, std::string>> Build::from_root(const Instruction &in, const std::string &from,
                                                                   const StageState &st) {
    size_t here = size_t(&st - stages_.data());
    std::optional<size_t> s = TRY(stage_named(from, here));
    StageState image_state;
    const StageState *other = nullptr;
    if (s) {
        // A stage named through a variable the planner could not resolve: build it now.
        if (!stages_[*s].built) TRY(build_stage(*s));
        other = &stages_[*s];
    } else {
        image_state.platform = st.platform;
        TRY(from_image(from, image_state).context(cat(cf_.file_name, ":", in.line, ": ", in.keyword, " --from=", from)));
        other = &image_state;
    }
    if (auto it = flat_.find(other->chain); it != flat_.end()) return std::make_pair(it->second, other->chain);
    // The stage's layers stacked by a read-only overlay (nothing copied);
    // a flattened copy where this process cannot mount.
    if (o_.scratch_tmpfs) {
        std::vector<std::string> lowers = layer_roots(*other);
        std::string empty = next_dir("empty"), dir = next_dir("from");
        TRY(util::mkdir_p(empty, 0755));
        TRY(util::mkdir_p(dir, 0755));
        lowers.push_back(empty);  // overlay wants two lower directories without an upper one
        std::string options = cat("lowerdir=", util::join(lowers, ":"));
        bool plain = std::all_of(lowers.begin(), lowers.end(),
                                 [](const std::string &l) { return l.find_first_of(",:\\") == std::string::npos; });
        if (plain && options.size() < 4000 &&
            ::mount("overlay", dir.c_str(), "overlay", MS_RDONLY | MS_NODEV | MS_NOSUID, options.c_str()) == 0) {
            mounted_.push_back(dir);
            flat_[other->chain] = dir;
            return std::make_pair(dir, other->chain);
        }
    }
    return std::make_pair(TRY(flattened(*other, other->chain)), other->chain);
}

util::Result<std::string> Build::expand_run_word(const Instruction &in, const std::string &raw, const StageState &st) {
    std::map<std::string, std::string> vars = st.args;
    for (const auto &[k, v] : st.cfg.env()) vars[k] = v;
    auto e = expand_word(raw, vars, cf_.escape);
    if (!e) return err(in.line, cat("RUN --mount: ", e.error().context));
    return *e;
}

util::Result<std::string> Build::run_mount(const Instruction &in, const RunMount &m, const StageState &st, RunRequest &req) {
    std::string what = cat("RUN --mount=type=", m.type, ",target=", m.target);
    if (m.type == "cache") {
        // Kept in the store by id between builds; never in a layer (build prune removes it).
        std::string dir = cat(store_.root(), "/build-cache-mounts/", img::Digest::of(m.id).hex());
        if (!util::path_exists(dir)) {
            TRY(util::mkdir_p(dir, 0700));
            if (::chown(dir.c_str(), m.uid, m.gid) < 0 || ::chmod(dir.c_str(), m.mode) < 0)
                return err(in.line, cat(what, ": ", std::strerror(errno)));
        }
        (void)::utimensat(AT_FDCWD, dir.c_str(), nullptr, 0);  // its last use
        if (m.sharing != "shared") {
            // locked: one step at a time; private: a fresh directory while another step holds it.
            auto lock = util::lock_file(cat(dir, ".lock"), m.sharing == "locked" ? LOCK_EX : LOCK_EX | LOCK_NB);
            if (!lock && m.sharing == "private") {
                dir = next_dir("cache");
                TRY(util::mkdir_p(dir, 0700));
                if (::chown(dir.c_str(), m.uid, m.gid) < 0 || ::chmod(dir.c_str(), m.mode) < 0)
                    return err(in.line, cat(what, ": ", std::strerror(errno)));
            } else if (!lock) {
                return err(in.line, cat(what, ": ", lock.error().message()));
            } else {
                step_locks_.push_back(std::move(*lock));
            }
        }
        req.mounts.push_back({dir, m.target, m.readonly});
        return std::string();
    }
    // bind: a path of the context, or of a stage's or image's root; read-only
    // unless rw, whose writes go to a copy and are thrown away.
    std::string root = o_.context_dir, chain;
    if (!m.from.empty()) std::tie(root, chain) = TRY(from_root(in, m.from, st));
    auto rootfd = TRY(util::open_file(root, O_RDONLY | O_DIRECTORY));
    std::string source = m.source.empty() ? "." : m.source;
    auto found = util::open_in_root(rootfd.get(), source, O_PATH, 0, m.from.empty() ? util::Scope::Beneath : util::Scope::InRoot);
    if (!found) return err(in.line, cat(what, ": source ", quote(source), ": ", found.error().message()));
    char resolved[4096];
    ssize_t len = ::readlink(cat("/proc/self/fd/", found->get()).c_str(), resolved, sizeof resolved - 1);
    if (len < 0) return err(in.line, cat(what, ": ", std::strerror(errno)));
    std::string path(resolved, size_t(len));
    struct stat sb;
    if (::fstat(found->get(), &sb) < 0) return err(in.line, cat(what, ": ", std::strerror(errno)));
    std::string key;
    if (S_ISDIR(sb.st_mode)) {
        key = TRY(tree_digest(path, epoch_));
    } else {
        key = img::Digest::of(TRY(util::read_file(path))).str();
    }
    if (!m.readonly) {
        std::string copy = next_dir("bind");
        if (S_ISDIR(sb.st_mode)) {
            TRY(util::mkdir_p(copy, 0755));
            auto dst = TRY(util::open_file(copy, O_RDONLY | O_DIRECTORY));
            auto src = TRY(util::open_file(path, O_RDONLY | O_DIRECTORY));
            TRY(img::apply_layer_copy(src.get(), dst.get()));
        } else {
            TRY(util::atomic_write_file(copy, TRY(util::read_file(path)), sb.st_mode & 07777, util::Durability::ProcessCrash));
        }
        path = copy;
    }
    req.mounts.push_back({path, m.target, m.readonly});
    return cat(" ", key, chain.empty() ? "" : cat(" from=", chain));
}

util::Status Build::run_step(const Instruction &in, StageState &st) {
    RunRequest req;
    std::string dir = next_dir("run");
    if (in.json_form) {
        req.argv = in.args;
    } else {
        req.argv = st.cfg.shell;
        req.argv.push_back(in.args[0]);
    }
    std::string heredoc_text;  // the documents, as they follow the line
    for (const auto &h : in.heredocs) heredoc_text += cat("\n", h.content, h.name);
    if (!in.heredocs.empty() && !in.json_form) {
        auto only = heredoc_marker(util::trim(in.args[0]));
        if (in.heredocs.size() == 1 && only && only->name == in.heredocs[0].name) {
            // `RUN <<EOF` alone: the document is the script, a file run by
            // the shell (its #! line honoured, else the shell reads it), as
            // BuildKit does; the file is bound in, not part of the layer.
            std::string pipes = cat(dir, "/pipes");
            TRY(util::mkdir_p(pipes, 0755));
            TRY(util::atomic_write_file(cat(pipes, "/", in.heredocs[0].name), in.heredocs[0].content, 0755,
                                        util::Durability::ProcessCrash));
            // BuildKit binds it at /dev/pipes; berth's runtime owns /dev, so
            // the file is bound at /.berth-heredoc (its mount point is taken
            // out of the layer again, as every mount point the step made).
            req.mounts.push_back({pipes, "/.berth-heredoc", true});
            req.argv.back() = cat("/.berth-heredoc/", in.heredocs[0].name);
        } else {
            // Documents fed to a command (`RUN python3 <<EOF`, `cat <<EOF >f`): the shell reads them.
            req.argv.back() += heredoc_text;
        }
    }
    std::string mounts_text;
    for (const auto &raw : in.mounts) {
        auto spec = TRY(expand_run_word(in, raw, st));
        auto m = parse_run_mount(spec);
        if (!m) return err(in.line, cat("RUN --mount=", spec, ": ", m.error().message()));
        mounts_text += cat("\n--mount=", spec, TRY(run_mount(in, *m, st, req)));
    }
    // The environment: the config's Env, and the stage's ARGs where Env does not set them.
    auto env = st.cfg.env();
    std::vector<std::string> arg_env;
    for (const auto &[k, v] : st.args) {
        if (!env.count(k)) arg_env.push_back(cat(k, "=", v));
    }
    if (st.cfg.config.contains("Env"))
        for (const auto &e : st.cfg.config["Env"]) req.env.push_back(e.get<std::string>());
    req.env.insert(req.env.end(), arg_env.begin(), arg_env.end());
    if (!env.count("PATH")) req.env.insert(req.env.begin(), kDefaultPath);
    req.cwd = st.cfg.working_dir();
    req.user = st.cfg.user();
    req.platform = platform_str(st.platform);
    req.stdout_fd = o_.log_fd;
    // podman's history: the ARGs passed, then /bin/sh -c and the text as written (whatever SHELL or form).
    std::string created_by = cat("/bin/sh -c ", in.raw, heredoc_text);
    if (!arg_env.empty()) created_by = cat("|", arg_env.size(), " ", util::join(arg_env, " "), " ", created_by);
    std::string key = img::Digest::of(cat(st.chain, "\nRUN ", platform_str(st.platform), "\n", util::join(req.argv, "\n"),
                                          "\n", created_by, "\n",
                                          util::join(req.env, "\n"), "\n", req.cwd, "\n", req.user, mounts_text)).str();
    if (auto hit = TRY(cached(key)); hit && !o_.no_cache) return add_layer(st, key, "", created_by);
    req.lower_dirs = layer_roots(st);
    req.upper_dir = cat(dir, "/upper");
    req.work_dir = cat(dir, "/work");
    TRY(util::mkdir_p(req.upper_dir, 0755));
    TRY(util::mkdir_p(req.work_dir, 0755));
    if (req.lower_dirs.empty()) {
        // overlayfs needs a lower directory: an empty one for FROM scratch.
        req.lower_dirs.push_back(cat(dir, "/empty"));
        TRY(util::mkdir_p(req.lower_dirs.back(), 0755));
    }
    auto ran = runner_.run(req);
    step_locks_.clear();
    if (!ran) return err(in.line, cat("RUN: ", ran.error().message()));
    TRY(add_layer(st, key, req.upper_dir, created_by));
    (void)util::remove_tree(dir);
    return util::ok();
}

util::Result<std::optional<Layer>> Build::cached(const std::string &key) {
    std::string path = cat(store_.root(), "/build-cache/", key.substr(7));
    auto text = util::read_file(path, 1 << 16);
    if (!text) return std::optional<Layer>();
    auto v = util::json::parse(*text, "cache entry");
    if (!v) return std::optional<Layer>();
    auto digest = img::Digest::parse(v->value("digest", ""));
    auto diff_id = img::Digest::parse(v->value("diff_id", ""));
    if (!digest || !diff_id || !store_.has_blob(*digest)) return std::optional<Layer>();
    (void)::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // its last use, for `berth build prune`
    Layer l;
    l.desc.media_type = std::string(img::media::kOciLayerGzip);
    l.desc.digest = *digest;
    l.desc.size = v->value("size", int64_t(0));
    l.diff_id = *diff_id;
    return std::optional<Layer>(l);
}

util::Status Build::remember(const std::string &key, const Layer &l) {
    std::string dir = cat(store_.root(), "/build-cache");
    TRY(util::mkdir_p(dir, 0700));
    Value v = Value::object();
    v["digest"] = l.desc.digest.str();
    v["diff_id"] = l.diff_id.str();
    v["size"] = l.desc.size;
    written_.cache.insert(key.substr(7));
    return util::atomic_write_file(cat(dir, "/", key.substr(7)), util::json::dump(v) + "\n");
}

util::Status Build::add_layer(StageState &st, const std::string &key, const std::string &tree, const std::string &created_by) {
    std::optional<Layer> layer;
    if (!o_.no_cache) layer = TRY(cached(key));
    if (layer) {
        log("--> Using cache " + layer->desc.digest.str());
    } else {
        if (tree.empty()) return Error::msg("internal: no tree for an uncached layer");
        auto blob = TRY(write_layer(store_, tree, epoch_));
        Layer l;
        l.desc.media_type = std::string(img::media::kOciLayerGzip);
        l.desc.digest = blob.digest;
        l.desc.size = int64_t(blob.size);
        l.diff_id = blob.diff_id;
        TRY(remember(key, l));
        layer = l;
        log("--> " + blob.digest.str());
    }
    // Its tree for the steps after it: scratch first, the store's copy by a
    // worker (its syncfs off this path), as for the base layers.
    TRY(trees_.need(layer->desc, layer->diff_id));
    st.layers.push_back(*layer);
    add_history(st.cfg, epoch_, created_by, false);
    st.chain = key;
    return util::ok();
}

util::Result<PlatformResult> Build::commit(const StageState &st) {
    Value config = Value::object();
    config["created"] = rfc3339(epoch_);
    config["architecture"] = st.platform.architecture;
    config["os"] = st.platform.os;
    if (!arch_variant(st.platform).empty()) config["variant"] = arch_variant(st.platform);
    config["config"] = podman_order(st.cfg.config);
    Value diff_ids = Value::array();
    for (const auto &l : st.layers) diff_ids.push_back(l.diff_id.str());
    config["rootfs"] = Value{{"type", "layers"}, {"diff_ids", diff_ids}};
    config["history"] = st.cfg.history;
    std::string config_text = util::json::dump(config);
    img::Digest config_digest = img::Digest::of(config_text);
    written_.manifests.insert(config_digest.str());
    TRY(store_.put_blob(config_digest, config_text));

    Value manifest = Value::object();
    manifest["schemaVersion"] = 2;
    manifest["mediaType"] = img::media::kOciManifest;
    manifest["config"] = Value{{"mediaType", img::media::kOciConfig}, {"digest", config_digest.str()}, {"size", config_text.size()}};
    Value layers = Value::array();
    for (const auto &l : st.layers)
        layers.push_back(Value{{"mediaType", l.desc.media_type}, {"digest", l.desc.digest.str()}, {"size", l.desc.size}});
    manifest["layers"] = layers;
    std::string manifest_text = util::json::dump(manifest);
    img::Digest manifest_digest = img::Digest::of(manifest_text);
    written_.manifests.insert(manifest_digest.str());
    TRY(store_.put_blob(manifest_digest, manifest_text));
    return PlatformResult{platform_str(st.platform), manifest_digest, config_digest};
}

/// Writes an OCI layout at `dir` holding `top` (a manifest or an index) and everything it names.
util::Status write_oci_layout(img::Store &store, const img::Digest &top, const std::string &media_type, int64_t size,
                              const std::string &dir, const std::vector<std::string> &tags) {
    TRY(util::mkdir_p(cat(dir, "/blobs/sha256"), 0755));
    std::set<std::string> done;
    auto copy_blob = [&](const img::Digest &d) -> util::Status {
        if (!done.insert(d.str()).second) return util::ok();
        std::string path = cat(dir, "/blobs/sha256/", d.hex());
        if (util::path_exists(path)) return util::ok();
        auto in = TRY(store.open_blob(d));
        auto out = TRY(util::AtomicFile::create(path, 0644));
        char buf[65536];
        for (;;) {
            ssize_t n = read(in.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return Error::from_errno("read a blob");
            if (n == 0) break;
            TRY(out.write(std::string_view(buf, size_t(n))));
        }
        return out.commit();
    };
    auto copy_manifest = [&](const img::Digest &m) -> util::Status {
        auto text = TRY(store.read_blob(m));
        auto parsed = TRY(img::parse_manifest(text));
        TRY(copy_blob(parsed.config.digest));
        for (const auto &l : parsed.layers) TRY(copy_blob(l.digest));
        return copy_blob(m);
    };
    if (media_type == img::media::kOciIndex) {
        auto index = TRY(img::parse_index(TRY(store.read_blob(top))));
        for (const auto &m : index.manifests) TRY(copy_manifest(m.digest));
        TRY(copy_blob(top));
    } else {
        TRY(copy_manifest(top));
    }
    Value manifests = Value::array();
    std::vector<std::string> names = tags;
    if (names.empty()) names.push_back("");
    for (const auto &t : names) {
        Value d = Value{{"mediaType", media_type}, {"digest", top.str()}, {"size", size}};
        if (!t.empty()) d["annotations"] = Value{{"org.opencontainers.image.ref.name", t}};
        manifests.push_back(std::move(d));
    }
    Value index = Value{{"schemaVersion", 2}, {"manifests", manifests}};
    TRY(util::atomic_write_file(cat(dir, "/oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}"));
    return util::atomic_write_file(cat(dir, "/index.json"), util::json::dump(index));
}

/// What the store held before a build: a failed build removes what it
/// added (blobs, unpacked layers, refs of imported or pulled bases, cache
/// entries), so a refused Containerfile leaves the store as it was. Other
/// builds, pulls and imports may have added to the store meanwhile, and
/// may use what this build added (the same base): the undo takes the
/// store's exclusive lock, so that none of them is still at work (each
/// holds the lock shared), and removes only what nothing else reaches:
/// no ref, no container, no cache entry of another build, no manifest
/// another build wrote.
class StoreSnapshot {
public:
    static util::Result<StoreSnapshot> take(img::Store &store) {
        StoreSnapshot s(store);
        for (const auto &d : TRY(store.list_blobs())) s.blobs_.insert(d.str());
        s.layers_ = names(cat(store.root(), "/layers"));
        s.cache_ = names(cat(store.root(), "/build-cache"));
        for (const auto &[n, d] : TRY(store.list_refs())) s.refs_.insert(n);
        return s;
    }

    /// The caller no longer holds the store's lock shared.
    void restore(const Written &w) {
        auto lock = store_.lock_exclusive();
        if (!lock) return;  // nothing removed rather than something in use
        std::string cache_dir = cat(store_.root(), "/build-cache");
        for (const auto &n : w.cache)
            if (!cache_.count(n)) (void)unlink(cat(cache_dir, "/", n).c_str());
        if (auto refs = store_.list_refs())
            for (const auto &[n, d] : *refs)
                if (!refs_.count(n) && w.refs.count(n) && w.bases.count(d.str())) (void)store_.remove_ref(n);
        auto use = img::in_use(store_);
        if (!use) return;
        for (const auto &n : names(cache_dir)) {
            auto text = util::read_file(cat(cache_dir, "/", n), 1 << 16);
            auto v = text ? util::json::parse(*text, "cache entry") : util::Result<Value>(Error::msg("unreadable"));
            if (!v || !v->is_object()) continue;
            use->blobs.insert(v->value("digest", ""));
            if (auto id = img::Digest::parse(v->value("diff_id", ""))) use->layers.insert(std::string(id->hex()));
        }
        auto blobs = store_.list_blobs();
        if (!blobs) return;
        std::vector<img::Digest> added;
        for (const auto &d : *blobs)
            if (!blobs_.count(d.str())) added.push_back(d);
        // What other builds wrote in the meantime: their manifests, tagged or not.
        for (const auto &d : added) {
            if (w.manifests.count(d.str()) || w.bases.count(d.str()) || store_.blob_size(d).value_or(UINT64_MAX) > (4 << 20))
                continue;
            auto text = store_.read_blob(d, 4 << 20);
            if (text && img::manifest_kind(*text)) use->mark_manifest(store_, d);
        }
        for (const auto &n : names(cat(store_.root(), "/layers")))
            if (!layers_.count(n) && n.front() != '.' && !use->layers.count(n))
                (void)util::remove_tree(cat(store_.root(), "/layers/", n));
        for (const auto &d : added)
            if (!use->blobs.count(d.str()) && !util::lock_busy(cat(store_.root(), "/ingest/", d.hex(), ".lock")))
                (void)store_.remove_blob(d);
    }

private:
    explicit StoreSnapshot(img::Store &store) : store_(store) {}
    static std::set<std::string> names(const std::string &dir) {
        auto l = util::list_dir(dir);
        return l ? std::set<std::string>(l->begin(), l->end()) : std::set<std::string>();
    }
    img::Store &store_;
    std::set<std::string> blobs_, layers_, cache_, refs_;
};

}  // namespace

namespace {

/// Whether some stage runs a RUN step: only then are base layers worth a
/// scratch copy (layer_trees.hpp); COPY alone reads little of them.
bool needs_runs(const Containerfile &cf) {
    for (const auto &st : cf.stages)
        for (const auto &in : st.body)
            if (in.keyword == "RUN") return true;
    return false;
}

util::Result<BuildResult> build_into(img::Store &store, const BuildOptions &options, Runner &runner, Written &written) {
    // The Containerfile: -f, else Containerfile, else Dockerfile in the context.
    std::string file = options.containerfile;
    if (file.empty()) {
        file = util::path_join(options.context_dir, "Containerfile");
        if (!util::path_exists(file)) file = util::path_join(options.context_dir, "Dockerfile");
    }
    auto text = TRY_CTX(util::read_file(file, 4 << 20), "read the Containerfile");
    auto cf = TRY(parse_containerfile(text, util::basename(file)));

    int64_t epoch = 0;
    if (options.source_date_epoch) {
        epoch = *options.source_date_epoch;
    } else if (const char *e = getenv("SOURCE_DATE_EPOCH"); e && *e) {
        auto v = util::parse_int<int64_t>(e);
        if (!v || *v < 0) return Error::msg(cat("SOURCE_DATE_EPOCH=", e, ": not a number of seconds"));
        epoch = *v;
    }
    std::vector<img::Platform> platforms;
    for (const auto &p : options.platforms) platforms.push_back(TRY(img::Platform::parse(p)));
    if (platforms.empty()) platforms.push_back(img::Platform::host());
    std::vector<std::string> tags;
    for (const auto &t : options.tags) {
        auto ref = TRY_CTX(img::Reference::parse(t, "localhost"), cat("tag ", quote(t)));
        tags.push_back(img::store_ref_name(ref));
    }

    std::string work = options.work_root.empty() ? cat(store.root(), "/build-tmp/", getpid()) : options.work_root;
    TRY(util::mkdir_p(work, 0700));
    std::string scratch = cat(work, "/scratch");
    bool scratch_mounted = options.scratch_tmpfs && needs_runs(cf) && mount_scratch(scratch);
    util::ScopeGuard cleanup([&] {
        if (scratch_mounted) (void)::umount2(scratch.c_str(), MNT_DETACH);
        (void)util::remove_tree(work);
        if (options.work_root.empty()) (void)rmdir(cat(store.root(), "/build-tmp").c_str());
    });

    LayerTrees trees(store, scratch_mounted ? scratch : "");
    BuildResult out;
    for (const auto &p : platforms) {
        Build b(store, options, runner, cf, epoch, cat(work, "/", out.images.size()), written, trees);
        auto one = b.run(p);
        if (!one) return platforms.size() > 1 ? std::move(one).error().wrap(cat("build for ", p.str())) : std::move(one).error();
        out.images.push_back(std::move(*one));
    }
    img::Digest top = out.images[0].manifest;
    std::string top_type(img::media::kOciManifest);
    int64_t top_size = int64_t(TRY(store.blob_size(top)));
    if (platforms.size() > 1) {
        Value manifests = Value::array();
        for (size_t k = 0; k < out.images.size(); k++) {
            const auto &im = out.images[k];
            Value plat = Value{{"architecture", platforms[k].architecture}, {"os", platforms[k].os}};
            if (!arch_variant(platforms[k]).empty()) plat["variant"] = arch_variant(platforms[k]);
            manifests.push_back(Value{{"mediaType", img::media::kOciManifest},
                                      {"digest", im.manifest.str()},
                                      {"size", TRY(store.blob_size(im.manifest))},
                                      {"platform", plat}});
        }
        Value index = Value{{"schemaVersion", 2}, {"mediaType", img::media::kOciIndex}, {"manifests", manifests}};
        std::string text = util::json::dump(index);
        top = img::Digest::of(text);
        written.manifests.insert(top.str());
        TRY(store.put_blob(top, text));
        out.index = top;
        top_type = std::string(img::media::kOciIndex);
        top_size = int64_t(text.size());
    }
    if (options.oci_output_dir) {
        std::vector<std::string> names;
        for (const auto &t : options.tags) names.push_back(TRY(img::Reference::parse(t, "localhost")).tag);
        TRY_CTX(write_oci_layout(store, top, top_type, top_size, *options.oci_output_dir, names),
                cat("write the OCI layout ", quote(*options.oci_output_dir)));
    }
    TRY(trees.finish());  // the store's own copies of the base layers
    for (const auto &t : tags) TRY(store.set_ref(t, top));
    return out;
}

}  // namespace

util::Result<BuildResult> build(img::Store &store, const BuildOptions &options, Runner &runner) {
    // Shared for the whole build, as pulls and imports hold it: gc and
    // `berth build prune` (exclusive) wait, and collect nothing the build
    // wrote before it names it.
    auto shared = TRY_CTX(store.lock_shared(), "build");
    auto before = TRY(StoreSnapshot::take(store));
    Written written;
    auto out = build_into(store, options, runner, written);
    if (!out) {
        shared.reset();
        before.restore(written);
    }
    return out;
}

}  // namespace build
