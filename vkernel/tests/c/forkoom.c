/* fork of a process holding MIB (argv[1]) MiB of written anonymous
 * memory: prints how the child ended. With pmap=host the host copies
 * the memory at fork; when its pool cannot, the child is killed with
 * SIGKILL before it runs (the copy is made with the child's first run),
 * as Linux's OOM killer may kill a child fork made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 8;
    size_t len = mib << 20;
    unsigned char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        printf("FAIL mmap\n");
        return 1;
    }
    memset(p, 0x5a, len);
    int status = -1;
    pid_t c = fork();
    if (c == 0) {
        /* The child sees the parent's memory. */
        _exit(p[len - 1] == 0x5a ? 0 : 3);
    }
    if (c < 0) {
        printf("fork failed: %d\n", c);
        return 1;
    }
    if (waitpid(c, &status, 0) != c) {
        printf("FAIL waitpid\n");
        return 1;
    }
    if (WIFEXITED(status))
        printf("child exited %d\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("child killed by signal %d\n", WTERMSIG(status));
    /* The parent goes on, its memory intact, and forks again. */
    munmap(p, len);
    c = fork();
    if (c == 0)
        _exit(0);
    waitpid(c, &status, 0);
    printf("second fork: %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "FAIL");
    return 0;
}
