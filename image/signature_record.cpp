// The signature record of a stored image (see signature_record.hpp).
#include "image/signature_record.hpp"

#include <algorithm>

#include "image/auth.hpp"
#include "image/manifest.hpp"
#include "util/file.hpp"
#include "util/json.hpp"

namespace img {

bool index_lists(const Digest &d, std::string_view body, const Digest &manifest) {
    if (!(Digest::of(body) == d)) return false;
    auto idx = parse_index(body);
    if (!idx) return false;
    return std::any_of(idx->manifests.begin(), idx->manifests.end(), [&](const auto &m) { return m.digest == manifest; });
}

SignatureRecord load_signature_record(const Store &store, const Digest &manifest) {
    SignatureRecord out;
    auto text = util::read_file(store.signature_record_path(manifest), 4 << 20);
    if (!text) return out;
    auto v = util::json::parse(*text, "signature record");
    if (!v || !v->is_object()) return out;
    if (auto m = util::json::opt_string(*v, "manifest", ""); !m || !*m || **m != manifest.str()) return out;
    if (auto ix = util::json::opt_object(*v, "indexes", ""); ix && *ix) {
        for (const auto &[k, b64] : (*ix)->items()) {
            if (!b64.is_string()) continue;
            auto d = Digest::parse(k);
            auto body = base64_decode(b64.get<std::string>());
            if (d && body && index_lists(*d, *body, manifest)) out.indexes[*d] = *body;
        }
    }
    auto sigs = util::json::opt_array(*v, "signatures", "");
    if (!sigs || !*sigs) return out;
    for (const auto &e : **sigs) {
        if (!e.is_object()) continue;
        auto d = util::json::req_string(e, "digest", "");
        auto p = util::json::req_string(e, "payload", "");
        auto s = util::json::req_string(e, "signature", "");
        if (!d || !p || !s) continue;
        auto digest = Digest::parse(*d);
        auto payload = base64_decode(*p);
        if (!digest || !payload) continue;
        if (!(*digest == manifest) && !out.indexes.count(*digest)) continue;
        out.by_digest[*digest].push_back({*payload, *s});
    }
    return out;
}

util::Status save_signature_record(const Store &store, const Digest &manifest, const SignatureRecord &record) {
    util::json::Value v = util::json::Value::object();
    v["manifest"] = manifest.str();
    util::json::Value ix = util::json::Value::object();
    for (const auto &[d, body] : record.indexes) ix[d.str()] = base64_encode(body);
    v["indexes"] = ix;
    util::json::Value arr = util::json::Value::array();
    for (const auto &[d, list] : record.by_digest)
        for (const auto &sp : list) {
            util::json::Value e = util::json::Value::object();
            e["digest"] = d.str();
            e["payload"] = base64_encode(sp.payload);
            e["signature"] = sp.signature_b64;
            arr.push_back(e);
        }
    v["signatures"] = arr;
    std::string path = store.signature_record_path(manifest);
    TRY(util::mkdir_p(util::dirname(path), 0755));
    return util::atomic_write_file(path, util::json::dump(v) + "\n").context("save signature record");
}

}  // namespace img
