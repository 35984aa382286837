// A rt::Kernel for unit tests: records every mount, pivot_root, chroot,
// mknodat, symlinkat, setns and unshare instead of making it, and fails the
// calls a test picks. Paths are recorded resolved (a /proc/self/fd/N magic
// link read back, a relative path against the cwd or the dirfd), with the
// test's rootfs written as "ROOT", so a test asserts on "ROOT/data".
//
// mknodat fails with EPERM (as in a user namespace) unless a test says
// otherwise, so devices are bound from the host; fstat of a file the fake
// bound something over answers with the source's stat, as the kernel would.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runtime/kernel.hpp"

namespace rt::testing {

struct Call {
    std::string op;      ///< "mount", "umount2", "mount_setattr", "pivot_root", ...
    std::string source;  ///< mount source, symlink target, pivot_root's new root
    std::string target;  ///< the path acted on (mount target, link, node, setns fd's file)
    std::string fstype, data;
    uint64_t flags = 0;  ///< mount/umount2/unshare flags, mount_setattr's attr_set, setns type
};

class RecordingKernel final : public Kernel {
public:
    std::vector<Call> calls;
    /// The errno a call fails with (0: it succeeds). Decided before recording.
    std::function<int(const Call &)> fail;
    int mknod_errno = EPERM;
    /// The rootfs path replaced by "ROOT" in recorded paths.
    std::string root;

    int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data) override {
        // A filesystem's source ("tmpfs") is a name; a bind's or a move's a path.
        std::string src = !source ? "" : flags & (MS_BIND | MS_MOVE) ? resolve(source) : source;
        Call c{"mount", src, resolve(target), fstype ? fstype : "",
               data ? static_cast<const char *>(data) : "", flags};
        if (int e = record(c)) return fail_with(e);
        if ((flags & MS_BIND) && !(flags & MS_REMOUNT) && source) {
            struct stat t, s;
            if (::stat(target, &t) == 0 && ::stat(source, &s) == 0) bound_[{t.st_dev, t.st_ino}] = s;
        }
        return 0;
    }
    int umount2(const char *target, int flags) override {
        return result(record({"umount2", "", resolve(target), "", "", static_cast<uint64_t>(flags)}));
    }
    int mount_setattr(int dirfd, const char *path, unsigned, const util::sys::MountAttr &attr) override {
        return result(record({"mount_setattr", "", resolve_at(dirfd, path), "", "", attr.attr_set}));
    }
    int pivot_root(const char *new_root, const char *put_old) override {
        return result(record({"pivot_root", resolve(new_root), resolve(put_old), "", "", 0}));
    }
    int chroot(const char *path) override { return result(record({"chroot", "", resolve(path), "", "", 0})); }
    int mknodat(int dirfd, const char *name, mode_t mode, dev_t dev) override {
        int e = record({"mknodat", "", resolve_at(dirfd, name), "", "", static_cast<uint64_t>(dev)});
        (void)mode;
        return result(e ? e : mknod_errno);
    }
    int symlinkat(const char *target, int dirfd, const char *linkpath) override {
        return result(record({"symlinkat", target, resolve_at(dirfd, linkpath), "", "", 0}));
    }
    int fstat(int fd, struct stat *sb) override {
        if (::fstat(fd, sb) < 0) return -1;
        if (auto it = bound_.find({sb->st_dev, sb->st_ino}); it != bound_.end()) *sb = it->second;
        return 0;
    }
    int setns(int fd, int type) override {
        return result(record({"setns", "", resolve_at(fd, ""), "", "", static_cast<uint64_t>(type)}));
    }
    int unshare(int flags) override { return result(record({"unshare", "", "", "", "", static_cast<uint64_t>(flags)})); }

    /// The recorded calls of one kind, in order.
    std::vector<Call> of(const std::string &op) const {
        std::vector<Call> out;
        for (const auto &c : calls)
            if (c.op == op) out.push_back(c);
        return out;
    }
    /// Index of the first call matching `pred`, or -1.
    template <class Pred>
    long index_of(Pred pred) const {
        for (size_t i = 0; i < calls.size(); i++)
            if (pred(calls[i])) return static_cast<long>(i);
        return -1;
    }

private:
    std::map<std::pair<dev_t, ino_t>, struct stat> bound_;

    int record(Call c) {
        int e = fail ? fail(c) : 0;
        calls.push_back(std::move(c));
        return e;
    }
    static int fail_with(int e) {
        errno = e;
        return -1;
    }
    static int result(int e) { return e ? fail_with(e) : 0; }

    static std::string link_of(const std::string &path) {
        char buf[4096];
        ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : path;
    }
    std::string rooted(std::string p) const {
        if (!root.empty() && (p == root || p.starts_with(root + "/"))) return "ROOT" + p.substr(root.size());
        return p;
    }
    std::string resolve(const char *path) const {
        std::string p = path;
        if (p.starts_with("/proc/self/fd/")) return rooted(link_of(p));
        if (!p.starts_with("/")) {
            char cwd[4096];
            std::string base = ::getcwd(cwd, sizeof cwd) ? cwd : "?";
            p = p == "." ? base : (base == "/" ? "" : base) + "/" + p;
        }
        return rooted(p);
    }
    std::string resolve_at(int dirfd, const char *name) const {
        std::string dir = dirfd == AT_FDCWD ? "." : link_of("/proc/self/fd/" + std::to_string(dirfd));
        if (!*name) return rooted(dir);
        return rooted(dir == "/" ? "/" + std::string(name) : dir + "/" + name);
    }
};

}  // namespace rt::testing
