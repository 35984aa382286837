// The Containerfile (Dockerfile) language berth build reads: line
// continuations, comments, the escape and syntax parser directives, ARG
// before FROM and $VAR / ${VAR} / ${VAR:-x} / ${VAR:+x} substitution where
// Docker does it, shell and JSON (exec) forms. Every instruction keeps its
// line number; anything not understood is an error naming the line
// ("Containerfile:7: unknown instruction FORM").
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace build {

struct Instruction {
    int line = 0;
    std::string keyword;                        ///< upper case: FROM, RUN, COPY, ...
    std::map<std::string, std::string> flags;   ///< --from=, --chown=, --chmod=, --platform=, --checksum=
    std::vector<std::string> args;              ///< words after the flags (substitution deferred to the builder)
    bool json_form = false;                     ///< ["a", "b"]
    std::string raw;                            ///< the text after the keyword, continuations joined
};

struct Stage {
    std::string name;                           ///< AS name, or its index as text
    Instruction from;
    std::vector<Instruction> body;
};

struct Containerfile {
    std::vector<Instruction> pre_from_args;     ///< ARGs before the first FROM
    std::vector<Stage> stages;
};

util::Result<Containerfile> parse_containerfile(std::string_view text, std::string_view file_name = "Containerfile");

}  // namespace build
