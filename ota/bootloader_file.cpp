// The file backend of the bootloader (bootloader.hpp): the variables as
// NAME=VALUE lines in one small file, replaced by util::atomic_write_file,
// for development boards and the native tests. Nothing boots from it; a
// test or a developer plays the bootloader by editing it.
#include <cerrno>

#include "ota/bootloader.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace ota {
namespace {

constexpr size_t kMaxFile = 64 << 10;

class FileEnv : public BootEnv {
public:
    explicit FileEnv(std::string path) : path_(std::move(path)) {}

    util::Result<BootVars> read(const std::vector<std::string> &names) override {
        return envtext::pick(TRY(entries()), names);
    }

    util::Status write(const BootVars &vars) override {
        auto next = envtext::apply(TRY(entries()), vars);
        return util::atomic_write_file(path_, envtext::format(next));
    }

    std::string describe() const override { return util::cat("state file ", path_); }

private:
    /// A missing file is an empty store (the first mark-good creates it).
    util::Result<envtext::Entries> entries() {
        auto text = util::read_file(path_, kMaxFile);
        if (!text) {
            if (text.error().code == ENOENT) return envtext::Entries{};
            return std::move(text).error();
        }
        return envtext::parse(*text).context(path_);
    }

    std::string path_;
};

}  // namespace

std::unique_ptr<BootEnv> file_boot_env(std::string path) { return std::make_unique<FileEnv>(std::move(path)); }

}  // namespace ota
