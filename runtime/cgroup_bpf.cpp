// The cgroup v2 device filter: a BPF_PROG_TYPE_CGROUP_DEVICE program built
// from the spec's device rules, loaded and attached with the raw bpf(2)
// syscall (no libbpf: the program is a dozen instructions per rule,
// hand-assembled as crun's ebpf.c and runc's devicefilter do).
//
// Semantics match the v1 lists: the LAST rule that matches a request decides;
// nothing matching is denied. An allow rule matches when every access asked
// (r/w/m) is among its letters; a deny rule matches when any of them is, so
// "deny c 1:3 w" refuses an open for read+write as the v1 list would.
//
// Register use in the program: r2 = device type, r3 = access bits,
// r4 = major, r5 = minor (from struct bpf_cgroup_dev_ctx), r1 scratch.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/cgroup_backend.hpp"
#include "util/fd.hpp"
#include "util/strings.hpp"

namespace rt::cgroup {

using util::cat;
using util::Error;
using util::quote;

namespace {

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}
bpf_insn ldx_w(uint8_t dst, uint8_t src, int16_t off) { return insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0); }
bpf_insn alu32_imm(uint8_t op, uint8_t dst, int32_t imm) { return insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm); }
bpf_insn mov32_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn mov64_imm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
bpf_insn jmp_imm(uint8_t op, uint8_t dst, int32_t imm) { return insn(BPF_JMP | op | BPF_K, dst, 0, 0, imm); }
bpf_insn jmp_reg(uint8_t op, uint8_t dst, uint8_t src) { return insn(BPF_JMP | op | BPF_X, dst, src, 0, 0); }
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

int32_t access_bits(const std::string &access) {
    int32_t bits = 0;
    for (char c : access) {
        if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
        if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
        if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
    }
    return bits;
}

constexpr int32_t kAllAccess = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

/// One rule: tests that jump past the block when they fail, then "return allow".
std::vector<bpf_insn> rule_block(const DeviceRule &rule) {
    std::vector<bpf_insn> b;
    std::vector<size_t> jumps;  // indexes of the "go to the next block" jumps
    if (rule.type != 'a') {
        jumps.push_back(b.size());
        b.push_back(jmp_imm(BPF_JNE, 2, rule.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
    }
    int32_t bits = access_bits(rule.access);
    if (bits != kAllAccess) {
        b.push_back(mov32_reg(1, 3));
        b.push_back(alu32_imm(BPF_AND, 1, bits));
        jumps.push_back(b.size());
        // allow: every requested bit must be in the rule; deny: any of them.
        b.push_back(rule.allow ? jmp_reg(BPF_JNE, 1, 3) : jmp_imm(BPF_JEQ, 1, 0));
    }
    if (rule.major >= 0) {
        jumps.push_back(b.size());
        b.push_back(jmp_imm(BPF_JNE, 4, static_cast<int32_t>(rule.major)));
    }
    if (rule.minor >= 0) {
        jumps.push_back(b.size());
        b.push_back(jmp_imm(BPF_JNE, 5, static_cast<int32_t>(rule.minor)));
    }
    b.push_back(mov64_imm(0, rule.allow ? 1 : 0));
    b.push_back(exit_insn());
    for (size_t j : jumps) b[j].off = static_cast<int16_t>(b.size() - 1 - j);
    return b;
}

long sys_bpf(int cmd, union bpf_attr *attr) {
    return ::syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

}  // namespace

std::vector<bpf_insn> build_device_program(const std::vector<DeviceRule> &rules) {
    std::vector<bpf_insn> prog = {
        ldx_w(2, 1, 0),                 // type | access << 16
        alu32_imm(BPF_AND, 2, 0xffff),  // r2 = type
        ldx_w(3, 1, 0),
        alu32_imm(BPF_RSH, 3, 16),      // r3 = access
        ldx_w(4, 1, 4),                 // r4 = major
        ldx_w(5, 1, 8),                 // r5 = minor
    };
    // Last rule first; a rule matching everything ends the search.
    for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
        auto block = rule_block(*it);
        prog.insert(prog.end(), block.begin(), block.end());
        if (it->type == 'a' && it->major < 0 && it->minor < 0 && access_bits(it->access) == kAllAccess) return prog;
    }
    prog.push_back(mov64_imm(0, 0));  // nothing matched: deny
    prog.push_back(exit_insn());
    return prog;
}

util::Status apply_device_program(const std::string &dir, const std::vector<DeviceRule> &rules) {
    auto prog = build_device_program(rules);
    static const char license[] = "Apache-2.0";
    char log[4096];

    union bpf_attr load {};
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = reinterpret_cast<uint64_t>(prog.data());
    load.insn_cnt = static_cast<uint32_t>(prog.size());
    load.license = reinterpret_cast<uint64_t>(license);
    long fd = sys_bpf(BPF_PROG_LOAD, &load);
    if (fd < 0) {
        int err = errno;
        // Load again with the verifier's log for the message.
        log[0] = 0;
        load.log_buf = reinterpret_cast<uint64_t>(log);
        load.log_size = sizeof log;
        load.log_level = 1;
        (void)sys_bpf(BPF_PROG_LOAD, &load);
        std::string why(log, strnlen(log, sizeof log));
        return Error::with_code(err, cat("load the device filter program (", prog.size(), " instructions)",
                                         why.empty() ? std::string() : cat(" [verifier: ", util::trim(why), "]")));
    }
    util::UniqueFd prog_fd(static_cast<int>(fd));

    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return Error::from_errno(cat("open cgroup ", quote(dir)));
    util::UniqueFd cg(dfd);

    // Programs already on this cgroup (a previous `set`): replaced, not stacked.
    uint32_t old_ids[64];
    union bpf_attr query {};
    query.query.target_fd = static_cast<uint32_t>(cg.get());
    query.query.attach_type = BPF_CGROUP_DEVICE;
    query.query.prog_ids = reinterpret_cast<uint64_t>(old_ids);
    query.query.prog_cnt = 64;
    uint32_t nold = sys_bpf(BPF_PROG_QUERY, &query) == 0 ? query.query.prog_cnt : 0;

    union bpf_attr attach {};
    attach.target_fd = static_cast<uint32_t>(cg.get());
    attach.attach_bpf_fd = static_cast<uint32_t>(prog_fd.get());
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = BPF_F_ALLOW_MULTI;
    if (sys_bpf(BPF_PROG_ATTACH, &attach) < 0)
        return Error::from_errno(cat("attach the device filter program to ", quote(dir)));

    for (uint32_t i = 0; i < nold && i < 64; ++i) {
        union bpf_attr get {};
        get.prog_id = old_ids[i];
        long ofd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &get);
        if (ofd < 0) continue;
        util::UniqueFd old(static_cast<int>(ofd));
        union bpf_attr detach {};
        detach.target_fd = static_cast<uint32_t>(cg.get());
        detach.attach_bpf_fd = static_cast<uint32_t>(old.get());
        detach.attach_type = BPF_CGROUP_DEVICE;
        if (sys_bpf(BPF_PROG_DETACH, &detach) < 0)
            return Error::from_errno(cat("detach the previous device filter program from ", quote(dir)));
    }
    return util::ok();
}

}  // namespace rt::cgroup
