// ota::revision_to_clean_up; see stored_revision.hpp.
#include "ota/stored_revision.hpp"

#include <algorithm>
#include <string>

#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace ota {

namespace {

constexpr size_t kManifestMax = 4 * 1024 * 1024;  ///< as the updater reads a stored revision

void add_name(Revision &rev, std::string name) {
    if (name.empty() || name.find('/') != std::string::npos) return;
    if (std::any_of(rev.containers.begin(), rev.containers.end(), [&](const auto &c) { return c.name == name; })) return;
    ContainerSpec c;
    c.name = std::move(name);
    rev.containers.push_back(std::move(c));
}

}  // namespace

Revision revision_to_clean_up(const util::DeviceRoot &root, uint64_t version) {
    Revision rev;
    rev.version = version;
    const std::string path = util::path_join(root.revisions(), util::cat(version, ".json"));
    if (auto text = util::read_file(path, kManifestMax))
        if (auto doc = util::json::parse(*text, path); doc && doc->is_object() && doc->contains("containers"))
            if (const auto &cs = (*doc)["containers"]; cs.is_array())
                for (const auto &c : cs)
                    if (c.is_object() && c.contains("name") && c["name"].is_string()) add_name(rev, c["name"].get<std::string>());
    const std::string suffix = util::cat(".r", version);
    if (auto names = util::list_dir(root.containers()))
        for (const auto &n : *names)
            if (n.size() > suffix.size() && n.ends_with(suffix)) add_name(rev, n.substr(0, n.size() - suffix.size()));
    return rev;
}

}  // namespace ota
