// Containerfile parsing and word expansion (see containerfile.hpp). The
// parser joins continuation lines, drops comments, reads the parser
// directives at the top, splits each instruction into its flags and
// arguments and checks what can be checked without the build: known
// instructions and flags, forms, COPY --from naming an earlier stage (or
// an image with its registry), and ARG defaults that refer back to
// themselves (an "ARG loop").
#include "cross/build/containerfile.hpp"

#include <algorithm>
#include <set>

#include "util/json.hpp"
#include "util/strings.hpp"

namespace build {
namespace {

using util::cat;
using util::Error;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }
bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

std::string upper(std::string_view s) {
    std::string out(s);
    for (char &c : out)
        if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
    return out;
}
std::string lower(std::string_view s) {
    std::string out(s);
    for (char &c : out)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return out;
}

/// The flags each instruction takes.
const std::map<std::string, std::set<std::string>> &known_instructions() {
    static const std::map<std::string, std::set<std::string>> k = {
        {"FROM", {"platform"}},
        {"RUN", {}},
        {"CMD", {}},
        {"ENTRYPOINT", {}},
        {"SHELL", {}},
        {"COPY", {"from", "chown", "chmod"}},
        {"ADD", {"chown", "chmod", "checksum"}},
        {"ARG", {}},
        {"ENV", {}},
        {"WORKDIR", {}},
        {"USER", {}},
        {"LABEL", {}},
        {"EXPOSE", {}},
        {"VOLUME", {}},
        {"HEALTHCHECK", {"interval", "timeout", "start-period", "start-interval", "retries"}},
        {"STOPSIGNAL", {}},
    };
    return k;
}

/// Splits `s` into words at whitespace outside quotes; quotes and escapes stay in the words.
util::Result<std::vector<std::string>> split_words(std::string_view s, char escape) {
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false;
    char quote = 0;
    for (size_t i = 0; i < s.size(); i++) {
        char c = s[i];
        if (quote) {
            cur += c;
            if (c == escape && quote == '"' && i + 1 < s.size()) {
                cur += s[++i];
            } else if (c == quote) {
                quote = 0;
            }
            continue;
        }
        if (is_space(c)) {
            if (in_word) words.push_back(std::move(cur));
            cur.clear();
            in_word = false;
            continue;
        }
        in_word = true;
        cur += c;
        if (c == escape && i + 1 < s.size()) {
            cur += s[++i];
        } else if (c == '\'' || c == '"') {
            quote = c;
        }
    }
    if (quote) return Error::msg(cat("unmatched ", quote == '"' ? "double" : "single", " quote"));
    if (in_word) words.push_back(std::move(cur));
    return words;
}

/// The JSON (exec) form: a JSON array of strings, else nullopt.
std::optional<std::vector<std::string>> json_array(std::string_view rest) {
    std::string_view t = util::trim(rest);
    if (t.empty() || t.front() != '[') return std::nullopt;
    auto v = util::json::parse(t, "instruction");
    if (!v || !v->is_array()) return std::nullopt;
    std::vector<std::string> out;
    for (const auto &e : *v) {
        if (!e.is_string()) return std::nullopt;
        out.push_back(e.get<std::string>());
    }
    return out;
}

/// A logical line: the text with continuations joined, where it starts,
/// and the here-documents that follow it.
struct Logical {
    int line;
    std::string text;
    std::vector<Heredoc> heredocs;
};

/// Reads the parser directives (`# escape=`` `, `# syntax=...`) at the top.
util::Result<size_t> read_directives(const std::vector<std::string_view> &lines, Containerfile &cf) {
    size_t i = 0;
    std::set<std::string> seen;
    for (; i < lines.size(); i++) {
        std::string_view l = util::trim(lines[i]);
        if (l.empty() || l.front() != '#') break;
        l = util::trim(l.substr(1));
        size_t eq = l.find('=');
        if (eq == std::string_view::npos) break;
        std::string key = lower(util::trim(l.substr(0, eq)));
        std::string_view value = util::trim(l.substr(eq + 1));
        if (key != "escape" && key != "syntax" && key != "check") break;
        if (!seen.insert(key).second) return line_error(cf, int(i + 1), cat("parser directive ", key, " given twice"));
        if (key == "escape") {
            if (value != "\\" && value != "`")
                return line_error(cf, int(i + 1), cat("invalid escape character ", util::quote(value), ": must be \\ or `"));
            cf.escape = value[0];
        }
    }
    return i;
}

/// The here-document markers of a complete RUN, COPY or ADD line, in order.
std::vector<Heredoc> heredoc_markers(std::string_view text, char escape) {
    size_t kw_end = 0;
    while (kw_end < text.size() && !is_space(text[kw_end])) kw_end++;
    std::string kw = upper(text.substr(0, kw_end));
    if (kw != "RUN" && kw != "COPY" && kw != "ADD") return {};
    auto words = split_words(text.substr(kw_end), escape);
    if (!words) return {};
    std::vector<Heredoc> out;
    for (const auto &w : *words)
        if (auto h = heredoc_marker(w)) out.push_back(std::move(*h));
    return out;
}

/// Joins continuation lines into logical lines; drops blank and comment
/// lines (but not inside a here-document, whose lines are taken verbatim).
util::Result<std::vector<Logical>> logical_lines(const Containerfile &cf, const std::vector<std::string_view> &lines,
                                                 size_t first) {
    char escape = cf.escape;
    std::vector<Logical> out;
    std::optional<Logical> cur;
    auto finish = [&](size_t &i) -> util::Status {
        cur->heredocs = heredoc_markers(cur->text, escape);
        for (auto &h : cur->heredocs) {
            bool closed = false;
            while (++i < lines.size()) {
                std::string_view l = lines[i];
                if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
                if (h.chomp)
                    while (!l.empty() && l.front() == '\t') l.remove_prefix(1);
                if (l == h.name) {
                    closed = true;
                    break;
                }
                h.content.append(l);
                h.content += '\n';
            }
            if (!closed) return line_error(cf, cur->line, cat("here-document ", h.name, " is not closed by a line ", h.name));
        }
        out.push_back(std::move(*cur));
        cur.reset();
        return util::ok();
    };
    for (size_t i = first; i < lines.size(); i++) {
        std::string_view raw = lines[i];
        std::string_view t = util::trim(raw);
        if (t.empty() || t.front() == '#') continue;  // inside a continuation too, as Docker does
        std::string_view body = raw;
        while (!body.empty() && is_space(body.back())) body.remove_suffix(1);
        bool continues = !body.empty() && body.back() == escape;
        if (continues) body.remove_suffix(1);
        if (!cur) {
            while (!body.empty() && is_space(body.front())) body.remove_prefix(1);
            cur = Logical{int(i + 1), "", {}};
        }
        cur->text.append(body);
        if (!continues) TRY(finish(i));
    }
    if (cur) {  // a continuation at the end of the file
        size_t end = lines.size();
        TRY(finish(end));
    }
    return out;
}

/// The variables a raw word refers to ($X, ${X...}), outside single quotes.
void referenced_names(std::string_view w, char escape, std::set<std::string> &out) {
    bool single = false;
    for (size_t i = 0; i < w.size(); i++) {
        char c = w[i];
        if (single) {
            if (c == '\'') single = false;
            continue;
        }
        if (c == '\'') {
            single = true;
        } else if (c == escape) {
            i++;
        } else if (c == '$' && i + 1 < w.size()) {
            size_t j = i + 1;
            if (w[j] == '{') j++;
            size_t k = j;
            while (k < w.size() && is_name_char(w[k])) k++;
            if (k > j) out.insert(std::string(w.substr(j, k - j)));
        }
    }
}

/// Refuses ARG defaults that refer back to their own ARG, directly or
/// through other ARGs of the same scope (sequential substitution would give
/// them a value the author did not mean). A self-reference to a value set
/// by an earlier ARG of the same name is fine (`ARG V=${V}-x`).
util::Status check_arg_loops(const Containerfile &cf, const std::vector<const Instruction *> &args) {
    struct Decl {
        int line;
        std::set<std::string> refs;
    };
    std::map<std::string, Decl> decls;
    for (const Instruction *in : args) {
        for (const auto &w : in->args) {
            auto [name, def] = split_assignment(w);
            bool had_value = decls.count(name) > 0;
            Decl d{in->line, {}};
            if (def) referenced_names(*def, cf.escape, d.refs);
            if (had_value) d.refs.erase(name);
            if (!decls.count(name)) decls[name] = std::move(d);
            else decls[name].refs.insert(d.refs.begin(), d.refs.end());
        }
    }
    // Depth-first search for a cycle; the first one found is reported at the
    // line of the ARG it starts from.
    std::map<std::string, int> state;  // 1: on the path, 2: done
    std::vector<std::string> path;
    std::optional<util::Error> found;
    auto visit = [&](auto &self, const std::string &n) -> void {
        if (found) return;
        state[n] = 1;
        path.push_back(n);
        for (const auto &r : decls[n].refs) {
            if (!decls.count(r)) continue;
            if (state[r] == 1) {
                auto from = std::find(path.begin(), path.end(), r);
                std::vector<std::string> loop(from, path.end());
                loop.push_back(r);
                found = line_error(cf, decls[r].line, cat("ARG loop: ", util::join(loop, " -> ")));
                return;
            }
            if (state[r] == 0) self(self, r);
            if (found) return;
        }
        path.pop_back();
        state[n] = 2;
    };
    std::vector<std::pair<int, std::string>> order;
    for (const auto &[n, d] : decls) order.emplace_back(d.line, n);
    std::sort(order.begin(), order.end());
    for (const auto &[line, n] : order)
        if (state[n] == 0) visit(visit, n);
    if (found) return *found;
    return util::ok();
}

/// Does `s` name an image by a reference with a registry (host.name/..., host:port/..., localhost/...)?
bool names_registry_image(std::string_view s) {
    size_t slash = s.find('/');
    if (slash == std::string_view::npos) return false;
    std::string_view host = s.substr(0, slash);
    return host.find('.') != std::string_view::npos || host.find(':') != std::string_view::npos || host == "localhost";
}

util::Status check_copy_from(const Containerfile &cf, const Instruction &in, size_t stage_index) {
    auto it = in.flags.find("from");
    if (it == in.flags.end()) return util::ok();
    const std::string &from = it->second;
    if (from.find('$') != std::string::npos) return util::ok();  // resolved by the builder
    if (auto n = util::parse_int<size_t>(from)) {
        if (*n < stage_index) return util::ok();
        return line_error(cf, in.line, cat(in.keyword, " --from=", from, ": no stage ", from, " before this one"));
    }
    for (size_t i = 0; i < stage_index; i++)
        if (cf.stages[i].name == lower(from)) return util::ok();
    if (names_registry_image(from) || from.rfind("oci:", 0) == 0) return util::ok();
    return line_error(cf, in.line,
                      cat(in.keyword, " --from=", from, ": no stage named ", util::quote(from),
                          " before this line (an image needs its registry: host/repo:tag)"));
}

util::Result<Instruction> parse_instruction(const Containerfile &cf, const Logical &l) {
    Instruction in;
    in.line = l.line;
    std::string_view t = l.text;
    size_t kw_end = 0;
    while (kw_end < t.size() && !is_space(t[kw_end])) kw_end++;
    in.keyword = upper(t.substr(0, kw_end));
    std::string_view rest = t.substr(kw_end);
    while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
    in.raw = std::string(rest);
    auto known = known_instructions().find(in.keyword);
    if (known == known_instructions().end()) {
        if (in.keyword == "ONBUILD" || in.keyword == "MAINTAINER")
            return line_error(cf, l.line, cat(in.keyword, " is not supported by berth build"));
        return line_error(cf, l.line, cat("unknown instruction ", t.substr(0, kw_end)));
    }
    // Flags: --name=value words at the start, for the instructions that take any.
    bool takes_flags = !known->second.empty() || in.keyword == "RUN";
    while (takes_flags && rest.size() >= 2 && rest.substr(0, 2) == "--") {
        size_t end = 0;
        while (end < rest.size() && !is_space(rest[end])) end++;
        std::string_view flag = rest.substr(2, end - 2);
        size_t eq = flag.find('=');
        std::string name(flag.substr(0, eq));
        std::string value = eq == std::string_view::npos ? "true" : std::string(flag.substr(eq + 1));
        if (in.keyword == "RUN" && name == "mount") {
            if (value.find('$') == std::string::npos) TRY_CTX(parse_run_mount(value), cat(cf.file_name, ":", l.line, ": RUN --mount"));
            in.mounts.push_back(value);
            rest.remove_prefix(end);
            while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
            continue;
        }
        if (!known->second.count(name)) {
            if (in.keyword == "RUN")
                return line_error(cf, l.line, cat("RUN --", name, " is not supported by berth build"));
            return line_error(cf, l.line, cat("unknown flag --", name, " for ", in.keyword));
        }
        if (value.empty()) return line_error(cf, l.line, cat(in.keyword, " --", name, " needs a value"));
        in.flags[name] = value;
        rest.remove_prefix(end);
        while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
    }
    const std::string &k = in.keyword;
    auto words = [&]() -> util::Result<std::vector<std::string>> {
        return TRY_CTX(split_words(rest, cf.escape), cat(cf.file_name, ":", l.line, ": ", k));
    };
    auto command_form = [&](std::string_view text) {
        if (auto j = json_array(text)) {
            in.json_form = true;
            return *j;
        }
        return std::vector<std::string>{std::string(text)};
    };
    if (rest.empty() && k != "HEALTHCHECK") return line_error(cf, l.line, cat(k, " needs an argument"));
    if (k == "RUN" || k == "CMD" || k == "ENTRYPOINT" || k == "SHELL") {
        in.args = command_form(rest);
        if (k == "SHELL" && !in.json_form) return line_error(cf, l.line, "SHELL needs the JSON form: SHELL [\"/bin/sh\", \"-c\"]");
    } else if (k == "HEALTHCHECK") {
        auto w = TRY(words());
        if (w.empty()) return line_error(cf, l.line, "HEALTHCHECK needs NONE or CMD");
        std::string first = upper(w[0]);
        if (first == "NONE") {
            if (w.size() != 1 || !in.flags.empty()) return line_error(cf, l.line, "HEALTHCHECK NONE takes no arguments");
            in.args = {"NONE"};
        } else if (first == "CMD") {
            std::string_view cmd = util::trim(rest.substr(3));
            if (cmd.empty()) return line_error(cf, l.line, "HEALTHCHECK CMD needs a command");
            in.args = command_form(cmd);
            in.args.insert(in.args.begin(), "CMD");
        } else {
            return line_error(cf, l.line, cat("HEALTHCHECK needs NONE or CMD, not ", w[0]));
        }
    } else if (k == "COPY" || k == "ADD" || k == "VOLUME") {
        if (auto j = json_array(rest)) {
            in.json_form = true;
            in.args = *j;
        } else {
            in.args = TRY(words());
        }
        if (k != "VOLUME" && in.args.size() < 2) return line_error(cf, l.line, cat(k, " needs a source and a destination"));
    } else if (k == "WORKDIR") {
        in.args = {std::string(rest)};
    } else if (k == "ENV" || k == "LABEL") {
        auto w = TRY(words());
        if (w[0].find('=') == std::string::npos) {
            // The old form: ENV KEY VALUE...
            std::string_view value = rest.substr(std::min(rest.size(), rest.find_first_of(" \t")));
            value = util::trim(value);
            if (value.empty()) return line_error(cf, l.line, cat(k, " ", w[0], " needs a value"));
            in.args = {cat(w[0], "=", value)};
        } else {
            for (const auto &x : w)
                if (x.find('=') == std::string::npos || x.front() == '=')
                    return line_error(cf, l.line, cat(k, ": ", util::quote(x), " is not KEY=VALUE"));
            in.args = std::move(w);
        }
    } else if (k == "ARG") {
        in.args = TRY(words());
        for (const auto &x : in.args) {
            auto [name, def] = split_assignment(x);
            if (name.empty() || !std::all_of(name.begin(), name.end(), is_name_char))
                return line_error(cf, l.line, cat("ARG: invalid name ", util::quote(name)));
        }
    } else if (k == "FROM") {
        in.args = TRY(words());
        if (in.args.size() != 1 && !(in.args.size() == 3 && upper(in.args[1]) == "AS"))
            return line_error(cf, l.line, "FROM takes IMAGE [AS NAME]");
    } else {  // EXPOSE USER STOPSIGNAL
        in.args = TRY(words());
        if ((k == "USER" || k == "STOPSIGNAL") && in.args.size() != 1)
            return line_error(cf, l.line, cat(k, " takes one argument"));
    }
    return in;
}

}  // namespace

util::Error line_error(const Containerfile &cf, int line, std::string_view what) {
    return Error::msg(cat(cf.file_name, ":", line, ": ", what));
}

util::Result<RunMount> parse_run_mount(std::string_view spec) {
    RunMount m;
    bool rw = false;
    for (const auto &kv : util::split(spec, ',')) {
        size_t eq = kv.find('=');
        std::string k = lower(kv.substr(0, eq)), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
        auto flag = [&]() -> util::Result<bool> {
            if (eq == std::string::npos || v == "true") return true;
            if (v == "false") return false;
            return Error::msg(cat(k, "=", v, ": not true or false"));
        };
        auto number = [&]() -> util::Result<uint32_t> {
            auto n = util::parse_int<uint32_t>(v, k == "mode" ? 8 : 10);
            if (!n) return Error::msg(cat(k, "=", v, ": not a number"));
            return *n;
        };
        if (k == "type") m.type = v;
        else if (k == "target" || k == "dst" || k == "destination") m.target = v;
        else if (k == "source" || k == "src") m.source = v;
        else if (k == "from") m.from = v;
        else if (k == "id") m.id = v;
        else if (k == "sharing") m.sharing = v;
        else if (k == "ro" || k == "readonly") m.readonly = TRY(flag());
        else if (k == "rw" || k == "readwrite") rw = TRY(flag());
        else if (k == "mode") m.mode = mode_t(TRY(number()) & 07777);
        else if (k == "uid") m.uid = uid_t(TRY(number()));
        else if (k == "gid") m.gid = gid_t(TRY(number()));
        else return Error::msg(cat("unknown option ", util::quote(k)));
    }
    if (m.type.empty()) m.type = "bind";  // BuildKit's default
    if (m.type != "cache" && m.type != "bind")
        return Error::msg(cat("type=", m.type, " is not supported by berth build (only type=cache and type=bind)"));
    if (m.target.empty() || m.target.front() != '/') return Error::msg("needs an absolute target=PATH");
    if (m.type == "bind" && !rw) m.readonly = true;
    if (m.sharing != "shared" && m.sharing != "locked" && m.sharing != "private")
        return Error::msg(cat("sharing=", m.sharing, ": not shared, locked or private"));
    if (m.type == "cache" && m.id.empty()) m.id = m.target;
    return m;
}

std::optional<Heredoc> heredoc_marker(std::string_view w) {
    if (w.size() < 3 || w.substr(0, 2) != "<<" || w[2] == '<') return std::nullopt;
    Heredoc h;
    size_t i = 2;
    if (w[i] == '-') {
        h.chomp = true;
        i++;
    }
    if (i < w.size() && (w[i] == '"' || w[i] == '\'')) {
        size_t end = w.find(w[i], i + 1);
        if (end == std::string_view::npos) return std::nullopt;
        h.name = std::string(w.substr(i + 1, end - i - 1));
        h.expand = false;
    } else {
        size_t j = i;
        while (j < w.size() && (is_name_char(w[j]) || w[j] == '.' || w[j] == '-')) j++;
        h.name = std::string(w.substr(i, j - i));
    }
    if (h.name.empty()) return std::nullopt;
    return h;
}

std::pair<std::string, std::optional<std::string>> split_assignment(std::string_view word) {
    size_t eq = word.find('=');
    if (eq == std::string_view::npos) return {std::string(word), std::nullopt};
    return {std::string(word.substr(0, eq)), std::string(word.substr(eq + 1))};
}

util::Result<Containerfile> parse_containerfile(std::string_view text, std::string_view file_name) {
    Containerfile cf;
    cf.file_name = std::string(file_name);
    std::vector<std::string_view> lines;
    for (size_t pos = 0; pos <= text.size();) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        lines.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    size_t first = TRY(read_directives(lines, cf));
    std::vector<const Instruction *> scope_args;
    for (const Logical &l : TRY(logical_lines(cf, lines, first))) {
        Instruction in = TRY(parse_instruction(cf, l));
        in.heredocs = l.heredocs;
        if (in.keyword == "FROM") {
            Stage st;
            st.name = in.args.size() == 3 ? lower(in.args[2]) : util::cat(cf.stages.size());
            for (const auto &s : cf.stages)
                if (s.name == st.name) return line_error(cf, in.line, cat("stage name ", util::quote(st.name), " used twice"));
            st.from = std::move(in);
            cf.stages.push_back(std::move(st));
            continue;
        }
        if (cf.stages.empty()) {
            if (in.keyword != "ARG") return line_error(cf, in.line, cat(in.keyword, " before the first FROM (only ARG may come before it)"));
            cf.pre_from_args.push_back(std::move(in));
            continue;
        }
        TRY(check_copy_from(cf, in, cf.stages.size() - 1));
        cf.stages.back().body.push_back(std::move(in));
    }
    if (cf.stages.empty()) return Error::msg(cat(cf.file_name, ": no FROM instruction"));
    // ARG loops, per scope: before FROM, and each stage.
    std::vector<const Instruction *> pre;
    for (const auto &a : cf.pre_from_args) pre.push_back(&a);
    TRY(check_arg_loops(cf, pre));
    for (const auto &st : cf.stages) {
        std::vector<const Instruction *> args;
        for (const auto &in : st.body)
            if (in.keyword == "ARG") args.push_back(&in);
        TRY(check_arg_loops(cf, args));
    }
    return cf;
}

namespace {

/// The expansion state: the word, where we are, the variables.
struct Lexer {
    std::string_view s;
    size_t i = 0;
    const std::map<std::string, std::string> &vars;
    char escape;

    util::Result<std::string> variable() {
        // At the character after '$'.
        if (i >= s.size()) return std::string("$");
        if (s[i] != '{') {
            size_t j = i;
            while (j < s.size() && is_name_char(s[j])) j++;
            if (j == i) return std::string("$");
            std::string name(s.substr(i, j - i));
            i = j;
            auto it = vars.find(name);
            return it == vars.end() ? std::string() : it->second;
        }
        i++;
        size_t j = i;
        while (j < s.size() && is_name_char(s[j])) j++;
        if (j == i) return Error::msg(cat("bad substitution in ", util::quote(s)));
        std::string name(s.substr(i, j - i));
        i = j;
        auto it = vars.find(name);
        bool set = it != vars.end();
        bool nonempty = set && !it->second.empty();
        if (i < s.size() && s[i] == '}') {
            i++;
            return set ? it->second : std::string();
        }
        bool colon = i < s.size() && s[i] == ':';
        if (colon) i++;
        if (i >= s.size()) return Error::msg(cat("missing } in ", util::quote(s)));
        char op = s[i++];
        if (op != '-' && op != '+' && op != '?')
            return Error::msg(cat("unsupported substitution ${", name, colon ? ":" : "", op, "...} in ", util::quote(s)));
        std::string word = TRY(until('}'));
        bool present = colon ? nonempty : set;
        switch (op) {
        case '-': return present ? it->second : word;
        case '+': return present ? word : std::string();
        default:
            if (!present) return Error::msg(cat(name, ": ", word.empty() ? "is not set" : word));
            return it->second;
        }
    }

    /// Expands up to (not including) an unquoted `stop` (0: the end), which is consumed.
    util::Result<std::string> until(char stop) {
        std::string out;
        while (i < s.size()) {
            char c = s[i];
            if (stop && c == stop) {
                i++;
                return out;
            }
            i++;
            if (c == escape) {
                if (i < s.size()) out += s[i++];
                else out += c;
            } else if (c == '\'') {
                size_t end = s.find('\'', i);
                if (end == std::string_view::npos) return Error::msg(cat("unmatched single quote in ", util::quote(s)));
                out.append(s.substr(i, end - i));
                i = end + 1;
            } else if (c == '"') {
                for (;;) {
                    if (i >= s.size()) return Error::msg(cat("unmatched double quote in ", util::quote(s)));
                    char d = s[i++];
                    if (d == '"') break;
                    if (d == escape && i < s.size() && (s[i] == '"' || s[i] == '$' || s[i] == escape)) {
                        out += s[i++];
                    } else if (d == '$') {
                        out += TRY(variable());
                    } else {
                        out += d;
                    }
                }
            } else if (c == '$') {
                out += TRY(variable());
            } else {
                out += c;
            }
        }
        if (stop) return Error::msg(cat("missing ", stop, " in ", util::quote(s)));
        return out;
    }
};

}  // namespace

util::Result<std::string> expand_word(std::string_view word, const std::map<std::string, std::string> &vars, char escape) {
    Lexer lx{word, 0, vars, escape};
    return lx.until(0);
}

}  // namespace build
