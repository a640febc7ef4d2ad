/* Writes a file of N MiB (argv[1]) in 1 MiB write()s, reads it back in
 * 1 MiB read()s and checks it; then the same through a pipe to a child.
 * The test counts the hypercalls such runs cost. Prints "bigio ok". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1 << 20)

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    const char *path = argc > 2 ? argv[2] : "/tmp/bigio";
    char *buf = malloc(MIB), *back = malloc(MIB);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (!buf || !back || fd < 0) return 1;
    for (int i = 0; i < n; i++) {
        memset(buf, 'a' + i % 26, MIB);
        if (write(fd, buf, MIB) != MIB) return 2;
    }
    lseek(fd, 0, SEEK_SET);
    for (int i = 0; i < n; i++) {
        memset(buf, 'a' + i % 26, MIB);
        if (read(fd, back, MIB) != MIB || memcmp(buf, back, MIB) != 0) return 3;
    }
    close(fd);
    unlink(path);
    /* A pipe: 1 MiB writes, read in 1 MiB reads (each takes what the
     * 64 KiB ring holds). */
    int p[2];
    if (pipe(p) != 0) return 4;
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        for (int i = 0; i < n; i++) {
            memset(buf, 'A' + i % 26, MIB);
            if (write(p[1], buf, MIB) != MIB) _exit(1);
        }
        _exit(0);
    }
    close(p[1]);
    long total = 0;
    ssize_t got;
    while ((got = read(p[0], back, MIB)) > 0) {
        for (ssize_t j = 0; j < got; j++)
            if (back[j] != 'A' + (int)((total + j) / MIB) % 26) return 5;
        total += got;
    }
    int st;
    if (total != (long)n * MIB || waitpid(c, &st, 0) != c || st != 0) return 6;
    printf("bigio ok\n");
    return 0;
}
