// The runtime commands beyond the lifecycle, as runc spells them: exec,
// features, spec, ps, pause, resume and update. Each parses its arguments and
// makes one library call in runtime/; only cli::dispatch prints errors.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "commands.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/exe_protect.hpp"
#include "runtime/exec.hpp"
#include "runtime/features.hpp"
#include "runtime/spec.hpp"
#include "runtime/state.hpp"
#include "runtime/update.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

std::string state_root(const cli::GlobalOptions &g) { return g.root.value_or(rt::kDefaultStateRoot); }

/// The container's state with its live status; errors name the id.
util::Result<std::pair<rt::State, rt::Status>> load_live(const std::string &root, const std::string &id) {
    TRY(rt::validate_id(id));
    auto st = TRY_CTX(rt::load_state(root, id), util::cat("container ", util::quote(id)));
    rt::Status s = rt::refresh_status(root, st);
    return std::make_pair(std::move(st), s);
}

util::Result<std::unique_ptr<rt::cgroup::Manager>> manager_of(const cli::GlobalOptions &g, const rt::State &st) {
    rt::cgroup::ManagerOptions o;
    o.systemd = g.systemd_cgroup || st.systemd_cgroup;
    return rt::cgroup::open_manager(st.cgroup_path, st.id, o);
}

// ---- exec ----------------------------------------------------------------

util::Result<int> run_exec(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    // First of all: may re-exec berth from a view a container cannot write.
    TRY(rt::exe_protect::protect_self(state_root(g)));
    const std::string id = a.positional[0];
    auto [st, status] = TRY(load_live(state_root(g), id));
    if (status == rt::Status::Paused) return util::Error::msg(util::cat("exec: container ", util::quote(id), " is paused"));
    if (status != rt::Status::Running && status != rt::Status::Created)
        return util::Error::msg(util::cat("exec: container ", util::quote(id), " is ", rt::status_name(status),
                                          " (it must be running)"));
    auto spec = TRY_CTX(rt::load_spec(st.bundle), util::cat("exec: container ", util::quote(id)));

    rt::ExecRequest req;
    req.process_file = a.get("process").value_or("");
    req.args.assign(a.positional.begin() + 1, a.positional.end());
    req.env = a.get_all("env");
    req.cwd = a.get("cwd");
    req.user = a.get("user");
    for (const auto &gid : a.get_all("additional-gids")) {
        auto n = util::parse_int<uint32_t>(gid);
        if (!n) return util::Error::msg(util::cat("--additional-gids ", util::quote(gid), ": not a gid"));
        req.additional_gids.push_back(*n);
    }
    req.caps = a.get_all("cap");
    if (a.has("tty")) req.tty = true;
    if (a.has("no-new-privs")) req.no_new_privs = true;
    req.apparmor = a.get("apparmor").value_or("");
    req.process_label = a.get("process-label").value_or("");
    if (!req.process_file.empty() && a.positional.size() > 1)
        return util::Error::msg("exec: give either --process or a command, not both");
    auto proc = TRY(rt::exec_process(req, spec.process ? &*spec.process : nullptr));

    rt::ExecOptions o;
    o.console_socket = a.get("console-socket").value_or("");
    o.pid_file = a.get("pid-file").value_or("");
    o.detach = a.has("detach");
    o.systemd_cgroup = g.systemd_cgroup;
    o.sub_cgroups = TRY_CTX(rt::cgroup::parse_sub_cgroups(a.get_all("cgroup")), "exec");
    if (auto n = a.get("preserve-fds")) {
        auto v = util::parse_int<int>(*n);
        if (!v || *v < 0) return util::Error::msg(util::cat("--preserve-fds ", util::quote(*n), ": not a count"));
        o.preserve_fds = *v;
    }
    return rt::exec_in_container(st, spec, proc, o);
}

const util::OptSpec kExecOptions[] = {
    {"console-socket", 0, true, "PATH", "send the pty master to this unix socket"},
    {"cwd", 0, true, "DIR", "working directory in the container"},
    {"env", 'e', true, "K=V", "add an environment variable (repeatable)"},
    {"tty", 't', false, nullptr, "allocate a pseudo-terminal"},
    {"user", 'u', true, "UID[:GID]", "run as this user"},
    {"additional-gids", 'g', true, "GID", "add a supplementary group (repeatable)"},
    {"process", 'p', true, "FILE", "process.json describing the process"},
    {"detach", 'd', false, nullptr, "do not wait for the process"},
    {"pid-file", 0, true, "FILE", "write the process's pid here"},
    {"process-label", 0, true, "LABEL", "SELinux label of the process"},
    {"apparmor", 0, true, "PROFILE", "AppArmor profile of the process"},
    {"no-new-privs", 0, false, nullptr, "set no_new_privs"},
    {"cap", 'c', true, "CAP", "add a capability (repeatable)"},
    {"preserve-fds", 0, true, "N", "pass fds 3..3+N-1 to the process"},
    {"ignore-paused", 0, false, nullptr, "accepted for runc compatibility"},
    {"cgroup", 0, true, "[CTRL[,CTRL]:]PATH", "join this existing sub-cgroup of the container's (repeatable)"},
};

// ---- features, spec --------------------------------------------------------

util::Result<int> run_features(const cli::GlobalOptions &, const util::ParsedArgs &) {
    TRY(util::write_all(1, util::json::dump(rt::features_json(), 4) + "\n"));
    return 0;
}

util::Result<int> run_spec(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    std::string bundle = a.get("bundle").value_or(".");
    std::string path = util::path_join(bundle, "config.json");
    if (util::path_exists(path))
        return util::Error::with_code(EEXIST, util::cat("spec: ", util::quote(path), " exists; remove it first"));
    auto doc = rt::default_spec(a.has("rootless"), geteuid(), getegid());
    TRY_CTX(util::atomic_write_file(path, util::json::dump(doc, 4) + "\n", 0666 & ~0022), "spec");
    return 0;
}

const util::OptSpec kSpecOptions[] = {
    {"bundle", 'b', true, "DIR", "write config.json in DIR (default: the current directory)"},
    {"rootless", 0, false, nullptr, "a spec for a container run by an unprivileged user"},
};

// ---- ps ------------------------------------------------------------------

/// The index of the PID column in ps's header line.
util::Result<size_t> pid_column(const std::string &header) {
    auto fields = util::split(header, ' ');
    size_t col = 0;
    for (const auto &f : fields) {
        if (f.empty()) continue;
        if (f == "PID") return col;
        ++col;
    }
    return util::Error::msg("ps: no PID column in ps's output (give ps options that print one)");
}

util::Result<int> run_ps(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    const std::string id = a.positional[0];
    auto [st, status] = TRY(load_live(state_root(g), id));
    if (status == rt::Status::Stopped) return util::Error::msg(util::cat("ps: container ", util::quote(id), " is not running"));
    auto mgr = TRY_CTX(manager_of(g, st), "ps");
    auto pids = TRY_CTX(mgr->pids(), "ps: list the container's processes");
    std::sort(pids.begin(), pids.end());
    std::string format = a.get("format").value_or("table");
    if (format == "json") {
        if (a.positional.size() > 1 && !(a.positional.size() == 2 && a.positional[1] == "--"))
            return util::Error::msg("ps: ps options cannot be used with --format json");
        auto arr = util::json::Value::array();
        for (pid_t p : pids) arr.push_back(p);
        TRY(util::write_all(1, util::json::dump(arr) + "\n"));
        return 0;
    }
    if (format != "table") return util::Error::msg(util::cat("ps: unknown format ", util::quote(format), " (table or json)"));

    std::vector<std::string> argv = {"ps"};
    size_t first = 1;
    if (a.positional.size() > 1 && a.positional[1] == "--") first = 2;  // `ps ID -- -o pid`
    if (a.positional.size() > first)
        argv.insert(argv.end(), a.positional.begin() + static_cast<std::ptrdiff_t>(first), a.positional.end());
    else
        argv.push_back("-ef");
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return util::Error::from_errno("ps: pipe");
    util::UniqueFd out_r(p[0]), out_w(p[1]);
    util::SpawnOptions so;
    so.stdout_fd = out_w.get();
    so.stderr_fd = out_w.get();
    auto child = TRY_CTX(util::spawn(argv, so), "ps: run ps");
    out_w.reset();
    auto text = TRY_CTX(util::read_all(out_r.get(), 64 << 20), "ps: read ps's output");
    int code = TRY(child.wait());
    if (code != 0) return util::Error::msg(util::cat("ps: ps exited with status ", code, ": ", util::trim(text)));
    auto lines = util::split(text, '\n');
    if (lines.empty()) return util::Error::msg("ps: ps printed nothing");
    size_t col = TRY(pid_column(lines[0]));
    std::string out = lines[0] + "\n";
    for (size_t i = 1; i < lines.size(); ++i) {
        std::vector<std::string> fields;
        for (auto &f : util::split(lines[i], ' '))
            if (!f.empty()) fields.push_back(std::move(f));
        if (fields.size() <= col) continue;
        auto pid = util::parse_int<pid_t>(fields[col]);
        if (pid && std::binary_search(pids.begin(), pids.end(), *pid)) out += lines[i] + "\n";
    }
    TRY(util::write_all(1, out));
    return 0;
}

const util::OptSpec kPsOptions[] = {
    {"format", 'f', true, "table|json", "output format"},
};

// ---- pause, resume --------------------------------------------------------

util::Result<int> run_pause(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    const std::string root = state_root(g), id = a.positional[0];
    TRY(rt::validate_id(id));
    auto lock = TRY_CTX(rt::lock_container(root, id), util::cat("pause ", util::quote(id)));
    auto [st, status] = TRY(load_live(root, id));
    if (status != rt::Status::Running && status != rt::Status::Created)
        return util::Error::msg(util::cat("pause: container ", util::quote(id), " is ", rt::status_name(status),
                                          " (it must be running)"));
    auto mgr = TRY_CTX(manager_of(g, st), "pause");
    TRY_CTX(mgr->freeze(), util::cat("pause ", util::quote(id)));
    st.status = rt::Status::Paused;
    if (auto s = rt::save_state(root, st); !s) {
        (void)mgr->thaw();
        return std::move(s).error().wrap(util::cat("pause ", util::quote(id)));
    }
    return 0;
}

util::Result<int> run_resume(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    const std::string root = state_root(g), id = a.positional[0];
    TRY(rt::validate_id(id));
    auto lock = TRY_CTX(rt::lock_container(root, id), util::cat("resume ", util::quote(id)));
    auto [st, status] = TRY(load_live(root, id));
    if (status != rt::Status::Paused)
        return util::Error::msg(util::cat("resume: container ", util::quote(id), " is ", rt::status_name(status),
                                          ", not paused"));
    auto mgr = TRY_CTX(manager_of(g, st), "resume");
    TRY_CTX(mgr->thaw(), util::cat("resume ", util::quote(id)));
    st.status = rt::Status::Running;
    TRY_CTX(rt::save_state(root, st), util::cat("resume ", util::quote(id)));
    return 0;
}

// ---- update --------------------------------------------------------------

util::Result<int> run_update(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    const std::string id = a.positional[0];
    if (a.has("l3-cache-schema") || a.has("mem-bw-schema"))
        return util::Error::msg("update: Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported");
    // The patch: --resources first, then the flags on top (as runc).
    util::json::Value patch = util::json::Value::object();
    if (auto file = a.get("resources")) {
        auto text = *file == "-" ? TRY_CTX(util::read_all(0, 1 << 20), "update: read the resources from stdin")
                                 : TRY_CTX(util::read_file(*file, 1 << 20), util::cat("update: --resources ", util::quote(*file)));
        patch = TRY_CTX(util::json::parse(text, *file == "-" ? "stdin" : *file), "update: --resources");
        TRY_CTX(util::json::expect_object(patch, "resources"), "update");
    }
    std::vector<std::pair<std::string, std::string>> flags;
    for (const auto &[name, value] : a.options)
        if (rt::is_resources_flag(name)) flags.emplace_back(name, value);
    rt::merge_json(patch, TRY_CTX(rt::resources_patch(flags), "update"));
    TRY(rt::update_container(state_root(g), id, patch, g.systemd_cgroup));
    return 0;
}

const util::OptSpec kUpdateOptions[] = {
    {"resources", 'r', true, "FILE", "a linux.resources JSON file (- for stdin)"},
    {"memory", 0, true, "BYTES", "memory limit (512k, 64m, -1: unlimited)"},
    {"memory-reservation", 0, true, "BYTES", "memory soft limit"},
    {"memory-swap", 0, true, "BYTES", "memory + swap limit (-1: unlimited)"},
    {"kernel-memory", 0, true, "BYTES", "kernel memory limit (cgroup v1, deprecated)"},
    {"kernel-memory-tcp", 0, true, "BYTES", "kernel TCP buffer limit (cgroup v1, deprecated)"},
    {"cpu-shares", 0, true, "N", "CPU shares (relative weight)"},
    {"cpu-quota", 0, true, "USEC", "CPU CFS quota per period"},
    {"cpu-period", 0, true, "USEC", "CPU CFS period"},
    {"cpu-rt-period", 0, true, "USEC", "CPU realtime period"},
    {"cpu-rt-runtime", 0, true, "USEC", "CPU realtime runtime"},
    {"cpuset-cpus", 0, true, "LIST", "CPUs allowed (0-3,5)"},
    {"cpuset-mems", 0, true, "LIST", "memory nodes allowed"},
    {"pids-limit", 0, true, "N", "maximum number of processes"},
    {"blkio-weight", 0, true, "N", "block IO weight (10..1000)"},
    {"l3-cache-schema", 0, true, "S", "Intel RDT (not supported)"},
    {"mem-bw-schema", 0, true, "S", "Intel RDT (not supported)"},
};

const cli::Command kCommands[] = {
    {"exec", "[OPTIONS] ID [COMMAND [ARGS...]]", "run a process in a running container", kExecOptions, 1, -1, true,
     run_exec},
    {"features", "", "print the features berth implements (JSON)", {}, 0, 0, false, run_features},
    {"spec", "[--rootless] [--bundle DIR]", "write a default config.json", kSpecOptions, 0, 0, false, run_spec},
    {"ps", "[--format table|json] ID [PS ARGS...]", "list the container's processes", kPsOptions, 1, -1, true, run_ps},
    {"pause", "ID", "freeze every process of the container", {}, 1, 1, false, run_pause},
    {"resume", "ID", "thaw a paused container", {}, 1, 1, false, run_resume},
    {"update", "[OPTIONS] ID", "change the container's cgroup limits", kUpdateOptions, 1, 1, false, run_update},
};

}  // namespace

std::span<const cli::Command> runtime_ops_commands() { return kCommands; }

}  // namespace cmd
