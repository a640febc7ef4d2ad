/* A pipe stream: a child writes N (argv[1]) 64 KiB chunks, each filled with
 * its number, and the parent reads them back in 64 KiB calls and checks every
 * byte. The test counts its hypercalls per chunk (how often the writer finds
 * its reader asleep in read, the scheduler's doing). Prints
 * "pipestream ok". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK 65536
static unsigned char buf[CHUNK];

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 16;
    int p[2];
    if (pipe(p) != 0) return 1;
    pid_t c = fork();
    if (c < 0) return 2;
    if (c == 0) {
        close(p[0]);
        for (long i = 0; i < n; i++) {
            memset(buf, (int)(i & 0xff), CHUNK);
            if (write(p[1], buf, CHUNK) != CHUNK) _exit(3);
        }
        _exit(0);
    }
    close(p[1]);
    long got = 0;
    for (;;) {
        ssize_t r = read(p[0], buf, CHUNK);
        if (r < 0) return 4;
        if (r == 0) break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != (unsigned char)(((got + i) / CHUNK) & 0xff)) return 5;
        got += r;
    }
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 6;
    if (got != n * CHUNK) return 7;
    printf("pipestream ok\n");
    return 0;
}
