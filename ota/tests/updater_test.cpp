// Unit tests of ota/updater: the state machine driving a recording fake
// Apps over a temporary device root, one behaviour per test case, and the
// crash loop: a crash (a real SIGKILL in a forked child, and an injected
// error followed by a restart) at every failpoint of ota::kFailpoints and
// at every step of the atomic writes under it, each followed by resume()
// and a check that exactly the old or the new revision runs, fully.
//
// The fake keeps its containers and bundles in a file beside the device
// root, so what a killed child did is still there for the parent to check,
// as a real runtime's containers outlive a killed daemon.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "image/digest.hpp"
#include "ota/slot.hpp"
#include "ota/updater.hpp"
#include "util/dir.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

using util::cat;

namespace {

/// A temporary directory on tmpfs where there is one (fsync is free there:
/// the crash loop writes thousands of files), removed at the end.
struct ScratchDir {
    std::string path;
    ScratchDir() {
        std::string tmpl = util::path_exists("/dev/shm") ? "/dev/shm/berth-updater-XXXXXX" : "/tmp/berth-updater-XXXXXX";
        path = mkdtemp(tmpl.data());
    }
    ~ScratchDir() { (void)util::remove_tree(path); }
    ScratchDir(const ScratchDir &) = delete;
    ScratchDir &operator=(const ScratchDir &) = delete;
};

/// The containers of the revision documents below: two kept across
/// versions (under new ids) and one of each version's own.
std::vector<std::string> container_names(uint64_t version) { return {"db", "web", cat("app", version)}; }

std::string document(uint64_t version) {
    std::string containers;
    for (const auto &name : container_names(version)) {
        if (!containers.empty()) containers += ", ";
        containers += cat(R"({"name": ")", name, R"(", "image": "registry.example/)", name,
                          "@sha256:", std::string(64, 'a'), R"("})");
    }
    return cat(R"({"version": )", version, R"(, "name": "sensor )", version, R"(", "containers": [)", containers, "]}\n");
}

std::set<std::string> ids(const ota::Revision &rev) {
    std::set<std::string> out;
    for (const auto &c : rev.containers) out.insert(cat(c.name, ".r", rev.version));
    return out;
}

std::set<std::string> ids_of(std::initializer_list<uint64_t> versions) {
    std::set<std::string> out;
    for (uint64_t v : versions)
        for (const auto &name : container_names(v)) out.insert(cat(name, ".r", v));
    return out;
}

/// A recording Apps: which bundles exist and which containers run, saved to
/// `file` after every change. Refuses what a runtime would refuse: starting
/// without bundles, removing the bundles of running containers.
struct FakeApps : ota::Apps {
    std::string file;
    std::set<std::string> bundles, running;
    std::vector<std::string> calls;  ///< "stage 3", "stop 2", ... (this process only)
    std::string stage_error;         ///< stage() fails with this when set
    uint64_t fail_start = 0;         ///< start() of this version fails half-way

    explicit FakeApps(std::string f) : file(std::move(f)) {
        std::ifstream in(file);
        std::string kind, id;
        while (in >> kind >> id) (kind == "bundle" ? bundles : running).insert(id);
    }
    void save() const {
        std::ofstream out(file, std::ios::trunc);
        for (const auto &b : bundles) out << "bundle " << b << "\n";
        for (const auto &r : running) out << "running " << r << "\n";
    }

    util::Status stage(const ota::Revision &rev) override {
        calls.push_back(cat("stage ", rev.version));
        if (!stage_error.empty()) return util::Error::with_code(ENOSPC, stage_error);
        for (const auto &id : ids(rev)) {
            bundles.insert(id);
            save();
            // A crash here leaves a partial staging, as a killed stager does.
            if (auto st = util::failpoint("fake.stage-bundle"); !st) {
                for (const auto &i : ids(rev)) bundles.erase(i);
                save();
                return st;
            }
        }
        return util::ok();
    }
    util::Status start(const ota::Revision &rev) override {
        calls.push_back(cat("start ", rev.version));
        for (const auto &id : ids(rev)) {
            if (!bundles.count(id)) return util::Error::msg(cat("start ", id, ": no bundle"));
            if (rev.version == fail_start && running.size() > 0 && !running.count(id))
                return util::Error::msg(cat("start ", id, ": exited with status 1"));
            running.insert(id);
            save();
        }
        return util::ok();
    }
    util::Status stop(const ota::Revision &rev) override {
        calls.push_back(cat("stop ", rev.version));
        for (const auto &id : ids(rev)) running.erase(id);
        save();
        return util::ok();
    }
    util::Status remove(const ota::Revision &rev) override {
        calls.push_back(cat("remove ", rev.version));
        for (const auto &id : ids(rev)) {
            if (running.count(id)) return util::Error::msg(cat("remove ", id, ": still running"));
            bundles.erase(id);
        }
        save();
        return util::ok();
    }
    util::Status stop_others(const std::vector<const ota::Revision *> &keep) override {
        calls.push_back("stop_others");
        std::set<std::string> kept;
        for (const auto *rev : keep)
            for (const auto &id : ids(*rev))
                if (running.count(id)) kept.insert(id);
        running = kept;
        save();
        return util::ok();
    }
};

/// A device root, the fake's file beside it, and helpers to reach a state.
struct Device {
    ScratchDir dir;
    util::DeviceRoot root{dir.path + "/root"};
    std::string apps_file = dir.path + "/apps";

    Device() { REQUIRE(util::mkdir_p(root.dir())); }

    /// Applies and commits each version in turn.
    void install(FakeApps &apps, const std::vector<uint64_t> &versions) {
        ota::Updater u(root, apps);
        REQUIRE(u.resume());
        for (uint64_t v : versions) {
            auto applied = u.apply(document(v));
            INFO((applied ? std::string() : applied.error().message()));
            REQUIRE(applied);
            REQUIRE(u.commit());
        }
    }
    std::set<std::string> revision_files() const {
        auto names = util::list_dir(root.revisions());
        return names ? std::set<std::string>(names->begin(), names->end()) : std::set<std::string>{};
    }
    ota::UpdaterState state() const {
        auto s = ota::read_state(root);
        REQUIRE(s);
        return *s;
    }
    std::vector<ota::HistoryEntry> history() const {
        auto h = ota::read_history(root);
        REQUIRE(h);
        return *h;
    }
};

/// A device with revisions applied and committed, the fake and an Updater over it.
struct Installed : Device {
    FakeApps apps{apps_file};
    std::optional<ota::Updater> updater;

    explicit Installed(const std::vector<uint64_t> &versions) {
        install(apps, versions);
        updater.emplace(root, apps);
    }
    std::pair<FakeApps &, ota::Updater &> parts() { return {apps, *updater}; }
};

bool same(const ota::UpdaterState &a, const ota::UpdaterState &b) {
    return a.current == b.current && a.previous == b.previous && a.trying == b.trying && a.staging == b.staging &&
           a.minimum == b.minimum;
}

std::string show(const ota::UpdaterState &s) {
    auto opt = [](const std::optional<uint64_t> &v) { return v ? cat(*v) : std::string("none"); };
    return cat("{current ", opt(s.current), ", previous ", opt(s.previous), ", trying ", opt(s.trying), ", staging ",
               opt(s.staging), ", minimum ", s.minimum, "}");
}

ota::UpdaterState committed(std::optional<uint64_t> current, std::optional<uint64_t> previous, uint64_t minimum) {
    ota::UpdaterState s;
    s.current = current;
    s.previous = previous;
    s.minimum = minimum;
    return s;
}

}  // namespace

TEST_CASE("apply stages the new revision while the old one runs, then switches to it and enters trying") {
    Installed d({1, 2});
    auto [apps, u] = d.parts();
    apps.calls.clear();

    auto v = u.apply(document(3));
    REQUIRE(v);
    CHECK(*v == 3);
    CHECK(apps.calls == std::vector<std::string>{"stage 3", "stop 2", "start 3"});
    CHECK(apps.running == ids_of({3}));
    CHECK(apps.bundles == ids_of({1, 2, 3}));
    auto s = d.state();
    CHECK(s.trying == 3u);
    CHECK(s.current == 2u);
    CHECK(!s.staging);
    CHECK(d.revision_files().count("3.json"));
    CHECK(util::read_file(d.root.revisions() + "/3.json").value_or("") == document(3));
    CHECK(d.history().back().event == "trying");
}

TEST_CASE("commit makes the tried revision current, raises the minimum and removes what is older than previous") {
    Installed d({1, 2});
    auto [apps, u] = d.parts();
    REQUIRE(u.apply(document(3)));
    REQUIRE(u.commit());

    CHECK(same(d.state(), committed(3, 2, 3)));
    CHECK(same(u.state(), d.state()));
    CHECK(apps.running == ids_of({3}));
    CHECK(apps.bundles == ids_of({2, 3}));
    CHECK(d.revision_files() == std::set<std::string>{"2.json", "3.json", "history.json", "state.json"});
    CHECK(d.history().back().event == "committed");
    CHECK(d.history().back().version == 3);
}

TEST_CASE("a version not above the committed one is refused with nothing changed") {
    Installed d({3, 4});
    auto [apps, u] = d.parts();
    apps.calls.clear();

    for (uint64_t v : {3u, 4u}) {
        auto r = u.apply(document(v));
        REQUIRE(!r);
        CHECK(r.error().message() == cat("refused: version ", v, " is not above the committed version 4"));
    }
    CHECK(apps.calls.empty());
    CHECK(same(d.state(), committed(4, 3, 4)));
    CHECK(d.revision_files() == std::set<std::string>{"3.json", "4.json", "history.json", "state.json"});
    CHECK(d.history().back().event == "refused");
}

TEST_CASE("the minimum rises at commit, not at apply") {
    Installed d({1});
    auto [apps, u] = d.parts();
    REQUIRE(u.apply(document(5)));
    CHECK(d.state().minimum == 1);
    REQUIRE(u.rollback("health check failed"));
    CHECK(d.state().minimum == 1);
    // Not committed, so the same version may come again.
    REQUIRE(u.apply(document(5)));
    REQUIRE(u.commit());
    CHECK(d.state().minimum == 5);
}

TEST_CASE("a malformed manifest is refused with the parser's reason") {
    Installed d({1});
    auto [apps, u] = d.parts();
    auto r = u.apply("{\"version\": 2, \"name\": \"x\", \"containers\": [], \"colour\": 1}");
    REQUIRE(!r);
    CHECK(r.error().message().starts_with("refused: "));
    CHECK(same(d.state(), committed(1, std::nullopt, 1)));
    CHECK(d.history().back().event == "refused");
}

TEST_CASE("a manifest larger than a revision file may be is refused") {
    Installed d({1});
    auto [apps, u] = d.parts();
    auto r = u.apply(document(2) + std::string(5 << 20, ' '));
    REQUIRE(!r);
    CHECK(r.error().message() == "refused: the manifest is larger than 4 MiB");
    CHECK(same(d.state(), committed(1, std::nullopt, 1)));
}

TEST_CASE("a manifest asking for a device the board does not allow is refused before anything stops") {
    Device d;
    FakeApps apps(d.apps_file);
    d.install(apps, {1});
    ota::AppLimits limits;
    limits.devices = {"/dev/ttyUSB*"};
    ota::Updater u(d.root, apps, limits);
    apps.calls.clear();
    std::string doc = document(2);
    const std::string serial = R"("devices": [{"path": "/dev/ttyUSB0"}], "name": "db")";
    auto at = doc.find(R"("name": "db")");
    REQUIRE(at != std::string::npos);
    REQUIRE(u.apply(std::string(doc).replace(at, 12, serial)));
    REQUIRE(u.rollback("test"));

    doc.replace(at, 12, R"("devices": [{"path": "/dev/mem"}], "name": "db")");
    auto r = u.apply(doc);
    REQUIRE(!r);
    CHECK(r.error().message() == "refused: containers[0].devices[0]: /dev/mem is not allowed by the board profile");
    CHECK(apps.calls == std::vector<std::string>{"stage 2", "stop 1", "start 2", "stop 2", "start 1", "stop 2", "remove 2"});
    CHECK(apps.running == ids_of({1}));
    CHECK(same(d.state(), committed(1, std::nullopt, 1)));
}

TEST_CASE("an update is refused while another is being tried") {
    Installed d({1});
    auto [apps, u] = d.parts();
    REQUIRE(u.apply(document(2)));
    auto r = u.apply(document(3));
    REQUIRE(!r);
    CHECK(r.error().message() == "an update is in progress");
    CHECK(d.state().trying == 2u);
    CHECK(apps.running == ids_of({2}));
}

TEST_CASE("an update is refused while the updater is busy inside an Apps call") {
    Device d;
    FakeApps inner(d.apps_file);
    d.install(inner, {1});
    // An Apps whose stage() re-enters the updater, as the daemon's loop
    // turning inside a long stage could.
    struct Reentrant : FakeApps {
        ota::Updater *u = nullptr;
        std::vector<std::string> errors;
        using FakeApps::FakeApps;
        util::Status stage(const ota::Revision &rev) override {
            auto a = u->apply(document(9));
            errors.push_back(a ? "applied" : a.error().message());
            auto c = u->commit();
            errors.push_back(c ? "committed" : c.error().message());
            auto r = u->rollback("x");
            errors.push_back(r ? "rolled back" : r.error().message());
            auto s = u->resume();
            errors.push_back(s ? "resumed" : s.error().message());
            return FakeApps::stage(rev);
        }
    } apps(d.apps_file);
    ota::Updater u(d.root, apps);
    apps.u = &u;
    REQUIRE(u.apply(document(2)));
    CHECK(apps.errors == std::vector<std::string>(4, "an update is in progress"));
    CHECK(!u.busy());
}

TEST_CASE("a staging failure leaves the current revision running and records the reason") {
    Installed d({1, 2});
    auto [apps, u] = d.parts();
    apps.calls.clear();
    apps.stage_error = "write layer: no space left on device";

    auto r = u.apply(document(3));
    REQUIRE(!r);
    CHECK(r.error().message().find("no space left on device") != std::string::npos);
    CHECK(apps.calls == std::vector<std::string>{"stage 3", "stop 3", "remove 3"});
    CHECK(apps.running == ids_of({2}));
    CHECK(apps.bundles == ids_of({1, 2}));
    CHECK(same(d.state(), committed(2, 1, 2)));
    CHECK(!d.revision_files().count("3.json"));
    auto last = d.history().back();
    CHECK(last.event == "stage-failed");
    CHECK(last.version == 3);
    CHECK(last.reason.find("no space left on device") != std::string::npos);
}

TEST_CASE("a start failure after the stop rolls back at once") {
    Installed d({1, 2});
    auto [apps, u] = d.parts();
    apps.fail_start = 3;

    auto r = u.apply(document(3));
    REQUIRE(!r);
    CHECK(r.error().message().find("rolled back") != std::string::npos);
    CHECK(r.error().message().find("exited with status 1") != std::string::npos);
    CHECK(apps.running == ids_of({2}));
    CHECK(apps.bundles == ids_of({1, 2}));
    CHECK(same(d.state(), committed(2, 1, 2)));
    CHECK(d.history().back().event == "rolled-back");
}

TEST_CASE("a rollback from trying restores the current revision exactly") {
    Device d;
    FakeApps apps(d.apps_file);
    d.install(apps, {1, 2});
    const auto files_before = d.revision_files();
    ota::Updater u(d.root, apps);
    REQUIRE(u.apply(document(3)));
    apps.calls.clear();

    REQUIRE(u.rollback("web: health check failed 3 times"));
    CHECK(apps.calls == std::vector<std::string>{"stop 3", "start 2", "stop 3", "remove 3"});
    CHECK(apps.running == ids_of({2}));
    CHECK(apps.bundles == ids_of({1, 2}));
    CHECK(same(d.state(), committed(2, 1, 2)));
    CHECK(d.revision_files() == files_before);
    auto last = d.history().back();
    CHECK(last.event == "rolled-back");
    CHECK(last.version == 3);
    CHECK(last.reason == "web: health check failed 3 times");
}

TEST_CASE("a rollback from trying a first install leaves nothing running") {
    Device d;
    FakeApps apps(d.apps_file);
    ota::Updater u(d.root, apps);
    REQUIRE(u.resume());
    REQUIRE(u.apply(document(1)));
    REQUIRE(u.rollback("health check failed"));
    CHECK(apps.running.empty());
    CHECK(apps.bundles.empty());
    CHECK(same(d.state(), ota::UpdaterState{}));
}

TEST_CASE("an operator rollback goes back to previous and keeps the minimum") {
    Installed d({1, 2});
    auto [apps, u] = d.parts();
    apps.calls.clear();

    REQUIRE(u.rollback("operator"));
    CHECK(apps.calls == std::vector<std::string>{"stop 2", "start 1", "stop 2", "remove 2"});
    CHECK(apps.running == ids_of({1}));
    CHECK(apps.bundles == ids_of({1}));
    CHECK(same(d.state(), committed(1, std::nullopt, 2)));
    CHECK(d.history().back().event == "rolled-back");
    CHECK(d.history().back().version == 2);

    auto again = u.rollback("operator");
    REQUIRE(!again);
    CHECK(again.error().message() == "rollback: there is no previous revision");
    auto replay = u.apply(document(2));
    REQUIRE(!replay);
    CHECK(replay.error().message() == "refused: version 2 is not above the committed version 2");
    REQUIRE(u.apply(document(3)));
    REQUIRE(u.commit());
    CHECK(same(d.state(), committed(3, 1, 3)));
}

TEST_CASE("commit is refused when nothing is being tried") {
    Installed d({1});
    auto [apps, u] = d.parts();
    auto r = u.commit();
    REQUIRE(!r);
    CHECK(r.error().message() == "commit: no update is being tried");
}

namespace {

/// Runs `body` in a child process with `failpoint` armed to crash on its
/// `nth` hit; true when the child was killed there.
bool crash_in_child(const std::string &failpoint, int nth, const std::function<void()> &body) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        util::failpoint_clear();
        util::failpoint_arm(failpoint, util::FailAction::Crash, nth);
        body();
        _exit(0);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status)) {
        REQUIRE(WTERMSIG(status) == SIGKILL);
        return true;
    }
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    return false;
}

/// Installs revisions 1 and 2, then applies 3 in a child killed at the
/// `nth` hit of `failpoint`.
void crash_applying_3(Device &d, const std::string &failpoint, int nth) {
    {
        FakeApps apps(d.apps_file);
        d.install(apps, {1, 2});
    }
    REQUIRE(crash_in_child(failpoint, nth, [&] {
        FakeApps apps(d.apps_file);
        ota::Updater u(d.root, apps);
        (void)u.apply(document(3));
    }));
}

}  // namespace

TEST_CASE("resume after a crash during staging removes the partial staging") {
    Device d;
    crash_applying_3(d, "fake.stage-bundle", 2);
    CHECK(d.state().staging == 3u);

    FakeApps apps(d.apps_file);
    CHECK(apps.bundles.count("db.r3"));
    ota::Updater u(d.root, apps);
    REQUIRE(u.resume());
    CHECK(apps.running == ids_of({2}));
    CHECK(apps.bundles == ids_of({1, 2}));
    CHECK(same(d.state(), committed(2, 1, 2)));
    CHECK(!d.revision_files().count("3.json"));
    CHECK(d.history().back().event == "stage-failed");
}

TEST_CASE("resume after a crash during trying rolls back to the current revision") {
    Device d;
    crash_applying_3(d, "ota.started-new", 1);
    CHECK(d.state().trying == 3u);

    FakeApps apps(d.apps_file);
    CHECK(apps.running == ids_of({3}));
    ota::Updater u(d.root, apps);
    REQUIRE(u.resume());
    CHECK(apps.running == ids_of({2}));
    CHECK(apps.bundles == ids_of({1, 2}));
    CHECK(same(d.state(), committed(2, 1, 2)));
    auto last = d.history().back();
    CHECK(last.event == "rolled-back");
    CHECK(last.reason == "reboot or daemon restart during trying");
}

TEST_CASE("resume twice in a row does the same as once") {
    Device d;
    crash_applying_3(d, "ota.stopped-old", 1);
    FakeApps apps(d.apps_file);
    {
        ota::Updater u(d.root, apps);
        REQUIRE(u.resume());
    }
    const auto running = apps.running, bundles = apps.bundles;
    const auto files = d.revision_files();
    const auto state = d.state();
    const auto history = d.history().size();
    apps.calls.clear();
    {
        ota::Updater u(d.root, apps);
        REQUIRE(u.resume());
    }
    CHECK(apps.calls == std::vector<std::string>{"stop_others", "start 2"});
    CHECK(apps.running == running);
    CHECK(apps.bundles == bundles);
    CHECK(d.revision_files() == files);
    CHECK(same(d.state(), state));
    CHECK(d.history().size() == history);
}

TEST_CASE("resume stops stray containers and starts the current revision") {
    Device d;
    FakeApps apps(d.apps_file);
    d.install(apps, {1, 2});
    apps.running.insert("web.r1");
    apps.running.erase("db.r2");
    ota::Updater u(d.root, apps);
    REQUIRE(u.resume());
    CHECK(apps.running == ids_of({2}));
}

TEST_CASE("resume stops and removes a revision no pointer names, its manifest last") {
    Installed d({1, 2});
    auto [apps, u] = d.parts();
    REQUIRE(util::atomic_write_file(d.root.revisions() + "/7.json", document(7)));
    REQUIRE(util::atomic_write_file(d.root.revisions() + "/.berth-tmp-state.json.1.0", "{"));
    for (const auto &id : ids_of({7})) apps.bundles.insert(id), apps.running.insert(id);
    apps.calls.clear();
    REQUIRE(u.resume());
    CHECK(apps.calls == std::vector<std::string>{"stop 7", "remove 7", "stop_others", "start 2"});
    CHECK(apps.running == ids_of({2}));
    CHECK(apps.bundles == ids_of({1, 2}));
    CHECK(d.revision_files() == std::set<std::string>{"1.json", "2.json", "history.json", "state.json"});
}

TEST_CASE("resume on an empty device root starts nothing") {
    Device d;
    FakeApps apps(d.apps_file);
    ota::Updater u(d.root, apps);
    REQUIRE(u.resume());
    CHECK(apps.running.empty());
    CHECK(same(u.state(), ota::UpdaterState{}));
}

TEST_CASE("status, state and history read without a daemon") {
    Installed d({1, 2});
    auto [apps, u] = d.parts();
    REQUIRE(u.apply(document(3)));

    auto s = ota::read_state(d.root);
    REQUIRE(s);
    auto doc = ota::status_json(d.root, *s);
    CHECK(doc == u.status_json());
    CHECK(doc["current"]["version"] == 2);
    CHECK(doc["current"]["name"] == "sensor 2");
    CHECK(doc["previous"]["version"] == 1);
    CHECK(doc["trying"]["name"] == "sensor 3");
    CHECK(std::string(doc["trying"]["digest"]).starts_with("sha256:"));
    CHECK(doc["staging"].is_null());
    CHECK(doc["minimum"] == 2);
    CHECK(doc["busy"] == false);

    auto h = ota::read_history(d.root);
    REQUIRE(h);
    CHECK(h->size() == u.history().size());
    std::vector<std::string> events;
    for (const auto &e : *h) events.push_back(cat(e.event, " ", e.version));
    CHECK(events == std::vector<std::string>{"staged 1", "trying 1", "committed 1", "staged 2", "trying 2",
                                             "committed 2", "staged 3", "trying 3"});
    CHECK(h->back().time > 1700000000);
    auto file = util::json::parse(util::read_file(d.root.revisions() + "/history.json").value_or(""), "history.json");
    REQUIRE(file);
    CHECK(ota::history_json(*h) == *file);
}

TEST_CASE("history keeps the last 100 entries, newest last") {
    Installed d({50});
    auto [apps, u] = d.parts();
    for (uint64_t v = 1; v <= 110; v++) (void)u.apply(document(v <= 50 ? v : 1));
    auto h = d.history();
    CHECK(h.size() == 100);
    CHECK(h.back().event == "refused");
    CHECK(h.front().version == 11);
}

TEST_CASE("docs/updater.md describes every failpoint") {
    // meson compiles this file by a path relative to the build directory,
    // where its tests run.
    const std::string doc = util::dirname(__FILE__) + "/../../docs/updater.md";
    auto text = util::read_file(doc);
    if (!text) {
        WARN("skipped: " << doc << " is not reachable from " << std::filesystem::current_path());
        return;
    }
    for (std::string_view fp : ota::kFailpoints) {
        INFO(fp);
        CHECK(text->find(cat("| `", fp, "` |")) != std::string::npos);
    }
}

// ---- The crash loop -------------------------------------------------------

namespace {

/// One thing the updater does, from a committed starting point, and the
/// states it may leave: `before` or, once it has gone through, `after`.
struct Scenario {
    std::string name;
    std::vector<uint64_t> installed;  ///< applied and committed first
    std::function<void(FakeApps &, ota::Updater &)> run;
    ota::UpdaterState before, after;
};

std::vector<Scenario> scenarios() {
    return {
        {"apply and commit", {1, 2},
         [](FakeApps &, ota::Updater &u) {
             if (u.apply(document(3))) (void)u.commit();
         },
         committed(2, 1, 2), committed(3, 2, 3)},
        {"apply, health check fails", {1, 2},
         [](FakeApps &, ota::Updater &u) {
             if (u.apply(document(3))) (void)u.rollback("health check failed");
         },
         committed(2, 1, 2), committed(2, 1, 2)},
        {"apply, staging fails", {1, 2},
         [](FakeApps &apps, ota::Updater &u) {
             apps.stage_error = "no space left on device";
             (void)u.apply(document(3));
         },
         committed(2, 1, 2), committed(2, 1, 2)},
        {"apply, start fails", {1, 2},
         [](FakeApps &apps, ota::Updater &u) {
             apps.fail_start = 3;
             (void)u.apply(document(3));
         },
         committed(2, 1, 2), committed(2, 1, 2)},
        {"operator rollback", {1, 2},
         [](FakeApps &, ota::Updater &u) { (void)u.rollback("operator"); },
         committed(2, 1, 2), committed(1, std::nullopt, 2)},
        {"first install and commit", {},
         [](FakeApps &, ota::Updater &u) {
             if (u.apply(document(1))) (void)u.commit();
         },
         ota::UpdaterState{}, committed(1, std::nullopt, 1)},
        {"first install, health check fails", {},
         [](FakeApps &, ota::Updater &u) {
             if (u.apply(document(1))) (void)u.rollback("health check failed");
         },
         ota::UpdaterState{}, ota::UpdaterState{}},
    };
}

/// A device root in the scenario's starting point, copied from a template
/// made once per scenario.
struct CrashRun {
    ScratchDir dir;
    std::string root_dir = dir.path + "/root", apps_file = dir.path + "/apps";

    explicit CrashRun(const Device &tmpl) {
        std::filesystem::copy(tmpl.dir.path, dir.path, std::filesystem::copy_options::recursive);
    }
    util::DeviceRoot root() const { return util::DeviceRoot(root_dir); }

    /// resume() twice, as a restarted daemon does, then the invariant.
    void check(const Scenario &sc) {
        FakeApps apps(apps_file);
        {
            ota::Updater u(root(), apps);
            auto st = u.resume();
            INFO((st ? std::string() : st.error().message()));
            REQUIRE(st);
        }
        const auto running = apps.running, bundles = apps.bundles;
        {
            ota::Updater u(root(), apps);
            REQUIRE(u.resume());
        }
        CHECK(apps.running == running);  // idempotent
        CHECK(apps.bundles == bundles);

        auto state = ota::read_state(root());
        REQUIRE(state);
        INFO("state " << show(*state));
        CHECK((same(*state, sc.before) || same(*state, sc.after)));
        REQUIRE(ota::read_history(root()));
        // Exactly the revision the state names runs, all of it, and only the
        // bundles of current and previous are left.
        std::set<std::string> want_running, want_bundles, want_files{"state.json", "history.json"};
        for (auto v : {state->current, state->previous}) {
            if (!v) continue;
            for (const auto &name : container_names(*v)) {
                want_bundles.insert(cat(name, ".r", *v));
                if (v == state->current) want_running.insert(cat(name, ".r", *v));
            }
            want_files.insert(cat(*v, ".json"));
        }
        CHECK(apps.running == want_running);
        CHECK(apps.bundles == want_bundles);
        auto names = util::list_dir(root().revisions());
        REQUIRE(names);
        std::set<std::string> files(names->begin(), names->end());
        // A fresh root may have no history yet, and no state while it is empty.
        if (!files.count("history.json")) files.insert("history.json");
        if (!files.count("state.json") && same(*state, ota::UpdaterState{})) files.insert("state.json");
        CHECK(files == want_files);
    }
};

/// For each scenario, a template device root in its starting point.
std::vector<std::unique_ptr<Device>> templates(const std::vector<Scenario> &all) {
    std::vector<std::unique_ptr<Device>> out;
    for (const auto &sc : all) {
        auto d = std::make_unique<Device>();
        FakeApps apps(d->apps_file);
        d->install(apps, sc.installed);
        out.push_back(std::move(d));
    }
    return out;
}

void run_scenario(const Scenario &sc, const CrashRun &run) {
    FakeApps apps(run.apps_file);
    ota::Updater u(run.root(), apps);
    sc.run(apps, u);
}

/// The resume() of the restart after a crash, killed in turn at the first
/// hit of `failpoint` (when it gets there).
void crash_resuming(const CrashRun &run, const std::string &failpoint) {
    crash_in_child(failpoint, 1, [&] {
        FakeApps apps(run.apps_file);
        ota::Updater u(run.root(), apps);
        (void)u.resume();
    });
}

}  // namespace

TEST_CASE("a crash at any updater failpoint, and again in the resume after it, leaves the old or the new revision, fully") {
    const auto all = scenarios();
    const auto tmpl = templates(all);
    std::set<std::string> hit;
    for (std::string_view fp : ota::kFailpoints) {
        for (size_t i = 0; i < all.size(); i++) {
            const auto &sc = all[i];
            INFO("failpoint " << fp << ", scenario: " << sc.name);
            CrashRun run(*tmpl[i]);
            if (crash_in_child(std::string(fp), 0, [&] { run_scenario(sc, run); })) hit.insert(std::string(fp));
            run.check(sc);
            // Again, with the resume() after the crash killed at the same
            // failpoint before the one that finishes.
            CrashRun twice(*tmpl[i]);
            if (crash_in_child(std::string(fp), 0, [&] { run_scenario(sc, twice); })) {
                crash_resuming(twice, std::string(fp));
                twice.check(sc);
            }
        }
    }
    // Every listed failpoint is on some path (the list is not stale); the
    // system path's own loop below checks its failpoints.
    for (std::string_view fp : ota::kFailpoints) {
        if (fp.starts_with("ota.system-")) continue;
        INFO("failpoint " << fp << " reached by no scenario");
        CHECK(hit.count(std::string(fp)));
    }
}

TEST_CASE("an error at any updater failpoint, then a restart, leaves the old or the new revision, fully") {
    const auto all = scenarios();
    const auto tmpl = templates(all);
    for (std::string_view fp : ota::kFailpoints) {
        for (size_t i = 0; i < all.size(); i++) {
            const auto &sc = all[i];
            INFO("failpoint " << fp << ", scenario: " << sc.name);
            CrashRun run(*tmpl[i]);
            util::failpoint_arm(fp, util::FailAction::Error);
            run_scenario(sc, run);  // the Updater is dropped without further calls
            util::failpoint_clear();
            run.check(sc);
        }
    }
}

TEST_CASE("a crash at any step of any state write, or during a resume, leaves the old or the new revision") {
    const auto all = scenarios();
    const auto tmpl = templates(all);
    int crashes = 0;
    for (const char *fp : {"atomic_write.create", "atomic_write.write", "atomic_write.fsync", "atomic_write.rename",
                           "atomic_write.dirsync", "fake.stage-bundle"}) {
        for (size_t i = 0; i < all.size(); i++) {
            const auto &sc = all[i];
            // The n-th write of the scenario, for every n until it finishes
            // without reaching an n-th.
            for (int nth = 1; nth < 200; nth++) {
                INFO(fp << "@" << nth << ", scenario: " << sc.name);
                CrashRun run(*tmpl[i]);
                if (!crash_in_child(fp, nth, [&] { run_scenario(sc, run); })) break;
                crashes++;
                crash_resuming(run, fp);
                run.check(sc);
            }
        }
    }
    CHECK(crashes > 100);
}



// ---- The system path ------------------------------------------------------
//
// A manifest with a `system` part, over a board of two file slots and the
// file bootloader backend (the real ota/slot install and ota/bootloader).
// The test plays the bootloader and the reboots (TestSystem::reboot: the
// first slot of BOOT_ORDER with attempts left boots, one attempt spent, a
// new boot id) and the daemon's health checks (the scenario's verdict once
// the tried slot runs its revision). Starting point, reached through the
// updater itself: revision 1 committed on the factory system 0 in slot A,
// then revision 2 with system 1, installed into B, booted and committed.
// The scenarios apply revision 3 with system 2, which goes into slot A.

namespace {

constexpr size_t kSysImageSize = 192 << 10;

std::string system_image(uint64_t version) {
    std::string out(kSysImageSize, '\0');
    uint64_t x = 0x9e3779b97f4a7c15ull * (version + 1);
    for (auto &ch : out) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ch = static_cast<char>(x);
    }
    return out;
}

std::string system_digest(uint64_t version) { return img::Digest::of(system_image(version)).str(); }

/// Revision `version` (document()) with system `sys`, replacing `sys - 1`
/// only (system 1: any; a version range starts at 1).
std::string system_document(uint64_t version, uint64_t sys) {
    std::string doc = document(version);
    doc.erase(doc.rfind('}'));
    return cat(doc, R"(, "system": {"image": "registry.example/os@)", system_digest(sys), R"(", "size": )", kSysImageSize,
               R"(, "version": )", sys,
               sys > 1 ? cat(R"(, "min_version": )", sys - 1, R"(, "max_version": )", sys - 1) : std::string(),
               R"(, "fstype": "ext4"}})", "\n");
}

/// Slots A and B as files and the file bootloader under `dir`; the booted
/// slot and the boot id in <dir>/boot, so a killed child and the parent
/// agree on them. System images are <dir>/image-<version>.
struct TestSystem : ota::System {
    std::string dir;
    ota::Board board;
    std::unique_ptr<ota::Bootloader> boot;
    std::string slot, id;

    explicit TestSystem(std::string d) : dir(std::move(d)) {
        board.name = "test";
        board.slots = {ota::SlotSpec{"A", {ota::Location::File, dir + "/a.img"}, 0},
                       ota::SlotSpec{"B", {ota::Location::File, dir + "/b.img"}, 0}};
        board.bootloader = ota::BootloaderSpec{ota::BootloaderKind::File, dir + "/boot.env", 3};
        boot = std::make_unique<ota::Bootloader>(board, ota::file_boot_env(dir + "/boot.env"));
        auto f = util::split(util::read_file(dir + "/boot").value_or("A 1"), ' ');
        slot = f.at(0), id = f.at(1);
    }
    ota::Bootloader &bootloader() override { return *boot; }
    std::string booted() override { return slot; }
    std::string boot_id() override { return id; }
    util::Result<std::string> install(const ota::SystemSpec &spec) override {
        ota::SlotInstaller installer(board, *boot, slot, dir + "/slots");
        ota::SlotInstallOptions opts;
        opts.persist_bytes = 64 << 10;
        auto digest = TRY(img::Digest::parse(spec.image.substr(spec.image.find('@') + 1)));
        auto stats = TRY(installer.from_file(cat(dir, "/image-", spec.version), {digest, spec.size}, "", opts));
        return stats.slot;
    }
    /// Plays the bootloader: boots the first slot of BOOT_ORDER with
    /// attempts left and spends one.
    void reboot() {
        auto st = boot->status();
        REQUIRE(st);
        REQUIRE(!st->next.empty());
        int left = st->slot(st->next)->left;
        REQUIRE(ota::file_boot_env(dir + "/boot.env")->write({{cat("BOOT_", st->next, "_LEFT"), std::to_string(left - 1)}}));
        slot = st->next;
        id = std::to_string(std::stoi(id) + 1);
        REQUIRE(util::atomic_write_file(dir + "/boot", cat(slot, " ", id)));
    }
    std::string content(const std::string &name) const {
        return util::read_file(cat(dir, "/", name == "A" ? "a.img" : "b.img")).value_or("");
    }
};

/// What the daemon would find once the tried slot runs its revision.
enum class Verdict { Healthy, Unhealthy, NeverStarts };

/// What restarted daemons and the bootloader do until nothing is left:
/// resume, reboot when asked, the verdict on a slot being tried.
void settle(const std::string &dir, const util::DeviceRoot &root, const std::string &apps_file, Verdict verdict) {
    for (int i = 0; i < 24; i++) {
        TestSystem sys(dir);
        FakeApps apps(apps_file);
        auto state = ota::read_state(root);
        REQUIRE(state);
        if (verdict == Verdict::NeverStarts && state->system.trying && sys.slot == state->system.trying->slot) {
            sys.reboot();  // the new system dies before berth runs
            continue;
        }
        ota::Updater u(root, apps, {}, &sys);
        // An error (an injected one) is followed by another restart.
        const bool resumed = u.resume().ok();
        if (u.reboot_requested()) {
            sys.reboot();
            continue;
        }
        if (resumed && !u.state().system.trying) return;
        if (!resumed) continue;
        REQUIRE(u.state().trying);
        REQUIRE(sys.slot == u.state().system.trying->slot);
        if (verdict == Verdict::Healthy) (void)u.commit();
        else (void)u.rollback("web: health check failed 3 times");
        if (u.reboot_requested()) sys.reboot();
    }
    FAIL("the update did not settle");
}

/// Applies `document`; a reboot when asked; then settle().
void update_system(const std::string &dir, const util::DeviceRoot &root, const std::string &apps_file,
                   const std::string &doc, Verdict verdict) {
    {
        TestSystem sys(dir);
        FakeApps apps(apps_file);
        ota::Updater u(root, apps, {}, &sys);
        if (!u.apply(doc)) return;
        if (u.reboot_requested()) sys.reboot();
    }
    settle(dir, root, apps_file, verdict);
}

/// A device as shipped, under `dir`: revision 1 committed on the factory
/// system 0 in slot A, no system update yet; the system images 0 to 3.
void ship(const std::string &dir, const util::DeviceRoot &root, const std::string &apps_file) {
    REQUIRE(util::mkdir_p(root.dir()));
    for (uint64_t v = 0; v <= 3; v++) REQUIRE(util::atomic_write_file(cat(dir, "/image-", v), system_image(v)));
    REQUIRE(util::atomic_write_file(dir + "/a.img", system_image(0)));
    REQUIRE(util::atomic_write_file(dir + "/b.img", "left over"));
    TestSystem sys(dir);
    REQUIRE(sys.boot->mark_good("A"));
    FakeApps apps(apps_file);
    ota::Updater u(root, apps, {}, &sys);
    REQUIRE(u.resume());
    REQUIRE(u.apply(document(1)));
    REQUIRE(u.commit());
}

/// The starting point (above), made once and copied for each run.
struct SysDevice {
    ScratchDir dir;
    util::DeviceRoot root{dir.path + "/root"};
    std::string apps_file = dir.path + "/apps";

    SysDevice() {
        ship(dir.path, root, apps_file);
        update_system(dir.path, root, apps_file, system_document(2, 1), Verdict::Healthy);
        auto st = ota::read_state(root);
        REQUIRE(st);
        auto history = ota::read_history(root).value_or({});
        for (const auto &e : history) UNSCOPED_INFO(e.version << " " << e.event << " " << e.reason);
        REQUIRE(st->current == 2u);
        REQUIRE(st->system.version == 1u);
        REQUIRE(st->system.slot == "B");
    }
};

struct SysCopy {
    ScratchDir dir;
    util::DeviceRoot root{dir.path + "/root"};
    std::string apps_file = dir.path + "/apps";
    explicit SysCopy(const SysDevice &tmpl) {
        std::filesystem::copy(tmpl.dir.path, dir.path, std::filesystem::copy_options::recursive);
    }
};

/// The invariant after any run settled: exactly the old (revision 2,
/// system 1 in B) or, when the verdict was healthy, the new (revision 3,
/// system 2 in A) is committed, all of it; the bootloader boots the
/// committed slot, tries nothing, and every slot it may boot holds a whole
/// image that was read back.
void check_settled(const SysCopy &run, Verdict verdict) {
    TestSystem sys(run.dir.path);
    FakeApps apps(run.apps_file);
    auto state = ota::read_state(run.root);
    REQUIRE(state);
    INFO("state " << show(*state) << ", system " << state->system.version << " in " << state->system.slot);
    const bool old = same(*state, committed(2, 1, 2)) && state->system.version == 1 && state->system.slot == "B";
    const bool new_ = same(*state, committed(3, 2, 3)) && state->system.version == 2 && state->system.slot == "A";
    CHECK((old || (new_ && verdict == Verdict::Healthy)));
    CHECK(!state->system.trying);
    if (verdict == Verdict::Healthy) CHECK(state->system.failed.empty());
    else CHECK((state->system.failed.empty() || state->system.failed == std::vector<uint64_t>{2}));

    auto boot = sys.boot->status();
    REQUIRE(boot);
    CHECK(boot->trying.empty());
    CHECK(sys.slot == state->system.slot);
    CHECK(boot->next == state->system.slot);
    CHECK(boot->slot(state->system.slot)->health == ota::SlotHealth::Good);
    CHECK(sys.content(state->system.slot) == system_image(state->system.version));
    for (const char *name : {"A", "B"}) {
        INFO("slot " << name);
        if (boot->slot(name)->health == ota::SlotHealth::Bad) continue;
        const std::string c = sys.content(name);
        CHECK((c == system_image(0) || c == system_image(1) || c == system_image(2)));
    }

    std::set<std::string> want_running, want_bundles;
    for (auto v : {state->current, state->previous})
        for (const auto &name : container_names(*v)) {
            want_bundles.insert(cat(name, ".r", *v));
            if (v == state->current) want_running.insert(cat(name, ".r", *v));
        }
    CHECK(apps.running == want_running);
    CHECK(apps.bundles == want_bundles);
}

std::vector<std::pair<std::string, Verdict>> system_scenarios() {
    return {{"system update committed", Verdict::Healthy},
            {"system update fails its health checks", Verdict::Unhealthy},
            {"new system never starts", Verdict::NeverStarts}};
}

void run_system_scenario(const SysCopy &run, Verdict verdict) {
    update_system(run.dir.path, run.root, run.apps_file, system_document(3, 2), verdict);
}

/// After a crash: the daemon restarted in the same boot, or (a power cut)
/// the box rebooted first; then settle.
void restart(const SysCopy &run, Verdict verdict, bool power_cut) {
    if (power_cut) TestSystem(run.dir.path).reboot();
    settle(run.dir.path, run.root, run.apps_file, verdict);
}

}  // namespace

namespace {

/// The starting point copied, with its board and fake, for one test.
struct SysRig {
    SysDevice tmpl;
    SysCopy run{tmpl};
    TestSystem sys{run.dir.path};
    FakeApps apps{run.apps_file};

    /// An Updater over it, resumed as at a start.
    std::unique_ptr<ota::Updater> started() {
        auto u = std::make_unique<ota::Updater>(run.root, apps, ota::AppLimits{}, &sys);
        REQUIRE(u->resume());
        return u;
    }
};

/// Runs a failing system update to its end on `run`; checks the version is
/// remembered as failed; the last history entry.
ota::HistoryEntry failed_system_update(const SysCopy &run, Verdict verdict) {
    run_system_scenario(run, verdict);
    check_settled(run, verdict);
    auto state = ota::read_state(run.root);
    REQUIRE(state);
    CHECK(state->system.failed == std::vector<uint64_t>{2});
    auto h = ota::read_history(run.root);
    REQUIRE(h);
    REQUIRE(!h->empty());
    CHECK(h->back().event == "rolled-back");
    return h->back();
}

}  // namespace

TEST_CASE("a system update installs the inactive slot, reboots into it and commits system and revision together") {
    SysRig rig;
    auto &[tmpl, run, sys, apps] = rig;
    {
        auto started = rig.started();
        ota::Updater &u = *started;
        auto v = u.apply(system_document(3, 2));
        INFO((v ? std::string() : v.error().message()));
        REQUIRE(v);
        CHECK(u.reboot_requested());
        CHECK(apps.running == ids_of({2}));  // the old revision runs until the reboot
        CHECK(u.state().system.trying->slot == "A");
        CHECK(sys.content("A") == system_image(2));
        auto boot = sys.boot->status();
        REQUIRE(boot);
        CHECK(boot->trying == "A");
        CHECK(boot->next == "A");
    }
    sys.reboot();
    CHECK(sys.slot == "A");
    ota::Updater u(run.root, apps, {}, &sys);
    REQUIRE(u.resume());
    CHECK(!u.reboot_requested());
    CHECK(u.state().trying == 3u);
    CHECK(apps.running == ids_of({3}));
    CHECK(u.state().system.version == 1u);  // nothing committed before the health checks
    REQUIRE(u.commit());
    CHECK(u.state().system.version == 2u);
    CHECK(u.state().system.slot == "A");
    CHECK(same(u.state(), committed(3, 2, 3)));
    auto boot = sys.boot->status();
    REQUIRE(boot);
    CHECK(boot->trying.empty());
    CHECK(boot->slot("A")->health == ota::SlotHealth::Good);
    CHECK(boot->slot("A")->left == 3);
}


TEST_CASE("a system update that fails its health checks marks the slot bad, reboots to the old one and is not tried again") {
    SysDevice tmpl;
    SysCopy run(tmpl);
    CHECK(failed_system_update(run, Verdict::Unhealthy).reason == "system 2 in slot A: web: health check failed 3 times");

    TestSystem sys(run.dir.path);
    FakeApps apps(run.apps_file);
    ota::Updater u(run.root, apps, {}, &sys);
    auto again = u.apply(system_document(4, 2));
    REQUIRE(!again);
    CHECK(again.error().message() == "refused: system version 2 failed before; it is not tried again");
}

TEST_CASE("a new system that never starts runs out of boot attempts; the failure is recorded with the reason") {
    SysDevice tmpl;
    SysCopy run(tmpl);
    auto last = failed_system_update(run, Verdict::NeverStarts);
    CHECK(last.reason.find("the boot counter of slot A ran out (booted slot B)") != std::string::npos);
}

TEST_CASE("a system image not above the committed system version, or outside its min and max, is refused") {
    SysRig rig;
    auto started = rig.started();
    ota::Updater &u = *started;
    auto &sys = rig.sys;
    auto same_version = u.apply(system_document(3, 1));
    REQUIRE(!same_version);
    CHECK(same_version.error().message() == "refused: system version 1 is not above the committed system version 1");
    auto skips = u.apply(system_document(3, 3));  // replaces 2 only
    REQUIRE(!skips);
    CHECK(skips.error().message() == "refused: system version 3 replaces versions 2 to 2, the installed one is 1");
    CHECK(sys.content("A") == system_image(0));
    CHECK(!u.reboot_requested());
}

TEST_CASE("a system part is refused on a device without slots") {
    Installed d({1, 2});
    auto [apps, u] = d.parts();
    auto r = u.apply(system_document(3, 2));
    REQUIRE(!r);
    CHECK(r.error().message().starts_with("refused: the manifest has a system part, but this device has no root"));
}

TEST_CASE("when every slot is bad, the start marks the booted one good again") {
    SysRig rig;
    auto &[tmpl, run, sys, apps] = rig;
    REQUIRE(sys.boot->mark_bad("A"));
    REQUIRE(sys.boot->mark_bad("B"));
    ota::Updater u(run.root, apps, {}, &sys);
    REQUIRE(u.resume());
    auto boot = sys.boot->status();
    REQUIRE(boot);
    CHECK(boot->next == "B");
    CHECK(u.history().back().event == "recovered");
}

TEST_CASE("a crash at any updater failpoint of a system update, in the same boot or by a power cut, leaves the old or the new system and revision") {
    const SysDevice tmpl;
    std::set<std::string> hit;
    for (std::string_view fp : ota::kFailpoints) {
        for (const auto &[name, verdict] : system_scenarios()) {
            for (bool power_cut : {false, true}) {
                INFO("failpoint " << fp << ", scenario: " << name << (power_cut ? ", power cut" : ", daemon killed"));
                SysCopy run(tmpl);
                const Verdict v = verdict;
                if (crash_in_child(std::string(fp), 0, [&] { run_system_scenario(run, v); })) {
                    hit.insert(std::string(fp));
                    // The restart is killed at the same failpoint once more.
                    crash_in_child(std::string(fp), 1, [&] { settle(run.dir.path, run.root, run.apps_file, v); });
                }
                restart(run, v, power_cut);
                check_settled(run, v);
            }
        }
    }
    for (std::string_view fp : ota::kFailpoints) {
        if (!fp.starts_with("ota.system-")) continue;
        INFO("failpoint " << fp << " reached by no system scenario");
        CHECK(hit.count(std::string(fp)));
    }
}

TEST_CASE("an error at any updater failpoint of a system update, then a restart, leaves the old or the new system and revision") {
    const SysDevice tmpl;
    for (std::string_view fp : ota::kFailpoints) {
        for (const auto &[name, verdict] : system_scenarios()) {
            INFO("failpoint " << fp << ", scenario: " << name);
            SysCopy run(tmpl);
            util::failpoint_arm(fp, util::FailAction::Error, 1);
            run_system_scenario(run, verdict);
            util::failpoint_clear();
            restart(run, verdict, false);
            check_settled(run, verdict);
        }
    }
}

TEST_CASE("a crash at any step of any write of a system update (state, bootloader, slot) leaves the old or the new") {
    const SysDevice tmpl;
    int crashes = 0;
    for (const char *fp : {"atomic_write.create", "atomic_write.write", "atomic_write.fsync", "atomic_write.rename",
                           "atomic_write.dirsync", "slot.persist", "slot.written"}) {
        for (const auto &[name, verdict] : system_scenarios()) {
            for (int nth = 1; nth < 400; nth++) {
                const bool power_cut = nth % 2 == 0;
                INFO(fp << "@" << nth << ", scenario: " << name << (power_cut ? ", power cut" : ", daemon killed"));
                SysCopy run(tmpl);
                const Verdict v = verdict;
                if (!crash_in_child(fp, nth, [&] { run_system_scenario(run, v); })) break;
                crashes++;
                restart(run, v, power_cut);
                check_settled(run, v);
            }
        }
    }
    CHECK(crashes > 100);
}

// ---- stored revisions that a later parser refuses (an upgrade tightened it)

namespace {

/// Replaces stored revision `v` by a document today's parser refuses (an
/// unknown field), as if the berth that stored it had a laxer parser.
void make_unreadable(const Device &d, uint64_t v) {
    std::string doc = document(v);
    doc.insert(1, R"("retired_field": true, )");
    REQUIRE(util::atomic_write_file(d.root.revisions() + cat("/", v, ".json"), doc));
    REQUIRE_FALSE(ota::parse_revision(doc));
}

}  // namespace

TEST_CASE("a stored revision the parser refuses is dropped by the clean-up, its bundles with it") {
    Installed d({1, 2});
    auto [apps, u] = d.parts();
    make_unreadable(d, 1);
    REQUIRE(u.apply(document(3)));
    REQUIRE(u.commit());  // revision 1 is no longer named: the clean-up drops it
    CHECK_FALSE(d.revision_files().count("1.json"));
    CHECK(apps.bundles == ids_of({2, 3}));
    bool said = false;
    for (const auto &e : d.history())
        if (e.version == 1 && e.event == "dropped" && e.reason.find("retired_field") != std::string::npos) said = true;
    CHECK(said);
    auto v = u.apply(document(4));  // and nothing is stuck
    INFO((v ? std::string() : v.error().message()));
    CHECK(v);
}

TEST_CASE("a committed revision the parser refuses: resume goes back to the previous one and says why") {
    Installed d({1, 2});
    make_unreadable(d, 2);
    FakeApps apps(d.apps_file);
    ota::Updater u(d.root, apps);
    auto st = u.resume();
    INFO((st ? std::string() : st.error().message()));
    CHECK(st);
    CHECK(same(d.state(), committed(1, std::nullopt, 2)));
    CHECK(apps.running == ids_of({1}));
    CHECK(apps.bundles == ids_of({1}));
    CHECK_FALSE(d.revision_files().count("2.json"));
    bool said = false;
    for (const auto &e : d.history())
        if (e.version == 2 && e.event == "rolled-back" && e.reason.find("revision 2 can no longer be read") != std::string::npos)
            said = true;
    CHECK(said);
}

TEST_CASE("a committed revision the parser refuses and no previous: nothing runs, and a new apply goes ahead") {
    Installed d({1});
    make_unreadable(d, 1);
    FakeApps apps(d.apps_file);
    ota::Updater u(d.root, apps);
    auto st = u.resume();
    REQUIRE_FALSE(st);
    CHECK(st.error().message().find("revision 1 can no longer be read") != std::string::npos);
    CHECK(apps.running.empty());
    auto v = u.apply(document(2));
    INFO((v ? std::string() : v.error().message()));
    REQUIRE(v);
    REQUIRE(u.commit());
    CHECK(same(d.state(), committed(2, 1, 2)));
    CHECK(apps.running == ids_of({2}));
}

// Found by the power-cut campaign (qemu-tests/ab_campaign.py): the new slot
// booted on its last attempt (power cuts during its first boots, before
// berth ran, each spent one), and the first system update failing in the
// slot it tried.

TEST_CASE("a new system that comes up on its last boot attempt is tried and committed, not taken for a slot marked bad") {
    SysRig rig;
    auto &[tmpl, run, sys, apps] = rig;
    {
        auto u = rig.started();
        REQUIRE(u->apply(system_document(3, 2)));
        REQUIRE(u->reboot_requested());
    }
    // Three boots of A: the power is cut during the first two, before berth starts.
    for (int i = 0; i < 3; i++) sys.reboot();
    REQUIRE(sys.slot == "A");
    REQUIRE(sys.boot->status()->slot("A")->left == 0);
    ota::Updater u(run.root, apps, {}, &sys);
    auto st = u.resume();
    INFO((st ? std::string() : st.error().message()));
    REQUIRE(st);
    CHECK(!u.reboot_requested());
    CHECK(u.state().trying == 3u);
    CHECK(u.state().system.failed.empty());
    REQUIRE(u.commit());
    CHECK(u.state().system.version == 2u);
    CHECK(u.state().system.slot == "A");
    auto boot = sys.boot->status();
    REQUIRE(boot);
    CHECK(boot->next == "A");
    CHECK(boot->slot("A")->left == 3);
}

TEST_CASE("when the first system update fails in the slot it tried, a restart there keeps that slot bad and reboots to the old one") {
    ScratchDir dir;
    util::DeviceRoot root(dir.path + "/root");
    const std::string apps_file = dir.path + "/apps";
    ship(dir.path, root, apps_file);
    TestSystem sys(dir.path);
    FakeApps apps(apps_file);
    {
        ota::Updater u(root, apps, {}, &sys);
        REQUIRE(u.resume());
        REQUIRE(u.apply(system_document(2, 1)));
        REQUIRE(u.reboot_requested());
    }
    sys.reboot();
    REQUIRE(sys.slot == "B");
    {
        ota::Updater u(root, apps, {}, &sys);
        REQUIRE(u.resume());
        REQUIRE(u.state().trying == 2u);
        REQUIRE(u.rollback("web: health check failed 3 times"));
        REQUIRE(u.reboot_requested());
    }
    // The daemon restarts in B before the reboot happens.
    ota::Updater u(root, apps, {}, &sys);
    REQUIRE(u.resume());
    auto boot = sys.boot->status();
    REQUIRE(boot);
    CHECK(boot->slot("B")->health == ota::SlotHealth::Bad);
    CHECK(boot->next == "A");
    CHECK(u.reboot_requested());
    CHECK(u.state().current == 1u);
    CHECK(u.state().system.failed == std::vector<uint64_t>{1});
}

// ---- trial boots: the counter decision --------------------------------------
//
// Each boot of the tried slot that reaches berth is counted in state.json
// and gets its bootloader attempt back, up to ota::kTrialBootsMax; boots
// that never reach berth spend the bootloader's attempts as before.

namespace {

/// Revision 3 with system 2 applied on the rig; the reboot into slot A done.
void into_trial(SysRig &rig) {
    {
        auto u = rig.started();
        REQUIRE(u->apply(system_document(3, 2)));
        REQUIRE(u->reboot_requested());
    }
    rig.sys.reboot();
    REQUIRE(rig.sys.slot == "A");
}

/// A start in the booted slot: resume(), its state afterwards.
ota::UpdaterState start_once(SysRig &rig, bool *reboot = nullptr) {
    ota::Updater u(rig.run.root, rig.apps, {}, &rig.sys);
    auto st = u.resume();
    INFO((st ? std::string() : st.error().message()));
    REQUIRE(st);
    if (reboot) *reboot = u.reboot_requested().has_value();
    return u.state();
}

}  // namespace

TEST_CASE("power cuts after berth started in the tried slot do not use up its boot counter; the update is committed") {
    SysRig rig;
    into_trial(rig);
    // Five power cuts, each after berth started in A and before the commit:
    // more than the bootloader's three attempts.
    for (int i = 0; i < 5; i++) {
        REQUIRE(start_once(rig).system.trying);
        rig.sys.reboot();
        REQUIRE(rig.sys.slot == "A");
    }
    ota::Updater u(rig.run.root, rig.apps, {}, &rig.sys);
    REQUIRE(u.resume());
    REQUIRE(u.state().trying == 3u);
    CHECK(u.state().system.trying->boots == 6u);
    REQUIRE(u.commit());
    CHECK(u.state().system.version == 2u);
    CHECK(u.state().system.slot == "A");
    CHECK(u.state().system.failed.empty());
}

TEST_CASE("a trial boot gives its bootloader attempt back once it is counted in the state") {
    SysRig rig;
    into_trial(rig);
    REQUIRE(rig.sys.boot->status()->slot("A")->left == 2);
    auto st = start_once(rig);
    CHECK(st.system.trying->boots == 1u);
    CHECK(st.system.trying->counted_boot == rig.sys.boot_id());
    auto boot = rig.sys.boot->status();
    REQUIRE(boot);
    CHECK(boot->slot("A")->left == 3);
    CHECK(boot->next == "A");
    CHECK(boot->trying == "A");
    auto h = ota::read_history(rig.run.root);
    REQUIRE(h);
    REQUIRE(!h->empty());
    CHECK(h->back().event == "trial-boot");
    CHECK(h->back().reason == "boot 1 of at most 8 of system 2 in slot A reached berth: its boot attempt given back");
}

TEST_CASE("a daemon restart within one trial boot is not counted as another boot") {
    SysRig rig;
    into_trial(rig);
    CHECK(start_once(rig).system.trying->boots == 1u);
    CHECK(start_once(rig).system.trying->boots == 1u);
    rig.sys.reboot();
    CHECK(start_once(rig).system.trying->boots == 2u);
}

TEST_CASE("a new system whose berth starts but never passes its checks falls back after the bounded number of trial boots") {
    SysRig rig;
    into_trial(rig);
    uint32_t trial_boots = 0;
    bool reboot = false;
    for (int i = 0; i < 40 && !reboot; i++) {
        REQUIRE(rig.sys.slot == "A");
        auto st = start_once(rig, &reboot);
        if (reboot) break;  // given up: back to the old slot
        trial_boots++;
        REQUIRE(st.system.trying);
        CHECK(st.system.trying->boots == trial_boots);
        rig.sys.reboot();  // berth hangs, the watchdog resets the box
    }
    CHECK(trial_boots == ota::kTrialBootsMax);
    REQUIRE(reboot);
    rig.sys.reboot();
    CHECK(rig.sys.slot == "B");
    auto st = start_once(rig);
    CHECK(!st.system.trying);
    CHECK(!st.trying);
    CHECK(st.current == 2u);
    CHECK(st.system.version == 1u);
    CHECK(st.system.slot == "B");
    CHECK(st.system.failed == std::vector<uint64_t>{2});
    auto h = ota::read_history(rig.run.root);
    REQUIRE(h);
    bool said = false;
    for (const auto &e : *h)
        said = said || (e.event == "rolled-back" &&
                        e.reason.find("slot A booted 9 times on trial without passing its checks (8 at most)") !=
                            std::string::npos);
    CHECK(said);
}

TEST_CASE("boots of the tried slot that never reach berth still use up its counter after an attempt was given back") {
    SysRig rig;
    into_trial(rig);
    REQUIRE(start_once(rig).system.trying->boots == 1u);
    // The new system stops coming up (say its berth no longer starts): the
    // three attempts given back run out, then the old slot boots.
    for (int i = 0; i < 3; i++) {
        rig.sys.reboot();
        REQUIRE(rig.sys.slot == "A");
    }
    rig.sys.reboot();
    CHECK(rig.sys.slot == "B");
    auto st = start_once(rig);
    CHECK(!st.system.trying);
    CHECK(st.current == 2u);
    CHECK(st.system.failed == std::vector<uint64_t>{2});
}
