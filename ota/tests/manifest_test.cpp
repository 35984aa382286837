// Unit tests of ota/manifest (filled in with its implementation).
#include <catch2/catch.hpp>

#include "ota/manifest.hpp"
