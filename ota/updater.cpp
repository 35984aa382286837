// Implemented in its own change: the interface is ota/updater.hpp.
#include "ota/updater.hpp"
