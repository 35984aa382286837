// Unit tests of src/daemon/init_system (filled in with its implementation).
#include <catch2/catch.hpp>

#include "daemon/init_system.hpp"
