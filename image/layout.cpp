// OCI image layout import and export (see layout.hpp).
#include "image/layout.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/config.hpp"
#include "image/unpack.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using util::cat;
using util::Error;
using util::quote;
namespace json = util::json;

util::Result<util::UniqueFd> open_blob_in(int layout, const Digest &d) {
    return util::open_in_root(layout, cat("blobs/sha256/", d.hex()), O_RDONLY, 0, util::Scope::Beneath)
        .context(cat("layout blob ", d.str()));
}

util::Result<std::string> read_blob_in(int layout, const Digest &d, size_t limit) {
    auto fd = TRY(open_blob_in(layout, d));
    auto text = TRY_CTX(util::read_all(fd.get(), limit), cat("layout blob ", d.str()));
    if (!(Digest::of(text) == d)) return Error::msg(cat("layout blob ", d.str(), ": content does not match its digest"));
    return text;
}

util::Status copy_blob(Store &store, int layout, const Digest &d, int &count) {
    if (store.has_blob(d)) return util::ok();
    auto fd = TRY(open_blob_in(layout, d));
    TRY(store.put_blob_fd(d, fd.get()));
    ++count;
    return util::ok();
}

/// A layer blob copied and unpacked in one pass: the bytes read from the
/// layout go to the store and, through a StreamingUnpack (its own thread:
/// inflate, diff_id and extraction beside the copy's hashing and writing),
/// to the layer's temporary tree, which becomes the layer only once the
/// blob is verified and stored. A stored blob or unpacked layer is not
/// done again.
util::Status copy_and_unpack(Store &store, int layout, const Descriptor &layer, const Digest &diff_id, int &count,
                             const UnpackLimits &limits) {
    if (store.has_blob(layer.digest)) return util::ok();  // unpack_image unpacks it from the store
    auto unpack = TRY(StreamingUnpack::start(store, layer, diff_id, limits));
    if (!unpack) return copy_blob(store, layout, layer.digest, count);
    auto fd = TRY(open_blob_in(layout, layer.digest));
    TRY(store.put_blob_fd(layer.digest, fd.get(), [&](std::string_view chunk) { return unpack->feed(chunk); }));
    ++count;
    return unpack->commit();
}

}  // namespace

util::Result<ImportResult> import_layout(Store &store, const std::string &path, const std::string &name, const ImportOptions &opts) {
    std::string what = cat("import ", quote(path));
    auto shared = TRY_CTX(store.lock_shared(), what);
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) return Error::from_errno(what);
    std::string tmpdir;
    util::ScopeGuard cleanup([&] {
        if (!tmpdir.empty()) (void)util::remove_tree(tmpdir);
    });
    util::UniqueFd layout;
    if (S_ISDIR(st.st_mode)) {
        layout = TRY_CTX(util::open_file(path, O_RDONLY | O_DIRECTORY), what);
    } else {
        // A tar of a layout: unpack it (with every containment check) under the store.
        tmpdir = cat(store.root(), "/ingest/.import-", ::getpid());
        TRY_CTX(util::remove_tree(tmpdir), what);
        TRY_CTX(util::mkdir_p(tmpdir, 0700), what);
        layout = TRY_CTX(util::open_file(tmpdir, O_RDONLY | O_DIRECTORY), what);
        auto in = TRY_CTX(util::open_file(path, O_RDONLY), what);
        char magic[2] = {};
        Compression comp = Compression::None;
        if (::pread(in.get(), magic, 2, 0) == 2 && magic[0] == '\x1f' && magic[1] == '\x8b') comp = Compression::Gzip;
        TRY_CTX(unpack_stream(in.get(), comp, layout.get(), opts.limits), what);
    }
    auto marker = TRY_CTX(util::open_in_root(layout.get(), "oci-layout", O_RDONLY, 0, util::Scope::Beneath),
                          cat(what, ": not an OCI image layout"));
    auto mtext = TRY_CTX(util::read_all(marker.get(), 1 << 16), what);
    auto mv = TRY_CTX(json::parse(mtext, "oci-layout"), what);
    TRY_CTX(json::expect_object(mv, "oci-layout"), what);
    auto version = TRY_CTX(json::req_string(mv, "imageLayoutVersion", ""), cat(what, ": oci-layout"));
    if (!version.starts_with("1.")) return Error::msg(cat(what, ": unsupported layout version ", quote(version)));

    auto ifd = TRY_CTX(util::open_in_root(layout.get(), "index.json", O_RDONLY, 0, util::Scope::Beneath), what);
    auto itext = TRY_CTX(util::read_all(ifd.get(), 4 << 20), what);
    auto index = TRY_CTX(parse_index(itext), cat(what, ": index.json"));
    const Descriptor *entry = nullptr;
    for (const auto &d : index.manifests) {
        auto it = d.annotations.find("org.opencontainers.image.ref.name");
        std::string rn = it == d.annotations.end() ? "" : it->second;
        if (!opts.ref_name.empty() && rn != opts.ref_name) continue;
        if (entry) return Error::msg(cat(what, ": the layout holds several images; choose one by its ref name"));
        entry = &d;
    }
    if (!entry)
        return Error::msg(opts.ref_name.empty() ? cat(what, ": the layout holds no image")
                                                : cat(what, ": no image named ", quote(opts.ref_name)));
    ImportResult res{entry->digest, entry->digest, 0};
    int l = layout.get();
    // The top blob (index or manifest), then the platform manifest, config, layers.
    std::string top = TRY_CTX(read_blob_in(l, entry->digest, 4 << 20), what);
    auto kind = TRY_CTX(manifest_kind(top, entry->media_type), what);
    if (kind == ManifestKind::Index) {
        auto load = [&](const Descriptor &d) { return read_blob_in(l, d.digest, 4 << 20); };
        res.manifest = TRY_CTX(resolve_platform(entry->digest, top, opts.platform, load), what).desc.digest;
    }
    std::string mtext2 = TRY_CTX(read_blob_in(l, res.manifest, 4 << 20), what);
    auto m = TRY_CTX(parse_manifest(mtext2), what);
    TRY_CTX(copy_blob(store, l, m.config.digest, res.blobs_stored), what);
    std::vector<Digest> diff_ids;
    if (opts.unpack) {
        auto ctext = TRY_CTX(store.read_blob(m.config.digest, 16 << 20), what);
        diff_ids = TRY_CTX(parse_image_config(ctext), what).diff_ids;
        if (diff_ids.size() != m.layers.size())
            return Error::msg(cat(what, ": the config names ", diff_ids.size(), " layers, the manifest ", m.layers.size()));
    }
    for (size_t i = 0; i < m.layers.size(); i++) {
        TRY_CTX(util::failpoint("import.layer"), what);
        if (opts.unpack) TRY_CTX(copy_and_unpack(store, l, m.layers[i], diff_ids[i], res.blobs_stored, opts.limits), what);
        else TRY_CTX(copy_blob(store, l, m.layers[i].digest, res.blobs_stored), what);
    }
    TRY_CTX(copy_blob(store, l, res.manifest, res.blobs_stored), what);
    if (!(res.top == res.manifest)) TRY_CTX(copy_blob(store, l, res.top, res.blobs_stored), what);
    auto image = TRY_CTX(load_image(store, res.manifest, opts.platform), what);
    if (opts.unpack) TRY_CTX(unpack_image(store, image, opts.limits), what);
    TRY_CTX(util::failpoint("import.ref"), what);
    TRY_CTX(store.set_ref(name, res.manifest), what);
    return res;
}

util::Status export_layout(const Store &store, const Digest &manifest, const std::string &dir, const std::string &ref_name) {
    std::string what = cat("export to ", quote(dir));
    std::string mtext = TRY_CTX(store.read_blob(manifest, 4 << 20), what);
    auto m = TRY_CTX(parse_manifest(mtext), what);
    TRY_CTX(util::mkdir_p(dir + "/blobs/sha256"), what);
    std::vector<Digest> blobs = {m.config.digest, manifest};
    for (const auto &layer : m.layers) blobs.push_back(layer.digest);
    for (const auto &d : blobs) {
        std::string dst = cat(dir, "/blobs/sha256/", d.hex());
        if (util::path_exists(dst)) continue;
        if (::link(store.blob_path(d).c_str(), dst.c_str()) < 0) {
            auto data = TRY_CTX(store.read_blob(d, SIZE_MAX), what);
            TRY_CTX(util::atomic_write_file(dst, data), what);
        }
    }
    json::Value idx = json::Value::object();
    idx["schemaVersion"] = 2;
    idx["mediaType"] = media::kOciIndex;
    json::Value desc = json::Value::object();
    desc["mediaType"] = m.media_type;
    desc["digest"] = manifest.str();
    desc["size"] = mtext.size();
    if (!ref_name.empty()) desc["annotations"] = json::Value::object({{"org.opencontainers.image.ref.name", ref_name}});
    idx["manifests"] = json::Value::array({desc});
    TRY_CTX(util::atomic_write_file(dir + "/index.json", json::dump(idx) + "\n"), what);
    TRY_CTX(util::atomic_write_file(dir + "/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}\n"), what);
    return util::ok();
}

}  // namespace img
