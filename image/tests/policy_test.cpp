// The trust policy against containers-policy.json(5), table by table: which
// scope applies to an image, which files are invalid (and why), and what a
// signature's docker-reference must say under each signedIdentity rule.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "image/auth.hpp"
#include "image/policy.hpp"
#include "util/file.hpp"

using namespace img;

namespace {

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');

/// keyData of any bytes: parsing does not look inside keys.
std::string key_data() { return "\"keyData\":\"" + base64_encode("key") + "\""; }

Reference image_ref(const std::string &s) { return Reference::parse(s).value(); }

/// The requirement of `{"default":[{"type":"sigstoreSigned",...,"signedIdentity":<identity>}]}`.
Requirement with_identity(const std::string &identity) {
    auto p = Policy::parse(R"({"default":[{"type":"sigstoreSigned",)" + key_data() + R"(,"signedIdentity":)" + identity + "}]}",
                           "t");
    INFO(identity << ": " << (p ? std::string() : p.error().message()));
    REQUIRE(p);
    return p->lookup(image_ref("any.example/x:1")).requirements.at(0);
}

}  // namespace

TEST_CASE("policy scopes: the most specific of image, repository, namespace, host, wildcard, transport default", "[policy]") {
    auto p = Policy::parse(R"({"default":[{"type":"reject"}],"transports":{"docker":{
        "reg.example:5000/team/app@)" + kDigestA + R"(":[{"type":"reject"}],
        "reg.example:5000/team/app:1":[{"type":"insecureAcceptAnything"}],
        "reg.example:5000/team/app":[{"type":"insecureAcceptAnything"}],
        "reg.example:5000/team":[{"type":"insecureAcceptAnything"}],
        "reg.example:5000":[{"type":"insecureAcceptAnything"}],
        "reg.example":[{"type":"insecureAcceptAnything"}],
        "*.corp.example":[{"type":"insecureAcceptAnything"}],
        "*.example":[{"type":"insecureAcceptAnything"}],
        "":[{"type":"insecureAcceptAnything"}]}}})",
                           "t");
    REQUIRE(p);
    struct Case {
        std::string image, scope;
    };
    const Case cases[] = {
        {"reg.example:5000/team/app@" + kDigestA, "reg.example:5000/team/app@" + kDigestA},  // one revoked digest
        {"reg.example:5000/team/app:1", "reg.example:5000/team/app:1"},
        {"reg.example:5000/team/app:2", "reg.example:5000/team/app"},
        {"reg.example:5000/team/app@" + kDigestB, "reg.example:5000/team/app"},
        {"reg.example:5000/team/app", "reg.example:5000/team/app"},  // :latest
        {"reg.example:5000/team/sub/x:1", "reg.example:5000/team"},
        {"reg.example:5000/teamx:1", "reg.example:5000"},  // a namespace ends at a '/'
        {"reg.example/other:1", "reg.example"},            // the port is part of the host scope
        {"a.b.corp.example:443/x:1", "*.corp.example"},    // wildcards ignore the port
        {"corp.example/x:1", "*.example"},                 // "*.corp.example" does not match corp.example itself
        {"other.test/x:1", R"(transports.docker."")"},
    };
    for (const auto &c : cases) {
        INFO(c.image);
        CHECK(p->lookup(image_ref(c.image)).scope == c.scope);
    }
    CHECK(p->lookup(image_ref("reg.example:5000/team/app@" + kDigestA)).requirements.at(0).type == Requirement::Type::Reject);

    auto no_transport_default = Policy::parse(R"({"default":[{"type":"reject"}],"transports":{"docker":{
        "reg.example/a":[{"type":"insecureAcceptAnything"}]}}})",
                                              "t");
    REQUIRE(no_transport_default);
    CHECK(no_transport_default->lookup(image_ref("reg.example/b:1")).scope == "default");
}

TEST_CASE("policy parsing refuses unknown, duplicated and unsupported keys, naming them", "[policy]") {
    std::string sig = R"("type":"sigstoreSigned",)" + key_data();
    struct Case {
        std::string json, error;
    };
    const Case cases[] = {
        {R"({"default":[{"type":"reject"}],"defualt":[]})", "unknown key \"defualt\""},
        {R"({"default":[{"type":"reject","keyPath":"/k"}]})", "unknown key \"keyPath\""},
        {R"({"default":[{"type":"insecureAcceptAnything","x":1}]})", "unknown key \"x\""},
        {R"({"default":[{)" + sig + R"(,"keyPth":"/k"}]})", "unknown key \"keyPth\""},
        {R"({"default":[{)" + sig + R"(,"rekorPublicKeyPath":"/r.pub"}]})", "\"rekorPublicKeyPath\" is not supported"},
        {R"({"default":[{)" + sig + R"(,"rekorPublicKeyPaths":["/r.pub"]}]})", "\"rekorPublicKeyPaths\" is not supported"},
        {R"({"default":[{)" + sig + R"(,"rekorPublicKeyData":"cg=="}]})", "\"rekorPublicKeyData\" is not supported"},
        {R"({"default":[{)" + sig + R"(,"rekorPublicKeyDatas":["cg=="]}]})", "\"rekorPublicKeyDatas\" is not supported"},
        {R"({"default":[{"type":"sigstoreSigned","fulcio":{}}]})", "\"fulcio\" is not supported"},
        {R"({"default":[{"type":"sigstoreSigned","pki":{}}]})", "\"pki\" is not supported"},
        {R"({"default":[{)" + sig + R"(,"keyPath":"/k.pub"}]})", "exactly one of keyPath, keyPaths, keyData, keyDatas"},
        {R"({"default":[{)" + sig + R"(,"keyDatas":["cg=="]}]})", "(got keyData and keyDatas)"},
        {R"({"default":[{)" + sig + R"(,"fulcio":{}}]})", "(got keyData and fulcio)"},
        {R"({"default":[{"type":"sigstoreSigned"}]})", "exactly one of keyPath, keyPaths, keyData, keyDatas"},
        {R"({"default":[{"type":"sigstoreSigned","keyDatas":[]}]})", "non-empty array"},
        {R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"}]})",
         "\"signedBy\": GPG signatures are not supported"},
        {R"({"default":[{"type":"signedBaseLayer"}]})", "\"signedBaseLayer\": GPG signatures are not supported"},
        {R"({"default":[{"type":"sigstoredSigned"}]})", "unknown requirement \"sigstoredSigned\""},
        {R"({"default":[{)" + sig + R"(,"signedIdentity":{"type":"matchRepository","dockerRepository":"a.example/b"}}]})",
         "unknown key \"dockerRepository\""},
        {R"({"default":[{)" + sig + R"(,"signedIdentity":{"type":"matchAnything"}}]})", "unknown identity rule \"matchAnything\""},
        {R"({"default":[{)" + sig + R"(,"signedIdentity":{"type":"remapIdentity","prefix":"a.example/x"}}]})",
         "signedPrefix\": missing"},
        {R"({"default":[{)" + sig + R"(,"signedIdentity":{"type":"remapIdentity","prefix":"a.example/x:1","signedPrefix":"b.example"}}]})",
         "must not name a tag or digest"},
        {R"({"default":[{)" + sig + R"(,"signedIdentity":{"type":"exactReference","dockerReference":"a.example/x"}}]})",
         "names no tag or digest"},
        {R"({"default":[{"type":"reject"}],"transports":{"dockr":{}}})", "unknown transport \"dockr\""},
        {R"({"default":[{"type":"reject"}],"transports":{"docker":{"docker.io/busybox":[{"type":"reject"}]}}})",
         "not in the fully expanded form \"docker.io/library/busybox\""},
        {R"({"default":[{"type":"reject"}],"transports":{"docker":{"*.ex*.com":[{"type":"reject"}]}}})", "wildcard"},
        {R"({"default":[{"type":"reject"}],"transports":{"docker":{"*.example.com:5000":[{"type":"reject"}]}}})", "wildcard"},
        {R"({"default":[{"type":"reject"}],"transports":{"docker":{"reg.example/App":[{"type":"reject"}]}}})",
         "invalid repository component"},
        {R"({"default":[{"type":"reject"}],"transports":{"dir":{"":[{"type":"signedBy"}]}}})",
         "GPG signatures are not supported"},
        {R"({"default":[{"type":"reject"}],"transports":{"docker":{"r.example/a":[{"type":"reject"}],
            "r.example/a":[{"type":"insecureAcceptAnything"}]}}})",
         "duplicated key \"r.example/a\""},
        {R"({"transports":{}})", "\"default\" is required"},
    };
    for (const auto &c : cases) {
        INFO(c.json);
        auto p = Policy::parse(c.json, "t.json");
        CHECK_FALSE(p);
        if (p) continue;
        std::string message = p.error().message();  // names are quoted `so`; the table writes "so"
        std::replace(message.begin(), message.end(), '`', '"');
        CHECK_THAT(message, Catch::Contains(c.error));
    }
}

TEST_CASE("policy parsing accepts what containers-policy.json(5) allows", "[policy]") {
    std::string sig = R"("type":"sigstoreSigned",)" + key_data();
    const std::string cases[] = {
        R"({"default":[{"type":"insecureAcceptAnything"}]})",
        R"({"default":[{"type":"sigstoreSigned","keyDatas":["a2V5","a2V5"]}]})",
        R"({"default":[{)" + sig + R"(,"signedIdentity":{"type":"matchExact"}}]})",
        R"({"default":[{)" + sig + R"(,"signedIdentity":{"type":"exactRepository","dockerRepository":"a.example/x"}}]})",
        R"({"default":[{)" + sig + R"(,"signedIdentity":{"type":"remapIdentity","prefix":"m.example:5000/v","signedPrefix":"v.example"}}]})",
        R"({"default":[{"type":"reject"}],"transports":{"docker":{"docker.io/library/busybox:1":[{"type":"reject"}],
            "r.example/app@)" + kDigestA + R"(":[{"type":"reject"}], "localhost:5000":[{"type":"reject"}]}}})",
        // Other transports: checked, never applied (their key files need not exist here).
        R"({"default":[{"type":"reject"}],"transports":{"docker-daemon":{"":[{"type":"insecureAcceptAnything"}]},
            "oci":{"/srv/layouts":[{"type":"sigstoreSigned","keyPath":"/nonexistent/k.pub"}]}}})",
    };
    for (const auto &c : cases) {
        INFO(c);
        auto p = Policy::parse(c, "t.json");
        INFO((p ? std::string() : p.error().message()));
        CHECK(p);
    }
}

TEST_CASE("signedIdentity rules decide which docker-reference a signature may name", "[policy]") {
    struct Case {
        std::string identity, pulled, signed_ref;
        bool ok;
    };
    const std::string remap = R"({"type":"remapIdentity","prefix":"mirror.local:5000/vendor","signedPrefix":"vendor.example"})";
    const Case cases[] = {
        // matchRepoDigestOrExact (the default): exact by tag, same repository by digest.
        {R"({"type":"matchRepoDigestOrExact"})", "r.example/app:1", "r.example/app:1", true},
        {R"({"type":"matchRepoDigestOrExact"})", "r.example/app:1", "r.example/app:2", false},
        {R"({"type":"matchRepoDigestOrExact"})", "r.example/app@" + kDigestA, "r.example/app:2", true},
        {R"({"type":"matchRepoDigestOrExact"})", "r.example/app@" + kDigestA, "r.example/other:2", false},
        {R"({"type":"matchRepoDigestOrExact"})", "docker.io/library/busybox:1", "busybox:1", true},  // compared expanded
        // matchExact: by digest, a tag signature does not count.
        {R"({"type":"matchExact"})", "r.example/app:1", "r.example/app:1", true},
        {R"({"type":"matchExact"})", "r.example/app:1", "r.example/app:2", false},
        {R"({"type":"matchExact"})", "r.example/app@" + kDigestA, "r.example/app:1", false},
        {R"({"type":"matchExact"})", "r.example/app@" + kDigestA, "r.example/app@" + kDigestA, true},
        {R"({"type":"matchExact"})", "r.example/app:1", "r.example/app", false},
        // matchRepository, exactReference, exactRepository.
        {R"({"type":"matchRepository"})", "r.example/app:1", "r.example/app:7", true},
        {R"({"type":"matchRepository"})", "r.example/app:1", "r.example/app2:1", false},
        {R"({"type":"exactReference","dockerReference":"up.example/app:1"})", "r.example/app:9", "up.example/app:1", true},
        {R"({"type":"exactReference","dockerReference":"up.example/app:1"})", "r.example/app:9", "up.example/app:2", false},
        {R"({"type":"exactRepository","dockerRepository":"up.example/app"})", "r.example/x:9", "up.example/app:3", true},
        {R"({"type":"exactRepository","dockerRepository":"up.example/app"})", "r.example/x:9", "r.example/x:9", false},
        // remapIdentity: the prefix is replaced, then matchRepoDigestOrExact.
        {remap, "mirror.local:5000/vendor/prod/img:1", "vendor.example/prod/img:1", true},
        {remap, "mirror.local:5000/vendor/prod/img:1", "vendor.example/prod/img:2", false},
        {remap, "mirror.local:5000/vendor/prod/img:1", "mirror.local:5000/vendor/prod/img:1", false},
        {remap, "mirror.local:5000/vendor/prod/img@" + kDigestA, "vendor.example/prod/img:5", true},
        {remap, "mirror.local:5000/vendorx/img:1", "mirror.local:5000/vendorx/img:1", true},  // no match: unchanged
        {remap, "mirror.local:5000/vendorx/img:1", "vendor.examplex/img:1", false},
    };
    for (const auto &c : cases) {
        INFO(c.identity << " pulled " << c.pulled << " signed " << c.signed_ref);
        auto st = match_identity(with_identity(c.identity), image_ref(c.pulled), c.signed_ref);
        CHECK(static_cast<bool>(st) == c.ok);
    }
}

TEST_CASE("a relative keyPath is read from the policy file's directory, not the working directory", "[policy]") {
    char tmpl[] = "/tmp/berth-policy-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    std::string dir = tmpl;
    REQUIRE(util::atomic_write_file(dir + "/fleet.pub", "fleet key"));
    REQUIRE(util::atomic_write_file(dir + "/policy.json", R"({"default":[{"type":"sigstoreSigned","keyPath":"fleet.pub"}]})"));
    auto p = Policy::load(dir + "/policy.json");
    INFO((p ? std::string() : p.error().message()));
    REQUIRE(p);
    CHECK(p->lookup(image_ref("r.example/a:1")).requirements.at(0).keys_pem == std::vector<std::string>{"fleet key"});
    ::unlink((dir + "/fleet.pub").c_str());
    ::unlink((dir + "/policy.json").c_str());
    ::rmdir(dir.c_str());
}
