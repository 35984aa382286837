// The v2 device filter. The program is run through a small interpreter of the
// instructions it uses (so the rule semantics are checked without a kernel:
// last match wins, partial access, wildcards, default deny), then, as root,
// loaded into the kernel and attached to a cgroup2 directory (the unified
// mount on hybrid hosts), where a child moved into it opens devices for real.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "runtime/cgroup.hpp"
#include "runtime/cgroup_backend.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

using namespace rt::cgroup;

namespace {

/// Runs `prog` on a bpf_cgroup_dev_ctx; returns r0. Supports what the builder emits.
int run(const std::vector<bpf_insn> &prog, char type, int access, uint32_t major, uint32_t minor) {
    uint32_t ctx[3] = {static_cast<uint32_t>((access << 16) | (type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR)),
                       major, minor};
    uint64_t reg[11] = {};
    for (size_t pc = 0; pc < prog.size(); ++pc) {
        const bpf_insn &i = prog[pc];
        uint64_t src = (BPF_SRC(i.code) == BPF_X) ? reg[i.src_reg] : static_cast<uint64_t>(static_cast<int64_t>(i.imm));
        switch (BPF_CLASS(i.code)) {
            case BPF_LDX: reg[i.dst_reg] = ctx[i.off / 4]; break;
            case BPF_ALU: {
                uint32_t d = static_cast<uint32_t>(reg[i.dst_reg]), s = static_cast<uint32_t>(src);
                if (BPF_OP(i.code) == BPF_AND) d &= s;
                else if (BPF_OP(i.code) == BPF_RSH) d >>= s;
                else if (BPF_OP(i.code) == BPF_MOV) d = s;
                else FAIL("unexpected alu op");
                reg[i.dst_reg] = d;
                break;
            }
            case BPF_ALU64:
                REQUIRE(BPF_OP(i.code) == BPF_MOV);
                reg[i.dst_reg] = src;
                break;
            case BPF_JMP:
                if (BPF_OP(i.code) == BPF_EXIT) return static_cast<int>(reg[0]);
                if (BPF_OP(i.code) == BPF_JNE ? reg[i.dst_reg] != src : reg[i.dst_reg] == src) pc += i.off;
                REQUIRE((BPF_OP(i.code) == BPF_JNE || BPF_OP(i.code) == BPF_JEQ));
                break;
            default: FAIL("unexpected instruction class");
        }
    }
    FAIL("fell off the end of the program");
    return -1;
}

constexpr int R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE, M = BPF_DEVCG_ACC_MKNOD;

}  // namespace

TEST_CASE("device program: default deny and allow-listed devices", "[cgroup]") {
    std::vector<DeviceRule> rules = {{false, 'a', -1, -1, "rwm"}};
    for (const auto &d : default_device_rules()) rules.push_back(d);
    auto prog = build_device_program(rules);
    REQUIRE(prog.size() > 10);
    CHECK(run(prog, 'c', R | W, 1, 3) == 1);    // /dev/null
    CHECK(run(prog, 'c', R, 1, 9) == 1);        // /dev/urandom
    CHECK(run(prog, 'c', R | W, 136, 4) == 1);  // /dev/pts/4
    CHECK(run(prog, 'c', M, 42, 42) == 1);      // mknod of anything
    CHECK(run(prog, 'b', M, 8, 0) == 1);
    CHECK(run(prog, 'b', R, 8, 0) == 0);        // /dev/sda
    CHECK(run(prog, 'c', R | W, 10, 200) == 0); // /dev/net/tun
    CHECK(run(prog, 'c', R | M, 1, 3) == 1);
}

TEST_CASE("device program: last match wins, partial access", "[cgroup]") {
    std::vector<DeviceRule> rules = {
        {true, 'a', -1, -1, "rwm"},
        {false, 'c', 1, 3, "w"},    // no writes to /dev/null
        {true, 'c', 1, -1, "r"},    // but read of any 1:* ...
    };
    auto prog = build_device_program(rules);
    CHECK(run(prog, 'c', R, 1, 3) == 1);      // last rule allows read
    CHECK(run(prog, 'c', W, 1, 3) == 0);      // the deny matches on w
    CHECK(run(prog, 'c', R | W, 1, 3) == 0);  // r+w: allow r does not cover w; deny w matches
    CHECK(run(prog, 'c', R | W, 1, 5) == 1);  // falls to allow-all
    CHECK(run(prog, 'b', W, 1, 3) == 1);      // the deny is for char devices only
    // A match-all rule ends the program early: nothing after it in the list is reachable.
    auto all = build_device_program({{true, 'c', 5, 0, "rwm"}, {false, 'a', -1, -1, "rwm"}});
    CHECK(run(all, 'c', R, 5, 0) == 0);
    CHECK(build_device_program({}).size() == 8);  // preamble + deny
    CHECK(run(build_device_program({}), 'c', R, 1, 3) == 0);
}

namespace {

bool skip_unless_root_cgroup2() {
    if (geteuid() != 0) {
        WARN("skipped: needs root");
        return true;
    }
    auto mode = detect_mode();
    if (!mode || *mode == Mode::V1) {
        WARN("skipped: no cgroup2 hierarchy to attach a device program to");
        return true;
    }
    return false;
}

std::string cgroup2_root() { return *detect_mode() == Mode::V2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified"; }

/// Runs a child in cgroup2 dir `cg` that tries to open `path` with `flags`; returns its errno (0: opened).
int try_open_in(const std::string &cg, const char *path, int flags) {
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char c;
        close(p[1]);
        if (read(p[0], &c, 1) != 1) _exit(200);
        int fd = open(path, flags | O_CLOEXEC);
        _exit(fd >= 0 ? 0 : (errno & 0x7f));
    }
    close(p[0]);
    auto st = write_value(cg, "cgroup.procs", util::cat(pid));
    CHECK(st.ok());
    REQUIRE(write(p[1], "x", 1) == 1);
    close(p[1]);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("device program loads, attaches and filters for real", "[root][cgroup]") {
    if (skip_unless_root_cgroup2()) return;
    std::string cg = util::cat(cgroup2_root(), "/berth-bpf-test-", getpid());
    REQUIRE(mkdir(cg.c_str(), 0755) == 0);
    auto cleanup = util::ScopeGuard([&] { (void)remove_cgroup_dir(cg); });

    std::vector<DeviceRule> rules = {{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 5, "rwm"}, {true, 'c', 1, 3, "r"}};
    auto st = apply_device_program(cg, rules);
    if (!st.ok() && (st.error().code == EPERM || st.error().code == ENOSYS || st.error().code == EINVAL)) {
        WARN("skipped: the kernel refuses cgroup device programs here: " << st.error().message());
        return;
    }
    INFO((st.ok() ? std::string() : st.error().message()));
    REQUIRE(st.ok());
    CHECK(try_open_in(cg, "/dev/zero", O_RDONLY) == 0);
    CHECK(try_open_in(cg, "/dev/null", O_RDONLY) == 0);
    CHECK(try_open_in(cg, "/dev/null", O_WRONLY) == EPERM);
    CHECK(try_open_in(cg, "/dev/full", O_RDONLY) == EPERM);

    // A second apply replaces the first program instead of stacking on it.
    REQUIRE(apply_device_program(cg, {{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 7, "rwm"}}).ok());
    CHECK(try_open_in(cg, "/dev/full", O_RDONLY) == 0);
    CHECK(try_open_in(cg, "/dev/zero", O_RDONLY) == EPERM);
    union bpf_attr q {};
    uint32_t ids[8];
    int dfd = open(cg.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(dfd >= 0);
    q.query.target_fd = static_cast<uint32_t>(dfd);
    q.query.attach_type = BPF_CGROUP_DEVICE;
    q.query.prog_ids = reinterpret_cast<uint64_t>(ids);
    q.query.prog_cnt = 8;
    REQUIRE(syscall(SYS_bpf, BPF_PROG_QUERY, &q, sizeof q) == 0);
    close(dfd);
    CHECK(q.query.prog_cnt == 1);
}
