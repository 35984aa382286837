// The U-Boot backend of the bootloader (bootloader.hpp): U-Boot's
// environment through libubootenv (the library of fw_printenv/fw_setenv),
// so the environment's location, size and redundant copies come from the
// board's fw_env.config exactly as those tools read them, and a store
// writes the inactive copy and flips the flags (a power cut leaves the old
// copy or the new one). libubootenv is opened on first use (util/dynlib.hpp
// says why); berth neither links it nor needs its header to build.
#include <cerrno>
#include <cstdlib>

#include "ota/bootloader.hpp"
#include "util/dynlib.hpp"
#include "util/strings.hpp"

namespace ota {
namespace {

// libuboot.h (libubootenv 0.3), the calls berth makes.
struct uboot_ctx;
using InitializeFn = int (*)(uboot_ctx **, void *);
using ReadConfigFn = int (*)(uboot_ctx *, const char *);
using OpenFn = int (*)(uboot_ctx *);
using CloseFn = void (*)(uboot_ctx *);
using ExitFn = void (*)(uboot_ctx *);
using GetEnvFn = char *(*)(uboot_ctx *, const char *);
using SetEnvFn = int (*)(uboot_ctx *, const char *, const char *);
using StoreFn = int (*)(uboot_ctx *);

constexpr const char *kSymbols[] = {"libuboot_initialize", "libuboot_read_config", "libuboot_open",
                                    "libuboot_close",      "libuboot_exit",        "libuboot_get_env",
                                    "libuboot_set_env",    "libuboot_env_store"};
util::DynLib libubootenv("libubootenv.so.0", "libubootenv (libubootenv.so.0)", kSymbols);

template <typename F>
F fn(const char *name) {
    return reinterpret_cast<F>(libubootenv.symbol(name));
}

/// libubootenv returns -errno (or -1).
util::Error lib_error(int rc, std::string what) {
    return util::Error::with_code(rc < -1 ? -rc : EIO, std::move(what));
}

/// One opened environment: initialize, read_config, open; closed at the end.
class Session {
public:
    ~Session() {
        if (!ctx_) return;
        if (open_) fn<CloseFn>("libuboot_close")(ctx_);
        fn<ExitFn>("libuboot_exit")(ctx_);
    }

    util::Status open(const std::string &config) {
        TRY(libubootenv.load());
        int rc = fn<InitializeFn>("libuboot_initialize")(&ctx_, nullptr);
        if (rc < 0) return lib_error(rc, "libuboot_initialize");
        rc = fn<ReadConfigFn>("libuboot_read_config")(ctx_, config.c_str());
        if (rc < 0) return lib_error(rc, util::cat("read ", config));
        rc = fn<OpenFn>("libuboot_open")(ctx_);
        if (rc < 0) return lib_error(rc, "open the environment (no copy with a valid CRC?)");
        open_ = true;
        return util::ok();
    }

    uboot_ctx *ctx() const { return ctx_; }

private:
    uboot_ctx *ctx_ = nullptr;
    bool open_ = false;
};

class UBootEnv : public BootEnv {
public:
    explicit UBootEnv(std::string config) : config_(std::move(config)) {}

    util::Result<BootVars> read(const std::vector<std::string> &names) override {
        Session s;
        TRY(s.open(config_));
        BootVars out;
        for (const auto &n : names) {
            char *v = fn<GetEnvFn>("libuboot_get_env")(s.ctx(), n.c_str());
            if (!v) continue;
            out[n] = v;
            std::free(v);
        }
        return out;
    }

    util::Status write(const BootVars &vars) override {
        Session s;
        TRY(s.open(config_));
        for (const auto &[name, value] : vars) {
            int rc = fn<SetEnvFn>("libuboot_set_env")(s.ctx(), name.c_str(), value.empty() ? nullptr : value.c_str());
            if (rc < 0) return lib_error(rc, util::cat("set ", name));
        }
        int rc = fn<StoreFn>("libuboot_env_store")(s.ctx());
        if (rc < 0) return lib_error(rc, "store the environment");
        return util::ok();
    }

    std::string describe() const override { return util::cat("U-Boot environment of ", config_); }

private:
    std::string config_;
};

}  // namespace

std::unique_ptr<BootEnv> uboot_boot_env(std::string fw_env_config) {
    return std::make_unique<UBootEnv>(std::move(fw_env_config));
}

}  // namespace ota
