#!/bin/sh
# Reports a runtime unit-test binary as skipped in cross builds (exit 77 is
# meson's "skipped"). Those tests load seccomp filters, open ptys, create
# cgroups and namespaces and fork children that use them: qemu-user runs the
# ARM code on the host kernel through its own syscall translation, which does
# not emulate seccomp filters (they would apply to qemu itself), ptys' ioctls
# or /proc/self views faithfully. They run natively, and on ARM kernels in
# qemu-system.
echo "skipped: $1 needs the real kernel (seccomp, ptys, cgroups, namespaces), which qemu-user does not emulate"
exit 77
