// Placeholder until the runtime behind build::Runner lands (build_run.hpp):
// every RUN step fails with a clear message; the rest of `berth build` works.
#include "build_run.hpp"

namespace cmd {
namespace {

class NoRunner : public build::Runner {
public:
    util::Status run(const build::RunRequest &) override {
        return util::Error::msg("RUN is not available in this build");
    }
};

}  // namespace

std::unique_ptr<build::Runner> make_build_runner(const std::string &) { return std::make_unique<NoRunner>(); }

}  // namespace cmd
