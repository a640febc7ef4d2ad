/* N cycles of fork + _exit + waitpid in a static glibc program: what the
 * exit counts of tests/processes.rs measure (glibc's fork, unlike
 * systest's, registers a robust list in the child and clears its tid). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) _exit(0);
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
            printf("FAIL: waitpid\n");
            return 1;
        }
    }
    printf("forked %d\n", n);
    return 0;
}
