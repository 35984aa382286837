// Unit tests of src/daemon/health (filled in with its implementation).
#include <catch2/catch.hpp>

#include "daemon/health.hpp"
