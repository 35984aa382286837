// The runc-compatible lifecycle commands: create, start, run, state, kill,
// delete, list. Each parses its options (runc's names, which podman and
// conmon pass) and makes one call into runtime/container.hpp; a foreground
// `run` goes through the driver of run_bundle.hpp.
//
// `run` has a second mode, `berth run [OPTIONS] IMAGE [CMD...]`, chosen by
// image_mode() (cmd_run_image.hpp): without --bundle, an argument that
// cannot be a container id but is an image reference. The runc mode parses
// exactly as before.
#include <cstdlib>
#include <vector>

#include "cmd_run_image.hpp"
#include "commands.hpp"
#include "run_bundle.hpp"
#include "run_image.hpp"
#include "runtime/container.hpp"
#include "runtime/exe_protect.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

std::string state_root(const cli::GlobalOptions &g) { return g.root ? *g.root : rt::kDefaultStateRoot; }

util::Result<rt::CreateOptions> create_options(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    rt::CreateOptions o;
    o.root = state_root(g);
    o.id = a.positional.at(0);
    o.bundle = a.get("bundle").value_or("");
    o.console_socket = a.get("console-socket").value_or("");
    o.pid_file = a.get("pid-file").value_or("");
    o.no_pivot = a.has("no-pivot");
    o.no_new_keyring = a.has("no-new-keyring");
    o.systemd_cgroup = g.systemd_cgroup;
    if (auto n = a.get("preserve-fds")) {
        auto v = util::parse_int<int>(*n);
        if (!v || *v < 0) return util::Error::msg(util::cat("--preserve-fds: invalid number ", util::quote(*n)));
        o.preserve_fds = *v;
    }
    // runc passes stdio + $LISTEN_FDS + N.
    if (const char *lf = ::getenv("LISTEN_FDS"))
        if (auto v = util::parse_int<int>(lf); v && *v > 0) o.preserve_fds += *v;
    if (!o.pid_file.empty() && o.pid_file[0] != '/') {
        char buf[4096];
        if (::getcwd(buf, sizeof buf)) o.pid_file = util::path_join(buf, o.pid_file);
    }
    return o;
}

util::Result<int> run_create(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    // First of all: may re-exec berth from a view a container cannot write.
    TRY(rt::exe_protect::protect_self(state_root(g)));
    auto o = TRY(create_options(g, a));
    TRY(rt::create_container(o));
    return 0;
}

// runc's `run` options; image mode adds its own (kRunOptions below).
const util::OptSpec kRuncRunOptions[] = {
    {"bundle", 'b', true, "DIR", "bundle directory (default: current directory)"},
    {"console-socket", 0, true, "PATH", "AF_UNIX socket that receives the pty master"},
    {"detach", 'd', false, nullptr, "return once the container started"},
    {"keep", 0, false, nullptr, "do not delete the container after it exits"},
    {"pid-file", 0, true, "FILE", "write the init's pid to FILE"},
    {"no-subreaper", 0, false, nullptr, "accepted for runc compatibility"},
    {"no-pivot", 0, false, nullptr, "do not pivot_root (MS_MOVE + chroot), for a rootfs on a ramdisk"},
    {"no-new-keyring", 0, false, nullptr, "keep the caller's session keyring"},
    {"preserve-fds", 0, true, "N", "pass N more fds (3 .. 3+N-1) to the container"},
};

util::Result<int> run_run(const cli::GlobalOptions &g, const util::ParsedArgs &parsed) {
    if (image_mode(parsed)) return run_image_command(g, parsed);
    // runc mode. `run` stops parsing options at the first positional (for
    // IMAGE CMD ARGS...); runc's form takes options anywhere: parse the rest.
    util::ParsedArgs a = parsed;
    if (a.positional.size() > 1) {
        std::vector<std::string> rest(a.positional.begin() + 1, a.positional.end());
        std::vector<char *> argv;
        for (auto &r : rest) argv.push_back(r.data());
        auto more = util::parse_args(static_cast<int>(argv.size()), argv.data(), kRuncRunOptions);
        if (!more) return cli::usage_error(util::cat("run: ", more.error().context));
        if (!more->positional.empty())
            return cli::usage_error("run: wrong number of arguments; usage: berth run [OPTIONS] ID (or IMAGE [CMD...], see `berth run --help`)");
        a.positional.resize(1);
        a.options.insert(a.options.end(), more->options.begin(), more->options.end());
    }
    for (const auto &[name, value] : a.options)
        if (image_only_option(name))
            return cli::usage_error(util::cat("run: --", name, " needs an IMAGE (a reference such as host/repo:tag), not a container id"));
    // Once the arguments are known good, before anything is done: may
    // re-exec berth from a view a container cannot write (as create).
    TRY(rt::exe_protect::protect_self(state_root(g)));
    auto o = TRY(create_options(g, a));
    return run_bundle(o, a.has("detach"), a.has("keep"));
}

util::Result<int> run_start(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    TRY(rt::start_container(state_root(g), a.positional[0]));
    return 0;
}

util::Result<int> run_state(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto [st, status] = TRY(rt::container_state(state_root(g), a.positional[0]));
    TRY(util::write_all(1, util::json::dump(rt::oci_state_json(st, status), 2) + "\n"));
    return 0;
}

util::Result<int> run_kill(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    int sig = 15;
    if (a.positional.size() > 1) sig = TRY(rt::parse_signal(a.positional[1]));
    TRY(rt::kill_container(state_root(g), a.positional[0], sig, a.has("all")));
    return 0;
}

util::Result<int> run_delete(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto st = TRY(rt::delete_container(state_root(g), a.positional[0], a.has("force")));
    // A container of `berth run IMAGE` also has a bundle in the image store.
    if (st) TRY_CTX(remove_image_bundle(*st), util::cat("delete ", util::quote(a.positional[0])));
    return 0;
}

/// runc's tabwriter(minwidth 12, padding 3) table.
std::string table(const std::vector<std::vector<std::string>> &rows) {
    std::vector<size_t> width;
    for (const auto &r : rows)
        for (size_t i = 0; i < r.size(); i++) {
            if (width.size() <= i) width.push_back(0);
            width[i] = std::max(width[i], r[i].size());
        }
    std::string out;
    for (const auto &r : rows) {
        for (size_t i = 0; i < r.size(); i++) {
            out += r[i];
            if (i + 1 < r.size()) out.append(std::max<size_t>(12, width[i] + 3) - r[i].size(), ' ');
        }
        out += '\n';
    }
    return out;
}

util::Result<int> run_list(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto all = TRY(rt::list_containers(state_root(g)));
    std::string format = a.get("format").value_or("table");
    std::string out;
    if (a.has("quiet")) {
        for (const auto &[st, s] : all) out += st.id + "\n";
    } else if (format == "json") {
        if (all.empty()) {
            out = "null\n";
        } else {
            util::json::Value arr = util::json::Value::array();
            for (const auto &[st, s] : all) arr.push_back(rt::oci_state_json(st, s));
            out = util::json::dump(arr) + "\n";
        }
    } else if (format == "table") {
        std::vector<std::vector<std::string>> rows = {{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}};
        for (const auto &[st, s] : all)
            rows.push_back({st.id, util::cat(s == rt::Status::Stopped ? 0 : st.pid), rt::status_name(s), st.bundle,
                            st.created, st.owner_uid == 0 ? "root" : util::cat(st.owner_uid)});
        out = table(rows);
    } else {
        return util::Error::msg(util::cat("--format: unknown format ", util::quote(format), " (table or json)"));
    }
    TRY(util::write_all(1, out));
    return 0;
}

const util::OptSpec kCreateOptions[] = {
    {"bundle", 'b', true, "DIR", "bundle directory (default: current directory)"},
    {"console-socket", 0, true, "PATH", "AF_UNIX socket that receives the pty master"},
    {"pid-file", 0, true, "FILE", "write the init's pid to FILE"},
    {"no-pivot", 0, false, nullptr, "do not pivot_root (MS_MOVE + chroot), for a rootfs on a ramdisk"},
    {"no-new-keyring", 0, false, nullptr, "keep the caller's session keyring"},
    {"preserve-fds", 0, true, "N", "pass N more fds (3 .. 3+N-1) to the container"},
};
// runc's, then the image mode's (cmd_run_image.cpp).
const std::vector<util::OptSpec> kRunOptions = [] {
    std::vector<util::OptSpec> v(std::begin(kRuncRunOptions), std::end(kRuncRunOptions));
    auto img = image_run_options();
    v.insert(v.end(), img.begin(), img.end());
    return v;
}();
const util::OptSpec kKillOptions[] = {{"all", 'a', false, nullptr, "signal every process of the container"}};
const util::OptSpec kDeleteOptions[] = {{"force", 'f', false, nullptr, "kill the container first if it runs"}};
const util::OptSpec kListOptions[] = {
    {"format", 'f', true, "table|json", "output format"},
    {"quiet", 'q', false, nullptr, "only the ids"},
};

const cli::Command kCommands[] = {
    {"create", "[OPTIONS] ID", "create a container from a bundle; it waits for `start`", kCreateOptions, 1, 1, false,
     run_create},
    {"start", "ID", "start the process of a created container", {}, 1, 1, false, run_start},
    {"run", "[OPTIONS] ID  |  [OPTIONS] IMAGE [CMD [ARG...]]",
     "create and start a container from a bundle (ID), or from an image (IMAGE: host/repo[:tag][@digest]; see docs/cli.md)",
     kRunOptions, 1, -1, true, run_run},
    {"state", "ID", "print the state of a container as JSON", {}, 1, 1, false, run_state},
    {"kill", "[--all] ID [SIGNAL]", "send a signal (default TERM) to a container", kKillOptions, 1, 2, false, run_kill},
    {"delete", "[--force] ID", "delete a container and everything it holds", kDeleteOptions, 1, 1, false, run_delete},
    {"list", "[--format table|json] [--quiet]", "list containers", kListOptions, 0, 0, false, run_list},
};

}  // namespace

std::span<const cli::Command> runtime_commands() { return kCommands; }

}  // namespace cmd
