// Implemented in its own change: the interface is daemon/watchdog.hpp.
#include "daemon/watchdog.hpp"
