// Implemented in its own change: the interface is daemon/init_system.hpp.
#include "daemon/init_system.hpp"
