// Name -> value tables for the spec's symbolic constants (RLIMIT_*, personality
// domains and flags, seccomp actions, operators, architectures and flags).
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace rt {

template <typename T>
struct NamedValue {
    const char *name;
    T value;
};

/// The entry of `table` called `name`, or nullptr.
template <typename T, size_t N>
const NamedValue<T> *lookup_named(const std::array<NamedValue<T>, N> &table, std::string_view name) {
    for (const auto &n : table)
        if (name == n.name) return &n;
    return nullptr;
}

}  // namespace rt
