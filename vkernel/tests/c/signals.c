// Signals and process groups (#14), checked against Linux: the same
// binary runs natively first, then in the guest (both pmaps). Prints
// "ok - ..." per check, "FAIL - ..." on a mismatch, and "N failed".
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static volatile sig_atomic_t hits, last_sig, last_code, last_pid, nested, depth;
static volatile long last_value;
static volatile uintptr_t last_addr;
static volatile int on_alt;
static sigjmp_buf jump;

static void on_info(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    hits++;
    last_sig = sig;
    last_code = si->si_code;
    last_pid = si->si_pid;
    last_value = si->si_value.sival_int;
}

static void count(int sig) { (void)sig; hits++; }

static void clobber(int sig) {
    (void)sig;
    hits++;
    // Wreck the registers the interrupted code holds values in.
    __asm__ volatile("pxor %%xmm0, %%xmm0\n pxor %%xmm7, %%xmm7\n pxor %%xmm15, %%xmm15\n"
                     "xor %%ebx, %%ebx\n xor %%r12d, %%r12d\n xor %%r15d, %%r15d"
                     ::: "xmm0", "xmm7", "xmm15", "rbx", "r12", "r15");
    volatile double d = 1.0;
    for (int i = 0; i < 10; i++) d = d * 3.5 + 1.0;
}

static void fault_jump(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    last_sig = sig;
    last_code = si->si_code;
    last_addr = (uintptr_t)si->si_addr;
    siglongjmp(jump, 1);
}

static void where_am_i(int sig) {
    (void)sig;
    int local;
    stack_t ss;
    sigaltstack(NULL, &ss);
    on_alt = (ss.ss_flags & SS_ONSTACK) && (char *)&local >= (char *)ss.ss_sp &&
             (char *)&local < (char *)ss.ss_sp + ss.ss_size;
    hits++;
}

static volatile sig_atomic_t calls;
static void nest(int sig) {
    calls++;
    depth++;
    if (depth > nested) nested = depth;
    if (calls < 3) raise(sig);
    depth--;
}

static int install(int sig, void (*h)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

static int install_info(int sig, void (*h)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = flags | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

static void unblock_all(void) {
    sigset_t s;
    sigemptyset(&s);
    sigprocmask(SIG_SETMASK, &s, NULL);
}

// Runs `f` in a child; returns its wait status.
static int in_child(void (*f)(void)) {
    pid_t c = fork();
    if (c == 0) {
        f();
        _exit(0);
    }
    int st = 0;
    waitpid(c, &st, 0);
    return st;
}

static void handler_and_siginfo(void) {
    hits = 0;
    install_info(SIGUSR1, on_info, 0);
    kill(getpid(), SIGUSR1);
    CHECK(hits == 1 && last_sig == SIGUSR1 && last_code == SI_USER && last_pid == getpid(),
          "a handler runs with its siginfo (SI_USER, si_pid)");
    hits = 0;
    syscall(SYS_tgkill, getpid(), getpid(), SIGUSR1);
    CHECK(hits == 1 && last_code == SI_TKILL, "tgkill: si_code SI_TKILL");
}

static void registers_survive(void) {
    install(SIGUSR1, clobber, 0);
    hits = 0;
    uint64_t x0 = 0x1111222233334444, x7 = 0x5555666677778888, x15 = 0x9999aaaabbbbcccc;
    uint64_t o0, o7, o15, obx, or12, or15;
    long nr = SYS_kill, pid = getpid(), sig = SIGUSR1;
    __asm__ volatile(
        "movq %[x0], %%xmm0\n movq %[x7], %%xmm7\n movq %[x15], %%xmm15\n"
        "mov $0xb0b0, %%ebx\n mov $0x1212, %%r12d\n mov $0x1515, %%r15d\n"
        "mov %[nr], %%rax\n mov %[pid], %%rdi\n mov %[sig], %%rsi\n syscall\n"
        "movq %%xmm0, %[o0]\n movq %%xmm7, %[o7]\n movq %%xmm15, %[o15]\n"
        "mov %%rbx, %[obx]\n mov %%r12, %[or12]\n mov %%r15, %[or15]\n"
        : [o0] "=r"(o0), [o7] "=r"(o7), [o15] "=r"(o15), [obx] "=r"(obx), [or12] "=r"(or12),
          [or15] "=r"(or15)
        : [x0] "r"(x0), [x7] "r"(x7), [x15] "r"(x15), [nr] "r"(nr), [pid] "r"(pid),
          [sig] "r"(sig)
        : "rax", "rdi", "rsi", "rcx", "r11", "rbx", "r12", "r15", "xmm0", "xmm7", "xmm15",
          "memory");
    CHECK(hits == 1 && o0 == x0 && o7 == x7 && o15 == x15 && obx == 0xb0b0 && or12 == 0x1212 &&
              or15 == 0x1515,
          "general and SIMD registers are intact after a handler that clobbered them");
}

static void masks(void) {
    install(SIGUSR1, count, 0);
    hits = 0;
    sigset_t s, old, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, &old);
    raise(SIGUSR1);
    raise(SIGUSR1);
    sigpending(&pend);
    CHECK(hits == 0 && sigismember(&pend, SIGUSR1), "a blocked signal stays pending");
    sigprocmask(SIG_SETMASK, &old, NULL);
    CHECK(hits == 1, "unblocking delivers it, once (standard signals merge)");
    sigset_t cur;
    sigemptyset(&s);
    sigaddset(&s, SIGKILL);
    sigaddset(&s, SIGSTOP);
    sigprocmask(SIG_BLOCK, &s, NULL);
    sigprocmask(SIG_BLOCK, NULL, &cur);
    CHECK(!sigismember(&cur, SIGKILL) && !sigismember(&cur, SIGSTOP),
          "SIGKILL and SIGSTOP cannot be blocked");
    errno = 0;
    CHECK(syscall(SYS_rt_sigprocmask, 99, &s, NULL, 8) == -1 && errno == EINVAL,
          "rt_sigprocmask: a bad how is EINVAL");
    CHECK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &s, NULL, 4) == -1 && errno == EINVAL,
          "rt_sigprocmask: a bad sigsetsize is EINVAL");
}

static void realtime_queue(void) {
    install_info(SIGRTMIN, on_info, 0);
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &s, &old);
    for (int i = 1; i <= 3; i++) sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = i});
    hits = 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
    CHECK(hits == 3 && last_value == 3 && last_code == SI_QUEUE,
          "real-time signals queue, with their values, in order");
}

static int rfd[2];
static void writer_later(void) {
    usleep(300000);
    write(rfd[1], "x", 1);
}

static void interrupted_calls(void) {
    char c;
    // Without SA_RESTART: EINTR.
    pipe(rfd);
    pid_t w = fork();
    if (w == 0) {
        writer_later();
        _exit(0);
    }
    install(SIGALRM, count, 0);
    hits = 0;
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    errno = 0;
    ssize_t n = read(rfd[0], &c, 1);
    CHECK(n == -1 && errno == EINTR && hits == 1, "a pipe read interrupted by a handler is EINTR");
    waitpid(w, NULL, 0);
    close(rfd[0]);
    close(rfd[1]);
    // With SA_RESTART: the read goes on and gets the byte.
    pipe(rfd);
    w = fork();
    if (w == 0) {
        writer_later();
        _exit(0);
    }
    install(SIGALRM, count, SA_RESTART);
    hits = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    n = read(rfd[0], &c, 1);
    CHECK(n == 1 && c == 'x' && hits == 1, "with SA_RESTART the read restarts and completes");
    waitpid(w, NULL, 0);
    close(rfd[0]);
    close(rfd[1]);
    // nanosleep: EINTR with the time left, even with SA_RESTART.
    hits = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec req = {1, 0}, rem = {0, 0};
    errno = 0;
    int r = nanosleep(&req, &rem);
    CHECK(r == -1 && errno == EINTR && hits == 1 && rem.tv_sec == 0 && rem.tv_nsec > 500000000,
          "nanosleep interrupted: EINTR and the time left (%ld ns)", rem.tv_nsec);
    // wait4 with SA_RESTART restarts.
    w = fork();
    if (w == 0) {
        usleep(200000);
        _exit(7);
    }
    hits = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    int st = 0;
    pid_t got = waitpid(w, &st, 0);
    CHECK(got == w && WIFEXITED(st) && WEXITSTATUS(st) == 7 && hits == 1,
          "waitpid restarts after a SA_RESTART handler");
    // poll never restarts.
    pipe(rfd);
    hits = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    errno = 0;
    struct timespec ts = {2, 0};
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(rfd[0], &rs);
    r = pselect(rfd[0] + 1, &rs, NULL, NULL, &ts, NULL);
    CHECK(r == -1 && errno == EINTR && hits == 1, "pselect is EINTR even with SA_RESTART");
    close(rfd[0]);
    close(rfd[1]);
}

static void faults(void) {
    install_info(SIGSEGV, fault_jump, 0);
    char *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    last_sig = 0;
    if (sigsetjmp(jump, 1) == 0) {
        *(volatile char *)(none + 8) = 1;
    }
    CHECK(last_sig == SIGSEGV && last_code == SEGV_ACCERR && last_addr == (uintptr_t)(none + 8),
          "SIGSEGV on a PROT_NONE page: SEGV_ACCERR and si_addr, siglongjmp out");
    munmap(none, 4096);
    last_sig = 0;
    if (sigsetjmp(jump, 1) == 0) {
        *(volatile char *)(none + 16) = 1;
    }
    CHECK(last_sig == SIGSEGV && last_code == SEGV_MAPERR && last_addr == (uintptr_t)(none + 16),
          "SIGSEGV on an unmapped page: SEGV_MAPERR");
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    CHECK(!sigismember(&cur, SIGSEGV), "siglongjmp restored the mask");
    install_info(SIGFPE, fault_jump, 0);
    last_sig = 0;
    if (sigsetjmp(jump, 1) == 0) {
        int z = 0, q = 7;
        __asm__ volatile("cltd\n idivl %1" : "+a"(q) : "r"(z) : "rdx");
    }
    CHECK(last_sig == SIGFPE && last_code == FPE_INTDIV, "SIGFPE: FPE_INTDIV (%d %d)", (int)last_sig,
          (int)last_code);
    install_info(SIGILL, fault_jump, 0);
    last_sig = 0;
    if (sigsetjmp(jump, 1) == 0) {
        __asm__ volatile("ud2");
    }
    CHECK(last_sig == SIGILL && last_code == ILL_ILLOPN, "SIGILL from ud2: ILL_ILLOPN");
    install(SIGSEGV, SIG_DFL, 0);
    install(SIGFPE, SIG_DFL, 0);
    install(SIGILL, SIG_DFL, 0);
    // A blocked fault signal still kills (it cannot be blocked).
    int st = in_child(({
        void f(void) {
            sigset_t s;
            sigemptyset(&s);
            sigaddset(&s, SIGSEGV);
            sigprocmask(SIG_BLOCK, &s, NULL);
            *(volatile int *)0 = 1;
        }
        f;
    }));
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "a blocked SIGSEGV from a fault still kills");
}

static void altstack(void) {
    stack_t ss = {.ss_sp = malloc(SIGSTKSZ * 2), .ss_size = SIGSTKSZ * 2, .ss_flags = 0};
    CHECK(sigaltstack(&ss, NULL) == 0, "sigaltstack installs a stack");
    install(SIGUSR2, where_am_i, SA_ONSTACK);
    hits = on_alt = 0;
    raise(SIGUSR2);
    CHECK(hits == 1 && on_alt, "SA_ONSTACK runs the handler on it, SS_ONSTACK inside");
    install(SIGUSR2, where_am_i, 0);
    hits = on_alt = 0;
    raise(SIGUSR2);
    CHECK(hits == 1 && !on_alt, "without SA_ONSTACK it does not");
    stack_t small = {.ss_sp = ss.ss_sp, .ss_size = 100, .ss_flags = 0};
    CHECK(sigaltstack(&small, NULL) == -1 && errno == ENOMEM, "a stack below MINSIGSTKSZ: ENOMEM");
    stack_t bad = {.ss_sp = ss.ss_sp, .ss_size = SIGSTKSZ, .ss_flags = 0x40};
    CHECK(sigaltstack(&bad, NULL) == -1 && errno == EINVAL, "unknown flags: EINVAL");
    stack_t off = {.ss_flags = SS_DISABLE}, now;
    sigaltstack(&off, NULL);
    sigaltstack(NULL, &now);
    CHECK(now.ss_flags == SS_DISABLE, "SS_DISABLE turns it off");
}

static void flags(void) {
    int st = in_child(({
        void f(void) {
            hits = 0;
            install(SIGUSR1, count, SA_RESETHAND);
            raise(SIGUSR1);
            if (hits != 1) _exit(1);
            raise(SIGUSR1);
            _exit(2);
        }
        f;
    }));
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1, "SA_RESETHAND: the second one kills");
    install(SIGUSR1, nest, SA_NODEFER);
    nested = depth = calls = 0;
    raise(SIGUSR1);
    CHECK(nested == 3, "SA_NODEFER: the handler nests (%d deep)", (int)nested);
    install(SIGUSR1, nest, 0);
    nested = depth = calls = 0;
    raise(SIGUSR1);
    CHECK(nested == 1 && calls == 3, "without it the signal waits until the handler returns (%d)",
          (int)nested);
    errno = 0;
    CHECK(install(SIGKILL, count, 0) == -1 && errno == EINVAL, "sigaction(SIGKILL): EINVAL");
    CHECK(syscall(SYS_rt_sigaction, 65, NULL, NULL, 8) == -1 && errno == EINVAL,
          "sigaction of signal 65: EINVAL");
    CHECK(kill(getpid(), 65) == -1 && errno == EINVAL, "kill with signal 65: EINVAL");
    CHECK(kill(999999, 0) == -1 && errno == ESRCH, "kill of no process: ESRCH");
    CHECK(kill(getpid(), 0) == 0, "kill with signal 0 checks only");
}

static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    hits++;
    last_code = si->si_code;
    last_pid = si->si_pid;
    last_value = si->si_status;
}

static void children(void) {
    install_info(SIGCHLD, on_chld, SA_RESTART);
    hits = 0;
    pid_t c = fork();
    if (c == 0) _exit(5);
    int st;
    waitpid(c, &st, 0);
    CHECK(hits == 1 && last_code == CLD_EXITED && last_pid == c && last_value == 5,
          "SIGCHLD with CLD_EXITED, the pid and status");
    // Stop and continue, seen by waitpid.
    install(SIGCHLD, SIG_DFL, 0);
    c = fork();
    if (c == 0) {
        for (;;) pause();
    }
    kill(c, SIGSTOP);
    pid_t got = waitpid(c, &st, WUNTRACED);
    CHECK(got == c && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "waitpid(WUNTRACED) sees the stop");
    CHECK(waitpid(c, &st, WNOHANG | WUNTRACED) == 0, "a stop is reported once");
    kill(c, SIGCONT);
    got = waitpid(c, &st, WCONTINUED);
    CHECK(got == c && WIFCONTINUED(st), "waitpid(WCONTINUED) sees the continue");
    siginfo_t si;
    memset(&si, 0, sizeof si);
    kill(c, SIGTERM);
    CHECK(waitid(P_PID, c, &si, WEXITED | WNOWAIT) == 0 && si.si_pid == c &&
              si.si_code == CLD_KILLED && si.si_status == SIGTERM,
          "waitid(WNOWAIT) reports the kill and leaves the zombie");
    got = waitpid(c, &st, 0);
    CHECK(got == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "then waitpid reaps it");
    // SIGCHLD ignored: children are reaped by the kernel.
    install(SIGCHLD, SIG_IGN, 0);
    c = fork();
    if (c == 0) _exit(0);
    errno = 0;
    got = waitpid(c, &st, 0);
    CHECK(got == -1 && errno == ECHILD, "with SIGCHLD ignored children leave no zombie");
    install(SIGCHLD, SIG_DFL, 0);
}

static void groups(void) {
    pid_t me = getpid();
    CHECK(getpgid(0) == getpgrp() && getsid(0) == getsid(me), "getpgid/getpgrp/getsid agree");
    int p[2];
    pipe(p);
    pid_t leader = fork();
    if (leader == 0) {
        setpgid(0, 0);
        pid_t g = fork();
        if (g == 0) {
            for (;;) pause();
        }
        write(p[1], &g, sizeof g);
        for (;;) pause();
    }
    pid_t grandchild;
    read(p[0], &grandchild, sizeof grandchild);
    CHECK(getpgid(leader) == leader && getpgid(grandchild) == leader,
          "setpgid(0, 0) makes a group its fork joins");
    CHECK(setpgid(grandchild, 0) == -1 && errno == ESRCH, "setpgid of a non-child: ESRCH");
    CHECK(kill(-leader, SIGTERM) == 0, "kill(-pgid) signals the group");
    int st;
    waitpid(leader, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "the group leader died of it");
    usleep(100000);
    // Gone, or a zombie not yet reaped by whoever adopted it (in the
    // guest: this process, init).
    char path[64], line[256] = "";
    snprintf(path, sizeof path, "/proc/%d/stat", grandchild);
    FILE *f = fopen(path, "r");
    if (f) {
        fgets(line, sizeof line, f);
        fclose(f);
    }
    char *close_paren = strrchr(line, ')');
    CHECK(!f || (close_paren && close_paren[2] == 'Z'), "and so did the rest of the group");
    waitpid(grandchild, NULL, WNOHANG);
    pid_t c = fork();
    if (c == 0) {
        pid_t sid = setsid();
        int ok = sid == getpid() && getpgrp() == getpid() && getsid(0) == getpid();
        // Now it leads a group: a second setsid is EPERM.
        ok = ok && setsid() == -1 && errno == EPERM;
        _exit(ok ? 0 : 1);
    }
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "setsid: a new session and group; again (a group leader): EPERM");
    close(p[0]);
    close(p[1]);
}

static void usr1_to_parent(void) {
    usleep(100000);
    kill(getppid(), SIGUSR1);
}

static void waiting(void) {
    install(SIGUSR1, count, 0);
    sigset_t block, empty, after;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    hits = 0;
    pid_t c = fork();
    if (c == 0) {
        usr1_to_parent();
        _exit(0);
    }
    sigemptyset(&empty);
    errno = 0;
    int r = sigsuspend(&empty);
    sigprocmask(SIG_BLOCK, NULL, &after);
    CHECK(r == -1 && errno == EINTR && hits == 1 && sigismember(&after, SIGUSR1),
          "sigsuspend: the handler runs, EINTR, the old mask is back");
    waitpid(c, NULL, 0);
    // A signal already pending when sigsuspend lets it in: at once.
    hits = 0;
    raise(SIGUSR1);
    errno = 0;
    r = sigsuspend(&empty);
    CHECK(r == -1 && errno == EINTR && hits == 1,
          "sigsuspend with the signal already pending returns at once");
    // sigtimedwait takes a blocked signal without its handler.
    hits = 0;
    c = fork();
    if (c == 0) {
        usr1_to_parent();
        _exit(0);
    }
    siginfo_t si;
    struct timespec two = {2, 0};
    r = sigtimedwait(&block, &si, &two);
    CHECK(r == SIGUSR1 && si.si_pid == c && hits == 0, "sigtimedwait returns the signal, no handler");
    waitpid(c, NULL, 0);
    struct timespec brief = {0, 20000000};
    errno = 0;
    r = sigtimedwait(&block, &si, &brief);
    CHECK(r == -1 && errno == EAGAIN, "sigtimedwait times out: EAGAIN");
    unblock_all();
    // pause ends with a handler.
    c = fork();
    if (c == 0) {
        usr1_to_parent();
        _exit(0);
    }
    hits = 0;
    errno = 0;
    r = pause();
    CHECK(r == -1 && errno == EINTR && hits == 1, "pause: EINTR after the handler");
    waitpid(c, NULL, 0);
}

static void timers(void) {
    CHECK(alarm(5) == 0, "alarm: nothing was set");
    CHECK(alarm(0) == 5, "alarm(0) cancels and says what was left");
    install(SIGALRM, count, 0);
    hits = 0;
    struct itimerval it = {{0, 20000}, {0, 20000}}, cur;
    setitimer(ITIMER_REAL, &it, NULL);
    while (hits < 3) pause();
    getitimer(ITIMER_REAL, &cur);
    CHECK(hits == 3 && cur.it_interval.tv_usec == 20000, "a periodic ITIMER_REAL fires again");
    struct itimerval zero = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &zero, NULL);
    getitimer(ITIMER_REAL, &cur);
    CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0, "and stops when disarmed");
    CHECK(setitimer(ITIMER_REAL, &(struct itimerval){{0, 0}, {0, 1000000}}, NULL) == -1 &&
              errno == EINVAL,
          "setitimer with 1000000 usec: EINVAL");
}

static void pipes(void) {
    int p[2];
    pipe(p);
    close(p[0]);
    install(SIGPIPE, SIG_IGN, 0);
    errno = 0;
    CHECK(write(p[1], "x", 1) == -1 && errno == EPIPE, "SIGPIPE ignored: the write is EPIPE");
    install(SIGPIPE, SIG_DFL, 0);
    int st = in_child(({
        void f(void) {
            int q[2];
            pipe(q);
            close(q[0]);
            write(q[1], "x", 1);
            _exit(3);
        }
        f;
    }));
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE, "by default the writer dies of SIGPIPE");
    close(p[1]);
}

static void hostile(void) {
    // Garbage instead of a signal frame: killed with SIGSEGV.
    int st = in_child(({
        void f(void) {
            static char junk[4096];
            memset(junk, 0xff, sizeof junk);
            __asm__ volatile("lea %0, %%rsp\n mov %1, %%eax\n syscall" ::"m"(junk[2048]),
                             "i"(SYS_rt_sigreturn));
        }
        f;
    }));
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "rt_sigreturn of garbage: SIGSEGV (%#x)", st);
    // A handler at a kernel address.
    st = in_child(({
        void f(void) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = (void (*)(int))0xffff800000001000ul;
            sigaction(SIGUSR1, &sa, NULL);
            raise(SIGUSR1);
        }
        f;
    }));
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "a handler in kernel space: SIGSEGV");
    // A stack pointer at the top of the user range when the signal comes.
    st = in_child(({
        void f(void) {
            install(SIGUSR1, count, 0);
            __asm__ volatile("mov $0x7ffffffffff8, %%rsp\n mov %0, %%edi\n mov %1, %%esi\n"
                             "mov %2, %%eax\n syscall\n ud2" ::"r"(getpid()),
                             "i"(SIGUSR1), "i"(SYS_kill));
        }
        f;
    }));
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "no room for the frame: SIGSEGV");
    // A handler that returns from a fault it did not fix faults again;
    // with SA_RESETHAND the second time kills.
    st = in_child(({
        void f(void) {
            install(SIGSEGV, count, SA_RESETHAND);
            *(volatile int *)8 = 1;
        }
        f;
    }));
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "a fault the handler did not fix re-faults");
}

static int death_pipe[2];
static void tell_death(int sig) {
    (void)sig;
    write(death_pipe[1], "d", 1);
    // Ends here: the signal may come before the pause below, which would
    // then wait for ever (an orphan holding the test's stdout open).
    _exit(0);
}

static void prctls(void) {
    char name[16] = "";
    CHECK(prctl(PR_SET_NAME, "sig-test-name-long") == 0 && prctl(PR_GET_NAME, name) == 0 &&
              strcmp(name, "sig-test-name-l") == 0,
          "PR_SET_NAME keeps 15 bytes, PR_GET_NAME reads them (%s)", name);
    char comm[32] = "";
    FILE *f = fopen("/proc/self/comm", "r");
    if (f) {
        fgets(comm, sizeof comm, f);
        fclose(f);
    }
    CHECK(strcmp(comm, "sig-test-name-l\n") == 0, "/proc/self/comm shows it");
    CHECK(prctl(PR_GET_DUMPABLE) == 1, "PR_GET_DUMPABLE: 1");
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1,
          "PR_SET_NO_NEW_PRIVS sticks");
    CHECK(prctl(PR_SET_PDEATHSIG, 99) == -1 && errno == EINVAL, "PR_SET_PDEATHSIG 99: EINVAL");
    // A grandchild asks for SIGUSR2 when its parent dies, then the parent
    // exits: the grandchild's handler says so through a pipe.
    pipe(death_pipe);
    pid_t a = fork();
    if (a == 0) {
        int ready[2];
        pipe(ready);
        pid_t b = fork();
        if (b == 0) {
            install(SIGUSR2, tell_death, 0);
            signal(SIGALRM, SIG_DFL);
            alarm(10); // never outlive the test
            prctl(PR_SET_PDEATHSIG, SIGUSR2);
            int got = 0;
            prctl(PR_GET_PDEATHSIG, &got);
            write(ready[1], &got, sizeof got);
            pause();
            _exit(0);
        }
        int got = 0;
        read(ready[0], &got, sizeof got);
        _exit(got == SIGUSR2 ? 0 : 1);
    }
    int st;
    waitpid(a, &st, 0);
    struct timeval tv = {2, 0};
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(death_pipe[0], &rs);
    char c = 0;
    int ready = select(death_pipe[0] + 1, &rs, NULL, NULL, &tv);
    if (ready == 1) read(death_pipe[0], &c, 1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && c == 'd',
          "PR_SET_PDEATHSIG: the orphan gets its signal when the parent dies");
    usleep(50000);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    close(death_pipe[0]);
    close(death_pipe[1]);
}

static void fpu_between_processes(void) {
    pid_t c = fork();
    double seed = c == 0 ? 1.0 : 2.0;
    int bad = 0;
    for (int i = 0; i < 300; i++) {
        register double r asm("xmm7") = seed * 3.0;
        long a = SYS_sched_yield;
        __asm__ volatile("syscall" : "+a"(a), "+x"(r) : : "rcx", "r11", "memory");
        if (r != seed * 3.0) bad++;
    }
    if (c == 0) _exit(bad != 0);
    int st;
    waitpid(c, &st, 0);
    CHECK(bad == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "each process keeps its own SIMD registers across switches");
}

static void signalfds(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGUSR2);
    sigaddset(&m, SIGRTMIN);
    sigset_t old;
    sigprocmask(SIG_BLOCK, &m, &old);
    int fd = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
    CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "signalfd(-1, USR1|USR2|RTMIN, NONBLOCK|CLOEXEC)");
    struct signalfd_siginfo si[4];
    CHECK(read(fd, si, sizeof si) == -1 && errno == EAGAIN, "nothing pending: EAGAIN");
    struct pollfd p = {fd, POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 0, "poll: not readable");
    kill(getpid(), SIGUSR1);
    union sigval v = {.sival_int = 4242};
    sigqueue(getpid(), SIGRTMIN, v);
    sigqueue(getpid(), SIGRTMIN, v);
    CHECK(poll(&p, 1, 0) == 1 && (p.revents & POLLIN), "poll: readable with a signal pending");
    CHECK(read(fd, si, 100) == -1 && errno == EINVAL, "a read shorter than one record: EINVAL");
    ssize_t n = read(fd, si, sizeof si);
    CHECK(n == 3 * (ssize_t)sizeof si[0], "three records in one read (%zd)", n);
    CHECK(si[0].ssi_signo == SIGUSR1 && si[0].ssi_code == SI_USER && si[0].ssi_pid == (uint32_t)getpid(),
          "SIGUSR1 from kill: code, pid");
    CHECK(si[1].ssi_signo == (uint32_t)SIGRTMIN && si[1].ssi_code == SI_QUEUE && si[1].ssi_int == 4242 &&
              si[2].ssi_signo == (uint32_t)SIGRTMIN,
          "both queued SIGRTMIN with their value");
    sigset_t pend;
    sigpending(&pend);
    CHECK(!sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGRTMIN), "read took them off the pending set");
    // A new mask for the same signalfd; signals outside it stay pending.
    sigset_t only2;
    sigemptyset(&only2);
    sigaddset(&only2, SIGUSR2);
    CHECK(signalfd(fd, &only2, 0) == fd, "signalfd(fd, USR2) changes its mask");
    kill(getpid(), SIGUSR1);
    CHECK(read(fd, si, sizeof si) == -1 && errno == EAGAIN, "SIGUSR1 is no longer read");
    sigpending(&pend);
    CHECK(sigismember(&pend, SIGUSR1), "and stays pending");
    sigwaitinfo(&m, NULL);
    // A blocking read waits for a child's signal.
    int bfd = signalfd(-1, &only2, 0);
    pid_t parent = getpid(), c = fork();
    if (c == 0) {
        usleep(20000);
        kill(parent, SIGUSR2);
        _exit(0);
    }
    CHECK(read(bfd, si, sizeof si) == sizeof si[0] && si[0].ssi_signo == SIGUSR2 && si[0].ssi_pid == (uint32_t)c,
          "a blocking read returns the child's SIGUSR2");
    waitpid(c, NULL, 0);
    // SIGCHLD's fields.
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int cfd = signalfd(-1, &chld, 0);
    c = fork();
    if (c == 0) {
        _exit(7);
    }
    CHECK(read(cfd, si, sizeof si) == sizeof si[0] && si[0].ssi_signo == SIGCHLD && si[0].ssi_code == CLD_EXITED &&
              si[0].ssi_pid == (uint32_t)c && si[0].ssi_status == 7,
          "SIGCHLD: CLD_EXITED, pid, status");
    waitpid(c, NULL, 0);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    int bad = signalfd(-1, &m, 0x10);
    CHECK(bad == -1 && errno == EINVAL, "bad flags: EINVAL");
    CHECK(syscall(SYS_signalfd4, -1, &m, 4, 0) == -1 && errno == EINVAL, "sizemask 4: EINVAL");
    int pp[2];
    pipe(pp);
    CHECK(signalfd(pp[0], &m, 0) == -1 && errno == EINVAL, "a pipe as the signalfd: EINVAL");
    close(pp[0]);
    close(pp[1]);
    close(fd);
    close(bfd);
    close(cfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    handler_and_siginfo();
    registers_survive();
    masks();
    realtime_queue();
    interrupted_calls();
    faults();
    altstack();
    flags();
    children();
    groups();
    waiting();
    timers();
    pipes();
    hostile();
    prctls();
    fpu_between_processes();
    signalfds();
    printf("%d failed\n", failed);
    return failed != 0;
}
