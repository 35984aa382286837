// A test-only driver of the RUN-step runner (src/cmd/build_run.cpp), for
// the build_run_*_test.py system tests: one build::RunRequest from the
// command line, run by make_build_runner's runner.
//
//   build_run_step --state DIR [--out FILE] [--platform P] [--user U]
//                  [--cwd DIR] [--env K=V]... [--no-network]
//                  [--lower DIR]... --upper DIR --work DIR -- ARGV...
//   build_run_step --state DIR --sweep     (make a runner, nothing else)
//
// Exits 0 when the step succeeded, 1 with "error: MESSAGE" on stderr when
// not. Last, it prints "mounts left: N" on stderr: the mounts of its own
// mount namespace under the state directory (the runner's namespace is
// private, so only it can see them).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "src/cmd/build_run.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace {

int mounts_under(const std::string &dir) {
    auto info = util::read_file("/proc/self/mountinfo", 64 << 20);
    if (!info) return -1;
    int n = 0;
    for (const auto &line : util::split(*info, '\n'))
        if (line.find(" " + dir + "/") != std::string::npos) n++;
    return n;
}

}  // namespace

int main(int argc, char **argv) {
    build::RunRequest req;
    std::string state, out;
    bool sweep = false;
    int i = 1;
    for (; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                fprintf(stderr, "error: %s needs a value\n", a.c_str());
                exit(2);
            }
            return argv[++i];
        };
        if (a == "--") {
            i++;
            break;
        }
        if (a == "--state") state = next();
        else if (a == "--out") out = next();
        else if (a == "--platform") req.platform = next();
        else if (a == "--user") req.user = next();
        else if (a == "--cwd") req.cwd = next();
        else if (a == "--env") req.env.push_back(next());
        else if (a == "--no-network") req.host_network = false;
        else if (a == "--lower") req.lower_dirs.push_back(next());
        else if (a == "--upper") req.upper_dir = next();
        else if (a == "--work") req.work_dir = next();
        else if (a == "--sweep") sweep = true;
        else {
            fprintf(stderr, "error: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    for (; i < argc; i++) req.argv.push_back(argv[i]);
    if (state.empty()) {
        fprintf(stderr, "error: --state is required\n");
        return 2;
    }
    util::UniqueFd out_fd;
    if (!out.empty()) {
        auto f = util::open_file(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (!f) {
            fprintf(stderr, "error: %s\n", f.error().message().c_str());
            return 1;
        }
        out_fd = std::move(*f);
        req.stdout_fd = out_fd.get();
    }
    auto runner = cmd::make_build_runner(state);
    int rc = 0;
    if (!sweep) {
        auto r = runner->run(req);
        if (!r) {
            fprintf(stderr, "error: %s\n", r.error().message().c_str());
            rc = 1;
        }
    }
    fprintf(stderr, "mounts left: %d\n", mounts_under(state));
    return rc;
}
