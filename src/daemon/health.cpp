// Implemented in its own change: the interface is daemon/health.hpp.
#include "daemon/health.hpp"
