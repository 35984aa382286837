// The Containerfile parser: every instruction, substitution, bad files.
#include <catch2/catch.hpp>

#include "cross/build/containerfile.hpp"

using build::expand_word;
using build::parse_containerfile;

namespace {

std::string error_of(std::string_view text) {
    auto r = parse_containerfile(text);
    REQUIRE_FALSE(r.ok());
    return r.error().message();
}

}  // namespace

TEST_CASE("every instruction parses with its line number", "[containerfile]") {
    auto cf = parse_containerfile(
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=scratch\n"
        "FROM --platform=$BUILDPLATFORM ${BASE} AS Build\n"
        "RUN echo a \\\n"
        "    && echo b\n"
        "RUN [\"/bin/sh\", \"-c\", \"true\"]\n"
        "COPY --from=localhost/img:1 --chown=1:2 --chmod=0755 a b /dst/\n"
        "ADD --checksum=sha256:00 x.tar /\n"
        "ARG V=1\n"
        "ENV A=1 B=\"two words\"\n"
        "ENV OLD legacy value\n"
        "WORKDIR /app\n"
        "USER app:staff\n"
        "ENTRYPOINT [\"/bin/app\"]\n"
        "CMD --serve\n"
        "LABEL a=b \"c d\"=e\n"
        "EXPOSE 80 53/udp\n"
        "VOLUME [\"/data\"]\n"
        "HEALTHCHECK --interval=5s CMD wget -q localhost\n"
        "STOPSIGNAL SIGINT\n"
        "SHELL [\"/bin/ash\", \"-c\"]\n"
        "from build\n");
    INFO((cf.ok() ? std::string() : cf.error().message()));
    REQUIRE(cf.ok());
    REQUIRE(cf->pre_from_args.size() == 1);
    REQUIRE(cf->stages.size() == 2);
    const auto &st = cf->stages[0];
    CHECK(st.name == "build");
    CHECK(st.from.line == 3);
    CHECK(st.from.flags.at("platform") == "$BUILDPLATFORM");
    CHECK(st.from.args == std::vector<std::string>{"${BASE}", "AS", "Build"});
    const auto &b = st.body;
    REQUIRE(b.size() == 17);
    CHECK(b[0].keyword == "RUN");
    CHECK(b[0].line == 4);
    CHECK_FALSE(b[0].json_form);
    CHECK(b[0].args == std::vector<std::string>{"echo a     && echo b"});
    CHECK(b[1].json_form);
    CHECK(b[1].line == 6);
    CHECK(b[1].args == std::vector<std::string>{"/bin/sh", "-c", "true"});
    CHECK(b[2].keyword == "COPY");
    CHECK(b[2].flags.at("from") == "localhost/img:1");
    CHECK(b[2].flags.at("chown") == "1:2");
    CHECK(b[2].flags.at("chmod") == "0755");
    CHECK(b[2].args == std::vector<std::string>{"a", "b", "/dst/"});
    CHECK(b[3].flags.at("checksum") == "sha256:00");
    CHECK(b[4].args == std::vector<std::string>{"V=1"});
    CHECK(b[5].args == std::vector<std::string>{"A=1", "B=\"two words\""});
    CHECK(b[6].args == std::vector<std::string>{"OLD=legacy value"});
    CHECK(b[7].args == std::vector<std::string>{"/app"});
    CHECK(b[8].args == std::vector<std::string>{"app:staff"});
    CHECK(b[9].json_form);
    CHECK(b[10].args == std::vector<std::string>{"--serve"});
    CHECK(b[11].args == std::vector<std::string>{"a=b", "\"c d\"=e"});
    CHECK(b[12].args == std::vector<std::string>{"80", "53/udp"});
    CHECK(b[13].json_form);
    CHECK(b[14].args == std::vector<std::string>{"CMD", "wget -q localhost"});
    CHECK(b[14].flags.at("interval") == "5s");
    CHECK(b[15].args == std::vector<std::string>{"SIGINT"});
    CHECK(b[16].args == std::vector<std::string>{"/bin/ash", "-c"});
    CHECK(b[16].line == 21);
    CHECK(cf->stages[1].from.line == 22);
}

TEST_CASE("comments and blank lines inside a continuation are dropped", "[containerfile]") {
    auto cf = parse_containerfile("FROM scratch\nRUN a \\\n# comment\n\n  b\n");
    REQUIRE(cf.ok());
    CHECK(cf->stages[0].body[0].args[0] == "a   b");
}

TEST_CASE("the escape directive changes the continuation character", "[containerfile]") {
    auto cf = parse_containerfile("# escape=`\nFROM scratch\nCOPY a `\n  b /\n");
    REQUIRE(cf.ok());
    CHECK(cf->escape == '`');
    CHECK(cf->stages[0].body[0].args == std::vector<std::string>{"a", "b", "/"});
}

TEST_CASE("an unknown instruction is an error naming its line", "[containerfile]") {
    CHECK(error_of("FROM scratch\n\nFORM x\n") == "Containerfile:3: unknown instruction FORM");
}

TEST_CASE("an instruction before FROM other than ARG is refused", "[containerfile]") {
    CHECK(error_of("ENV A=1\nFROM scratch\n") == "Containerfile:1: ENV before the first FROM (only ARG may come before it)");
}

TEST_CASE("a COPY --from naming no earlier stage is refused with its line", "[containerfile]") {
    CHECK(error_of("FROM scratch AS a\nCOPY --from=b /x /y\nFROM scratch AS b\n").starts_with(
        "Containerfile:2: COPY --from=b: no stage named `b` before this line"));
    CHECK(error_of("FROM scratch\nCOPY --from=1 /x /y\n") == "Containerfile:2: COPY --from=1: no stage 1 before this one");
}

TEST_CASE("COPY --from accepts an earlier stage, its index and an image with a registry", "[containerfile]") {
    CHECK(parse_containerfile("FROM scratch AS A\nFROM scratch\nCOPY --from=a /x /y\nCOPY --from=0 /x /y\n"
                              "COPY --from=localhost:5000/img:1 /x /y\n").ok());
}

TEST_CASE("an ARG loop is one error with the line number", "[containerfile]") {
    CHECK(error_of("ARG A=${B}\nARG B=$A\nFROM scratch\n") == "Containerfile:1: ARG loop: A -> B -> A");
    CHECK(error_of("FROM scratch\nARG X=x$X\n") == "Containerfile:2: ARG loop: X -> X");
}

TEST_CASE("an ARG that extends its earlier value is no loop", "[containerfile]") {
    CHECK(parse_containerfile("FROM scratch\nARG V=1\nARG V=${V}-x\n").ok());
}

TEST_CASE("unknown flags and unsupported RUN flags are refused", "[containerfile]") {
    CHECK(error_of("FROM scratch\nCOPY --frm=a x y\n") == "Containerfile:2: unknown flag --frm for COPY");
    CHECK(error_of("FROM scratch\nRUN --network=none true\n") == "Containerfile:2: RUN --network is not supported by berth build");
    CHECK(error_of("FROM scratch\nRUN --mount=type=tmpfs,target=/x true\n") ==
          "Containerfile:2: RUN --mount: type=tmpfs is not supported by berth build (only type=cache and type=bind)");
    CHECK(error_of("FROM scratch\nRUN --mount=type=cache true\n") == "Containerfile:2: RUN --mount: needs an absolute target=PATH");
}

TEST_CASE("RUN --mount values are kept in order and parse as BuildKit's", "[containerfile]") {
    auto cf = parse_containerfile("FROM scratch\nRUN --mount=type=cache,target=/c,sharing=locked --mount=dst=/b,src=x,rw true\n");
    REQUIRE(cf.ok());
    const auto &in = cf->stages[0].body[0];
    REQUIRE(in.mounts.size() == 2);
    CHECK(in.args == std::vector<std::string>{"true"});
    auto c = build::parse_run_mount(in.mounts[0]);
    REQUIRE(c.ok());
    CHECK((c->type == "cache" && c->target == "/c" && c->id == "/c" && c->sharing == "locked" && !c->readonly));
    auto b = build::parse_run_mount(in.mounts[1]);
    REQUIRE(b.ok());
    CHECK((b->type == "bind" && b->target == "/b" && b->source == "x" && !b->readonly));
    CHECK(build::parse_run_mount("type=bind,target=/b")->readonly);
}

TEST_CASE("here-documents follow their line verbatim, in marker order", "[containerfile]") {
    auto cf = parse_containerfile(
        "FROM scratch\n"
        "RUN cat <<A <<-'B' >/f\n"
        "one\n"
        "# not a comment\n"
        "\n"
        "A\n"
        "\ttwo $X\n"
        "\tB\n"
        "COPY <<EOF /x\n"
        "three\n"
        "EOF\n"
        "ENV Y=1\n");
    REQUIRE(cf.ok());
    const auto &body = cf->stages[0].body;
    REQUIRE(body.size() == 3);
    REQUIRE(body[0].heredocs.size() == 2);
    CHECK(body[0].heredocs[0].name == "A");
    CHECK(body[0].heredocs[0].content == "one\n# not a comment\n\n");
    CHECK(body[0].heredocs[0].expand);
    CHECK(body[0].heredocs[1].content == "two $X\n");
    CHECK((body[0].heredocs[1].chomp && !body[0].heredocs[1].expand));
    CHECK(body[1].line == 9);
    CHECK(body[1].heredocs.at(0).content == "three\n");
    CHECK(body[2].line == 12);
    CHECK(error_of("FROM scratch\nRUN <<EOF\nno end\n") == "Containerfile:2: here-document EOF is not closed by a line EOF");
    CHECK_FALSE(build::heredoc_marker("<<<EOF"));
    CHECK(build::heredoc_marker("<<EOF")->name == "EOF");
}

TEST_CASE("malformed instructions name their line", "[containerfile]") {
    CHECK(error_of("FROM scratch\nSHELL /bin/sh\n").starts_with("Containerfile:2: SHELL needs the JSON form"));
    CHECK(error_of("FROM scratch\nCOPY onlyone\n") == "Containerfile:2: COPY needs a source and a destination");
    CHECK(error_of("FROM scratch\nHEALTHCHECK RUN x\n") == "Containerfile:2: HEALTHCHECK needs NONE or CMD, not RUN");
    CHECK(error_of("FROM a b\n") == "Containerfile:1: FROM takes IMAGE [AS NAME]");
    CHECK(error_of("FROM scratch AS x\nFROM scratch AS X\n") == "Containerfile:2: stage name `x` used twice");
    CHECK(error_of("# nothing\n") == "Containerfile: no FROM instruction");
    CHECK(error_of("FROM scratch\nLABEL a=\"b\n").starts_with("Containerfile:2: LABEL: unmatched double quote"));
}

TEST_CASE("substitution follows Docker's rules", "[containerfile]") {
    std::map<std::string, std::string> v{{"A", "1"}, {"E", ""}, {"SP", "x y"}};
    auto x = [&](std::string_view w) {
        auto r = expand_word(w, v);
        REQUIRE(r.ok());
        return *r;
    };
    CHECK(x("$A") == "1");
    CHECK(x("${A}b") == "1b");
    CHECK(x("$Ab") == "");
    CHECK(x("${U:-def}") == "def");
    CHECK(x("${E:-def}") == "def");
    CHECK(x("${E-def}") == "");
    CHECK(x("${A:+alt}") == "alt");
    CHECK(x("${U:+alt}") == "");
    CHECK(x("${E+alt}") == "alt");
    CHECK(x("'$A'") == "$A");
    CHECK(x("\"$A $SP\"") == "1 x y");
    CHECK(x("\\$A") == "$A");
    CHECK(x("\"\\$A\"") == "$A");
    CHECK(x("a\\ b") == "a b");
    CHECK(x("$") == "$");
    CHECK(x("${U:-${A}}") == "1");
    CHECK(expand_word("`$A", v, '`').value() == "$A");
    CHECK_FALSE(expand_word("${U:?must be set}", v).ok());
    CHECK_FALSE(expand_word("${A#x}", v).ok());
    CHECK_FALSE(expand_word("'open", v).ok());
}
