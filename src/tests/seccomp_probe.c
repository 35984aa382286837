/* Runs inside a container (src/tests/run_image_confine_test.sh): tries what
 * the default seccomp profile of image mode must refuse or allow, and prints
 * one line per attempt, "NAME: ok" or "NAME: ERRNO-NAME". Built static by
 * the test so it needs nothing from the image. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

static void report(const char *name, long r) {
    if (r == 0) {
        printf("%s: ok\n", name);
        return;
    }
    int e = errno;
    const char *n = e == EPERM ? "EPERM" : e == ENOSYS ? "ENOSYS" : e == EINVAL ? "EINVAL" : NULL;
    if (n) printf("%s: %s\n", name, n);
    else printf("%s: errno %d (%s)\n", name, e, strerror(e));
}

/* A fork through the raw clone syscall with `flags` (no new stack: the child
 * returns like fork's and exits at once). 0 when the child was created. */
static long raw_clone(unsigned long flags) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid < 0) return -1;
    waitpid((pid_t)pid, NULL, 0);
    return 0;
}

static long clone3_plain(void) {
    uint64_t args[11] = {0}; /* struct clone_args, version 2: exit_signal is args[4] */
    args[4] = SIGCHLD;
    long pid = syscall(SYS_clone3, args, sizeof args);
    if (pid == 0) _exit(0);
    if (pid < 0) return -1;
    waitpid((pid_t)pid, NULL, 0);
    return 0;
}

static long plain_fork(void) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) return -1;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    report("clone-newuser", raw_clone(CLONE_NEWUSER));
    report("clone-newuser-newnet", raw_clone(CLONE_NEWUSER | CLONE_NEWNET));
    report("clone-newns", raw_clone(CLONE_NEWNS));
    report("clone-thread-flags", raw_clone(CLONE_FILES | CLONE_FS));
    report("clone3", clone3_plain());
    report("unshare-newuser", unshare(CLONE_NEWUSER));
    report("fork", plain_fork());
    return 0;
}
