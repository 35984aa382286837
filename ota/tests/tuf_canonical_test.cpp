// The pieces under the TUF client: canonical JSON byte for byte as
// securesystemslib and tuf-js write it, expiry dates, delegation path
// patterns, role names made safe for URLs and file names, the fetch cap and
// the key types and hash algorithms refused by name.
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <string>

#include "ota/tuf/canonical.hpp"
#include "ota/tuf/crypto.hpp"
#include "ota/tuf/fetcher.hpp"
#include "ota/tuf/metadata.hpp"
#include "util/file.hpp"
#include "util/json.hpp"

namespace {

std::string canon(const char *text) {
    auto v = util::json::parse(text, "test");
    REQUIRE(v);
    auto c = ota::tuf::canonical_json(*v);
    REQUIRE(c);
    return *c;
}

}  // namespace

TEST_CASE("canonical json sorts keys by code point and drops whitespace") {
    CHECK(canon(R"({ "b": 1, "a": [ 1, 2 ], "B": {}, "é": 0, "a b": null, "": true })") ==
          "{\"\":true,\"B\":{},\"a\":[1,2],\"a b\":null,\"b\":1,\"\xc3\xa9\":0}");
}

TEST_CASE("canonical json escapes only quote and backslash") {
    CHECK(canon(R"(["q\"b\\s", "tab\tnl\n\u0001", "\u00e9\ud83d\ude00", "/"])") ==
          "[\"q\\\"b\\\\s\",\"tab\tnl\n\x01\",\"\xc3\xa9\xf0\x9f\x98\x80\",\"/\"]");
}

TEST_CASE("canonical json writes integers, negative and large, as integers") {
    CHECK(canon(R"([0, -0, -12, 9007199254740991, 18446744073709551615])") == "[0,0,-12,9007199254740991,18446744073709551615]");
}

TEST_CASE("canonical json refuses a number with a fraction or exponent") {
    for (const char *text : {"[1.5]", "[1.0]", "{\"a\": 1e3}"}) {
        auto v = util::json::parse(text, "test");
        REQUIRE(v);
        auto c = ota::tuf::canonical_json(*v);
        REQUIRE(!c);
        CHECK_THAT(c.error().message(), Catch::Contains("not an integer"));
    }
}

TEST_CASE("expiry dates parse as UTC and anything else is refused") {
    CHECK(*ota::tuf::parse_expiry("1970-01-02T00:00:01Z") == 86401);
    CHECK(*ota::tuf::parse_expiry("2099-01-01T00:00:00Z") == 4070908800);
    for (const char *bad : {"2099-01-01", "2099-01-01T00:00:00+01:00", "2099-13-01T00:00:00Z", "2099-01-01T00:00:00.5Z"})
        CHECK(!ota::tuf::parse_expiry(bad));
}

TEST_CASE("expiry dates past 2038 survive a 32-bit time_t, both ways") {
    for (const char *d : {"2038-01-19T03:14:08Z", "2099-12-31T23:59:59Z", "2400-02-29T12:00:00Z", "1969-12-31T23:59:59Z"}) {
        auto t = ota::tuf::parse_expiry(d);
        REQUIRE(t);
        CHECK(ota::tuf::format_expiry(*t) == d);
    }
    CHECK(*ota::tuf::parse_expiry("2038-01-19T03:14:08Z") == 2147483648LL);
}

TEST_CASE("delegation paths match each segment with fnmatch and the same number of segments") {
    ota::tuf::DelegatedRole r;
    r.paths = std::vector<std::string>{"channels/*/manifest.json"};
    CHECK(*r.covers("channels/stable/manifest.json"));
    CHECK(!*r.covers("channels/a/b/manifest.json"));
    CHECK(!*r.covers("channels/manifest.json"));
    r.paths = std::vector<std::string>{"*"};
    CHECK(*r.covers("file.txt"));
    CHECK(!*r.covers("dir/file.txt"));
    r.paths = std::vector<std::string>{"a/[bc]?/x\\*"};
    CHECK(*r.covers("a/b1/x\\anything"));
    CHECK(!*r.covers("a/d1/x\\y"));
}

TEST_CASE("role names are percent-encoded for URLs and file names") {
    CHECK(ota::tuf::percent_encode("a/../b c%") == "a%2F..%2Fb%20c%25");
    CHECK(ota::tuf::percent_encode("dir/file name", true) == "dir/file%20name");
    CHECK(ota::tuf::percent_encode("/a//b/", true) == "/a//b/");
    CHECK(ota::tuf::percent_encode("team-1_x.y~z") == "team-1_x.y~z");
}

TEST_CASE("a file fetch stops at its byte cap and reports a missing file as not found") {
    char tmpl[] = "/tmp/berth-tuf-fetch-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    REQUIRE(util::atomic_write_file(dir + "/big", std::string(1000, 'x')));
    ota::tuf::FileFetcher f;
    auto big = f.fetch("file://" + dir + "/big", 999);
    REQUIRE(!big);
    CHECK_THAT(big.error().message(), Catch::Contains("more than 999 bytes"));
    auto exact = f.fetch("file://" + dir + "/big", 1000);
    REQUIRE(exact);
    CHECK((*exact)->size() == 1000);
    REQUIRE(util::atomic_write_file(dir + "/a%2Fb c.json", "x"));
    auto encoded = f.fetch("file://" + dir + "/a%2Fb%20c.json", 10);  // %2F stays in the name, %20 is a space
    REQUIRE(encoded);
    CHECK(**encoded == "x");
    auto missing = f.fetch("file://" + dir + "/none", 10);
    REQUIRE(missing);
    CHECK(!*missing);
    (void)util::remove_tree(dir);
}

TEST_CASE("unknown key types and hash algorithms are refused by name") {
    auto st = ota::tuf::check_key({"rsa", "rsassa-pkcs1v15-sha256", "x"});
    REQUIRE(!st);
    CHECK_THAT(st.error().message(), Catch::Contains("unsupported key type `rsa` with scheme `rsassa-pkcs1v15-sha256`"));
    auto h = ota::tuf::hash_hex("md5", "x");
    REQUIRE(!h);
    CHECK_THAT(h.error().message(), Catch::Contains("unsupported hash algorithm `md5`"));
    CHECK(*ota::tuf::hash_hex("sha512", "") ==
          "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
}
