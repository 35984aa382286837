// Failpoints; see failpoint.hpp.
#include "util/failpoint.hpp"

#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include "util/strings.hpp"

namespace util {
namespace {

struct Armed {
    std::string name;
    FailAction action;
    int nth;   ///< fire on this hit only; 0 = always
    int hits;  ///< how often the point was reached
};

struct Table {
    std::vector<Armed> points;
    bool loaded = false;
};

Table &table() {
    static Table t;
    if (!t.loaded) {
        t.loaded = true;
        const char *env = test_hooks_compiled() ? getenv("BERTH_FAILPOINTS") : nullptr;
        if (env && *env) {
            for (const auto &item : split(env, ',')) {
                auto eq = item.find('=');
                if (eq == std::string::npos) continue;
                std::string name = item.substr(0, eq);
                std::string act = item.substr(eq + 1);
                int nth = 0;
                if (auto at = act.find('@'); at != std::string::npos) {
                    nth = parse_int<int>(act.substr(at + 1)).value_or(0);
                    act.resize(at);
                }
                t.points.push_back({name, act == "crash" ? FailAction::Crash : FailAction::Error, nth, 0});
            }
        }
    }
    return t;
}

}  // namespace

Status failpoint(std::string_view name) {
    for (auto &p : table().points) {
        if (p.name != name) continue;
        p.hits++;
        if (p.nth != 0 && p.hits != p.nth) continue;
        if (p.action == FailAction::Crash) {
            raise(SIGKILL);
            _Exit(137);
        }
        return Error::with_code(EIO, cat("failpoint ", quote(name)));
    }
    return ok();
}

void failpoint_arm(std::string_view name, FailAction action, int nth) {
    table().points.push_back({std::string(name), action, nth, 0});
}

void failpoint_clear() { table().points.clear(); }

bool test_hooks_compiled() {
#ifdef BERTH_TEST_HOOKS
    return true;
#else
    return false;
#endif
}

const char *test_hook_env(const char *name) {
#ifdef BERTH_TEST_HOOKS
    return ::getenv(name);
#else
    (void)name;
    return nullptr;
#endif
}

}  // namespace util
