// Streaming install into the inactive slot (slot.hpp): SlotWriter is the
// img::BlobSink both sources write through; finish() checks the digest and
// reads the slot back.
#include "ota/slot.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <optional>

#include "image/dynlibs.hpp"
#include "image/fetch.hpp"
#include "util/failpoint.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace ota {

using util::cat;
using util::Error;
using util::quote;
using util::Result;
using util::Status;

namespace {

constexpr size_t kBuffer = 256 << 10;  ///< the one buffer of a file source and of the read-back
constexpr size_t kMaxState = 64 << 10;
constexpr uint64_t kCheckpointBytes = 16 << 10;  ///< the unsynced checkpoint's interval (a kill loses at most this and one read)
constexpr uint64_t kWritebackBytes = 1 << 20;    ///< writeback of the written bytes is started this often
constexpr size_t kCheckpointSize = 1024;         ///< its file, rewritten in place, padded with spaces

/// Writes one image into one slot at increasing offsets, hashing as it goes.
class SlotWriter : public img::BlobSink {
public:
    SlotWriter(const SlotSpec &slot, const SlotImage &image, std::string state_path, const SlotInstallOptions &opts)
        : slot_(slot), image_(image), state_path_(std::move(state_path)), opts_(opts) {}

    /// Opens the slot, checks its capacity, restores a matching resume state.
    Status open() {
        const std::string path = slot_.where.path();
        fd_ = TRY_CTX(util::open_file(path, O_RDWR | O_CLOEXEC), cat("slot ", slot_.name));
        struct stat sb{};
        if (::fstat(fd_.get(), &sb) != 0) return Error::from_errno(cat("stat slot ", slot_.name, " (", path, ")"));
        uint64_t capacity = slot_.size;
        if (S_ISBLK(sb.st_mode)) {
            uint64_t dev = 0;
            if (::ioctl(fd_.get(), BLKGETSIZE64, &dev) != 0)
                return Error::from_errno(cat("size of slot ", slot_.name, " (", path, ")"));
            if (capacity == 0 || dev < capacity) capacity = dev;
        } else if (!S_ISREG(sb.st_mode)) {
            return Error::msg(cat("slot ", slot_.name, " (", path, ") is neither a block device nor a file"));
        }
        if (capacity != 0 && image_.size > capacity)
            return Error::msg(cat("the image (", image_.size, " bytes) does not fit slot ", slot_.name, " (", capacity,
                                  " bytes)"));
        auto text = util::read_file(state_path_, kMaxState);
        if (text) {
            auto point = img::parse_resume_state(*text, image_.digest, image_.size);
            if (point) {
                offset_ = persisted_ = kicked_ = point->offset;
                hash_ = std::move(point->hash);
            } else {
                util::log::warn("slot ", slot_.name, ": ignoring resume state (", point.error().message(),
                                "), starting over");
            }
        }
        TRY(advance_to_checkpoint());
        checkpoint_fd_ = TRY_CTX(util::open_file(checkpoint_path(), O_RDWR | O_CREAT | O_CLOEXEC, 0644),
                                 cat("install checkpoint of slot ", slot_.name));
        checkpointed_ = offset_;
        return util::ok();
    }

    uint64_t offset() const override { return offset_; }

    Status append(std::string_view data) override {
        if (offset_ + data.size() > image_.size)
            return Error::msg(cat("the source sent more than the image's ", image_.size, " bytes"));
        size_t done = 0;
        while (done < data.size()) {
            ssize_t n = ::pwrite(fd_.get(), data.data() + done, data.size() - done, static_cast<off_t>(offset_ + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                return Error::from_errno(cat("write slot ", slot_.name, " at byte ", offset_ + done));
            }
            done += static_cast<size_t>(n);
        }
        hash_->update(data);
        offset_ += data.size();
        // Writeback starts now, while the download goes on, so the next
        // persist's fdatasync finds little left to write.
        if (offset_ - kicked_ >= kWritebackBytes) {
            (void)::sync_file_range(fd_.get(), static_cast<off_t>(kicked_), static_cast<off_t>(offset_ - kicked_),
                                    SYNC_FILE_RANGE_WRITE);
            kicked_ = offset_;
        }
        if (offset_ - persisted_ >= opts_.persist_bytes) TRY(persist());
        else if (offset_ - checkpointed_ >= kCheckpointBytes) TRY(checkpoint());
        if (opts_.progress) opts_.progress(offset_, image_.size);
        return util::ok();
    }

    /// The data first, then the state naming it; the synced range leaves
    /// the page cache (the device's memory is small).
    Status persist() override {
        if (offset_ == persisted_) return util::ok();
        if (::fdatasync(fd_.get()) != 0) return Error::from_errno(cat("fdatasync slot ", slot_.name));
        (void)::posix_fadvise(fd_.get(), static_cast<off_t>(persisted_), static_cast<off_t>(offset_ - persisted_),
                              POSIX_FADV_DONTNEED);
        TRY(util::failpoint("slot.persist"));
        TRY_CTX(util::atomic_write_file(state_path_, img::resume_state(image_.digest, image_.size, offset_, *hash_)),
                cat("save the install state of slot ", slot_.name));
        persisted_ = checkpointed_ = offset_;
        return util::ok();
    }

    /// All bytes are in: checks the digest, syncs, reads the slot back and
    /// hashes it. Any mismatch forgets the resume state (the next install
    /// starts over).
    Status finish() {
        if (offset_ != image_.size)
            return Error::msg(cat("the source ended at byte ", offset_, " of ", image_.size));
        img::Digest got = hash_->finish();
        if (!(got == image_.digest)) {
            forget();
            return Error::msg(cat("the image has digest ", got.str(), ", expected ", image_.digest.str()));
        }
        if (::fdatasync(fd_.get()) != 0) return Error::from_errno(cat("fdatasync slot ", slot_.name));
        TRY(util::failpoint("slot.written"));
        if (opts_.before_readback) opts_.before_readback(slot_.where.path());
        auto back = read_back();
        if (!back) return std::move(back).error();
        if (!(*back == image_.digest)) {
            forget();
            return Error::msg(cat("slot ", slot_.name, " read back with digest ", back->str(), ", written ",
                                  image_.digest.str(), ": the medium does not hold what was written"));
        }
        forget();
        return util::ok();
    }

private:
    /// The first image.size bytes of the slot, read from the medium.
    Result<img::Digest> read_back() {
        (void)::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_DONTNEED);
        img::Sha256 h;
        std::unique_ptr<char[]> buf(new char[kBuffer]);
        uint64_t off = 0;
        while (off < image_.size) {
            size_t want = static_cast<size_t>(std::min<uint64_t>(kBuffer, image_.size - off));
            ssize_t n = ::pread(fd_.get(), buf.get(), want, static_cast<off_t>(off));
            if (n < 0) {
                if (errno == EINTR) continue;
                return Error::from_errno(cat("read back slot ", slot_.name, " at byte ", off));
            }
            if (n == 0) return Error::msg(cat("slot ", slot_.name, " ended at byte ", off, " when read back"));
            h.update(buf.get(), static_cast<size_t>(n));
            (void)::posix_fadvise(fd_.get(), static_cast<off_t>(off), n, POSIX_FADV_DONTNEED);
            off += static_cast<uint64_t>(n);
        }
        return h.finish();
    }

    void forget() {
        (void)::unlink(state_path_.c_str());
        (void)::unlink(checkpoint_path().c_str());
    }

    std::string checkpoint_path() const { return state_path_ + ".checkpoint"; }

    // Between two persists (fdatasync + atomic state) the offset and hash
    // state are also written every 16 KiB to a checkpoint file, in place and
    // without any sync: cheap, and after a kill (the page cache survives)
    // it saves fetching again all that followed the last persist. It is
    // never trusted as it stands: a resume hashes the slot's bytes from the
    // persisted offset to the checkpoint's and takes the checkpoint only
    // when that reproduces its hash state exactly (after a power cut the
    // bytes may not have reached the medium; then the persisted state wins).
    Status checkpoint() {
        std::string doc = img::resume_state(image_.digest, image_.size, offset_, *hash_);
        if (doc.size() >= kCheckpointSize) return util::ok();
        doc.resize(kCheckpointSize, ' ');
        if (::pwrite(checkpoint_fd_.get(), doc.data(), doc.size(), 0) != static_cast<ssize_t>(doc.size()))
            return Error::from_errno(cat("write the install checkpoint of slot ", slot_.name));
        checkpointed_ = offset_;
        return util::ok();
    }

    Status advance_to_checkpoint() {
        auto text = util::read_file(checkpoint_path(), kMaxState);
        if (!text) return util::ok();
        auto point = img::parse_resume_state(*text, image_.digest, image_.size);
        if (!point || point->offset <= offset_) return util::ok();
        // Hash the slot from the persisted offset to the checkpoint's.
        std::string saved = hash_->save_state();
        img::Sha256 h;
        TRY(h.restore_state(saved));
        std::unique_ptr<char[]> buf(new char[kBuffer]);
        uint64_t off = offset_;
        while (off < point->offset) {
            size_t want = static_cast<size_t>(std::min<uint64_t>(kBuffer, point->offset - off));
            ssize_t n = ::pread(fd_.get(), buf.get(), want, static_cast<off_t>(off));
            if (n <= 0) return util::ok();  // a short slot: the persisted state stands
            h.update(buf.get(), static_cast<size_t>(n));
            off += static_cast<uint64_t>(n);
        }
        if (h.save_state() != point->hash->save_state()) {
            util::log::warn("slot ", slot_.name, ": the install checkpoint at byte ", point->offset,
                            " does not match the slot; resuming at byte ", offset_);
            return util::ok();
        }
        offset_ = point->offset;
        hash_ = std::move(point->hash);
        return util::ok();
    }

    const SlotSpec &slot_;
    const SlotImage &image_;
    std::string state_path_;
    const SlotInstallOptions &opts_;
    util::UniqueFd fd_, checkpoint_fd_;
    uint64_t offset_ = 0, persisted_ = 0, checkpointed_ = 0, kicked_ = 0;
    std::unique_ptr<img::Sha256> hash_ = std::make_unique<img::Sha256>();
};

}  // namespace

Result<const SlotSpec *> inactive_slot(const Board &board, std::string_view booted, std::string_view slot) {
    if (board.slots.empty()) return Error::msg(cat("board ", quote(board.name), " has no slots"));
    if (!slot.empty()) {
        const SlotSpec *s = board.slot(slot);
        if (!s) return Error::msg(cat("no slot ", quote(slot), " on board ", quote(board.name)));
        if (s->name == booted)
            return Error::msg(cat("slot ", s->name, " is the booted slot: an install writes only the inactive slot"));
        return s;
    }
    for (const auto &s : board.slots)
        if (s.name != booted) return &s;
    return Error::msg("no inactive slot");
}

namespace {

/// The common frame of both sources: the target, the bootloader marking it
/// bad, the writer; `feed` delivers the bytes.
template <typename Feed>
Result<SlotInstallStats> install(const Board &board, Bootloader &boot, const std::string &booted,
                                 const std::string &state_dir, const SlotImage &image, std::string_view slot,
                                 const SlotInstallOptions &opts, Feed &&feed) {
    if (booted.empty()) return Error::msg("the booted slot is unknown: refusing to write any slot");
    TRY(img::dynlibs::crypto.load());
    const SlotSpec *target = TRY(inactive_slot(board, booted, slot));
    const std::string what = cat("install ", image.digest.str(), " into slot ", target->name);
    // Whatever the slot held, it is not bootable from the first byte on.
    auto st = TRY_CTX(boot.status(), what);
    if (const SlotBoot *b = st.slot(target->name); b && b->health != SlotHealth::Bad)
        TRY_CTX(boot.mark_bad(target->name), what);
    TRY_CTX(util::mkdir_p(state_dir), what);
    SlotWriter w(*target, image, util::path_join(state_dir, target->name + ".json"), opts);
    TRY_CTX(w.open(), what);
    SlotInstallStats stats;
    stats.slot = target->name;
    stats.resumed_from = w.offset();
    TRY_CTX(feed(w, stats), what);
    TRY_CTX(w.finish(), what);
    return stats;
}

}  // namespace

Result<SlotInstallStats> SlotInstaller::from_file(const std::string &file, SlotImage image, std::string_view slot,
                                                  const SlotInstallOptions &opts) {
    auto src = TRY(util::open_file(file, O_RDONLY | O_CLOEXEC));
    struct stat sb{};
    if (::fstat(src.get(), &sb) != 0) return Error::from_errno(cat("stat ", file));
    if (image.size == 0) image.size = static_cast<uint64_t>(sb.st_size);
    if (static_cast<uint64_t>(sb.st_size) != image.size)
        return Error::msg(cat(file, " has ", sb.st_size, " bytes, expected ", image.size));
    if (image.digest.empty()) {
        image.digest = TRY_CTX(img::Digest::of_fd(src.get()), cat("hash ", file));
        (void)::posix_fadvise(src.get(), 0, 0, POSIX_FADV_DONTNEED);
    }
    return install(board_, boot_, booted_, state_dir_, image, slot, opts,
                   [&](SlotWriter &w, SlotInstallStats &stats) -> Status {
                       std::unique_ptr<char[]> buf(new char[kBuffer]);
                       while (w.offset() < image.size) {
                           size_t want = static_cast<size_t>(std::min<uint64_t>(kBuffer, image.size - w.offset()));
                           ssize_t n = ::pread(src.get(), buf.get(), want, static_cast<off_t>(w.offset()));
                           if (n < 0 && errno == EINTR) continue;
                           if (n < 0) return Error::from_errno(cat("read ", file));
                           if (n == 0) return Error::msg(cat(file, " ended at byte ", w.offset()));
                           TRY(w.append(std::string_view(buf.get(), static_cast<size_t>(n))));
                           stats.received += static_cast<uint64_t>(n);
                       }
                       return util::ok();
                   });
}

Result<SlotInstallStats> SlotInstaller::from_registry(img::Registry &reg, const std::string &repo,
                                                      const SlotImage &image, std::string_view slot,
                                                      const SlotInstallOptions &opts) {
    return install(board_, boot_, booted_, state_dir_, image, slot, opts,
                   [&](SlotWriter &w, SlotInstallStats &stats) -> Status {
                       img::FetchOptions fo;
                       fo.persist_bytes = opts.persist_bytes;
                       fo.persist_ms = 1000;
                       img::FetchStats fs;
                       auto st = img::fetch_into(reg, repo, image.digest, image.size, w, fo, fs);
                       stats.received = fs.downloaded;
                       stats.drops = fs.drops;
                       return st;
                   });
}

}  // namespace ota
