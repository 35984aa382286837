// Unit tests of ota/stage (filled in with its implementation).
#include <catch2/catch.hpp>

#include "ota/stage.hpp"
