// The guest's clocks (#17): CLOCK_MONOTONIC never goes back while
// processes preempt each other for a while, CLOCK_REALTIME follows the
// host's, and the time readings need no exit of their own.
// Usage: clock loop MS | clock calls N | clock cpu N | clock vdso N
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ns(clockid_t c) {
    struct timespec t;
    syscall(SYS_clock_gettime, c, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    long n = atol(argv[2]);
    if (strcmp(argv[1], "cpu") == 0) {
        // CPU time of a busy loop against the wall time it took, then a
        // child's, through every interface that reports them.
        volatile unsigned long x = 0;
        long long w0 = ns(CLOCK_MONOTONIC), c0 = ns(CLOCK_PROCESS_CPUTIME_ID);
        for (long i = 0; i < n; i++) x += i;
        long long wall = ns(CLOCK_MONOTONIC) - w0, cpu = ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
        pid_t c = fork();
        if (c == 0) {
            for (long i = 0; i < n; i++) x += i;
            _exit(0);
        }
        struct rusage child, children, self;
        int st;
        wait4(c, &st, 0, &child);
        getrusage(RUSAGE_CHILDREN, &children);
        getrusage(RUSAGE_SELF, &self);
        struct tms t;
        times(&t);
        long long cu = child.ru_utime.tv_sec * 1000000000LL + child.ru_utime.tv_usec * 1000LL;
        long long chu = children.ru_utime.tv_sec * 1000000000LL + children.ru_utime.tv_usec * 1000LL;
        long long su = self.ru_utime.tv_sec * 1000000000LL + self.ru_utime.tv_usec * 1000LL;
        printf("wall_ns %lld\ncpu_ns %lld\nself_utime_ns %lld\nchild_utime_ns %lld\n"
               "children_utime_ns %lld\ntimes_cutime %ld\n",
               wall, cpu, su, cu, chu, (long)t.tms_cutime);
        return 0;
    }
    if (strcmp(argv[1], "vdso") == 0) {
        // glibc's clock_gettime, gettimeofday and time through the vDSO;
        // the vDSO and its data page in /proc/self/maps; the data page is
        // read-only; without the vDSO the system call still answers.
        unsigned long ehdr = getauxval(AT_SYSINFO_EHDR);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &b);
        long long per = ((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec)) / n;
        struct timeval tv;
        gettimeofday(&tv, NULL);
        long long diff = (long long)time(NULL) - tv.tv_sec;
        char line[256];
        unsigned long vvar = 0;
        int vdso_seen = 0;
        FILE *f = fopen("/proc/self/maps", "r");
        while (f && fgets(line, sizeof line, f)) {
            if (strstr(line, "[vvar]") && !vvar) vvar = strtoul(line, NULL, 16);
            if (strstr(line, "[vdso]")) vdso_seen = 1;
        }
        if (f) fclose(f);
        pid_t c = fork();
        if (c == 0) {
            *(volatile int *)vvar = 1;
            _exit(0);
        }
        int st;
        waitpid(c, &st, 0);
        int vvar_segv = WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
        int vvar_rw = mprotect((void *)vvar, 4096, PROT_READ | PROT_WRITE);
        munmap((void *)ehdr, 4096);
        long long after = ns(CLOCK_REALTIME);
        printf("ehdr %d\nmaps %d\nper_call_ns %lld\ntime_vs_gettimeofday %lld\n"
               "vvar_write_segv %d\nvvar_mprotect_write %d\nsyscall_after_unmap %d\n",
               ehdr != 0, vdso_seen && vvar, per, diff, vvar_segv, vvar_rw, after > 0);
        return 0;
    }
    if (strcmp(argv[1], "calls") == 0) {
        for (long i = 0; i < n; i++) ns(CLOCK_MONOTONIC);
        printf("calls done\n");
        return 0;
    }
    // Two competing processes read the clock for `n` ms, each checking
    // it never goes back; a third sleeps in between.
    long long start = ns(CLOCK_MONOTONIC), start_rt = ns(CLOCK_REALTIME);
    int backwards = 0;
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            long long last = 0;
            int bad = 0;
            while (ns(CLOCK_MONOTONIC) - start < n * 1000000LL) {
                for (volatile int spin = 0; spin < 20000; spin++) {
                }
                long long now = ns(CLOCK_MONOTONIC);
                if (now < last) bad++;
                last = now;
            }
            _exit(bad != 0);
        }
    }
    struct timespec nap = {0, 30000000};
    long long last = 0;
    while (ns(CLOCK_MONOTONIC) - start < n * 1000000LL) {
        nanosleep(&nap, NULL);
        long long now = ns(CLOCK_MONOTONIC);
        if (now < last) backwards++;
        last = now;
    }
    for (int k = 0; k < 2; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) backwards++;
    }
    long long mono = ns(CLOCK_MONOTONIC) - start, rt = ns(CLOCK_REALTIME) - start_rt;
    printf("backwards %d\nmonotonic_elapsed_ns %lld\nrealtime_elapsed_ns %lld\nrealtime_now_ns %lld\n",
           backwards, mono, rt, ns(CLOCK_REALTIME));
    return 0;
}
