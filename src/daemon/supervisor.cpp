// Implemented in its own change: the interface is daemon/supervisor.hpp.
#include "daemon/supervisor.hpp"
