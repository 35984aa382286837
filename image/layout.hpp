// OCI image layout import (a directory or a tar of one, as `skopeo copy
// ... oci:DIR` and umoci write them) and export.
//
// Import copies what one image needs into the store, verifying every blob
// (put_blob_fd hashes it), unpacks its layers, and sets the ref last, so an
// interrupted import leaves no ref to a half-imported image. The layout is
// read through util::open_in_root, so its symlinks cannot point us at host
// files; a tar is first unpacked (safely) into a temporary directory.
#pragma once

#include <string>

#include "image/image.hpp"
#include "image/manifest.hpp"
#include "image/store.hpp"

namespace img {

struct ImportOptions {
    std::string ref_name;          ///< which index.json entry (org.opencontainers.image.ref.name); empty: the only one
    Platform platform = Platform::host();
    bool unpack = true;
    UnpackLimits limits;
};

struct ImportResult {
    Digest top;       ///< the index.json entry's digest
    Digest manifest;  ///< the platform manifest (what the ref names)
    int blobs_stored = 0;
};

/// Imports the layout at `path` (directory or tar) and names it `name` in the store.
util::Result<ImportResult> import_layout(Store &store, const std::string &path, const std::string &name,
                                         const ImportOptions &opts = {});

/// Writes the image `manifest` as an OCI layout directory at `dir` (created).
util::Status export_layout(const Store &store, const Digest &manifest, const std::string &dir, const std::string &ref_name);

}  // namespace img
