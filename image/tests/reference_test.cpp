// Image references: good and bad ones, and default-registry completion.
#include <catch2/catch.hpp>

#include "image/reference.hpp"

using img::Reference;

TEST_CASE("references that parse", "[reference]") {
    std::string hex(64, 'a');
    struct Case {
        const char *in, *registry, *repo, *tag, *canonical;
    } cases[] = {
        {"localhost:5000/app:1.0", "localhost:5000", "app", "1.0", "localhost:5000/app:1.0"},
        {"localhost/app", "localhost", "app", "latest", "localhost/app:latest"},
        {"127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", "latest", "127.0.0.1:5000/a/b/c:latest"},
        {"registry.example.com/team/sensor-app:v2.0_rc-1", "registry.example.com", "team/sensor-app", "v2.0_rc-1",
         "registry.example.com/team/sensor-app:v2.0_rc-1"},
        {"quay.io/a__b/c.d:T", "quay.io", "a__b/c.d", "T", "quay.io/a__b/c.d:T"},
        {"docker.io/busybox", "docker.io", "library/busybox", "latest", "docker.io/library/busybox:latest"},
        {"index.docker.io/x/y:1", "docker.io", "x/y", "1", "docker.io/x/y:1"},
        {"[::1]:5000/app:1", "[::1]:5000", "app", "1", "[::1]:5000/app:1"},
    };
    for (const auto &c : cases) {
        INFO(c.in);
        auto r = Reference::parse(c.in);
        REQUIRE(r);
        CHECK(r->registry == c.registry);
        CHECK(r->repository == c.repo);
        CHECK(r->tag == c.tag);
        CHECK_FALSE(r->digest);
        CHECK(r->str() == c.canonical);
    }
    auto d = Reference::parse("localhost:5000/app@sha256:" + hex);
    REQUIRE(d);
    CHECK(d->tag.empty());
    REQUIRE(d->digest);
    CHECK(d->digest->hex() == hex);
    CHECK(d->str() == "localhost:5000/app@sha256:" + hex);
    auto td = Reference::parse("localhost:5000/app:1.0@sha256:" + hex);
    REQUIRE(td);
    CHECK(td->tag == "1.0");
    CHECK(td->digest);
}

TEST_CASE("short names need a default registry", "[reference]") {
    CHECK_FALSE(Reference::parse("busybox"));
    CHECK_FALSE(Reference::parse("busybox:1.36"));
    CHECK_FALSE(Reference::parse("library/busybox"));
    auto r = Reference::parse("busybox:1.36", "docker.io");
    REQUIRE(r);
    CHECK(r->str() == "docker.io/library/busybox:1.36");
    auto o = Reference::parse("team/app", "registry.example.com:443");
    REQUIRE(o);
    CHECK(o->str() == "registry.example.com:443/team/app:latest");  // no library/ outside docker.io
}

TEST_CASE("references that do not parse", "[reference]") {
    for (const std::string &bad : std::vector<std::string>{
             "", "localhost:5000/", "localhost:5000/App", "localhost:5000/app:", "localhost:5000/app:-x",
             "localhost:5000/app:" + std::string(129, 't'), "localhost:5000/-app", "localhost:5000/app-",
             "localhost:5000/a..b", "localhost:5000/a//b", "localhost:5000/app@sha256:abc",
             "localhost:5000/app@md5:" + std::string(32, 'a'), "localhost:99999/app", "local_host:5000/app",
             "-bad.example/app", "localhost:5000/app:1.0:2", "localhost:5000/a b", "localhost:5000/../etc",
             "localhost:5000/" + std::string(300, 'a'),
         }) {
        INFO(bad);
        CHECK_FALSE(Reference::parse(bad, "docker.io"));
    }
}
