/* The scheduler's run-on (a process keeps the CPU after a call that did not
 * block) must still share it. argv[1]:
 *   hog   - the child counts getppid() calls in shared memory forever; the
 *           parent makes 20000 getppid() calls (far more than a time slice
 *           of them) and the child must have made some meanwhile: a process
 *           whose calls never block gives way when its slice ends.
 *   yield - the child counts sched_yield() calls; the parent makes 100
 *           sched_yield() calls (much less than a slice) and the child must
 *           have run after most of them: sched_yield gives way at once.
 *   sleep - the child sleeps 5 ms twenty times and records how late each
 *           sleep ended; the parent makes getppid() calls until it is
 *           done. The median lateness must stay under 3 ms: a process
 *           running on gives way once a sleep's deadline has passed, not
 *           only when its 10 ms slice ends (which would make it 5 ms).
 * Prints "runon ok". (Natively, on two CPUs, the yield case need not hold:
 * the child may not have started before the parent is done.) */
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLEEPS 20

static long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* The sleep mode: shared[0] is the child's "done", shared[1..] its
 * lateness per sleep, in microseconds. */
static int sleep_mode(volatile long *shared) {
    pid_t c = fork();
    if (c < 0) return 2;
    if (c == 0) {
        for (int i = 0; i < SLEEPS; i++) {
            struct timespec d = {0, 5000000};
            long t0 = now_us();
            nanosleep(&d, NULL);
            shared[1 + i] = now_us() - t0 - 5000;
        }
        shared[0] = 1;
        _exit(0);
    }
    while (!shared[0])
        syscall(SYS_getppid);
    waitpid(c, NULL, 0);
    long late[SLEEPS];
    for (int i = 0; i < SLEEPS; i++) late[i] = shared[1 + i];
    qsort(late, SLEEPS, sizeof late[0], cmp_long);
    printf("sleeps ended late by %ld us (median), %ld us (most)\n", late[SLEEPS / 2],
           late[SLEEPS - 1]);
    if (late[SLEEPS / 2] >= 3000) return 4;
    printf("runon ok\n");
    return 0;
}

int main(int argc, char **argv) {
    int yield = argc > 1 && strcmp(argv[1], "yield") == 0;
    volatile long *count = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (count == MAP_FAILED) return 1;
    if (argc > 1 && strcmp(argv[1], "sleep") == 0) return sleep_mode(count);
    pid_t c = fork();
    if (c < 0) return 2;
    if (c == 0) {
        for (;;) {
            if (yield)
                sched_yield();
            else
                syscall(SYS_getppid);
            (*count)++;
        }
    }
    /* The child is runnable from here: a round gives it its turn. */
    long calls = yield ? 100 : 20000;
    for (long i = 0; i < calls; i++) {
        if (yield)
            sched_yield();
        else
            syscall(SYS_getppid);
    }
    long seen = *count;
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    printf("child made %ld calls while the parent made %ld\n", seen, calls);
    if (yield ? seen < calls / 2 : seen == 0) return 3;
    printf("runon ok\n");
    return 0;
}
