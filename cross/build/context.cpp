// COPY/ADD sources and their staging into a layer tree (see context.hpp).
#include "cross/build/context.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "image/digest.hpp"
#include "image/http.hpp"
#include "image/unpack.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"

namespace build {
namespace {

using util::cat;
using util::Error;
using util::quote;

/// Lexically cleans a relative path: no empty or `.` parts; `..` pops. nullopt when it climbs out.
std::optional<std::string> clean_rel(std::string_view p) {
    std::vector<std::string> parts;
    for (const auto &c : util::split(p, '/')) {
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (parts.empty()) return std::nullopt;
            parts.pop_back();
            continue;
        }
        parts.push_back(c);
    }
    return util::join(parts, "/");
}

/// The length of "host[:port]" after "scheme://".
size_t url_host_length(std::string_view url) {
    size_t start = url.find("://");
    if (start == std::string_view::npos) return 0;
    start += 3;
    size_t end = url.find_first_of("/?#", start);
    return (end == std::string_view::npos ? url.size() : end) - start;
}

bool has_glob(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

/// `pattern` against `path`, where `**` matches any number of components.
bool match_components(const std::vector<std::string> &pat, size_t pi, const std::vector<std::string> &path, size_t si) {
    if (pi == pat.size()) return si == path.size();
    if (pat[pi] == "**") {
        for (size_t k = si; k <= path.size(); k++)
            if (match_components(pat, pi + 1, path, k)) return true;
        return false;
    }
    if (si == path.size()) return false;
    if (fnmatch(pat[pi].c_str(), path[si].c_str(), 0) != 0) return false;
    return match_components(pat, pi + 1, path, si + 1);
}

/// Does `target` (a symlink's, found at rel path `link`) lead out of the root?
bool leads_out(const std::string &link, const std::string &target) {
    if (!target.empty() && target.front() == '/') return true;
    return !clean_rel(cat(util::dirname(link) == "." ? "" : util::dirname(link), "/", target)).has_value();
}

struct Stager {
    const SourceRoot &src;
    const CopySpec &spec;
    int tree_fd;

    /// The copy's owner (--chown, else root), mode (--chmod, else the
    /// source's) and mtime (the source's; write_layer clamps it).
    util::Status finish(int dirfd, const std::string &name, const struct stat &src_st) {
        bool is_link = S_ISLNK(src_st.st_mode);
        if (fchownat(dirfd, name.c_str(), spec.uid.value_or(0), spec.gid.value_or(0), AT_SYMLINK_NOFOLLOW) != 0)
            return Error::from_errno(cat("chown ", quote(name)));
        if (!is_link) {
            mode_t m = spec.mode ? *spec.mode : src_st.st_mode & 07777;
            if (fchmodat(dirfd, name.c_str(), m, 0) != 0) return Error::from_errno(cat("chmod ", quote(name)));
        }
        struct timespec times[2] = {src_st.st_mtim, src_st.st_mtim};
        if (utimensat(dirfd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) return Error::from_errno(cat("set the times of ", quote(name)));
        return util::ok();
    }

    /// Copies the entry `name` in `from_dir` (rel path `rel` in the source)
    /// to `to_name` in `to_dir`.
    util::Status copy_entry(int from_dir, const std::string &name, const std::string &rel, int to_dir,
                            const std::string &to_name) {
        struct stat st;
        if (fstatat(from_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Error::from_errno(cat("stat ", quote(rel)));
        if (S_ISLNK(st.st_mode)) {
            std::string target(size_t(st.st_size) + 1, '\0');
            ssize_t n = readlinkat(from_dir, name.c_str(), target.data(), target.size());
            if (n < 0) return Error::from_errno(cat("readlink ", quote(rel)));
            target.resize(size_t(n));
            if (src.context && leads_out(rel, target))
                return Error::msg(cat(quote(rel), " is a symlink to ", quote(target), ", outside ", src.what));
            (void)unlinkat(to_dir, to_name.c_str(), 0);
            if (symlinkat(target.c_str(), to_dir, to_name.c_str()) != 0) return Error::from_errno(cat("symlink ", quote(rel)));
            return finish(to_dir, to_name, st);
        }
        if (S_ISDIR(st.st_mode)) {
            if (mkdirat(to_dir, to_name.c_str(), 0755) != 0 && errno != EEXIST)
                return Error::from_errno(cat("mkdir ", quote(to_name)));
            auto sub = TRY(util::open_at(from_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
            auto dst = TRY(util::open_at(to_dir, to_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
            TRY(copy_dir_contents(sub.get(), rel, dst.get()));
            return finish(to_dir, to_name, st);
        }
        if (!S_ISREG(st.st_mode)) return Error::msg(cat(quote(rel), " is not a file, directory or symlink"));
        auto in = TRY(util::open_at(from_dir, name, O_RDONLY | O_NOFOLLOW));
        return copy_regular(in.get(), st, rel, to_dir, to_name);
    }

    util::Status copy_regular(int in, const struct stat &st, const std::string &rel, int to_dir, const std::string &to_name) {
        if (spec.unpack_archives && looks_like_archive(in)) {
            if (lseek(in, 0, SEEK_SET) != 0) return Error::from_errno(cat("rewind ", quote(rel)));
            return unpack_archive(in, to_dir).context(cat("unpack ", quote(rel)));
        }
        (void)unlinkat(to_dir, to_name.c_str(), 0);
        auto out = TRY(util::open_at(to_dir, to_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
        char buf[65536];
        for (;;) {
            ssize_t n = read(in, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return Error::from_errno(cat("read ", quote(rel)));
            if (n == 0) break;
            TRY(util::write_all(out.get(), std::string_view(buf, size_t(n))));
        }
        return finish(to_dir, to_name, st);
    }

    util::Status copy_dir_contents(int from_dir, const std::string &rel, int to_dir) {
        for (const auto &name : TRY(util::list_dir_fd(from_dir))) {
            std::string child = rel.empty() ? name : cat(rel, "/", name);
            if (src.context && src.ignore.ignored(child)) {
                // An ignored directory is still walked when an exception may keep something in it.
                struct stat st;
                bool dir = fstatat(from_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
                if (!dir || !src.ignore.has_exceptions()) continue;
            }
            TRY(copy_entry(from_dir, name, child, to_dir, name));
        }
        return util::ok();
    }
};

/// The source paths a (possibly globbed) source names, relative to the root, sorted.
util::Result<std::vector<std::string>> expand_source(const SourceRoot &src, const std::string &source) {
    auto rel = clean_rel(source);
    if (!rel) return Error::msg(cat(quote(source), " is outside ", src.what));
    if (!has_glob(*rel)) return std::vector<std::string>{*rel};
    // Globs: walk the components, matching each against its directory.
    std::vector<std::string> found{""};
    for (const auto &part : util::split(*rel, '/')) {
        std::vector<std::string> next;
        for (const auto &base : found) {
            if (!has_glob(part)) {
                next.push_back(base.empty() ? part : cat(base, "/", part));
                continue;
            }
            auto dir = util::open_in_root(src.fd.get(), base.empty() ? "." : base, O_RDONLY | O_DIRECTORY, 0, util::Scope::Beneath);
            if (!dir) continue;
            for (const auto &name : TRY(util::list_dir_fd(dir->get())))
                if (fnmatch(part.c_str(), name.c_str(), FNM_PERIOD) == 0) next.push_back(base.empty() ? name : cat(base, "/", name));
        }
        found = std::move(next);
    }
    std::vector<std::string> out;
    for (auto &f : found)
        if (!(src.context && src.ignore.ignored(f))) out.push_back(std::move(f));
    if (out.empty()) return Error::msg(cat("no source files were specified: ", quote(source), " matches nothing in ", src.what));
    std::sort(out.begin(), out.end());
    return out;
}

/// The parent directories of `dest` in the tree (0755, root), and an fd of the last.
util::Result<util::UniqueFd> make_parents(int tree_fd, const std::string &dir_rel) {
    if (dir_rel.empty()) return util::UniqueFd(fcntl(tree_fd, F_DUPFD_CLOEXEC, 0));
    util::UniqueFd cur(fcntl(tree_fd, F_DUPFD_CLOEXEC, 0));
    for (const auto &part : util::split(dir_rel, '/')) {
        if (mkdirat(cur.get(), part.c_str(), 0755) != 0 && errno != EEXIST) return Error::from_errno(cat("mkdir ", quote(part)));
        cur = TRY(util::open_at(cur.get(), part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    }
    return cur;
}

void hash_tree(int dirfd, const std::string &rel, int64_t epoch, img::Sha256 &h, util::Status &st) {
    auto names = util::list_dir_fd(dirfd);
    if (!names) {
        st = std::move(names).error();
        return;
    }
    for (const auto &name : *names) {
        struct stat s;
        std::string child = rel.empty() ? name : cat(rel, "/", name);
        if (fstatat(dirfd, name.c_str(), &s, AT_SYMLINK_NOFOLLOW) != 0) {
            st = Error::from_errno(cat("stat ", quote(child)));
            return;
        }
        h.update(cat(child, "\n", uint32_t(s.st_mode), ":", s.st_uid, ":", s.st_gid, ":",
                     std::min<int64_t>(s.st_mtime, epoch), "\n"));
        if (S_ISREG(s.st_mode)) {
            auto fd = util::open_at(dirfd, name, O_RDONLY | O_NOFOLLOW);
            if (!fd) {
                st = std::move(fd).error();
                return;
            }
            auto d = img::Digest::of_fd(fd->get());
            if (!d) {
                st = std::move(d).error();
                return;
            }
            h.update(d->str());
        } else if (S_ISLNK(s.st_mode)) {
            char target[4096];
            ssize_t n = readlinkat(dirfd, name.c_str(), target, sizeof target);
            if (n > 0) h.update(target, size_t(n));
        } else if (S_ISDIR(s.st_mode)) {
            auto sub = util::open_at(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
            if (!sub) {
                st = std::move(sub).error();
                return;
            }
            hash_tree(sub->get(), child, epoch, h, st);
            if (!st) return;
        }
    }
}

}  // namespace

IgnoreRules IgnoreRules::parse(std::string_view text) {
    IgnoreRules r;
    for (const auto &line : util::split(text, '\n')) {
        std::string_view t = util::trim(line);
        if (t.empty() || t.front() == '#') continue;
        Rule rule;
        if (t.front() == '!') {
            rule.negate = true;
            t = util::trim(t.substr(1));
        }
        auto clean = clean_rel(t);
        if (!clean || clean->empty()) continue;
        rule.pattern = *clean;
        r.rules_.push_back(std::move(rule));
    }
    return r;
}

bool IgnoreRules::ignored(std::string_view rel_path) const {
    auto path = util::split(rel_path, '/');
    bool out = false;
    for (const auto &rule : rules_) {
        auto pat = util::split(rule.pattern, '/');
        // The path or one of its parents matches.
        bool m = false;
        for (size_t n = 1; n <= path.size() && !m; n++) {
            std::vector<std::string> prefix(path.begin(), path.begin() + long(n));
            m = match_components(pat, 0, prefix, 0);
        }
        if (m) out = !rule.negate;
    }
    return out;
}

bool IgnoreRules::has_exceptions() const {
    return std::any_of(rules_.begin(), rules_.end(), [](const Rule &r) { return r.negate; });
}

util::Result<SourceRoot> open_context(const std::string &dir) {
    SourceRoot r;
    r.fd = TRY_CTX(util::open_file(dir, O_RDONLY | O_DIRECTORY), "open the build context");
    r.what = "the build context";
    r.context = true;
    for (const char *name : {".containerignore", ".dockerignore"}) {
        auto text = util::read_file_at(r.fd.get(), name, 1 << 20);
        if (text) {
            r.ignore = IgnoreRules::parse(*text);
            break;
        }
        if (text.error().code != ENOENT) return std::move(text).error().wrap(cat("read ", name));
    }
    return r;
}

util::Result<SourceRoot> open_root(const std::string &dir, std::string what) {
    SourceRoot r;
    r.fd = TRY(util::open_file(dir, O_RDONLY | O_DIRECTORY));
    r.what = std::move(what);
    return r;
}

util::Result<std::string> stage_copy(const SourceRoot &src, const CopySpec &spec, const std::string &tree_dir) {
    auto tree = TRY(util::open_file(tree_dir, O_RDONLY | O_DIRECTORY));
    std::vector<std::string> sources;
    for (const auto &s : spec.sources) {
        auto more = TRY(expand_source(src, s));
        sources.insert(sources.end(), more.begin(), more.end());
    }
    auto dest_rel = clean_rel(spec.dest);
    if (!dest_rel) dest_rel = "";
    bool dest_is_dir = spec.dest.back() == '/' || sources.size() > 1 || dest_rel->empty();
    Stager stager{src, spec, tree.get()};
    for (const auto &rel : sources) {
        if (src.context && src.ignore.ignored(rel))
            return Error::msg(cat(quote(rel), " is excluded by the ignore file of ", src.what));
        // Resolve the source inside the root: a symlink out of it fails (EXDEV).
        util::Scope scope = src.context ? util::Scope::Beneath : util::Scope::InRoot;
        auto fd = util::open_in_root(src.fd.get(), rel.empty() ? "." : rel, O_PATH, 0, scope);
        if (!fd) {
            if (fd.error().code == EXDEV || fd.error().code == ELOOP)
                return Error::msg(cat(quote(rel), " leads outside ", src.what));
            return std::move(fd).error().wrap(cat("source ", quote(rel), " in ", src.what));
        }
        struct stat st;
        if (fstat(fd->get(), &st) != 0) return Error::from_errno(cat("stat ", quote(rel)));
        if (S_ISDIR(st.st_mode)) {
            auto dst = TRY(make_parents(tree.get(), *dest_rel));
            auto dir = TRY(util::open_in_root(src.fd.get(), rel.empty() ? "." : rel, O_RDONLY | O_DIRECTORY, 0, scope));
            TRY(stager.copy_dir_contents(dir.get(), rel, dst.get()));
            continue;
        }
        // A file: into the destination directory, or as the destination
        // (the resolved file: a top-level symlink is followed inside the root).
        if (!S_ISREG(st.st_mode)) return Error::msg(cat(quote(rel), " is not a file or directory"));
        auto file = TRY(util::open_in_root(src.fd.get(), rel, O_RDONLY, 0, scope));
        // ADD unpacks an archive into the destination, a directory whatever its spelling.
        bool into_dir = dest_is_dir || (spec.unpack_archives && looks_like_archive(file.get()));
        std::string parent = into_dir ? *dest_rel : util::dirname(*dest_rel);
        if (parent == ".") parent = "";
        std::string name = into_dir ? util::basename(rel) : util::basename(*dest_rel);
        auto dst = TRY(make_parents(tree.get(), parent));
        TRY(stager.copy_regular(file.get(), st, rel, dst.get(), name));
    }
    return tree_digest(tree_dir, spec.epoch);
}

util::Status stage_url(const std::string &url, const std::optional<std::string> &checksum, const CopySpec &spec,
                       const std::string &tree_dir) {
    std::optional<img::Digest> want;
    if (checksum) want = TRY_CTX(img::Digest::parse(*checksum), "--checksum");
    auto dest_rel = clean_rel(spec.dest).value_or("");
    std::string parent = util::dirname(dest_rel), name = util::basename(dest_rel);
    if (spec.dest.back() == '/' || dest_rel.empty()) {
        std::string path = url.substr(0, url.find_first_of("?#"));
        parent = dest_rel;
        name = util::basename(path);
        if (name.empty() || name == "/" || path.size() <= url.find("://") + 3 + url_host_length(url))
            return Error::msg(cat("cannot tell a file name from ", quote(url), ": give the destination file"));
    }
    if (parent == ".") parent = "";
    auto tree = TRY(util::open_file(tree_dir, O_RDONLY | O_DIRECTORY));
    auto dir = TRY(make_parents(tree.get(), parent));
    auto out = TRY(util::open_at(dir.get(), name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600));
    auto http = TRY(img::Http::create({}));
    img::Sha256 h;
    img::HttpRequest req;
    req.url = url;
    req.sink = [&](std::string_view data) -> util::Status {
        h.update(data);
        return util::write_all(out.get(), data);
    };
    auto resp = TRY_CTX(http.perform(req), cat("fetch ", quote(url)));
    if (resp.status < 200 || resp.status > 299) return Error::msg(cat("fetch ", quote(url), ": HTTP status ", resp.status));
    img::Digest got = h.finish();
    if (want && !(got == *want))
        return Error::msg(cat("the download of ", quote(url), " is ", got.str(), ", not the --checksum ", want->str()));
    struct stat st{};
    st.st_mode = S_IFREG | 0600;
    st.st_mtim.tv_sec = spec.epoch;
    return Stager{SourceRoot{}, spec, tree.get()}.finish(dir.get(), name, st);
}

util::Result<std::string> tree_digest(const std::string &tree_dir, int64_t epoch) {
    auto fd = TRY(util::open_file(tree_dir, O_RDONLY | O_DIRECTORY));
    img::Sha256 h;
    util::Status st;
    hash_tree(fd.get(), "", epoch, h, st);
    TRY(std::move(st));
    return h.finish().str();
}

bool looks_like_archive(int fd) {
    unsigned char b[512];
    ssize_t n = pread(fd, b, sizeof b, 0);
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return true;
    if (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) return true;
    return n >= 262 && memcmp(b + 257, "ustar", 5) == 0;
}

util::Status unpack_archive(int archive_fd, int dest_fd) {
    unsigned char b[4] = {};
    if (pread(archive_fd, b, sizeof b, 0) < 0) return Error::from_errno("read the archive");
    img::Compression c = img::Compression::None;
    if (b[0] == 0x1f && b[1] == 0x8b) c = img::Compression::Gzip;
    else if (b[0] == 0x28 && b[1] == 0xb5) c = img::Compression::Zstd;
    TRY(img::unpack_stream(archive_fd, c, dest_fd));
    return util::ok();
}

}  // namespace build
