// The guest's clocks (#17): CLOCK_MONOTONIC never goes back while
// processes preempt each other for a while, CLOCK_REALTIME follows the
// host's, and the time readings need no exit of their own.
// Usage: clock loop MS | clock calls N
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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
