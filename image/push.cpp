// push_image and its two sources (the store, an OCI image layout).
#include "image/push.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include "image/manifest.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

util::Result<std::string> read_blob_file(const std::string &dir, const Digest &d, size_t limit) {
    auto text = TRY(util::read_file(util::cat(dir, "/sha256/", d.hex()), limit));
    if (!(Digest::of(text) == d)) return util::Error::msg(util::cat("local blob ", d.str(), " is corrupt"));
    return text;
}

util::Status push_blob(Registry &reg, const std::string &dir, const std::string &repo, const Descriptor &b,
                       const PushOptions &opts, PushResult &res) {
    if (TRY(reg.blob_exists(repo, b.digest))) {
        res.existing++;
        return util::ok();
    }
    if (!opts.mount_from.empty() && opts.mount_from != repo && TRY(reg.mount_blob(repo, b.digest, opts.mount_from))) {
        res.mounted++;
        if (opts.note) opts.note("mounted", util::cat(b.digest.str(), " from ", opts.mount_from));
        return util::ok();
    }
    std::string path = util::cat(dir, "/sha256/", b.digest.hex());
    auto fd = TRY(util::open_file(path, O_RDONLY));
    struct stat st{};
    if (::fstat(fd.get(), &st) < 0) return util::Error::from_errno(util::cat("stat ", util::quote(path)));
    if (static_cast<int64_t>(st.st_size) != b.size)
        return util::Error::msg(util::cat("local blob ", b.digest.str(), " has ", st.st_size, " bytes, descriptor says ", b.size));
    TRY(reg.upload_blob(repo, b.digest, fd.get(), static_cast<uint64_t>(st.st_size), opts.chunk));
    res.uploaded++;
    res.bytes += static_cast<uint64_t>(st.st_size);
    if (opts.note) opts.note("uploaded", b.digest.str());
    return util::ok();
}

util::Status push_manifest(Registry &reg, const std::string &dir, const std::string &repo, const Digest &d,
                           const std::string &tag, const PushOptions &opts, PushResult &res) {
    auto body = TRY(read_blob_file(dir, d, 4 << 20));
    auto kind = TRY(manifest_kind(body));
    std::string mt;
    if (kind == ManifestKind::Index) {
        auto idx = TRY(parse_index(body));
        for (const auto &m : idx.manifests) TRY(push_manifest(reg, dir, repo, m.digest, "", opts, res));
        mt = idx.media_type.empty() ? std::string(media::kOciIndex) : idx.media_type;
    } else {
        auto m = TRY(parse_manifest(body));
        TRY(push_blob(reg, dir, repo, m.config, opts, res));
        for (const auto &l : m.layers) TRY(push_blob(reg, dir, repo, l, opts, res));
        mt = m.media_type.empty() ? std::string(media::kOciManifest) : m.media_type;
    }
    TRY(reg.put_manifest(repo, tag.empty() ? d.str() : tag, mt, body));
    return util::ok();
}

}  // namespace

util::Result<PushSource> layout_source(const std::string &dir, const std::string &tag) {
    std::string what = util::cat("OCI layout ", util::quote(dir));
    auto text = TRY_CTX(util::read_file(util::path_join(dir, "index.json"), 4 << 20), what);
    auto idx = TRY_CTX(parse_index(text), what);
    const Descriptor *pick = nullptr;
    for (const auto &m : idx.manifests) {
        auto it = m.annotations.find("org.opencontainers.image.ref.name");
        if (!tag.empty() ? (it != m.annotations.end() && it->second == tag) : idx.manifests.size() == 1) pick = &m;
    }
    if (!pick)
        return util::Error::msg(util::cat(what, tag.empty() ? ": several manifests, name one with :TAG" : ": no manifest tagged " + util::quote(tag)));
    return PushSource{util::path_join(dir, "blobs"), pick->digest, pick->media_type};
}

util::Result<PushSource> store_source(const Store &store, const std::string &ref_name) {
    auto d = TRY(store.get_ref(ref_name));
    if (!d) return util::Error::msg(util::cat("no image ", util::quote(ref_name), " in the store"));
    return PushSource{util::path_join(store.root(), "blobs"), *d, ""};
}

util::Result<PushResult> push_image(Registry &reg, const PushSource &src, const Reference &dest, const PushOptions &opts) {
    PushResult res;
    res.top = src.top;
    std::string tag = dest.tag.empty() ? src.top.str() : dest.tag;
    if (dest.digest && !(*dest.digest == src.top))
        return util::Error::msg(util::cat("destination names ", dest.digest->str(), " but the image is ", src.top.str()));
    TRY_CTX(push_manifest(reg, src.blob_dir, dest.repository, src.top, tag, opts, res), util::cat("push ", util::quote(dest.str())));
    return res;
}

}  // namespace img
