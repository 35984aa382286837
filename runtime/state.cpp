// Container state files and locks; see state.hpp.
#include "runtime/state.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/flock.hpp"
#include "util/strings.hpp"

namespace rt {
namespace {

using util::Error;
namespace json = util::json;

constexpr Status kAllStatus[] = {Status::Creating, Status::Created, Status::Running, Status::Stopped, Status::Paused};

json::Value pairs_to_json(const std::vector<std::pair<std::string, std::string>> &v) {
    json::Value o = json::Value::object();
    for (const auto &[k, val] : v) o[k] = val;
    return o;
}

util::Result<std::vector<std::pair<std::string, std::string>>> pairs_from_json(const json::Value &doc,
                                                                              std::string_view key) {
    std::vector<std::pair<std::string, std::string>> out;
    const json::Value *o = TRY(json::opt_object(doc, key, ""));
    if (!o) return out;
    for (auto it = o->begin(); it != o->end(); ++it) {
        if (!it.value().is_string()) return Error::msg(util::cat(util::quote(key), ": expected strings"));
        out.emplace_back(it.key(), it.value().get<std::string>());
    }
    return out;
}

}  // namespace

const char *status_name(Status s) {
    switch (s) {
    case Status::Creating: return "creating";
    case Status::Created: return "created";
    case Status::Running: return "running";
    case Status::Stopped: return "stopped";
    case Status::Paused: return "paused";
    }
    return "unknown";
}

util::Status validate_id(std::string_view id) {
    if (id.empty()) return Error::msg("container id is empty");
    if (id.size() > 1024) return Error::msg("container id is too long");
    if (id == "." || id == "..") return Error::msg(util::cat("invalid container id ", util::quote(id)));
    for (char c : id) {
        bool okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                   c == '.' || c == '+';
        if (!okc) return Error::msg(util::cat("invalid container id ", util::quote(id), " (allowed: A-Z a-z 0-9 _ + - .)"));
    }
    return util::ok();
}

std::string state_dir(const std::string &root, const std::string &id) { return util::path_join(root, id); }

util::Result<State> load_state(const std::string &root, const std::string &id) {
    TRY(validate_id(id));
    std::string path = util::path_join(state_dir(root, id), kStateFile);
    auto text = util::read_file(path, 4 << 20);
    if (!text) {
        if (text.error().code == ENOENT)
            return Error::with_code(ENOENT, util::cat("container ", util::quote(id), " does not exist"));
        return std::move(text).error();
    }
    json::Value doc = TRY(json::parse(*text, path));
    TRY(json::expect_object(doc, path));
    State st;
    st.id = TRY(json::req_string(doc, "id", ""));
    st.pid = static_cast<pid_t>(TRY(json::opt_int(doc, "pid", "")).value_or(0));
    st.pid_start_time = TRY(json::opt_uint(doc, "pidStartTime", "")).value_or(0);
    st.bundle = TRY(json::opt_string(doc, "bundle", "")).value_or("");
    st.rootfs = TRY(json::opt_string(doc, "rootfs", "")).value_or("");
    st.config_path = TRY(json::opt_string(doc, "configPath", "")).value_or("");
    st.created = TRY(json::opt_string(doc, "created", "")).value_or("");
    std::string status = TRY(json::opt_string(doc, "status", "")).value_or("stopped");
    st.status = Status::Stopped;
    for (auto s : kAllStatus)
        if (status == status_name(s)) st.status = s;
    st.annotations = TRY(pairs_from_json(doc, "annotations"));
    st.cgroup_path = TRY(json::opt_string(doc, "cgroupPath", "")).value_or("");
    st.cgroup_mode = TRY(json::opt_string(doc, "cgroupMode", "")).value_or("");
    st.systemd_cgroup = TRY(json::opt_bool(doc, "systemdCgroup", "")).value_or(false);
    st.namespaces = TRY(pairs_from_json(doc, "namespaces"));
    st.terminal = TRY(json::opt_bool(doc, "terminal", "")).value_or(false);
    st.owner_uid = static_cast<uint32_t>(TRY(json::opt_uint(doc, "ownerUid", "")).value_or(0));
    return st;
}

util::Status save_state(const std::string &root, const State &st) {
    json::Value doc = json::Value::object();
    doc["id"] = st.id;
    doc["pid"] = st.pid;
    doc["pidStartTime"] = st.pid_start_time;
    doc["bundle"] = st.bundle;
    doc["rootfs"] = st.rootfs;
    doc["configPath"] = st.config_path;
    doc["created"] = st.created;
    doc["status"] = status_name(st.status);
    doc["annotations"] = pairs_to_json(st.annotations);
    doc["cgroupPath"] = st.cgroup_path;
    doc["cgroupMode"] = st.cgroup_mode;
    doc["systemdCgroup"] = st.systemd_cgroup;
    doc["namespaces"] = pairs_to_json(st.namespaces);
    doc["terminal"] = st.terminal;
    doc["ownerUid"] = st.owner_uid;
    // Callers hold the container's lock: one spare per state dir.
    auto dir = TRY(util::open_file(state_dir(root, st.id), O_RDONLY | O_DIRECTORY));
    return util::rewrite_file_at(dir.get(), kStateFile, util::cat(util::kTempPrefix, kStateFile), json::dump(doc) + "\n", 0600)
        .context(state_dir(root, st.id));
}

util::Result<std::vector<std::string>> list_ids(const std::string &root) {
    std::vector<std::string> out;
    auto d = util::Dir::open(root);
    if (!d) {
        if (d.error().code == ENOENT) return out;
        return std::move(d).error();
    }
    while (const dirent *e = TRY(d->next())) {
        std::string name = e->d_name;
        if (name.starts_with(".") || !validate_id(name)) continue;
        struct stat sb;
        if (::fstatat(d->fd(), util::path_join(name, kStateFile).c_str(), &sb, AT_SYMLINK_NOFOLLOW) == 0)
            out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

util::Result<uint64_t> process_start_time(pid_t pid) {
    auto text = util::read_file(util::cat("/proc/", pid, "/stat"), 4096);
    if (!text) return std::move(text).error();
    // The comm field may hold spaces and parentheses: skip to the last ')'.
    auto close = text->rfind(')');
    if (close == std::string::npos) return Error::msg(util::cat("/proc/", pid, "/stat: malformed"));
    auto fields = util::split(std::string_view(*text).substr(close + 2), ' ');
    // fields[0] is field 3 (state); starttime is field 22.
    if (fields.size() < 20) return Error::msg(util::cat("/proc/", pid, "/stat: malformed"));
    if (fields[0] == "Z" || fields[0] == "X") return Error::with_code(ESRCH, util::cat("pid ", pid, " is a zombie"));
    auto v = util::parse_int<uint64_t>(fields[19]);
    if (!v) return Error::msg(util::cat("/proc/", pid, "/stat: malformed start time"));
    return *v;
}

bool init_alive(const State &st) {
    if (st.pid <= 0) return false;
    auto t = process_start_time(st.pid);
    return t && *t == st.pid_start_time;
}

Status refresh_status(const std::string &root, const State &st) {
    if (st.status == Status::Creating && st.pid <= 0) return Status::Creating;
    if (!init_alive(st)) return Status::Stopped;
    struct stat sb;
    if (::stat(util::path_join(state_dir(root, st.id), kExecFifo).c_str(), &sb) == 0) return Status::Created;
    if (st.status == Status::Paused) return Status::Paused;
    return Status::Running;
}

json::Value oci_state_json(const State &st, Status status) {
    json::Value v = json::Value::object();
    v["ociVersion"] = "1.2.0";
    v["id"] = st.id;
    v["pid"] = status == Status::Stopped ? 0 : st.pid;
    v["status"] = status_name(status);
    v["bundle"] = st.bundle;
    v["rootfs"] = st.rootfs;
    v["created"] = st.created;
    if (!st.annotations.empty()) v["annotations"] = pairs_to_json(st.annotations);
    v["owner"] = "";
    return v;
}

util::Result<ContainerLock> lock_container(const std::string &root, const std::string &id) {
    TRY(validate_id(id));
    auto fd = TRY(util::open_file(state_dir(root, id), O_RDONLY | O_DIRECTORY));
    TRY_CTX(util::flock_fd(fd.get(), LOCK_EX), util::cat("lock container ", util::quote(id)));
    return ContainerLock(std::move(fd));
}


}  // namespace rt
