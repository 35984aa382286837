// The GRUB backend of the bootloader (bootloader.hpp): GRUB's environment
// block, the file grub-editenv writes and grub.cfg reads with load_env and
// save_env. Its format: "# GRUB Environment Block\n", NAME=VALUE lines (a
// backslash escapes a backslash or a newline), then '#' padding to the
// block's size (1024 bytes). GRUB finds the block by its sectors, so it is
// rewritten in place (same size, one pwrite, fsync), never replaced by a
// rename; a file that does not exist yet is created whole.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "ota/bootloader.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace ota {
namespace {

constexpr std::string_view kHeader = "# GRUB Environment Block\n";
constexpr size_t kBlockSize = 1024;
constexpr size_t kMaxBlock = 64 << 10;

class GrubEnv : public BootEnv {
public:
    explicit GrubEnv(std::string path) : path_(std::move(path)) {}

    util::Result<BootVars> read(const std::vector<std::string> &names) override {
        auto block = util::read_file(path_, kMaxBlock);
        if (!block && block.error().code == ENOENT) return BootVars{};
        return envtext::pick(TRY(parse(TRY(std::move(block)))), names);
    }

    util::Status write(const BootVars &vars) override {
        auto block = util::read_file(path_, kMaxBlock);
        if (!block && block.error().code == ENOENT)
            return util::atomic_write_file(path_, TRY(render(envtext::apply({}, vars), kBlockSize)));
        const std::string old = TRY(std::move(block));
        std::string next = TRY(render(envtext::apply(TRY(parse(old)), vars), old.size()));
        auto fd = TRY(util::open_file(path_, O_WRONLY | O_CLOEXEC));
        ssize_t n = ::pwrite(fd.get(), next.data(), next.size(), 0);
        if (n < 0) return util::Error::from_errno(util::cat("write ", path_));
        if (static_cast<size_t>(n) != next.size()) return util::Error::msg(util::cat("write ", path_, ": short write"));
        if (::fsync(fd.get()) != 0) return util::Error::from_errno(util::cat("fsync ", path_));
        return util::ok();
    }

    std::string describe() const override { return util::cat("GRUB environment block ", path_); }

private:
    util::Result<envtext::Entries> parse(std::string_view block) const {
        if (!block.starts_with(kHeader))
            return util::Error::msg(util::cat(path_, ": not a GRUB environment block (no `# GRUB Environment Block` header)"));
        // The padding follows the last newline.
        std::string_view body = block.substr(kHeader.size());
        body = body.substr(0, body.rfind('\n') == std::string_view::npos ? 0 : body.rfind('\n') + 1);
        return envtext::parse(body).context(path_);
    }

    util::Result<std::string> render(const envtext::Entries &entries, size_t size) const {
        std::string block = std::string(kHeader) + envtext::format(entries);
        if (block.size() > size)
            return util::Error::msg(util::cat(path_, ": the variables need ", block.size(), " bytes, the block has ", size));
        block.resize(size, '#');
        return block;
    }

    std::string path_;
};

}  // namespace

std::unique_ptr<BootEnv> grub_boot_env(std::string grubenv) { return std::make_unique<GrubEnv>(std::move(grubenv)); }

}  // namespace ota
