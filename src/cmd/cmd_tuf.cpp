// `berth tuf`: the TUF client as the TUF conformance suite drives a client
// under test (tuf-conformance's CLIENT-CLI.md):
//
//   berth tuf --metadata-dir DIR init TRUSTED_ROOT
//   berth tuf --metadata-url URL --metadata-dir DIR refresh
//   berth tuf --metadata-url URL --metadata-dir DIR --target-name T [...]
//             --target-dir DIR --target-base-url URL download
//
// Exit 0 on success, 1 on any failure with one line naming it. Metadata is
// kept unversioned in the metadata directory; a target already in the
// target directory with the right length and hashes is not fetched again.
#include "commands.hpp"
#include "ota/tuf/client.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

util::Result<std::string> need(const util::ParsedArgs &a, const char *name) {
    auto v = a.get(name);
    if (!v || v->empty()) return util::Error::msg(util::cat("--", name, " is required"));
    return *v;
}

util::Result<int> run_tuf(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    const std::string &verb = a.positional[0];
    auto dir = TRY(need(a, "metadata-dir"));
    if (verb == "init") {
        if (a.positional.size() != 2) return util::Error::msg("init takes the trusted root file");
        auto bytes = TRY(util::read_file(a.positional[1], 512 << 10));
        TRY_CTX(ota::tuf::init_trusted_root(dir, bytes), "init");
        return 0;
    }
    if (a.positional.size() != 1) return util::Error::msg(util::cat(verb, " takes no arguments"));
    if (verb != "refresh" && verb != "download")
        return util::Error::msg(util::cat("unknown verb ", util::quote(verb), " (init, refresh or download)"));
    ota::tuf::UrlFetcher fetcher;
    auto client = TRY(ota::tuf::Client::open(dir, TRY(need(a, "metadata-url")), fetcher));
    if (verb == "refresh") {
        TRY_CTX(client.refresh(), "refresh");
        return 0;
    }
    auto names = a.get_all("target-name");
    if (names.empty()) return util::Error::msg("--target-name is required");
    auto target_dir = TRY(need(a, "target-dir"));
    auto base = TRY(need(a, "target-base-url"));
    TRY_CTX(client.refresh(), "refresh");
    for (const auto &name : names)
        if (!TRY(client.get_target(name, base, target_dir)))
            return util::Error::msg(util::cat("target ", util::quote(name), ": not found in the repository"));
    return 0;
}

const util::OptSpec kTufOptions[] = {
    {"metadata-dir", 0, true, "DIR", "the trusted metadata (root.json, timestamp.json, ...)"},
    {"metadata-url", 0, true, "URL", "the repository's metadata (http://, https://, file://)"},
    {"target-name", 0, true, "PATH", "a target to download (repeatable)"},
    {"target-dir", 0, true, "DIR", "where downloaded targets go"},
    {"target-base-url", 0, true, "URL", "the repository's targets"},
};

const cli::Command kCommands[] = {
    {"tuf", "--metadata-dir DIR [--metadata-url URL] init ROOT | refresh | download",
     "the TUF client, as the TUF conformance suite drives it (docs/tuf.md)", kTufOptions, 1, 2, false, run_tuf},
};

}  // namespace

std::span<const cli::Command> tuf_commands() { return kCommands; }

}  // namespace cmd
