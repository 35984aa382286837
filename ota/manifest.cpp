// Implemented in its own change: the interface is ota/manifest.hpp.
#include "ota/manifest.hpp"
