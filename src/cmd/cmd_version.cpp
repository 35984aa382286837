// `berth version [--json]`: berth's version, git revision, the version of
// every library (as loaded at run time, next to the one built against; the
// image libraries are opened here as `berth image` opens them) and the
// features compiled in.
#include <archive.h>
#include <openssl/crypto.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/utsname.h>
#include <zlib.h>

#include <optional>

#include "commands.hpp"
#include "image/dynlibs.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"
#include "version_gen.hpp"

namespace cmd {
namespace {

struct Library {
    const char *name;
    std::string version;  ///< as loaded at run time
    const char *built;    ///< as built against
};

/// "not loadable: ..." when a library opened on demand is missing.
std::optional<std::string> missing(util::DynLib &lib) {
    if (auto st = lib.load(); !st) return st.error().message();
    return std::nullopt;
}

std::vector<Library> libraries() {
    const scmp_version *sv = seccomp_version();
    std::vector<Library> out = {
        {"libseccomp", util::cat(sv->major, '.', sv->minor, '.', sv->micro), BERTH_LIBSECCOMP_VERSION},
        {"libcap", BERTH_LIBCAP_VERSION, BERTH_LIBCAP_VERSION},
    };
    // image/'s libraries: opened here, as an image command would open them.
    auto add = [&](const char *name, util::DynLib &lib, const char *built, auto loaded) {
        if (auto err = missing(lib)) out.push_back({name, *err, built});
        else out.push_back({name, loaded(), built});
    };
    add("openssl", img::dynlibs::crypto, BERTH_OPENSSL_VERSION, [] {
        std::string v = OpenSSL_version(OPENSSL_VERSION);  // "OpenSSL 3.0.x 1 Nov 2022"
        if (v.starts_with("OpenSSL ")) v.erase(0, 8);
        if (auto sp = v.find(' '); sp != std::string::npos) v.resize(sp);
        return v;
    });
    add("libarchive", img::dynlibs::archive, BERTH_LIBARCHIVE_VERSION, [] {
        std::string v = archive_version_string();  // "libarchive 3.6.2"
        if (v.starts_with("libarchive ")) v.erase(0, 11);
        return v;
    });
    add("zlib", img::dynlibs::zlib, BERTH_ZLIB_VERSION, [] { return std::string(zlibVersion()); });
    out.push_back({"nlohmann_json",
                   util::cat(NLOHMANN_JSON_VERSION_MAJOR, '.', NLOHMANN_JSON_VERSION_MINOR, '.', NLOHMANN_JSON_VERSION_PATCH),
                   BERTH_NLOHMANN_JSON_VERSION});
    return out;
}

std::vector<std::string> features() {
    std::vector<std::string> f = {"seccomp", "capabilities", "cgroup-v1", "cgroup-v2", "cgroup-hybrid",
                                  "sha256", "ecdsa-p256", "gzip"};
    if (!missing(img::dynlibs::ssl)) f.push_back("tls");
    if (!missing(img::dynlibs::archive) &&
        std::string_view(archive_version_details()).find("libzstd") != std::string_view::npos)
        f.push_back("zstd");
    if (util::test_hooks_compiled()) f.push_back("test-hooks");
    return f;
}

const char *arch() {
#if defined(__aarch64__)
    return "arm64";
#elif defined(__arm__)
    return "arm";
#elif defined(__x86_64__)
    return "amd64";
#else
    return "unknown";
#endif
}

util::Result<int> run_version(const cli::GlobalOptions &, const util::ParsedArgs &args) {
    if (args.has("json")) {
        util::json::Value v = util::json::Value::object();
        v["version"] = BERTH_VERSION;
        v["gitRevision"] = BERTH_GIT_REVISION;
        v["architecture"] = arch();
        auto libs = util::json::Value::object();
        for (const auto &l : libraries()) {
            libs[l.name] = util::json::Value::object();
            libs[l.name]["version"] = l.version;
            libs[l.name]["builtAgainst"] = l.built;
        }
        v["libraries"] = libs;
        v["features"] = features();
        TRY(util::write_all(1, util::json::dump(v, 2) + "\n"));
        return 0;
    }
    std::string out = util::cat("berth ", BERTH_VERSION, "\ngit revision: ", BERTH_GIT_REVISION, "\narchitecture: ", arch(),
                                "\nlibraries:\n");
    for (const auto &l : libraries()) out += util::cat("  ", l.name, ' ', l.version, " (built against ", l.built, ")\n");
    out += util::cat("features: ", util::join(features(), " "), '\n');
    TRY(util::write_all(1, out));
    return 0;
}

const util::OptSpec kVersionOptions[] = {{"json", 0, false, nullptr, "print as JSON"}};

const cli::Command kCommands[] = {
    {"version", "[--json]", "print berth's version, its libraries and features", kVersionOptions, 0, 0, false,
     run_version},
};

}  // namespace

std::span<const cli::Command> version_commands() { return kCommands; }

}  // namespace cmd
