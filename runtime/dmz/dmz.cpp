// berth-dmz: the tiny static program every container process is exec'd
// through (as runc-dmz): execve(argv[0], argv + 1, envp), nothing else.
//
// Why: at the container's final execve the kernel may resolve
// /proc/self/exe (a `#!/proc/self/exe` script, an ELF interpreter pointing
// there) to whatever the execing process runs. Going through this program,
// loaded from a sealed memfd, makes that a few sealed bytes instead of the
// host's berth binary (CVE-2019-5736), at the cost of one exec of a ~1 KiB
// static binary and one page of memory, where re-executing berth itself
// from a copy would cost a full dynamic load (or the whole binary in memory).
//
// Built with -nostdlib -static: no libc, raw syscalls, per architecture.
#include <asm/unistd.h>

namespace {

#if defined(__x86_64__)
long sys3(long n, long a, long b, long c) {
    long ret;
    asm volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
long sys3(long n, long a, long b, long c) {
    register long x8 asm("x8") = n;
    register long x0 asm("x0") = a;
    register long x1 asm("x1") = b;
    register long x2 asm("x2") = c;
    asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
#elif defined(__arm__)
long sys3(long n, long a, long b, long c) {
    register long r7 asm("r7") = n;
    register long r0 asm("r0") = a;
    register long r1 asm("r1") = b;
    register long r2 asm("r2") = c;
    asm volatile("svc 0" : "+r"(r0) : "r"(r7), "r"(r1), "r"(r2) : "memory");
    return r0;
}
#else
#error "berth-dmz: unsupported architecture"
#endif

}  // namespace

extern "C" [[noreturn]] void dmz_main(long *sp) {
    long argc = sp[0];
    char **argv = reinterpret_cast<char **>(sp + 1);
    char **envp = argv + argc + 1;
    if (argc >= 2) sys3(__NR_execve, reinterpret_cast<long>(argv[0]), reinterpret_cast<long>(argv + 1),
                        reinterpret_cast<long>(envp));
    static const char msg[] = "berth-dmz: exec failed\n";
    sys3(__NR_write, 2, reinterpret_cast<long>(msg), sizeof msg - 1);
    for (;;) sys3(__NR_exit, 127, 0, 0);
}

#if defined(__x86_64__)
asm(".globl _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n call dmz_main\n hlt\n");
#elif defined(__aarch64__)
asm(".globl _start\n_start:\n mov x0, sp\n bl dmz_main\n");
#elif defined(__arm__)
asm(".globl _start\n_start:\n mov r0, sp\n bl dmz_main\n");
#endif
