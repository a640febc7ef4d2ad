/* A pipe's reader reads 64 KiB at a time into fresh anonymous memory past
 * what the host can back (vkernel --pool 8), each read asleep before the
 * writer's 64 KiB write comes (the write is handed straight over, its copy
 * posted with the next RUN). When the host has no page for a copy, that
 * write and that read fail (EFAULT) or the read comes back short; both
 * processes go on and say so. Prints "pipeoom ok". */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK 65536
#define TOTAL (16 << 20)

int main(void) {
    int p[2];
    if (pipe(p) != 0) return 1;
    pid_t c = fork();
    if (c < 0) return 2;
    if (c == 0) {
        static char chunk[CHUNK];
        memset(chunk, 'x', CHUNK);
        close(p[0]);
        for (long done = 0; done < TOTAL; done += CHUNK) {
            ssize_t w = write(p[1], chunk, CHUNK);
            if (w != CHUNK) {
                int e = errno;
                printf("pipeoom: write at %ld: %zd (%s)\n", done, w, w < 0 ? strerror(e) : "short");
                fflush(stdout);
                _exit(w < 0 && e == EFAULT ? 0 : 3);
            }
        }
        _exit(0);
    }
    close(p[1]);
    char *buf = mmap(NULL, TOTAL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return 4;
    long got = 0;
    ssize_t r = 0;
    while (got < TOTAL) {
        r = read(p[0], buf + got, CHUNK);
        if (r <= 0) break;
        if (buf[got] != 'x' || buf[got + r - 1] != 'x') return 5;
        got += r;
    }
    int e = errno;
    printf("pipeoom: read %ld bytes, then %zd (%s)\n", got, r, r < 0 ? strerror(e) : "end or short");
    close(p[0]);
    int st;
    if (waitpid(c, &st, 0) != c) return 6;
    if (got == TOTAL) return 7; /* the pool backed it all: nothing was tested */
    if (r < 0 && e != EFAULT) return 8;
    /* The writer ended by itself: EFAULT, or SIGPIPE once the reader left. */
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE)) return 9;
    printf("pipeoom ok\n");
    return 0;
}
