/* Reads a 12 MiB tmpfs file in 1 MiB read()s into fresh anonymous memory
 * the host cannot back (vkernel --pool 8): the reads go on until the pool
 * runs out, and that read fails (EFAULT: its copy to the process went with
 * the next RUN, and the host had no page for it) or comes back short,
 * while the process goes on and can say so. Prints "tmpfsoom ok". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1 << 20)
#define N 12

int main(void) {
    static char chunk[MIB];
    memset(chunk, 'x', MIB);
    int fd = open("/tmp/tmpfsoom", O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0) return 1;
    for (int i = 0; i < N; i++)
        if (write(fd, chunk, MIB) != MIB) return 2;
    lseek(fd, 0, SEEK_SET);
    char *buf = mmap(NULL, (size_t)N * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return 3;
    int i;
    ssize_t r = 0;
    for (i = 0; i < N; i++) {
        r = read(fd, buf + (size_t)i * MIB, MIB);
        if (r != MIB) break;
        if (buf[(size_t)i * MIB] != 'x' || buf[(size_t)i * MIB + MIB - 1] != 'x') return 4;
    }
    int e = errno;
    printf("tmpfsoom: read %d MiB, then %zd (%s)\n", i, r, r < 0 ? strerror(e) : "short");
    if (i == N) return 5; /* the pool backed it all: nothing was tested */
    if (r < 0 && e != EFAULT) return 6;
    printf("tmpfsoom ok\n");
    return 0;
}
