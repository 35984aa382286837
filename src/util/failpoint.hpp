// Failpoints: named places where a test can make berth fail or die.
//
// Every crash-sensitive step (each step of atomic_write_file, each state
// change of the updater) calls failpoint("name"). Normally that is one
// lookup in an empty table. Tests arm failpoints either in-process
// (failpoint_arm) or for the real binary with the environment variable
//   BERTH_FAILPOINTS="atomic_write.rename=error,ota.commit=crash@2"
// `error` makes the step return EIO; `crash` kills the process with SIGKILL,
// as a power cut would; `@N` fires on the N-th hit only.
//
// The environment is read only in test builds (meson -Dtest_hooks=true,
// which defines BERTH_TEST_HOOKS for src/util): as /sbin/init, berth's
// environment comes from the kernel command line, which must not be able to
// make a device fail its updates. The same holds for BERTH_DISABLE_SYSCALLS
// (util/syscalls.hpp).
#pragma once

#include <string_view>

#include "util/result.hpp"

namespace util {

/// Returns an error (or does not return at all) when `name` is armed.
Status failpoint(std::string_view name);

enum class FailAction { Error, Crash };
/// Arms `name` for this process; `nth` = 0 fires on every hit.
void failpoint_arm(std::string_view name, FailAction action, int nth = 0);
void failpoint_clear();

/// True when this build reads BERTH_FAILPOINTS and BERTH_DISABLE_SYSCALLS
/// (`berth version` lists the feature "test-hooks").
bool test_hooks_compiled();

/// getenv(name) in test builds; null otherwise (for overrides a test needs
/// and a device must never take from its kernel command line).
const char *test_hook_env(const char *name);

}  // namespace util
