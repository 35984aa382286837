// Config assembly: each config-only instruction's effect on the image
// config, and the history entries, as podman writes them.
#include <catch2/catch.hpp>

#include "cross/build/image_config.hpp"

using build::ConfigState;
using util::json::Value;

namespace {

/// Applies the body of "FROM scratch\n<text>" to a fresh state.
ConfigState apply(std::string_view text, std::map<std::string, std::string> vars = {}) {
    auto cf = build::parse_containerfile(std::string("FROM scratch\n") + std::string(text));
    REQUIRE(cf.ok());
    ConfigState st;
    for (const auto &in : cf->stages[0].body) {
        auto v = vars;
        for (const auto &[k, val] : st.env()) v[k] = val;
        auto r = build::apply_config_instruction(*cf, in, v, 0, st);
        REQUIRE(r.ok());
    }
    return st;
}

}  // namespace

TEST_CASE("ENV sets and replaces entries in order, substituting the earlier values", "[config]") {
    auto st = apply("ENV A=1 B=2\nENV A=3 C=$A\n");
    CHECK(st.config["Env"].dump() == R"(["A=3","B=2","C=1"])");
}

TEST_CASE("WORKDIR is joined to the previous one and cleaned", "[config]") {
    auto st = apply("WORKDIR /a\nWORKDIR b/../c\n");
    CHECK(st.config["WorkingDir"] == "/a/c");
}

TEST_CASE("ENTRYPOINT and CMD take the JSON form as it is and wrap the shell form", "[config]") {
    auto st = apply("CMD echo hi\nENTRYPOINT [\"/bin/app\", \"-v\"]\n");
    CHECK(st.config["Cmd"].dump() == R"(["/bin/sh","-c","echo hi"])");
    CHECK(st.config["Entrypoint"].dump() == R"(["/bin/app","-v"])");
}

TEST_CASE("an ENTRYPOINT resets a CMD not given in the stage", "[config]") {
    ConfigState st;
    st.config["Cmd"] = Value({"sh"});
    auto cf = build::parse_containerfile("FROM x\nENTRYPOINT [\"/e\"]\n");
    REQUIRE(cf.ok());
    REQUIRE(build::apply_config_instruction(*cf, cf->stages[0].body[0], {}, 0, st).ok());
    CHECK_FALSE(st.config.contains("Cmd"));
}

TEST_CASE("CMD's shell form stays /bin/sh -c after SHELL, as podman writes it", "[config]") {
    auto st = apply("SHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]\nCMD run\n");
    CHECK(st.config["Cmd"].dump() == R"(["/bin/sh","-c","run"])");
    CHECK(st.shell == std::vector<std::string>{"/bin/ash", "-eo", "pipefail", "-c"});
}

TEST_CASE("LABEL, EXPOSE and VOLUME fill sorted maps", "[config]") {
    auto st = apply("LABEL b=2 \"a x\"=\"1 2\"\nEXPOSE 80 53/UDP 8000-8001\nVOLUME /data [\"/x\"]\nVOLUME [\"/logs\"]\n");
    CHECK(st.config["Labels"].dump() == R"({"a x":"1 2","b":"2"})");
    CHECK(st.config["ExposedPorts"].dump() == R"({"53/udp":{},"80/tcp":{},"8000-8001/tcp":{}})");
    CHECK(st.config["Volumes"].dump() == R"({"/data":{},"/logs":{},"[/x]":{}})");
}

TEST_CASE("USER and STOPSIGNAL are substituted", "[config]") {
    auto st = apply("USER $U\nSTOPSIGNAL SIG$S\n", {{"U", "app"}, {"S", "INT"}});
    CHECK(st.config["User"] == "app");
    CHECK(st.config["StopSignal"] == "SIGINT");
}

TEST_CASE("HEALTHCHECK writes Docker's Healthcheck with durations in nanoseconds", "[config]") {
    auto st = apply("HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --retries=3 CMD wget -q x\n");
    CHECK(st.config["Healthcheck"].dump() ==
          R"({"Test":["CMD-SHELL","wget -q x"],"Interval":90000000000,"Timeout":500000000,"StartPeriod":2000000000,"Retries":3})");
    auto none = apply("HEALTHCHECK NONE\n");
    CHECK(none.config["Healthcheck"].dump() == R"({"Test":["NONE"]})");
    auto json = apply("HEALTHCHECK CMD [\"/bin/check\"]\n");
    CHECK(json.config["Healthcheck"]["Test"].dump() == R"(["CMD","/bin/check"])");
}

TEST_CASE("each config step has an empty-layer history entry at the epoch", "[config]") {
    auto st = apply("ENV A=\"b c\"\nCMD [\"x\"]\n");
    REQUIRE(st.history.size() == 2);
    CHECK(st.history[0].dump() ==
          R"({"created":"1970-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop) ENV A=\"b c\"","empty_layer":true})");
    CHECK(st.history[1]["created_by"] == "/bin/sh -c #(nop) CMD [\"x\"]");
}

TEST_CASE("a bad value names the line", "[config]") {
    auto cf = build::parse_containerfile("FROM scratch\nEXPOSE 80/xyz\n");
    REQUIRE(cf.ok());
    ConfigState st;
    auto r = build::apply_config_instruction(*cf, cf->stages[0].body[0], {}, 0, st);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "Containerfile:2: EXPOSE: invalid protocol `xyz`");
}

TEST_CASE("durations parse as Go writes them", "[config]") {
    CHECK(build::parse_duration("30s").value() == 30000000000);
    CHECK(build::parse_duration("1h2m").value() == 3720000000000);
    CHECK(build::parse_duration("1.5s").value() == 1500000000);
    CHECK_FALSE(build::parse_duration("10").ok());
    CHECK_FALSE(build::parse_duration("5x").ok());
}
