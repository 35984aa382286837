// Implemented in its own change: the interface is ota/stage.hpp.
#include "ota/stage.hpp"
