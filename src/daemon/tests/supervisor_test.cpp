// Unit tests of src/daemon/supervisor (filled in with its implementation).
#include <catch2/catch.hpp>

#include "daemon/supervisor.hpp"
