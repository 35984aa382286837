// Simple-signing payloads, ECDSA with OpenSSL EVP, and the .sig manifest.
#include "image/signature.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>

#include "image/auth.hpp"
#include "image/manifest.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using Pkey = util::CPtr<EVP_PKEY, EVP_PKEY_free>;
using MdCtx = util::CPtr<EVP_MD_CTX, EVP_MD_CTX_free>;
using Bio = util::CPtr<BIO, BIO_free>;

util::Result<Pkey> load_key(std::string_view pem, bool priv) {
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return util::Error::msg("out of memory");
    Pkey key(priv ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char *>(""))
                  : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!key)
        return util::Error::msg(priv ? "not an unencrypted PEM private key (cosign's encrypted keys are not supported)"
                                     : "not a PEM public key");
    if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) return util::Error::msg("key is not an ECDSA key");
    char group[64] = {0};
    size_t glen = 0;
    if (EVP_PKEY_get_group_name(key.get(), group, sizeof group, &glen) != 1 || std::string_view(group) != "prime256v1")
        return util::Error::msg(util::cat("key is not on curve P-256 (", group, ")"));
    return key;
}

util::Result<SignedPayload> fetch_one(Registry &reg, const std::string &repo, const util::json::Value &layer) {
    auto ann = TRY(util::json::opt_object(layer, "annotations", "layer"));
    if (!ann) return util::Error::msg("layer has no annotations");
    auto sig = TRY(util::json::opt_string(*ann, std::string(kSignatureAnnotation), "annotations"));
    if (!sig) return util::Error::msg("layer has no signature annotation");
    auto dg = TRY(Digest::parse(TRY(util::json::req_string(layer, "digest", "layer"))));
    auto size = TRY(util::json::opt_uint(layer, "size", "layer"));
    if (!size || *size > (64 << 10)) return util::Error::msg("payload size missing or over 64 KiB");
    std::string body;
    auto r = TRY(reg.get_blob(repo, dg, 0, [&](std::string_view c) -> util::Status {
        if (body.size() + c.size() > *size) return util::Error::msg("payload larger than its descriptor");
        body.append(c);
        return util::ok();
    }));
    if (r.status != 200) return status_error(util::cat("GET payload ", dg.str()), r);
    if (!(Digest::of(body) == dg)) return util::Error::msg(util::cat("payload ", dg.str(), " has wrong content"));
    return SignedPayload{std::move(body), *sig};
}

}  // namespace

std::string signature_tag(const Digest &m) { return util::cat("sha256-", m.hex(), ".sig"); }

util::Result<SimpleSigningPayload> parse_payload(std::string_view payload) {
    auto v = TRY(util::json::parse(payload, "signature payload"));
    TRY(util::json::expect_object(v, "payload"));
    auto crit = TRY(util::json::opt_object(v, "critical", ""));
    if (!crit) return util::Error::msg("payload has no `critical`");
    auto type = TRY(util::json::req_string(*crit, "type", "critical"));
    if (type != kCosignType) return util::Error::msg(util::cat("payload type is ", util::quote(type)));
    auto ident = TRY(util::json::opt_object(*crit, "identity", "critical"));
    auto image = TRY(util::json::opt_object(*crit, "image", "critical"));
    if (!ident || !image) return util::Error::msg("payload lacks `critical.identity` or `critical.image`");
    SimpleSigningPayload p;
    p.docker_reference = TRY(util::json::req_string(*ident, "docker-reference", "critical.identity"));
    p.manifest_digest = TRY(util::json::req_string(*image, "docker-manifest-digest", "critical.image"));
    return p;
}

std::string make_payload(std::string_view ref, const Digest &manifest) {
    util::json::Value v = util::json::Value::object();
    v["critical"]["identity"]["docker-reference"] = std::string(ref);
    v["critical"]["image"]["docker-manifest-digest"] = manifest.str();
    v["critical"]["type"] = std::string(kCosignType);
    v["optional"]["creator"] = "berth 0.1";
    return util::json::dump(v);
}

util::Status verify_blob_signature(std::string_view pub_pem, std::string_view payload, std::string_view sig_b64) {
    auto key = TRY_CTX(load_key(pub_pem, false), "public key");
    auto sig = TRY_CTX(base64_decode(sig_b64), "signature");
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1)
        return util::Error::msg("cannot set up ECDSA verification");
    int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char *>(sig.data()), sig.size(),
                              reinterpret_cast<const unsigned char *>(payload.data()), payload.size());
    if (rc != 1) return util::Error::msg("signature does not verify under the key");
    return util::ok();
}

util::Result<std::string> sign_blob(std::string_view priv_pem, std::string_view payload) {
    auto key = TRY_CTX(load_key(priv_pem, true), "private key");
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1)
        return util::Error::msg("cannot set up ECDSA signing");
    size_t len = 0;
    auto data = reinterpret_cast<const unsigned char *>(payload.data());
    if (EVP_DigestSign(ctx.get(), nullptr, &len, data, payload.size()) != 1) return util::Error::msg("ECDSA signing failed");
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char *>(sig.data()), &len, data, payload.size()) != 1)
        return util::Error::msg("ECDSA signing failed");
    sig.resize(len);
    return base64_encode(sig);
}

util::Status verify_signatures(const std::vector<SignedPayload> &sigs, const Requirement &req, const Reference &pulled,
                               const Digest &manifest) {
    if (sigs.empty()) return util::Error::msg("image is not signed");
    std::vector<std::string> why;
    for (size_t i = 0; i < sigs.size(); i++) {
        auto one = [&]() -> util::Status {
            util::Status last = util::Error::msg("no key");
            bool key_ok = false;
            for (const auto &k : req.keys_pem) {
                last = verify_blob_signature(k, sigs[i].payload, sigs[i].signature_b64);
                if (last) {
                    key_ok = true;
                    break;
                }
            }
            if (!key_ok) return last;
            auto p = TRY(parse_payload(sigs[i].payload));
            if (p.manifest_digest != manifest.str())
                return util::Error::msg(util::cat("signature is for image ", p.manifest_digest, ", not ", manifest.str()));
            return match_identity(req, pulled, p.docker_reference);
        };
        auto st = one();
        if (st) return util::ok();
        why.push_back(util::cat("signature ", i + 1, ": ", st.error().message()));
    }
    return util::Error::msg(util::cat("no valid signature (", util::join(why, "; "), ")"));
}

util::Result<std::vector<SignedPayload>> fetch_signatures(Registry &reg, const std::string &repo, const Digest &manifest) {
    std::vector<SignedPayload> out;
    auto m = TRY(reg.get_manifest(repo, signature_tag(manifest)));
    if (!m) return out;
    auto v = TRY(util::json::parse(m->body, "signature manifest"));
    auto layers = TRY(util::json::opt_array(v, "layers", "signature manifest"));
    if (!layers) return out;
    for (const auto &l : *layers) {
        if (!l.is_object()) continue;
        auto mt = TRY(util::json::opt_string(l, "mediaType", "layer"));
        if (!mt || *mt != kSimpleSigningType) continue;
        auto sp = fetch_one(reg, repo, l);
        if (!sp) return std::move(sp).error().wrap(util::cat("signature of ", manifest.str()));
        out.push_back(std::move(*sp));
        if (out.size() >= 32) break;  // a repository full of junk signatures must not stall a pull
    }
    return out;
}

std::string policy_context(const PolicyDecision &d, const Reference &pulled) {
    return util::cat("policy for ", util::quote(pulled.str()), " (scope ", d.scope, ")");
}

util::Status check_not_rejected(const PolicyDecision &d) {
    for (const auto &req : d.requirements)
        if (req.type == Requirement::Type::Reject)
            return util::Error::msg("rejected (unsigned images do not run; configure a key)");
    return util::ok();
}

util::Status check_requirements(const PolicyDecision &d, const Reference &pulled, const std::vector<Digest> &digests,
                                const SignatureSource &signatures_of) {
    TRY(check_not_rejected(d));
    static const std::vector<SignedPayload> kNone;
    for (const auto &req : d.requirements) {
        if (req.type != Requirement::Type::SigstoreSigned) continue;
        std::vector<std::string> why;
        bool ok = false;
        for (size_t i = 0; i < digests.size() && !ok; i++) {
            const std::vector<SignedPayload> *sigs = TRY(signatures_of(digests[i]));
            auto st = verify_signatures(sigs ? *sigs : kNone, req, pulled, digests[i]);
            if (st) {
                ok = true;
            } else if (std::find(why.begin(), why.end(), st.error().message()) == why.end()) {
                why.push_back(st.error().message());
            }
        }
        if (!ok) return util::Error::msg(why.empty() ? std::string("image is not signed") : util::join(why, "; "));
    }
    return util::ok();
}

util::Status enforce_policy(Registry &reg, const PolicyDecision &d, const Reference &pulled, const Digest &manifest,
                            const std::vector<Digest> &alternates, std::map<Digest, std::vector<SignedPayload>> *found) {
    std::vector<Digest> digests{manifest};
    digests.insert(digests.end(), alternates.begin(), alternates.end());
    // Fetched on demand, each once: a cellular link pays only for what is asked.
    std::map<Digest, std::vector<SignedPayload>> fetched;
    auto fetch = [&](const Digest &digest) -> util::Result<const std::vector<SignedPayload> *> {
        auto it = fetched.find(digest);
        if (it == fetched.end()) it = fetched.emplace(digest, TRY(fetch_signatures(reg, pulled.repository, digest))).first;
        return &it->second;
    };
    TRY_CTX(check_requirements(d, pulled, digests, fetch), policy_context(d, pulled));
    if (found)
        for (auto &[digest, sigs] : fetched)
            if (!sigs.empty()) (*found)[digest] = std::move(sigs);
    return util::ok();
}

util::Status sign_image(Registry &reg, const std::string &repo, const Digest &manifest, std::string_view docker_reference,
                        std::string_view priv_pem) {
    std::string payload = make_payload(docker_reference, manifest);
    std::string sig = TRY(sign_blob(priv_pem, payload));
    Digest pd = Digest::of(payload);

    util::json::Value layers = util::json::Value::array();
    std::string tag = signature_tag(manifest);
    if (auto existing = TRY(reg.get_manifest(repo, tag))) {
        auto v = TRY(util::json::parse(existing->body, "signature manifest"));
        if (auto ls = TRY(util::json::opt_array(v, "layers", "signature manifest")))
            for (const auto &l : *ls)
                if (l.is_object() && l.contains("digest") && l["digest"].is_string()) layers.push_back(l);
    }
    util::json::Value layer = util::json::Value::object();
    layer["mediaType"] = std::string(kSimpleSigningType);
    layer["digest"] = pd.str();
    layer["size"] = payload.size();
    layer["annotations"][std::string(kSignatureAnnotation)] = sig;
    layers.push_back(layer);

    util::json::Value diff_ids = util::json::Value::array();
    for (const auto &l : layers) diff_ids.push_back(l["digest"]);
    util::json::Value cfg = util::json::Value::object();
    cfg["architecture"] = "";
    cfg["os"] = "";
    cfg["config"] = util::json::Value::object();
    cfg["rootfs"]["type"] = "layers";
    cfg["rootfs"]["diff_ids"] = diff_ids;
    std::string cfg_text = util::json::dump(cfg);
    Digest cd = Digest::of(cfg_text);

    auto upload = [&](const Digest &d, const std::string &data) -> util::Status {
        if (TRY(reg.blob_exists(repo, d))) return util::ok();
        return reg.upload_bytes(repo, d, data);
    };
    TRY_CTX(upload(pd, payload), "upload signature payload");
    TRY_CTX(upload(cd, cfg_text), "upload signature config");

    util::json::Value m = util::json::Value::object();
    m["schemaVersion"] = 2;
    m["mediaType"] = std::string(kOciManifest);
    m["config"]["mediaType"] = "application/vnd.oci.image.config.v1+json";
    m["config"]["digest"] = cd.str();
    m["config"]["size"] = cfg_text.size();
    m["layers"] = layers;
    TRY_CTX(reg.put_manifest(repo, tag, kOciManifest, util::json::dump(m)), "push signature manifest");
    return util::ok();
}

util::Result<std::vector<Digest>> sign_image_and_platforms(Registry &reg, const std::string &repo, const Digest &top,
                                                           std::string_view docker_reference, std::string_view priv_pem) {
    auto m = TRY(reg.get_manifest(repo, top.str()));
    if (!m) return util::Error::msg(util::cat("manifest ", top.str(), " not found in ", util::quote(repo)));
    std::vector<Digest> signed_digests;
    if (is_index_type(m->media_type)) {
        auto index = TRY_CTX(parse_index(m->body), util::cat("index ", top.str()));
        for (const auto &d : index.manifests) {
            if (std::find(signed_digests.begin(), signed_digests.end(), d.digest) != signed_digests.end()) continue;
            TRY_CTX(sign_image(reg, repo, d.digest, docker_reference, priv_pem), util::cat("sign ", d.digest.str()));
            signed_digests.push_back(d.digest);
        }
    }
    TRY_CTX(sign_image(reg, repo, top, docker_reference, priv_pem), util::cat("sign ", top.str()));
    signed_digests.push_back(top);
    return signed_digests;
}

}  // namespace img
