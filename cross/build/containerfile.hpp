// The Containerfile (Dockerfile) language berth build reads: line
// continuations, comments, the escape and syntax parser directives, ARG
// before FROM and $VAR / ${VAR} / ${VAR:-x} / ${VAR:+x} substitution where
// Docker does it, shell and JSON (exec) forms. Every instruction keeps its
// line number; anything not understood is an error naming the line
// ("Containerfile:7: unknown instruction FORM").
//
// The parser only splits: words keep their quotes and escapes, and
// expand_word() later resolves quotes, escapes and variables together, as
// Docker's shell lexer does, with the variables in force at that step.
// What each instruction's `args` hold:
//   FROM        words: IMAGE [AS NAME]
//   RUN CMD ENTRYPOINT SHELL
//               the JSON array's strings (json_form), else one string: the text
//   HEALTHCHECK "NONE", or "CMD" followed by the command as RUN has it
//   COPY ADD    the JSON array's strings, else words: SRC... DEST
//   ENV LABEL ARG
//               words "KEY=VALUE" (ARG: "NAME" or "NAME=DEFAULT"); the old
//               form `ENV KEY VALUE...` becomes one word "KEY=VALUE..."
//   WORKDIR     one string: the text
//   EXPOSE USER STOPSIGNAL
//               words
//   VOLUME      the JSON array's strings, else words
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
    char escape = '\\';                         ///< the escape directive's character
    std::string file_name = "Containerfile";    ///< for messages: "<file_name>:<line>: ..."
};

util::Result<Containerfile> parse_containerfile(std::string_view text, std::string_view file_name = "Containerfile");

/// Resolves one word as Docker's shell lexer does: quotes removed ('...'
/// literal, "..." with $ expanded), `escape` making the next character
/// literal, $NAME, ${NAME}, ${NAME:-word}, ${NAME-word}, ${NAME:+word},
/// ${NAME+word}, ${NAME:?message} / ${NAME?message} from `vars`; an unset
/// variable is empty. Errors name what is malformed.
util::Result<std::string> expand_word(std::string_view word, const std::map<std::string, std::string> &vars,
                                      char escape = '\\');

/// "KEY=VALUE" -> {KEY, VALUE} split at the first '='; no '=': {word, nullopt}.
std::pair<std::string, std::optional<std::string>> split_assignment(std::string_view word);

/// "<file>:<line>: <what>": how every Containerfile error reads.
util::Error line_error(const Containerfile &cf, int line, std::string_view what);

}  // namespace build
