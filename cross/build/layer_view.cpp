// Path lookups across stacked layers (see layer_view.hpp).
#include "cross/build/layer_view.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <optional>

#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace build {
namespace {

using util::cat;

struct Found {
    struct stat st;
    std::string link;  ///< the target, for a symlink
};

/// `parts` (already resolved, no symlinks among the parents in the merged
/// view) in one layer: walked with O_NOFOLLOW, so a parent that is not a
/// directory in this layer ends the lookup here.
std::optional<Found> lookup_in_layer(int root, const std::vector<std::string> &parts, bool &hidden) {
    util::UniqueFd cur(fcntl(root, F_DUPFD_CLOEXEC, 0));
    for (size_t i = 0; i < parts.size(); i++) {
        struct stat st;
        if (fstatat(cur.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
        bool whiteout = S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
        if (whiteout) {
            hidden = true;
            return std::nullopt;
        }
        if (i + 1 == parts.size()) {
            Found f{st, ""};
            if (S_ISLNK(st.st_mode)) {
                char buf[4096];
                ssize_t n = readlinkat(cur.get(), parts[i].c_str(), buf, sizeof buf);
                if (n < 0) return std::nullopt;
                f.link.assign(buf, size_t(n));
            }
            return f;
        }
        if (!S_ISDIR(st.st_mode)) return std::nullopt;
        cur.reset(openat(cur.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!cur) return std::nullopt;
    }
    return std::nullopt;
}

/// The entry at `parts` in the merged view: the topmost layer that has it, unless a whiteout hides it.
std::optional<Found> lookup(const std::vector<util::UniqueFd> &layers, const std::vector<std::string> &parts) {
    for (const auto &l : layers) {
        bool hidden = false;
        auto f = lookup_in_layer(l.get(), parts, hidden);
        if (f || hidden) return f;
    }
    return std::nullopt;
}

void push_path(std::vector<std::string> &out, std::string_view path) {
    for (const auto &c : util::split(path, '/')) {
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (!out.empty()) out.pop_back();  // `..` at the root stays there
            continue;
        }
        out.push_back(c);
    }
}

util::Result<ResolvedDest> resolve(const std::vector<util::UniqueFd> &layers, std::string_view abs_path, int &links) {
    std::vector<std::string> todo;  // components still to walk, reversed
    {
        std::vector<std::string> parts;
        push_path(parts, abs_path);
        todo.assign(parts.rbegin(), parts.rend());
    }
    std::vector<std::string> done;
    bool is_dir = true;  // the root
    while (!todo.empty()) {
        std::string c = std::move(todo.back());
        todo.pop_back();
        if (c == "..") {
            if (!done.empty()) done.pop_back();
            continue;
        }
        done.push_back(c);
        auto f = lookup(layers, done);
        if (!f) {
            // Not there: the rest is created as written.
            done.insert(done.end(), todo.rbegin(), todo.rend());
            is_dir = false;
            todo.clear();
            break;
        }
        if (S_ISLNK(f->st.st_mode)) {
            if (++links > 40) return util::Error::with_code(ELOOP, cat("too many symlinks in ", util::quote(abs_path)));
            // The target, then what remained, walked again.
            std::vector<std::string> target;
            if (!f->link.empty() && f->link.front() == '/') {
                push_path(target, f->link);
            } else {
                target.assign(done.begin(), done.end() - 1);
                std::vector<std::string> rel;
                for (const auto &p : util::split(f->link, '/'))
                    if (!p.empty() && p != ".") rel.push_back(p);
                target.insert(target.end(), rel.begin(), rel.end());
            }
            // A last component that is a symlink is followed only when it leads to a directory.
            if (todo.empty()) {
                std::vector<std::string> probe;
                for (const auto &p : target) {
                    if (p == "..") {
                        if (!probe.empty()) probe.pop_back();
                    } else {
                        probe.push_back(p);
                    }
                }
                auto t = TRY(resolve(layers, "/" + util::join(probe, "/"), links));
                if (t.is_dir) return t;
                is_dir = false;
                break;
            }
            done.clear();
            for (auto it = target.rbegin(); it != target.rend(); ++it) todo.push_back(*it);
            continue;
        }
        is_dir = S_ISDIR(f->st.st_mode);
        if (!is_dir && !todo.empty()) {
            // A file on the way: leave the rest to fail where it is written.
            done.insert(done.end(), todo.rbegin(), todo.rend());
            todo.clear();
            break;
        }
    }
    ResolvedDest out;
    out.path = "/" + util::join(done, "/");
    out.is_dir = is_dir;
    return out;
}

util::Result<std::vector<util::UniqueFd>> open_layers(const std::vector<std::string> &roots) {
    std::vector<util::UniqueFd> layers;
    for (const auto &r : roots) {
        util::UniqueFd fd(open(r.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!fd) return util::Error::from_errno(cat("open layer ", util::quote(r)));
        layers.push_back(std::move(fd));
    }
    return layers;
}

}  // namespace

util::Result<ResolvedDest> resolve_in_layers(const std::vector<std::string> &roots, std::string_view abs_path) {
    auto layers = TRY(open_layers(roots));
    int links = 0;
    return resolve(layers, abs_path, links);
}

util::Result<std::optional<std::string>> read_in_layers(const std::vector<std::string> &roots, std::string_view abs_path,
                                                        size_t limit) {
    auto layers = TRY(open_layers(roots));
    int links = 0;
    auto where = TRY(resolve(layers, abs_path, links));
    std::vector<std::string> parts;
    push_path(parts, where.path);
    for (const auto &l : layers) {
        bool hidden = false;
        auto f = lookup_in_layer(l.get(), parts, hidden);
        if (hidden) break;
        if (!f) continue;
        if (!S_ISREG(f->st.st_mode)) break;
        util::UniqueFd fd(openat(l.get(), util::join(parts, "/").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) return util::Error::from_errno(cat("open ", util::quote(where.path), " in a layer"));
        return std::optional<std::string>(TRY(util::read_all(fd.get(), limit)));
    }
    return std::optional<std::string>();
}

}  // namespace build
