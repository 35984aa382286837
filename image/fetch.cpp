// fetch_blob: the resumable download loop (see fetch.hpp for the protocol).
#include "image/fetch.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <optional>

#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

constexpr uint64_t kWritebackBytes = 4 << 20;

/// The partial download of one blob: data fd, offset, running hash.
class Partial : public BlobSink {
public:
    Partial(Store &store, const Digest &d, uint64_t size) : store_(store), d_(d), size_(size) {}

    /// Opens the data file and restores the persisted state, if any and sane.
    util::Status open() {
        file_.emplace(TRY(store_.open_ingest(d_)));
        offset_ = 0;
        auto text = util::read_file(store_.ingest_state_path(d_), 64 << 10);
        if (text) {
            auto st = restore(*text);
            if (!st) {
                util::log::warn("blob ", d_.str(), ": ignoring resume state (", st.error().message(), "), starting over");
                offset_ = 0;
                hash_ = std::make_unique<Sha256>();
            }
        }
        struct stat sb{};
        if (::fstat(fd(), &sb) < 0) return util::Error::from_errno("stat partial blob");
        if (static_cast<uint64_t>(sb.st_size) < offset_) {  // state claims more than the file has
            util::log::warn("blob ", d_.str(), ": partial file shorter than its state, starting over");
            offset_ = 0;
            hash_ = std::make_unique<Sha256>();
        }
        // Bytes past the persisted offset were never covered by a state: drop them.
        if (::ftruncate(fd(), static_cast<off_t>(offset_)) < 0) return util::Error::from_errno("truncate partial blob");
        if (::lseek(fd(), static_cast<off_t>(offset_), SEEK_SET) < 0) return util::Error::from_errno("seek partial blob");
        persisted_ = offset_;
        written_back_ = offset_;
        return util::ok();
    }

    util::Status append(std::string_view data) override {
        if (offset_ + data.size() > size_)
            return util::Error::msg(util::cat("registry sent more than the ", size_, " bytes the descriptor names"));
        TRY_CTX(util::write_all(fd(), data), "write partial blob");
        hash_->update(data);
        offset_ += data.size();
        // Start writing back what arrived (asynchronously, a hint: errors
        // are the fsync's to report), so the fsync at the end finds the
        // blob mostly on disk instead of flushing all of it then.
        if (offset_ - written_back_ >= kWritebackBytes) {
            (void)::sync_file_range(fd(), static_cast<off_t>(written_back_), static_cast<off_t>(offset_ - written_back_),
                                    SYNC_FILE_RANGE_WRITE);
            written_back_ = offset_;
        }
        return util::ok();
    }

    /// Makes the current offset durable: data first, then the state that names it.
    util::Status persist() override {
        if (offset_ == persisted_) return util::ok();
        if (::fdatasync(fd()) < 0) return util::Error::from_errno("fdatasync partial blob");
        TRY(util::failpoint("fetch.persist"));
        TRY_CTX(util::atomic_write_file(store_.ingest_state_path(d_), resume_state(d_, size_, offset_, *hash_)),
                "save resume state");
        persisted_ = offset_;
        return util::ok();
    }

    /// Starts over from byte 0 (the partial can never become the blob).
    void discard() {
        ::unlink(store_.ingest_state_path(d_).c_str());
        file_->discard();
    }

    /// The digest of everything received (commit() syncs the data).
    Digest finish() { return hash_->finish(); }

    /// Makes the complete partial the blob (Store::commit_ingest).
    util::Status commit() { return store_.commit_ingest(*file_, d_, size_, true); }

    uint64_t offset() const override { return offset_; }

private:
    int fd() const { return file_->fd(); }

    util::Status restore(const std::string &text) {
        auto point = TRY(parse_resume_state(text, d_, size_));
        hash_ = std::move(point.hash);
        offset_ = point.offset;
        return util::ok();
    }

    Store &store_;
    const Digest &d_;
    uint64_t size_;
    /// ingest/<hex>, committed to blobs/sha256/<hex>; kept (resumable) when dropped.
    std::optional<util::AtomicFile> file_;
    uint64_t offset_ = 0;
    uint64_t persisted_ = 0;
    uint64_t written_back_ = 0;  ///< sync_file_range started up to here
    std::unique_ptr<Sha256> hash_ = std::make_unique<Sha256>();
};

/// A transfer-level failure: `retry` when trying again may help.
struct Attempt {
    util::Error err;
    bool retry = false;
};

}  // namespace

std::string resume_state(const Digest &d, uint64_t size, uint64_t offset, const Sha256 &hash) {
    util::json::Value v = util::json::Value::object();
    v["digest"] = d.str();
    v["size"] = size;
    v["offset"] = offset;
    std::string st = hash.save_state();
    v["sha256"] = util::hex_encode(reinterpret_cast<const unsigned char *>(st.data()), st.size());
    return util::json::dump(v);
}

util::Result<ResumePoint> parse_resume_state(std::string_view text, const Digest &d, uint64_t size) {
    auto v = TRY(util::json::parse(text, "resume state"));
    TRY(util::json::expect_object(v, "resume state"));
    auto dg = TRY(util::json::req_string(v, "digest", ""));
    auto sz = TRY(util::json::opt_uint(v, "size", ""));
    auto off = TRY(util::json::opt_uint(v, "offset", ""));
    auto hex = TRY(util::json::req_string(v, "sha256", ""));
    if (dg != d.str() || !sz || *sz != size || !off || *off > size)
        return util::Error::msg("state is for another blob or size");
    std::string raw;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
        auto b = util::parse_int<unsigned>(std::string_view(hex).substr(i, 2), 16);
        if (!b) return util::Error::msg("bad hash state");
        raw.push_back(static_cast<char>(*b));
    }
    ResumePoint p;
    p.hash = std::make_unique<Sha256>();
    TRY(p.hash->restore_state(raw));
    if (p.hash->bytes() != *off) return util::Error::msg("hash state does not match the offset");
    p.offset = *off;
    return p;
}

util::Result<ContentRange> parse_content_range(std::string_view v) {
    auto bad = [&] { return util::Error::msg(util::cat("malformed Content-Range ", util::quote(v))); };
    v = util::trim(v);
    if (!v.starts_with("bytes ")) return bad();
    v.remove_prefix(6);
    auto dash = v.find('-'), slash = v.find('/');
    if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return bad();
    auto s = util::parse_int<uint64_t>(v.substr(0, dash));
    auto e = util::parse_int<uint64_t>(v.substr(dash + 1, slash - dash - 1));
    if (!s || !e || *e < *s) return bad();
    ContentRange cr{*s, *e, 0};
    auto tot = v.substr(slash + 1);
    if (tot != "*") {
        auto t = util::parse_int<uint64_t>(tot);
        if (!t || *t <= *e) return bad();
        cr.total = *t;
    }
    return cr;
}

util::Status fetch_into(Registry &reg, const std::string &repo, const Digest &d, uint64_t size, BlobSink &part,
                        const FetchOptions &opts, FetchStats &stats) {
    stats.resumed_from = part.offset();
    // The tee needs the stream from byte 0; a resumed partial is unpacked
    // from the stored blob afterwards instead.
    const bool tee = opts.tee && part.offset() == 0;
    const std::string what = util::cat("blob ", d.str());

    FetchProgress prog;
    prog.digest = &d;
    prog.size = size;
    prog.resumed_from = part.offset();
    auto report = [&](bool done) {
        if (!opts.progress) return;
        prog.offset = part.offset();
        prog.done = done;
        opts.progress(prog);
    };
    report(false);

    // One deadline for the whole blob, resumes included: a peer that keeps
    // it alive a few bytes at a time cannot hold the pull (and the store
    // lock) beyond it.
    int failures = 0;
    const int64_t started = monotonic_ms(), deadline = reg.deadline();
    while (part.offset() < size) {
        uint64_t start = part.offset();
        int64_t last_persist = monotonic_ms(), last_report = last_persist;
        uint64_t since_persist = 0;
        auto sink = [&](std::string_view chunk) -> util::Status {
            TRY(part.append(chunk));
            if (tee) TRY(opts.tee(chunk));
            stats.downloaded += chunk.size();
            since_persist += chunk.size();
            int64_t t = monotonic_ms();
            if (since_persist >= opts.persist_bytes || t - last_persist >= opts.persist_ms) {
                TRY(part.persist());
                since_persist = 0;
                last_persist = t;
            }
            if (t - last_report >= 200) {
                report(false);
                last_report = t;
            }
            return util::ok();
        };
        // Status and range are checked before the first body byte is
        // accepted, so a lying answer never reaches the partial file.
        auto check = [&](const HttpResponse &resp) -> util::Status {
            if (resp.status == 200 && start > 0)
                return util::Error::msg(util::cat("registry answered 200 to a request for bytes ", start,
                                                  "- (expected 206): it ignores Range; not restarting silently"));
            uint64_t want = size - start;
            if (resp.status == 206) {
                auto h = resp.header("content-range");
                if (!h) return util::Error::msg("206 without Content-Range");
                auto cr = TRY(parse_content_range(*h));
                if (cr.start != start || cr.end + 1 != size || (cr.total != 0 && cr.total != size))
                    return util::Error::msg(util::cat("asked for bytes ", start, "-", size - 1, "/", size, ", got ", util::quote(*h)));
            } else if (resp.status != 200) {
                return util::Error::msg(util::cat("unexpected status ", resp.status));
            }
            if (auto cl = resp.header("content-length")) {
                auto n = util::parse_int<uint64_t>(*cl);
                if (n && *n != want)
                    return util::Error::msg(util::cat("registry announced ", *n, " bytes, the descriptor says ", want,
                                                      start > 0 ? " remain" : ""));
            }
            return util::ok();
        };
        auto r = reg.get_blob(repo, d, start, sink, check, deadline);
        Attempt a;
        if (!r) {
            a.err = std::move(r).error();
            a.retry = http_retryable(a.err);
        } else if (r->status != 200 && r->status != 206) {
            a.err = status_error(util::cat("GET ", what), *r);
            a.retry = http_retryable(a.err);
        } else if (part.offset() < size) {
            a.err = util::Error::with_code(ECONNRESET, util::cat("body ended at byte ", part.offset(), " of ", size));
            a.retry = true;
        } else {
            break;  // complete
        }
        // The bytes written so far passed every check that can be made before
        // the end (the digest is checked then): make them durable so a later
        // attempt or process resumes after them.
        TRY_CTX(part.persist(), what);
        if (a.err.code == ETIME) return Registry::deadline_error(a.err, started).wrap(what);
        if (!a.retry) return std::move(a.err).wrap(what);
        // Progress resets the budget of attempts without progress; a stall
        // that dripped less than one stall window's worth is not progress.
        const HttpOptions &ho = reg.options().http;
        uint64_t enough = 1;
        if (a.err.code == ETIMEDOUT && ho.speed_limit > 0 && ho.speed_time_s > 0)
            enough = static_cast<uint64_t>(ho.speed_limit) * static_cast<uint64_t>(ho.speed_time_s);
        if (part.offset() - start >= enough) failures = 0;
        if (++failures >= reg.options().retries)
            return std::move(a.err).wrap(util::cat(what, ": giving up after ", failures, " attempts without progress"));
        stats.drops++;
        util::log::debug(what, ": at byte ", part.offset());
        TRY_CTX(reg.retry_wait(std::move(a.err), failures - 1, started, deadline), what);
    }
    stats.streamed = tee;
    report(true);
    return util::ok();
}

util::Result<FetchStats> fetch_blob(Registry &reg, Store &store, const std::string &repo, const Digest &d, uint64_t size,
                                    const FetchOptions &opts) {
    std::string what = util::cat("blob ", d.str());
    FetchStats stats;
    if (store.has_blob(d)) {
        stats.already_stored = true;
        return stats;
    }
    auto lock = TRY_CTX(store.lock_blob(d), what);
    if (store.has_blob(d)) {  // another process finished it while we waited
        stats.already_stored = true;
        return stats;
    }
    Partial part(store, d, size);
    TRY_CTX(part.open(), what);
    TRY(fetch_into(reg, repo, d, size, part, opts, stats));
    Digest got = part.finish();
    if (!(got == d)) {
        part.discard();
        return util::Error::msg(util::cat(what, ": registry sent content with digest ", got.str()));
    }
    TRY_CTX(util::failpoint("fetch.commit"), what);
    TRY(part.commit());
    return stats;
}

}  // namespace img
