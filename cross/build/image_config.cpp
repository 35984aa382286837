// Config-only instructions and history entries (see image_config.hpp).
#include "cross/build/image_config.hpp"

#include <ctime>

#include "util/strings.hpp"

namespace build {
namespace {

using util::cat;
using util::json::Value;

/// Sets KEY=VALUE in an Env array, in place when the key is there.
void set_env(Value &env, const std::string &key, const std::string &value) {
    std::string entry = cat(key, "=", value);
    for (auto &e : env) {
        std::string s = e.get<std::string>();
        if (s.substr(0, s.find('=')) == key) {
            e = entry;
            return;
        }
    }
    env.push_back(entry);
}

/// Cleans an absolute path lexically ("/a/./b/../c" -> "/a/c").
std::string clean_abs(std::string_view p) {
    std::vector<std::string> parts;
    for (const auto &c : util::split(p, '/')) {
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (!parts.empty()) parts.pop_back();
            continue;
        }
        parts.push_back(c);
    }
    return "/" + util::join(parts, "/");
}

/// An object member kept in sorted key order (podman writes Go maps sorted).
void set_sorted(Value &obj, const std::string &key, Value v) {
    std::map<std::string, Value> m;
    for (auto it = obj.begin(); it != obj.end(); ++it) m[it.key()] = it.value();
    m[key] = std::move(v);
    obj = Value::object();
    for (auto &[k, val] : m) obj[k] = std::move(val);
}

Value &member(Value &config, const char *key, Value init) {
    if (!config.contains(key) || config[key].is_null()) config[key] = std::move(init);
    return config[key];
}

util::Result<std::vector<std::string>> expand_all(const Containerfile &cf, const Instruction &in,
                                                  const std::vector<std::string> &words,
                                                  const std::map<std::string, std::string> &vars) {
    std::vector<std::string> out;
    for (const auto &w : words) {
        auto e = expand_word(w, vars, cf.escape);
        if (!e) return line_error(cf, in.line, cat(in.keyword, ": ", e.error().context));
        out.push_back(std::move(*e));
    }
    return out;
}

/// ENTRYPOINT/CMD's command: the JSON form as it is, the shell form under
/// /bin/sh -c. podman does not apply SHELL here (Docker does); berth
/// writes what podman writes.
Value command(const std::vector<std::string> &args, bool json_form) {
    Value v = Value::array();
    if (json_form) {
        for (const auto &a : args) v.push_back(a);
    } else {
        v = Value::array({"/bin/sh", "-c"});
        v.push_back(args.empty() ? std::string() : args[0]);
    }
    return v;
}

util::Status apply(const Containerfile &cf, const Instruction &in, const std::map<std::string, std::string> &vars,
                   ConfigState &st) {
    Value &c = st.config;
    const std::string &k = in.keyword;
    auto fail = [&](std::string what) { return line_error(cf, in.line, cat(k, ": ", what)); };
    if (k == "ENV") {
        std::vector<std::pair<std::string, std::string>> sets;
        for (const auto &w : in.args) {
            auto [key, value] = split_assignment(w);
            auto ek = TRY(expand_all(cf, in, {key}, vars));
            auto ev = TRY(expand_all(cf, in, {value.value_or("")}, vars));
            if (ek[0].empty()) return fail("empty variable name");
            sets.emplace_back(ek[0], ev[0]);
        }
        Value &env = member(c, "Env", Value::array());
        for (const auto &[key, value] : sets) set_env(env, key, value);
    } else if (k == "LABEL") {
        Value &labels = member(c, "Labels", Value::object());
        for (const auto &w : in.args) {
            auto [key, value] = split_assignment(w);
            auto ek = TRY(expand_all(cf, in, {key}, vars));
            auto ev = TRY(expand_all(cf, in, {value.value_or("")}, vars));
            if (ek[0].empty()) return fail("empty label name");
            set_sorted(labels, ek[0], ev[0]);
        }
    } else if (k == "WORKDIR") {
        std::string dir = TRY(expand_all(cf, in, in.args, vars))[0];
        if (dir.empty()) return fail("empty directory");
        c["WorkingDir"] = clean_abs(dir.front() == '/' ? dir : cat(st.working_dir(), "/", dir));
    } else if (k == "USER") {
        std::string user = TRY(expand_all(cf, in, in.args, vars))[0];
        if (user.empty()) return fail("empty user");
        c["User"] = user;
    } else if (k == "STOPSIGNAL") {
        std::string sig = TRY(expand_all(cf, in, in.args, vars))[0];
        bool number = util::parse_int<int>(sig).has_value();
        if (!number && sig.rfind("SIG", 0) != 0) return fail(cat("invalid signal ", util::quote(sig)));
        c["StopSignal"] = sig;
    } else if (k == "ENTRYPOINT") {
        c["Entrypoint"] = command(in.args, in.json_form);
        if (!st.cmd_set) c.erase("Cmd");
    } else if (k == "CMD") {
        c["Cmd"] = command(in.args, in.json_form);
        st.cmd_set = true;
    } else if (k == "SHELL") {
        if (in.args.empty()) return fail("needs at least the shell");
        st.shell = in.args;
    } else if (k == "EXPOSE") {
        Value &ports = member(c, "ExposedPorts", Value::object());
        for (auto p : TRY(expand_all(cf, in, in.args, vars))) {
            std::string proto = "tcp";
            if (size_t slash = p.find('/'); slash != std::string::npos) {
                proto = p.substr(slash + 1);
                p.resize(slash);
            }
            for (char &ch : proto) ch = char(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
            if (proto != "tcp" && proto != "udp" && proto != "sctp") return fail(cat("invalid protocol ", util::quote(proto)));
            // A range stays one entry, as podman writes it.
            size_t dash = p.find('-');
            auto lo = util::parse_int<uint16_t>(p.substr(0, dash));
            auto hi = dash == std::string::npos ? lo : util::parse_int<uint16_t>(p.substr(dash + 1));
            if (!lo || !hi || *hi < *lo) return fail(cat("invalid port ", util::quote(p)));
            set_sorted(ports, cat(p, "/", proto), Value::object());
        }
    } else if (k == "VOLUME") {
        Value &vols = member(c, "Volumes", Value::object());
        for (const auto &v : TRY(expand_all(cf, in, in.args, vars))) {
            if (v.empty()) return fail("empty volume path");
            set_sorted(vols, v, Value::object());
        }
    } else if (k == "HEALTHCHECK") {
        Value hc = Value::object();
        if (in.args[0] == "NONE") {
            hc["Test"] = Value::array({"NONE"});
        } else {
            std::vector<std::string> cmd(in.args.begin() + 1, in.args.end());
            Value test = Value::array();
            if (in.json_form) {
                test.push_back("CMD");
                for (const auto &a : cmd) test.push_back(a);
            } else {
                test.push_back("CMD-SHELL");
                test.push_back(cmd.empty() ? std::string() : cmd[0]);
            }
            hc["Test"] = std::move(test);
            for (const auto &[flag, field] : std::initializer_list<std::pair<const char *, const char *>>{
                     {"interval", "Interval"}, {"timeout", "Timeout"}, {"start-period", "StartPeriod"}, {"start-interval", "StartInterval"}}) {
                auto it = in.flags.find(flag);
                if (it == in.flags.end()) continue;
                auto ns = parse_duration(it->second);
                if (!ns) return fail(cat("--", flag, ": ", ns.error().context));
                if (*ns) hc[field] = *ns;
            }
            if (auto it = in.flags.find("retries"); it != in.flags.end()) {
                auto n = util::parse_int<int>(it->second);
                if (!n || *n < 0) return fail(cat("--retries: invalid number ", util::quote(it->second)));
                if (*n) hc["Retries"] = *n;
            }
        }
        c["Healthcheck"] = std::move(hc);
    } else {
        return fail("not a config instruction");
    }
    return util::ok();
}

}  // namespace

std::map<std::string, std::string> ConfigState::env() const {
    std::map<std::string, std::string> out;
    if (!config.contains("Env") || !config["Env"].is_array()) return out;
    for (const auto &e : config["Env"]) {
        if (!e.is_string()) continue;
        std::string s = e.get<std::string>();
        size_t eq = s.find('=');
        if (eq != std::string::npos) out[s.substr(0, eq)] = s.substr(eq + 1);
    }
    return out;
}

std::string ConfigState::working_dir() const {
    if (config.contains("WorkingDir") && config["WorkingDir"].is_string() && !config["WorkingDir"].get<std::string>().empty())
        return config["WorkingDir"].get<std::string>();
    return "/";
}

std::string ConfigState::user() const {
    if (config.contains("User") && config["User"].is_string()) return config["User"].get<std::string>();
    return "";
}

std::string rfc3339(int64_t t) {
    time_t tt = time_t(t);
    struct tm tm;
    gmtime_r(&tt, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

util::Result<int64_t> parse_duration(std::string_view s) {
    if (s == "0") return int64_t(0);
    int64_t total = 0;
    size_t i = 0;
    if (s.empty()) return util::Error::msg("empty duration");
    while (i < s.size()) {
        size_t j = i;
        while (j < s.size() && ((s[j] >= '0' && s[j] <= '9') || s[j] == '.')) j++;
        if (j == i) return util::Error::msg(cat("invalid duration ", util::quote(s)));
        std::string_view num = s.substr(i, j - i);
        size_t u = j;
        while (u < s.size() && !((s[u] >= '0' && s[u] <= '9') || s[u] == '.')) u++;
        std::string_view unit = s.substr(j, u - j);
        int64_t scale;
        if (unit == "ns") scale = 1;
        else if (unit == "us" || unit == "µs") scale = 1000;
        else if (unit == "ms") scale = 1000000;
        else if (unit == "s") scale = 1000000000;
        else if (unit == "m") scale = 60LL * 1000000000;
        else if (unit == "h") scale = 3600LL * 1000000000;
        else return util::Error::msg(cat("invalid duration ", util::quote(s), ": unit ", util::quote(unit)));
        size_t dot = num.find('.');
        auto whole = util::parse_int<int64_t>(num.substr(0, dot));
        if (!whole) return util::Error::msg(cat("invalid duration ", util::quote(s)));
        total += *whole * scale;
        if (dot != std::string_view::npos) {
            int64_t frac_scale = scale;
            for (char ch : num.substr(dot + 1)) {
                if (ch < '0' || ch > '9') return util::Error::msg(cat("invalid duration ", util::quote(s)));
                frac_scale /= 10;
                total += (ch - '0') * frac_scale;
            }
        }
        i = u;
    }
    return total;
}

void add_history(ConfigState &st, int64_t epoch, const std::string &created_by, bool empty_layer) {
    Value h = Value::object();
    h["created"] = rfc3339(epoch);
    h["created_by"] = created_by;
    if (empty_layer) h["empty_layer"] = true;
    st.history.push_back(std::move(h));
}

std::string nop_created_by(const Instruction &in) {
    return cat("/bin/sh -c #(nop) ", in.keyword, " ", in.raw);
}

util::Status apply_config_instruction(const Containerfile &cf, const Instruction &in,
                                      const std::map<std::string, std::string> &vars, int64_t epoch, ConfigState &st) {
    TRY(apply(cf, in, vars, st));
    add_history(st, epoch, nop_created_by(in), true);
    return util::ok();
}

}  // namespace build
