// Container state on disk: <root>/<id>/state.json (root: --root, default
// /run/berth), written only through util::atomic_write_file, and a per-
// container lock (flock on the state directory).
//
// The stored status is a hint: refresh_status() derives the real one from the
// init pid (alive, and the same process: its start time from /proc/<pid>/stat
// must match, so a reused pid is not mistaken for the container), the exec
// fifo (present while the init waits for `start`) and the stored `paused`.
//
// Used by the ops commands (exec, ps, pause, resume, update, hooks): load_state,
// save_state, refresh_status, lock_container, oci_state_json.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace rt {

enum class Status { Creating, Created, Running, Stopped, Paused };
const char *status_name(Status s);

inline constexpr const char *kDefaultStateRoot = "/run/berth";
inline constexpr const char *kStateFile = "state.json";
inline constexpr const char *kExecFifo = "exec.fifo";
/// State, hooks and pid files are renamed into place but not fsynced: they
/// live on tmpfs (/run) and describe processes a power cut ends anyway.
inline constexpr util::Durability kStateDurability = util::Durability::ProcessCrash;

struct State {
    std::string id;
    pid_t pid = 0;               ///< the init, in the host's pid namespace; 0 before clone
    uint64_t pid_start_time = 0; ///< field 22 of /proc/<pid>/stat
    std::string bundle;          ///< absolute
    std::string rootfs;          ///< absolute
    std::string config_path;     ///< <bundle>/config.json
    std::string created;         ///< RFC 3339, UTC, nanoseconds
    Status status = Status::Creating;
    std::vector<std::pair<std::string, std::string>> annotations;
    std::string cgroup_path;     ///< the Manager's path ("/berth/web")
    std::string cgroup_mode;     ///< "v1", "v2" or "hybrid"
    bool systemd_cgroup = false;
    /// The init's namespaces: (name, path), e.g. ("net", "/proc/123/ns/net")
    /// or the path the spec joined. Only namespaces the spec lists.
    std::vector<std::pair<std::string, std::string>> namespaces;
    bool terminal = false;
    uint32_t owner_uid = 0;      ///< the uid that created it (runc's "owner")
};

/// Refuses ids that are empty, too long, or contain anything but [A-Za-z0-9_+.-].
util::Status validate_id(std::string_view id);
/// <root>/<id>
std::string state_dir(const std::string &root, const std::string &id);

util::Result<State> load_state(const std::string &root, const std::string &id);
/// Writes <root>/<id>/state.json atomically; the directory must exist.
util::Status save_state(const std::string &root, const State &st);
/// Container ids under `root` (directories holding a state.json), sorted.
util::Result<std::vector<std::string>> list_ids(const std::string &root);

/// Field 22 (starttime) of /proc/<pid>/stat; error when the process is gone.
util::Result<uint64_t> process_start_time(pid_t pid);
/// True when st.pid is the same process that was started (pid and start time).
bool init_alive(const State &st);
/// The live status (see the file comment). Does not write anything.
Status refresh_status(const std::string &root, const State &st);

/// The runtime-spec state JSON, as `state` prints it and hooks read it:
/// ociVersion, id, status, pid, bundle, annotations (+ rootfs, created, owner as runc).
util::json::Value oci_state_json(const State &st, Status status);

/// An exclusive flock on <root>/<id> (the directory). Released on destruction.
class ContainerLock {
public:
    ContainerLock() = default;
    explicit ContainerLock(util::UniqueFd fd) : fd_(std::move(fd)) {}

private:
    util::UniqueFd fd_;
};
util::Result<ContainerLock> lock_container(const std::string &root, const std::string &id);


}  // namespace rt
