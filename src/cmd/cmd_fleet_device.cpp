// `berth fleet device --root DIR [--run-dir DIR]`: one simulated device of
// the herd benchmark (bench/fleet.sh, docs/fleet.md "Scaling"). It runs the
// device's real fleet path on one event loop -- fleet::Agent (TUF refresh in
// a child, MQTT push, poll with jitter, status reports and their outbox)
// handing verified manifests to ota::Updater, whose staging is the daemon's
// (svc::SupervisorApps::stage: ota::stage_revision in a child process,
// pulling the images from the registry into DIR's store and building the
// bundles) -- but no app runner: a revision's containers "start" and are
// healthy at once (HerdApps below), so an applied revision is committed as
// soon as it is started. Nothing else of the daemon runs: no supervisor
// work, control socket, watchdog, health checks or PID 1 duties.
//
// DIR is a device root as for `berth daemon --store DIR` (fleet/agent.json,
// trust/tuf/root.json, policy.json, the store); the log goes to
// DIR/device.log. SIGTERM or SIGINT ends it (a staging child is killed).
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <optional>

#include "commands.hpp"
#include "daemon/apps.hpp"
#include "daemon/daemon.hpp"
#include "daemon/reaper.hpp"
#include "daemon/supervisor.hpp"
#include "fleet/agent.hpp"
#include "ota/updater.hpp"
#include "registry_flags.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

using util::cat;
using util::quote;

/// The daemon's apps with the app runner left out: staging and bundle
/// removal are SupervisorApps' (children, the loop turning meanwhile);
/// start, stop and the strays' clean-up do nothing.
class HerdApps : public svc::SupervisorApps {
public:
    using svc::SupervisorApps::SupervisorApps;
    util::Status start(const ota::Revision &) override { return {}; }
    util::Status stop(const ota::Revision &) override { return {}; }
    util::Status stop_others(const std::vector<const ota::Revision *> &) override { return {}; }
};

std::string absolute(const std::string &p) {
    char cwd[4096];
    if (!p.empty() && p[0] != '/' && ::getcwd(cwd, sizeof cwd)) return util::path_join(cwd, p);
    return p;
}

util::Result<int> run_device(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    auto root_opt = a.get("root");
    if (!root_opt || root_opt->empty()) return cli::usage_error("fleet device: --root DIR is required");
    util::DeviceRoot root(absolute(*root_opt));
    std::string run_dir = absolute(a.get("run-dir").value_or(util::path_join(root.dir(), "run")));
    auto config = TRY(fleet::load_agent_config(root));
    if (!config) return util::Error::msg(cat("fleet device: no ", quote(util::path_join(root.dir(), "fleet/agent.json"))));
    auto reg_opts = TRY(registry_options(a));
    img::Policy policy = TRY(load_policy(root.store(), a));
    TRY_CTX(util::mkdir_p(run_dir, 0700), cat("run directory ", quote(run_dir)));
    TRY(util::log::set_file(util::path_join(root.dir(), "device.log")));
    if (util::log::level() > util::log::Level::Info) util::log::set_level(util::log::Level::Info);

    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGCHLD, SIGTERM, SIGINT}) sigaddset(&set, s);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) < 0) return util::Error::from_errno("block signals");
    ::signal(SIGPIPE, SIG_IGN);
    util::UniqueFd sigfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sigfd) return util::Error::from_errno("signalfd");
    auto loop = TRY(util::EventLoop::create());

    ota::StageContext stage;
    stage.root = root;
    stage.run_dir = run_dir;
    stage.policy = &policy;
    stage.open_registry = [&reg_opts](const img::Reference &ref) { return img::Registry::open(img::registry_host(ref), reg_opts); };
    stage.note = [](std::string_view event, std::string_view detail) { util::log::info("stage: ", event, " ", detail); };
    svc::Reaper reaper;
    svc::SupervisorConfig sc;
    sc.state_root = svc::daemon_state_root(run_dir);
    sc.run_dir = run_dir;
    sc.log_dir = util::path_join(root.dir(), "logs");
    svc::Supervisor sup(*loop, reaper, sc);  // never given a container: HerdApps starts none
    HerdApps apps(*loop, reaper, sup, stage, sc.state_root);
    ota::Updater updater(root, apps);

    std::unique_ptr<fleet::Agent> agent;
    auto report = [&](std::string_view state, std::string_view detail, std::string_view deployment) {
        if (agent) agent->report(state, detail, deployment);
    };
    TRY(loop->watch(sigfd.get(), EPOLLIN, [&](uint32_t) {
        signalfd_siginfo si;
        bool child = false;
        while (::read(sigfd.get(), &si, sizeof si) == sizeof si) {
            if (si.ssi_signo == SIGCHLD) child = true;
            else {
                util::log::info("fleet device: stopping on signal ", si.ssi_signo);
                apps.cancel();
                loop->stop();
            }
        }
        if (child) reaper.reap();
    }));
    util::log::info("fleet device ", quote(config->device_id), " starting: pid ", ::getpid(), ", root ",
                    quote(root.dir()));
    if (auto st = updater.resume(); !st) util::log::error("resume the updater: ", st.error().message());

    auto busy = [&] { return updater.busy() || updater.state().trying.has_value(); };
    fleet::AgentHooks h;
    h.committed_version = [&] { return updater.state().current.value_or(0); };
    h.busy = busy;
    h.trying_version = [&] { return updater.state().trying; };
    h.expect_child = [&](pid_t pid, std::function<void(int)> cb) { reaper.expect(pid, std::move(cb)); };
    h.apply = [&](std::string_view doc) -> util::Status {
        if (busy()) return util::Error::msg("an update is in progress");
        auto v = updater.apply(doc);  // turns the loop while the staging child pulls
        if (!v) return std::move(v).error();
        auto rev = TRY(updater.revision(*v));
        report("staged", cat("revision ", *v), rev.digest);
        report("trying", cat("revision ", *v, ": no app runner, healthy at once"), rev.digest);
        // Committed from the loop, after the agent has seen the apply return.
        loop->after(0, [&, v = *v, digest = rev.digest] {
            auto st = updater.commit();
            util::log::info("update: revision ", v, st ? " committed" : cat(" not committed: ", st.error().message()));
            if (st) report("committed", cat("revision ", v), digest);
            else report("rolled-back", st.error().message(), digest);
        });
        return {};
    };
    apps.on_staging_bytes = [&](uint64_t bytes) {
        if (agent) agent->progress(bytes);
    };
    agent = TRY(fleet::Agent::start(std::move(*config), root, *loop, std::move(h)));
    TRY(loop->run());
    agent->stop();
    util::log::info("fleet device stopped");
    return 0;
}

const util::OptSpec kOptions[] = {
    {"root", 0, true, "DIR", "the device root (fleet/agent.json, trust/tuf/root.json, policy.json, the image store)"},
    {"run-dir", 0, true, "DIR", "the run directory (notify directories of staged bundles; default DIR/run)"},
    {"policy", 0, true, "FILE", "trust policy for the images of updates (default DIR/policy.json, else keys in DIR/trust)"},
    {"creds", 0, true, "FILE", "registry credentials, docker config.json format"},
    {"ca", 0, true, "FILE", "trust this PEM CA bundle for the registry's TLS"},
    {"insecure-http", 0, false, nullptr, "plain http to registries (loopback ones fall back to it by themselves)"},
};

const cli::Command kCommands[] = {
    {"device", "--root DIR [--run-dir DIR] [--insecure-http]",
     "a simulated device for the herd benchmark: the fleet agent, TUF, MQTT and staging, no app runner", kOptions, 0, 0,
     false, run_device},
};

}  // namespace

std::span<const cli::Command> fleet_device_commands() { return kCommands; }

}  // namespace cmd
