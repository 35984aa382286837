// An overlayfs upper directory -> a tree in OCI layer form, in place: a
// whiteout (a 0/0 character device) becomes an empty .wh.<name> file, an
// opaque directory (trusted.overlay.opaque=y, or user.overlay.opaque) gets a
// .wh..wh..opq file and loses the xattr, overlay's own xattrs are dropped.
// This is the layer of a RUN step: its changes only, no tree comparison.
#pragma once

#include <string>

#include "util/result.hpp"

namespace build {

util::Status upper_to_layer_tree(const std::string &upper_dir);

}  // namespace build
