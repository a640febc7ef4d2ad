/* The scheduler's run-on (a process keeps the CPU after a call that did not
 * block) must still share it. argv[1]:
 *   hog   - the child counts getppid() calls in shared memory forever; the
 *           parent makes 20000 getppid() calls (far more than a time slice
 *           of them) and the child must have made some meanwhile: a process
 *           whose calls never block gives way when its slice ends.
 *   yield - the child counts sched_yield() calls; the parent makes 100
 *           sched_yield() calls (much less than a slice) and the child must
 *           have run after most of them: sched_yield gives way at once.
 * Prints "runon ok". (Natively, on two CPUs, the yield case need not hold:
 * the child may not have started before the parent is done.) */
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int yield = argc > 1 && strcmp(argv[1], "yield") == 0;
    volatile long *count = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (count == MAP_FAILED) return 1;
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
