// Argument parsing; see args.hpp.
#include "util/args.hpp"

#include "util/strings.hpp"

namespace util {

bool ParsedArgs::has(std::string_view name) const {
    for (const auto &o : options)
        if (o.first == name) return true;
    return false;
}

std::optional<std::string> ParsedArgs::get(std::string_view name) const {
    std::optional<std::string> v;
    for (const auto &o : options)
        if (o.first == name) v = o.second;
    return v;
}

std::vector<std::string> ParsedArgs::get_all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto &o : options)
        if (o.first == name) out.push_back(o.second);
    return out;
}

namespace {

const OptSpec *find_long(std::span<const OptSpec> specs, std::string_view name) {
    for (const auto &s : specs)
        if (name == s.name) return &s;
    return nullptr;
}

const OptSpec *find_short(std::span<const OptSpec> specs, char c) {
    for (const auto &s : specs)
        if (s.short_name == c) return &s;
    return nullptr;
}

}  // namespace

Result<ParsedArgs> parse_args(int argc, char **argv, std::span<const OptSpec> specs, bool stop_at_positional) {
    ParsedArgs out;
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        std::string_view a = argv[i];
        if (options_done || a.size() < 2 || a[0] != '-') {
            out.positional.emplace_back(a);
            if (stop_at_positional) options_done = true;
            continue;
        }
        if (a == "--") {
            options_done = true;
            continue;
        }
        std::string_view body = a.substr(a[1] == '-' ? 2 : 1);
        std::optional<std::string> inline_value;
        if (auto eq = body.find('='); eq != std::string_view::npos) {
            inline_value = std::string(body.substr(eq + 1));
            body = body.substr(0, eq);
        }
        const OptSpec *spec = find_long(specs, body);
        if (!spec && a[1] != '-' && body.size() == 1) spec = find_short(specs, body[0]);
        if (!spec) return Error::with_code(EINVAL, cat("unknown option ", quote(a)));
        if (!spec->takes_value) {
            if (inline_value) {
                // runc accepts --flag=true / --flag=false
                if (*inline_value == "false") continue;
                if (*inline_value != "true")
                    return Error::with_code(EINVAL, cat("option ", quote(cat("--", spec->name)), " takes no value"));
            }
            out.options.emplace_back(spec->name, "");
            continue;
        }
        if (inline_value) {
            out.options.emplace_back(spec->name, *inline_value);
        } else if (i + 1 < argc) {
            out.options.emplace_back(spec->name, argv[++i]);
        } else {
            return Error::with_code(EINVAL, cat("option ", quote(cat("--", spec->name)), " needs a value"));
        }
    }
    return out;
}

std::string options_help(std::span<const OptSpec> specs) {
    std::string out;
    for (const auto &s : specs) {
        std::string left = "  ";
        if (s.short_name) left += cat('-', s.short_name, ", ");
        left += cat("--", s.name);
        if (s.takes_value) left += cat(' ', s.value_name ? s.value_name : "VALUE");
        if (left.size() < 30) left.append(30 - left.size(), ' ');
        else left += "  ";
        out += cat(left, s.help, '\n');
    }
    return out;
}

}  // namespace util
