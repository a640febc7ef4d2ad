/* One small static program, run natively, inside vkernel and under the
 * peers, so one table compares them on one machine in one run.
 * Usage: microbench MODE [N]; prints "MODE ns_per_op=X".
 *   getppid  - N getppid() calls (the cheapest system call round trip)
 *   write    - N 1-byte writes to /dev/null (to fd 2 where there is no
 *              /dev/null, as in vkernel: the console, which the script drops)
 *   touch    - touch every 4 KiB page of a fresh 64 MiB mapping, N times
 *   fork     - N fork() + _exit(0) + waitpid()
 *   exit     - nothing: start-to-exit is timed from outside
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "exit";
    long n = argc > 2 ? atol(argv[2]) : 10000;
    double t0 = now_ns(), ops = n;
    if (!strcmp(mode, "getppid")) {
        for (long i = 0; i < n; i++) getppid();
    } else if (!strcmp(mode, "write")) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd < 0) fd = 2;
        char c = 0;
        t0 = now_ns();
        for (long i = 0; i < n; i++) write(fd, &c, 1);
    } else if (!strcmp(mode, "touch")) {
        size_t len = 64 << 20;
        ops = 0;
        double spent = 0;
        for (long r = 0; r < n; r++) {
            char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) { perror("mmap"); return 1; }
            double t = now_ns();
            for (size_t off = 0; off < len; off += 4096) p[off] = 1;
            spent += now_ns() - t;
            ops += len / 4096;
            munmap(p, len);
        }
        printf("%s ns_per_op=%.0f\n", mode, spent / ops);
        return 0;
    } else if (!strcmp(mode, "fork")) {
        for (long i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid == 0) _exit(0);
            if (pid < 0) { perror("fork"); return 1; }
            int st;
            waitpid(pid, &st, 0);
        }
    } else if (!strcmp(mode, "exit")) {
        return 0;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("%s ns_per_op=%.0f\n", mode, (now_ns() - t0) / ops);
    return 0;
}
