/* A pipe's writer meeting a reader already asleep in read(): the bytes go
 * straight to the reader (vkernel hands them over without the ring), and
 * what the reader's buffer cannot take stays in the pipe, in order; a
 * reader with room left takes more from a writer asleep in write(). The
 * same checks pass natively. Then N (argv[1]) one-byte ping-pong rounds,
 * whose hypercalls the test counts. Prints "pipehandoff ok". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* The child reads `first` bytes at `at` (it sleeps there: the parent writes
 * only after a pause), then the rest into a whole buffer, and checks them. */
static int reader(int fd, char *at, size_t first, size_t total) {
    char rest[256];
    ssize_t a = read(fd, at, first);
    if (a != (ssize_t)first) return 10;
    for (size_t i = 0; i < first; i++)
        if (at[i] != (char)i) return 11;
    ssize_t b = read(fd, rest, sizeof rest);
    if (b != (ssize_t)(total - first)) return 12;
    for (ssize_t i = 0; i < b; i++)
        if (rest[i] != (char)(first + i)) return 13;
    return 0;
}

static int handoff(size_t first, int near_hole) {
    int p[2];
    if (pipe(p) != 0) return 1;
    char *buf = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return 2;
    char *at = buf;
    if (near_hole) {
        /* The reader's buffer ends `first` bytes before a hole: its read
         * of more takes `first` bytes and stops there. */
        munmap(buf + 4096, 4096);
        at = buf + 4096 - first;
    }
    pid_t c = fork();
    if (c == 0) {
        close(p[1]);
        _exit(reader(p[0], at, first, 100));
    }
    close(p[0]);
    char out[100];
    for (int i = 0; i < 100; i++) out[i] = (char)i;
    pause_ms(30);
    if (write(p[1], out, 100) != 100) return 3;
    int st;
    if (waitpid(c, &st, 0) != c) return 4;
    close(p[1]);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 5;
}

/* A writer asleep in a 200 KiB write (the 64 KiB ring is full) and a
 * reader with a larger buffer that comes later: however the reads split
 * it (vkernel's reader takes the rest straight from the sleeping writer),
 * every byte arrives once, in order, and the write returns all of it. */
static int sleeping_writer(void) {
    enum { LEN = 200 * 1024 };
    int p[2];
    if (pipe(p) != 0) return 1;
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        static unsigned char out[LEN];
        for (int i = 0; i < LEN; i++) out[i] = (unsigned char)(i * 7 + i / 4096);
        _exit(write(p[1], out, LEN) == LEN ? 0 : 20);
    }
    close(p[1]);
    pause_ms(30);
    static unsigned char in[256 * 1024];
    long got = 0;
    ssize_t n;
    while ((n = read(p[0], in + got, sizeof in - got)) > 0) got += n;
    if (got != LEN) return 2;
    for (int i = 0; i < LEN; i++)
        if (in[i] != (unsigned char)(i * 7 + i / 4096)) return 3;
    int st;
    if (waitpid(c, &st, 0) != c) return 4;
    close(p[0]);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 5;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    int r;
    if ((r = handoff(10, 0)) != 0) { printf("FAIL short buffer: %d\n", r); return 1; }
    if ((r = handoff(100 - 1, 0)) != 0) { printf("FAIL all but one: %d\n", r); return 1; }
    if ((r = handoff(10, 1)) != 0) { printf("FAIL buffer before a hole: %d\n", r); return 1; }
    if ((r = sleeping_writer()) != 0) { printf("FAIL sleeping writer: %d\n", r); return 1; }
    int a[2], b[2];
    if (pipe(a) != 0 || pipe(b) != 0) return 1;
    pid_t c = fork();
    if (c == 0) {
        close(a[1]);
        close(b[0]);
        unsigned char x;
        while (read(a[0], &x, 1) == 1) {
            x++;
            if (write(b[1], &x, 1) != 1) _exit(1);
        }
        _exit(0);
    }
    close(a[0]);
    close(b[1]);
    for (int i = 0; i < rounds; i++) {
        unsigned char x = (unsigned char)i, y;
        if (write(a[1], &x, 1) != 1 || read(b[0], &y, 1) != 1 || y != (unsigned char)(i + 1)) {
            printf("FAIL ping-pong round %d\n", i);
            return 1;
        }
    }
    close(a[1]);
    int st;
    if (waitpid(c, &st, 0) != c || st != 0) return 1;
    printf("pipehandoff ok\n");
    return 0;
}
