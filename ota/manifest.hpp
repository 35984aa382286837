// The update manifest: one JSON document describing an app revision, the
// full set of containers a device runs (docs/update-manifest.md). Parsed
// strictly: an unknown field, a wrong type or a bad value is an error naming
// the field's path ("containers[1].health.port: expected an integer 1-65535").
// The document is kept as the exact bytes received (a signature or a TUF
// target hash covers those bytes; nothing is re-serialized).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace ota {

struct RestartPolicy {
    enum Kind { No, OnFailure, Always, UnlessStopped };
    Kind kind = No;
    int max_retries = 0;  ///< on-failure:N; 0: no limit
};

enum class HealthKind { None, Exec, Http, Tcp, Ready };

struct HealthSpec {
    HealthKind kind = HealthKind::None;
    std::vector<std::string> command;  ///< exec: argv run inside the container (as `berth exec`)
    uint16_t port = 0;                 ///< http, tcp: on 127.0.0.1 in the container's network namespace
    std::string path = "/";            ///< http: the GET's path; 2xx and 3xx pass
    int64_t interval_ms = 10000;
    int64_t timeout_ms = 5000;
    int64_t start_period_ms = 0;  ///< failures in this time after a start do not count
    int retries = 3;              ///< consecutive failures that make the container unhealthy
};

enum class NetworkMode { Private, Host, None };  ///< private: own netns with loopback up; none: own netns, nothing up

struct DeviceRule {
    std::string path;                 ///< a host device node, e.g. /dev/ttyUSB0
    std::string permissions = "rwm";
};

struct VolumeMount {
    std::string name;  ///< <device root>/volumes/<name>; never touched by an update or a rollback
    std::string path;  ///< absolute path in the container
    bool readonly = false;
};

struct ContainerSpec {
    std::string name;   ///< unique in the revision: [a-z0-9][a-z0-9_.-]*, at most 63
    std::string image;  ///< a reference pinned by digest (repo@sha256:...); a tag alone is refused
    std::vector<std::string> args;  ///< replaces the image's Cmd (its Entrypoint stays) when not empty
    std::vector<std::string> env;   ///< KEY=VALUE, over the image's
    std::string workdir;            ///< empty: the image's
    std::string user;               ///< empty: the image's
    std::vector<std::string> depends_on;  ///< names in the same revision; no cycles
    RestartPolicy restart;
    HealthSpec health;
    uint64_t memory_bytes = 0;  ///< 0: no limit
    uint64_t cpu_millis = 0;    ///< "cpus": 0.5 -> 500; 0: no limit
    int64_t pids = 0;           ///< 0: the default (2048)
    std::vector<DeviceRule> devices;
    std::vector<std::string> capabilities;  ///< beyond the default set, "CAP_NET_ADMIN"
    NetworkMode network = NetworkMode::Private;
    std::vector<VolumeMount> volumes;
    int stop_signal = 15;          ///< SIGTERM
    int64_t stop_grace_ms = 10000;  ///< then SIGKILL
    size_t index = 0;               ///< its position in the document's "containers", for error paths ("containers[1]")
};

/// The optional `system` part: a root filesystem image for the inactive
/// slot (docs/update-manifest.md, "system").
struct SystemSpec {
    std::string image;     ///< the blob: registry/repository@sha256:<64 hex>
    uint64_t size = 0;     ///< its size in bytes
    uint64_t version = 0;  ///< the system's version; only grows (> 0)
    uint64_t min_version = 0;           ///< the installed system version must be at least this...
    uint64_t max_version = UINT64_MAX;  ///< ...and at most this
    std::string fstype;    ///< "squashfs", "erofs" or "ext4"
};

struct Revision {
    uint64_t version = 0;  ///< only grows; > 0
    std::string name;
    int64_t health_window_ms = 120000;  ///< TRYING: every check must pass within this, else rollback
    /// In start order: every container after those it depends on (a stable
    /// topological order of the document's order). Stop order is the reverse.
    std::vector<ContainerSpec> containers;
    std::optional<SystemSpec> system;
    std::string digest;  ///< "sha256:<hex>" of the document's bytes
};

/// Parses and checks a manifest document.
util::Result<Revision> parse_revision(std::string_view document);

/// The runtime id of a container of a revision: "<name>.r<version>", so the
/// bundles of two revisions never collide and a rollback finds the old ones.
std::string container_id(const Revision &rev, const ContainerSpec &c);

/// What a board lets an update manifest ask for (board.json "apps",
/// docs/board.md). An empty profile (no board file) allows no device and no
/// capability beyond the default set.
struct AppLimits {
    std::vector<std::string> devices;       ///< fnmatch patterns: "/dev/ttyUSB*"
    std::vector<std::string> capabilities;  ///< "CAP_NET_ADMIN"
};
/// Reads the "apps" part of a board profile (strictly; the other top-level
/// fields are not read yet). A missing file is an error with errno ENOENT.
util::Result<AppLimits> load_app_limits(const std::string &board_json_path);
/// Refuses a revision asking for a device or capability `limits` does not
/// allow (the default capability set is always allowed), naming the field
/// ("containers[0].devices[1]: /dev/mem is not allowed by the board profile").
util::Status check_limits(const Revision &rev, const AppLimits &limits);

}  // namespace ota
