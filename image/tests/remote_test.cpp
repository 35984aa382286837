// Unit tests of the registry client's pure logic: WWW-Authenticate parsing,
// credentials files, Content-Range, URL handling, policy scopes and identity
// rules, and simple-signing signatures (round trip, tampering, and the
// known-answer vector made by upstream skopeo, read from ../shared).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "image/auth.hpp"
#include "image/fetch.hpp"
#include "image/http.hpp"
#include "image/policy.hpp"
#include "image/signature.hpp"

using namespace img;

namespace {

std::string slurp(const std::string &p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

/// image/tests/vectors/cosign-simple-signing in the source tree (meson
/// passes the folder as BERTH_TEST_VECTORS); empty when it is missing.
std::string vector_dir() {
    std::string v = std::string(BERTH_TEST_VECTORS) + "/cosign-simple-signing";
    return access((v + "/payload.json").c_str(), R_OK) == 0 ? v : "";
}

// A P-256 key pair made once with openssl (test fixture, not a secret).
const char *kPriv = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgW+iWw4+GVb//LR05
r8wl8nkLKACuSd0tmYYY4YwjMNqhRANCAASGgxzSVUv6/92wxsvd98DTlTrVo43K
zISFGlfFSeRIxIg6w7Gw9jnkZcPeb10wEC8Y8AKGCCQ0MHVrAx+JUL++
-----END PRIVATE KEY-----
)";
const char *kPub = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhoMc0lVL+v/dsMbL3ffA05U61aON
ysyEhRpXxUnkSMSIOsOxsPY55GXD3m9dMBAvGPAChggkNDB1awMfiVC/vg==
-----END PUBLIC KEY-----
)";

}  // namespace

TEST_CASE("WWW-Authenticate challenges parse", "[remote]") {
    auto c = parse_challenge(R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push")");
    REQUIRE(c);
    CHECK(c->scheme == "bearer");
    CHECK(c->params["realm"] == "https://auth.example/token");
    CHECK(c->params["service"] == "registry.example");
    CHECK(c->params["scope"] == "repository:a/b:pull,push");
    auto b = parse_challenge(R"(Basic realm="basic-realm")");
    REQUIRE(b);
    CHECK(b->scheme == "basic");
    CHECK_FALSE(parse_challenge(R"(Bearer realm="unterminated)"));
}

TEST_CASE("docker config.json credentials", "[remote]") {
    auto c = Credentials::parse(R"({"auths":{"127.0.0.1:5001":{"auth":")" + base64_encode("alice:s3cr:et") +
                                    R"("},"https://reg.example":{"username":"bob","password":"pw"}}})",
                                "test");
    REQUIRE(c);
    auto a = c->find("127.0.0.1:5001");
    REQUIRE(a);
    CHECK(a->user == "alice");
    CHECK(a->password == "s3cr:et");
    REQUIRE(c->find("reg.example"));
    CHECK(c->find("reg.example")->user == "bob");
    CHECK_FALSE(c->find("other:1"));
    CHECK_FALSE(Credentials::parse(R"({"auths":{"h":{"auth":"bm9jb2xvbg=="}}})", "t"));  // "nocolon"
}

TEST_CASE("base64 round trip", "[remote]") {
    for (std::string s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
        auto d = base64_decode(base64_encode(s));
        REQUIRE(d);
        CHECK(*d == s);
    }
    CHECK_FALSE(base64_decode("abc"));
}

TEST_CASE("Content-Range parsing", "[remote]") {
    auto r = parse_content_range("bytes 100-199/200");
    REQUIRE(r);
    CHECK(r->start == 100);
    CHECK(r->end == 199);
    CHECK(r->total == 200);
    auto star = parse_content_range("bytes 5-9/*");
    REQUIRE(star);
    CHECK(star->total == 0);
    CHECK_FALSE(parse_content_range("bytes 10-5/20"));
    CHECK_FALSE(parse_content_range("bytes 0-19/20x"));
    CHECK_FALSE(parse_content_range("items 0-1/2"));
    CHECK_FALSE(parse_content_range("bytes 0-20/20"));
}

TEST_CASE("URLs: host, redirects, escaping", "[remote]") {
    CHECK(url_host("https://User@Reg.Example:5000/v2/") == "reg.example:5000");
    CHECK(resolve_url("http://a:1/v2/x/blobs/uploads/", "/v2/x/blobs/uploads/u?s=1") == "http://a:1/v2/x/blobs/uploads/u?s=1");
    CHECK(resolve_url("http://a:1/v2/x", "https://s3.example/b?sig=1") == "https://s3.example/b?sig=1");
    CHECK(resolve_url("http://a:1/v2/x/y", "z") == "http://a:1/v2/x/z");
    CHECK(url_escape("sha256:ab/c d") == "sha256%3Aab%2Fc%20d");
}

TEST_CASE("policy scopes: most specific wins", "[remote]") {
    std::string key64 = base64_encode(kPub);
    auto p = Policy::parse(R"({"default":[{"type":"reject"}],"transports":{"docker":{
        "reg.example:5000/team/app":[{"type":"sigstoreSigned","keyData":")" + key64 + R"("}],
        "reg.example:5000/team":[{"type":"insecureAcceptAnything"}],
        "*.corp.example":[{"type":"sigstoreSigned","keyData":")" + key64 + R"(","signedIdentity":{"type":"matchRepository"}}]}}})",
                           "t");
    REQUIRE(p);
    auto ref = [](const char *s) { return Reference::parse(s).value(); };
    CHECK(p->lookup(ref("reg.example:5000/team/app:1")).scope == "reg.example:5000/team/app");
    CHECK(p->lookup(ref("reg.example:5000/team/other:1")).requirements[0].type == Requirement::Type::AcceptAnything);
    CHECK(p->lookup(ref("reg.example:5000/x:1")).scope == "default");
    auto w = p->lookup(ref("eu.corp.example/app:2"));
    CHECK(w.scope == "*.corp.example");
    CHECK(w.requirements[0].identity == IdentityMatch::Repository);
    CHECK_FALSE(Policy::parse(R"({"default":[{"type":"signedBy"}]})", "t"));
    CHECK_FALSE(Policy::parse(R"({"default":[{"type":"sigstoreSigned"}]})", "t"));
    CHECK_FALSE(Policy::parse(R"({"transports":{}})", "t"));
}

TEST_CASE("device default policy rejects without trusted keys", "[remote]") {
    auto p = Policy::device_default("/nonexistent-berth-trust");
    REQUIRE(p);
    auto d = p->lookup(Reference::parse("r.example/a:1").value());
    REQUIRE(d.requirements.size() == 1);
    CHECK(d.requirements[0].type == Requirement::Type::Reject);
}

TEST_CASE("identity rules", "[remote]") {
    Requirement r;
    r.type = Requirement::Type::SigstoreSigned;
    auto tagged = Reference::parse("r.example/app:1.0").value();
    CHECK(match_identity(r, tagged, "r.example/app:1.0"));
    CHECK_FALSE(match_identity(r, tagged, "r.example/app:2.0"));  // re-tagged
    CHECK_FALSE(match_identity(r, tagged, "r.example/other:1.0"));
    auto by_digest = Reference::parse("r.example/app@sha256:" + std::string(64, 'a')).value();
    CHECK(match_identity(r, by_digest, "r.example/app:anything"));
    CHECK_FALSE(match_identity(r, by_digest, "r.example/evil:1"));
    r.identity = IdentityMatch::Repository;
    CHECK(match_identity(r, tagged, "r.example/app:2.0"));
}

TEST_CASE("simple signing: sign, verify, tamper", "[remote]") {
    auto d = Digest::of("manifest");
    std::string payload = make_payload("r.example/app:1", d);
    auto p = parse_payload(payload);
    REQUIRE(p);
    CHECK(p->docker_reference == "r.example/app:1");
    CHECK(p->manifest_digest == d.str());
    auto sig = sign_blob(kPriv, payload);
    REQUIRE(sig);
    CHECK(verify_blob_signature(kPub, payload, *sig));
    std::string tampered = payload;
    tampered[10] ^= 1;
    CHECK_FALSE(verify_blob_signature(kPub, tampered, *sig));

    Requirement req;
    req.type = Requirement::Type::SigstoreSigned;
    req.keys_pem = {kPub};
    auto ref = Reference::parse("r.example/app:1").value();
    CHECK(verify_signatures({{payload, *sig}}, req, ref, d));
    CHECK_FALSE(verify_signatures({{payload, *sig}}, req, ref, Digest::of("other")));
    CHECK_FALSE(verify_signatures({}, req, ref, d));
    std::string bad = *sig;
    bad[5] = bad[5] == 'A' ? 'B' : 'A';
    CHECK_FALSE(verify_signatures({{payload, bad}}, req, ref, d));
    CHECK_FALSE(parse_payload(R"({"critical":{"type":"atomic container signature","identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"y"}}})"));
}

TEST_CASE("known-answer vector from upstream skopeo 1.20", "[remote][vector]") {
    std::string dir = vector_dir();
    INFO("the vector folder " BERTH_TEST_VECTORS "/cosign-simple-signing");
    REQUIRE_FALSE(dir.empty());
    std::string payload = slurp(dir + "/payload.json");
    std::string sig = slurp(dir + "/signature.b64");
    std::string pub = slurp(dir + "/cosign.pub");
    auto digest = Digest::of(slurp(dir + "/image-manifest.json"));
    CHECK(digest.str() == "sha256:f7774e057f2a2ee95fcba0c1dd463bba1bb146cd26e7f7814a2026588a661474");
    Requirement req;
    req.type = Requirement::Type::SigstoreSigned;
    req.keys_pem = {pub};
    auto ref = Reference::parse("127.0.0.1:5000/vectors/busybox:v1").value();
    CHECK(verify_signatures({{payload, sig}}, req, ref, digest));
    CHECK_FALSE(verify_signatures({{payload, sig}}, req, ref, Digest::of("x")));
    CHECK_FALSE(verify_signatures({{payload, sig}}, req, Reference::parse("127.0.0.1:5000/vectors/other:v1").value(), digest));
    Requirement other = req;
    other.keys_pem = {kPub};
    CHECK_FALSE(verify_signatures({{payload, sig}}, other, ref, digest));
    std::string flipped = payload;
    flipped[flipped.size() / 2] ^= 0x20;
    CHECK_FALSE(verify_signatures({{flipped, sig}}, req, ref, digest));
    // The signature manifest's config is byte-identical to what berth writes.
    auto sm = slurp(dir + "/sig-manifest.json");
    CHECK(sm.find("\"digest\":\"" + Digest::of(R"({"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[")" +
                                                   Digest::of(payload).str() + "\"]}}")
                                         .str()) != std::string::npos);
}
