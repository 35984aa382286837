// Resumable, verified blob download into the store.
//
// The partial blob lives in the store's ingest area (Store::open_ingest: a
// resumable util::AtomicFile, kept when a download stops, committed into
// blobs/ by the same fsync-rename-fsync as every other write) and next to it
// a small JSON state file (Store::ingest_state_path):
//   {"digest":"sha256:..","size":N,"offset":K,"sha256":"<hex of Sha256::save_state()>"}
// The state is written with atomic_write_file after an fdatasync of the data,
// so it never claims bytes that are not on disk. It is saved every
// `persist_bytes` / `persist_ms` and on every dropped connection; after a
// drop, a kill -9 or a power cut the next attempt truncates the partial to K,
// restores the hash state and asks for `Range: bytes=K-`.
//
// Decisions (docs/policy.md has the user-facing side):
// - a 206 must carry `Content-Range: bytes K-(size-1)/size` (total may be *);
// - a 200 answering a Range request is an ERROR, not a silent restart: on a
//   cellular link a middlebox that strips Range would otherwise re-download
//   the whole blob after every drop; the partial stays resumable;
// - more bytes than the descriptor's size, a short body, or a digest
//   mismatch are errors; after a digest mismatch the partial and its state
//   are deleted (they can never become that blob), nothing enters blobs/.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "image/digest.hpp"
#include "image/registry.hpp"
#include "image/store.hpp"
#include "util/result.hpp"

namespace img {

struct FetchProgress {
    const Digest *digest = nullptr;
    uint64_t offset = 0;  ///< bytes on disk
    uint64_t size = 0;
    uint64_t resumed_from = 0;  ///< offset this process started at
    bool done = false;
};
using ProgressFn = std::function<void(const FetchProgress &)>;

struct FetchOptions {
    uint64_t persist_bytes = 32 << 20;  ///< save the resume state at least this often...
    int64_t persist_ms = 1000;         ///< ...and at least this often (whichever first)
    ProgressFn progress;
    /// When set, gets every byte of the blob, in order from byte 0, right
    /// after it is written to the partial file (one-pass unpack, see
    /// StreamingUnpack). It sees unverified bytes: the digest is known only
    /// at the end. Its error ends the download (the partial stays
    /// resumable). Not called when the blob is already stored or the
    /// download resumes a persisted partial: FetchStats::streamed says
    /// whether it saw the whole blob.
    std::function<util::Status(std::string_view)> tee;
};

struct FetchStats {
    uint64_t downloaded = 0;    ///< bytes received by this call
    uint64_t resumed_from = 0;  ///< offset found in the persisted state
    int drops = 0;              ///< transfers that failed and were retried
    bool already_stored = false;
    bool streamed = false;      ///< FetchOptions::tee got the whole blob, which is now stored
};

/// Where a resumable download goes: the store's partial blob (fetch_blob),
/// or a root filesystem slot (ota/slot.cpp).
class BlobSink {
public:
    virtual ~BlobSink() = default;
    /// Bytes already received (the next request starts there).
    virtual uint64_t offset() const = 0;
    /// Takes the next bytes; an error ends the download (resumable).
    virtual util::Status append(std::string_view data) = 0;
    /// Makes the bytes so far durable with the state that names them.
    virtual util::Status persist() = 0;
};

/// The download loop of fetch_blob into any sink: from sink.offset() to
/// `size`, with Range requests, retries, the deadline, periodic persist()
/// and progress; returns once `size` bytes arrived. The caller checks the
/// digest.
util::Status fetch_into(Registry &reg, const std::string &repo, const Digest &d, uint64_t size, BlobSink &sink,
                        const FetchOptions &opts, FetchStats &stats);

/// The persisted resume state of a partial download:
/// {"digest","size","offset","sha256":<hex of Sha256::save_state()>}.
std::string resume_state(const Digest &d, uint64_t size, uint64_t offset, const Sha256 &hash);
struct ResumePoint {
    uint64_t offset = 0;
    std::unique_ptr<Sha256> hash;  ///< the hash of the first `offset` bytes
};
/// Reads a resume state back; an error when it is for another digest or
/// size, or its hash state does not cover exactly `offset` bytes.
util::Result<ResumePoint> parse_resume_state(std::string_view text, const Digest &d, uint64_t size);

/// Downloads blob `d` of `size` bytes from `repo` into the store, resuming a
/// previous partial download, retrying with backoff (registry's options), and
/// committing it only after its size and digest are checked.
util::Result<FetchStats> fetch_blob(Registry &reg, Store &store, const std::string &repo, const Digest &d, uint64_t size,
                                    const FetchOptions &opts = {});

/// Parses "bytes START-END/TOTAL" (TOTAL may be "*", reported as 0).
struct ContentRange {
    uint64_t start = 0, end = 0, total = 0;
};
util::Result<ContentRange> parse_content_range(std::string_view v);

}  // namespace img
