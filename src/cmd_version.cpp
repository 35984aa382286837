// `berth version [--json]`: berth's version, git revision, the version of
// every linked library (as loaded at run time, next to the one built
// against) and the features compiled in.
#include <archive.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/utsname.h>
#include <zlib.h>

#include "commands.hpp"
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

std::vector<Library> libraries() {
    const scmp_version *sv = seccomp_version();
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    std::string archive = archive_version_string();  // "libarchive 3.6.2"
    if (archive.starts_with("libarchive ")) archive.erase(0, 11);
    std::string openssl = OpenSSL_version(OPENSSL_VERSION);  // "OpenSSL 3.0.x 1 Nov 2022"
    if (openssl.starts_with("OpenSSL ")) openssl.erase(0, 8);
    if (auto sp = openssl.find(' '); sp != std::string::npos) openssl.resize(sp);
    return {
        {"libseccomp", util::cat(sv->major, '.', sv->minor, '.', sv->micro), BERTH_LIBSECCOMP_VERSION},
        {"libcap", BERTH_LIBCAP_VERSION, BERTH_LIBCAP_VERSION},
        {"openssl", openssl, BERTH_OPENSSL_VERSION},
        {"libarchive", archive, BERTH_LIBARCHIVE_VERSION},
        {"zlib", zlibVersion(), BERTH_ZLIB_VERSION},
        {"libcurl", cv->version, BERTH_LIBCURL_VERSION},
        {"nlohmann_json",
         util::cat(NLOHMANN_JSON_VERSION_MAJOR, '.', NLOHMANN_JSON_VERSION_MINOR, '.', NLOHMANN_JSON_VERSION_PATCH),
         BERTH_NLOHMANN_JSON_VERSION},
    };
}

std::vector<std::string> features() {
    std::vector<std::string> f = {"seccomp", "capabilities", "cgroup-v1", "cgroup-v2", "cgroup-hybrid",
                                  "sha256", "ecdsa-p256", "gzip"};
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    if (cv->features & CURL_VERSION_SSL) f.push_back("tls");
    if (std::string_view(archive_version_details()).find("libzstd") != std::string_view::npos) f.push_back("zstd");
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
