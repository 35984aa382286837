// Unit tests of ota/updater (filled in with its implementation).
#include <catch2/catch.hpp>

#include "ota/updater.hpp"
