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
//
// Here-documents (BuildKit's `RUN <<EOF`, `COPY <<EOF /path`): after a RUN,
// COPY or ADD line whose words include `<<NAME` (`<<-NAME` strips leading
// tabs, `<<"NAME"` / `<<'NAME'` turns off substitution), the following
// lines up to one that is exactly NAME are the document's body, kept
// verbatim (comment and blank lines included) in Instruction::heredocs, in
// the order their markers appear.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace build {

struct Heredoc {
    std::string name;      ///< the delimiter word: EOF
    std::string content;   ///< the body, each line ending in \n
    bool expand = true;    ///< an unquoted delimiter: COPY substitutes variables in the body
    bool chomp = false;    ///< <<-: leading tabs were stripped from every line
};

struct Instruction {
    int line = 0;
    std::string keyword;                        ///< upper case: FROM, RUN, COPY, ...
    std::map<std::string, std::string> flags;   ///< --from=, --chown=, --chmod=, --platform=, --checksum=
    std::vector<std::string> args;              ///< words after the flags (substitution deferred to the builder)
    bool json_form = false;                     ///< ["a", "b"]
    std::string raw;                            ///< the text after the keyword, continuations joined
    std::vector<Heredoc> heredocs;              ///< RUN/COPY/ADD here-documents, in marker order
    std::vector<std::string> mounts;            ///< RUN --mount= values, as written
};

/// A RUN --mount, as BuildKit and podman define the two kinds berth takes:
///   type=cache,target=PATH[,id=ID][,sharing=shared|locked|private]
///              [,mode=0755][,uid=0][,gid=0][,ro]
///     a directory kept in the store between builds (by id, default the
///     target), never part of a layer;
///   type=bind,target=PATH[,source=PATH][,from=STAGE|IMAGE][,rw]
///     a path of the context (or of a stage's or image's root) bound in,
///     read-only unless rw (whose writes are then thrown away).
/// `dst`/`destination` stand for target, `src` for source, `readonly` for ro,
/// `readwrite` for rw, as BuildKit reads them.
struct RunMount {
    std::string type;
    std::string target;
    std::string source;
    std::string from;
    std::string id;
    std::string sharing = "shared";
    bool readonly = false;
    mode_t mode = 0755;
    uid_t uid = 0;
    gid_t gid = 0;
};

/// Parses one --mount value (after substitution); errors name what is wrong.
util::Result<RunMount> parse_run_mount(std::string_view spec);

/// The here-document marker a word is (`<<EOF`, `<<-"EOF"`), else nullopt:
/// {name, expand, chomp} with an empty content.
std::optional<Heredoc> heredoc_marker(std::string_view word);

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
