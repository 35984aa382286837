// File access inside a cgroup directory and the tree operations every backend
// shares: listing pids through the descendants, signalling them, waiting for
// the cgroup to empty, freezing (v1 freezer.state and v2 cgroup.freeze) and
// removing a cgroup tree deepest first; and the two halves of SelfJoin
// (cgroup.hpp): the init writing "0" to the v1 `tasks` files the runtime
// opened for it, the runtime moving it into cgroup2 when clone3 could not.
//
// cgroupfs files take one value per write(2), so write_value never splits a
// write; files are opened with O_TRUNC so the same code also works on the
// plain files of a test directory.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "runtime/cgroup_backend.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace rt::cgroup {

using util::cat;
using util::Error;
using util::quote;
using Clock = std::chrono::steady_clock;

util::Status write_value(const std::string &dir, std::string_view file, std::string_view value) {
    std::string path = util::path_join(dir, file);
    int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) return Error::from_errno(cat("open ", quote(path)));
    util::UniqueFd guard(fd);
    ssize_t n;
    do {
        n = ::write(fd, value.data(), value.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Error::from_errno(cat("write ", quote(value), " to ", quote(path)));
    if (static_cast<size_t>(n) != value.size())
        return Error::with_code(EIO, cat("write ", quote(value), " to ", quote(path), ": short write"));
    return util::ok();
}

util::Result<std::string> read_value(const std::string &dir, std::string_view file) {
    std::string text = TRY(util::read_file(util::path_join(dir, file), 1 << 20));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

util::Result<uint64_t> read_uint(const std::string &dir, std::string_view file) {
    std::string text = TRY(read_value(dir, file));
    if (text == "max") return UINT64_MAX;
    auto v = util::parse_int<uint64_t>(text);
    if (!v) return Error::with_code(EINVAL, cat(quote(util::path_join(dir, file)), ": not a number: ", quote(text)));
    return *v;
}

util::Result<std::optional<uint64_t>> read_keyed(const std::string &dir, std::string_view file, std::string_view key) {
    std::string text = TRY(read_value(dir, file));
    for (const auto &line : util::split(text, '\n')) {
        auto sp = line.find(' ');
        if (sp == std::string::npos || std::string_view(line).substr(0, sp) != key) continue;
        auto v = util::parse_int<uint64_t>(util::trim(std::string_view(line).substr(sp + 1)));
        if (!v) return Error::with_code(EINVAL, cat(quote(util::path_join(dir, file)), ": bad value for ", quote(key)));
        return std::optional<uint64_t>(*v);
    }
    return std::optional<uint64_t>();
}

bool has_file(const std::string &dir, std::string_view file) {
    return ::access(util::path_join(dir, file).c_str(), F_OK) == 0;
}

namespace {

/// The names of the child cgroups of `dir` (its subdirectories).
util::Result<std::vector<std::string>> child_dirs(const std::string &dir) {
    std::vector<std::string> out;
    auto d = util::Dir::open(dir);
    if (!d) {
        if (d.error().code == ENOENT) return out;
        return std::move(d).error();
    }
    while (const dirent *e = TRY(d->next())) {
        bool is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st {};
            is_dir = ::fstatat(d->fd(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        if (is_dir) out.emplace_back(e->d_name);
    }
    return out;
}

util::Status collect_pids(const std::string &dir, std::vector<pid_t> &out) {
    auto text = util::read_file(util::path_join(dir, "cgroup.procs"), 1 << 24);
    if (!text) {
        if (text.error().code == ENOENT) return util::ok();  // gone meanwhile, or not a cgroup
        return std::move(text).error();
    }
    for (const auto &line : util::split(*text, '\n')) {
        auto t = util::trim(line);
        if (t.empty()) continue;
        if (auto pid = util::parse_int<pid_t>(t)) out.push_back(*pid);
    }
    for (const auto &child : TRY(child_dirs(dir))) TRY(collect_pids(util::path_join(dir, child), out));
    return util::ok();
}

void pause_briefly(int round) {
    // 1 ms for the first rounds, then 10 ms: most cgroups settle at once.
    std::this_thread::sleep_for(std::chrono::milliseconds(round < 20 ? 1 : 10));
}

}  // namespace

util::Result<std::vector<pid_t>> read_pids_recursive(const std::string &dir) {
    std::vector<pid_t> out;
    TRY_CTX(collect_pids(dir, out), cat("list the processes of ", quote(dir)));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

util::Status signal_all(const std::string &dir, int sig) {
    for (pid_t pid : TRY(read_pids_recursive(dir))) {
        if (::kill(pid, sig) < 0 && errno != ESRCH) return Error::from_errno(cat("kill ", pid));
    }
    return util::ok();
}

util::Status wait_empty(const std::string &dir, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (int round = 0;; ++round) {
        auto pids = TRY(read_pids_recursive(dir));
        if (pids.empty()) return util::ok();
        if (Clock::now() >= deadline)
            return Error::with_code(EBUSY, cat(quote(dir), ": ", pids.size(), " processes still inside (first: ",
                                               pids.front(), ")"));
        pause_briefly(round);
    }
}

util::Status remove_cgroup_dir(const std::string &dir, std::chrono::milliseconds timeout) {
    for (const auto &child : TRY(child_dirs(dir))) TRY(remove_cgroup_dir(util::path_join(dir, child), timeout));
    auto deadline = Clock::now() + timeout;
    for (int round = 0;; ++round) {
        if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return util::ok();
        if (errno != EBUSY || Clock::now() >= deadline) return Error::from_errno(cat("remove cgroup ", quote(dir)));
        pause_briefly(round);
    }
}

util::Status freeze_v1(const std::string &dir, bool freeze, std::chrono::milliseconds timeout) {
    const char *want = freeze ? "FROZEN" : "THAWED";
    auto deadline = Clock::now() + timeout;
    for (int round = 0;; ++round) {
        // Re-writing FROZEN retries the freeze of tasks that were busy (runc does the same).
        if (round % 10 == 0) TRY(write_value(dir, "freezer.state", want));
        std::string state = TRY(read_value(dir, "freezer.state"));
        if (state == want) return util::ok();
        if (Clock::now() >= deadline) {
            if (freeze) (void)write_value(dir, "freezer.state", "THAWED");
            return Error::with_code(ETIMEDOUT, cat(quote(dir), ": freezer state stays ", quote(state), ", not ", want));
        }
        pause_briefly(round);
    }
}

util::Status freeze_v2(const std::string &dir, bool freeze, std::chrono::milliseconds timeout) {
    TRY(write_value(dir, "cgroup.freeze", freeze ? "1" : "0"));
    auto deadline = Clock::now() + timeout;
    for (int round = 0;; ++round) {
        auto frozen = TRY(read_keyed(dir, "cgroup.events", "frozen"));
        if (!frozen) return util::ok();  // no cgroup.events: nothing to wait for
        if ((*frozen == 1) == freeze) return util::ok();
        if (Clock::now() >= deadline) {
            if (freeze) (void)write_value(dir, "cgroup.freeze", "0");
            return Error::with_code(ETIMEDOUT, cat(quote(dir), ": cgroup did not become ", freeze ? "frozen" : "thawed"));
        }
        pause_briefly(round);
    }
}

util::Status join_self_v1(SelfJoin &j) {
    for (auto &[dir, fd] : j.v1_tasks) {
        ssize_t n;
        do n = ::write(fd.get(), "0", 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) return Error::from_errno(cat("join cgroup ", quote(dir)));
        fd.reset();
    }
    j.v1_tasks.clear();
    return util::ok();
}

util::Status join_v2(const SelfJoin &j, pid_t pid) {
    if (j.v2_path.empty()) return util::ok();
    return write_value(j.v2_path, "cgroup.procs", cat(pid)).context(cat("move pid ", pid, " into cgroup"));
}

}  // namespace rt::cgroup
