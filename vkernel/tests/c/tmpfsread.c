/* Writes a tmpfs file of N MiB (argv[1]) in 1 MiB write()s, then reads it
 * back twice in 1 MiB read()s and checks every byte. The test counts the
 * hypercalls per MiB (a read's copy to the process goes with the next RUN
 * on pmap=host). Prints "tmpfsread ok". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1 << 20)

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    char *buf = malloc(MIB), *back = malloc(MIB);
    int fd = open("/tmp/tmpfsread", O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (!buf || !back || fd < 0) return 1;
    for (int i = 0; i < n; i++) {
        memset(buf, 'a' + i % 26, MIB);
        if (write(fd, buf, MIB) != MIB) return 2;
    }
    for (int pass = 0; pass < 2; pass++) {
        lseek(fd, 0, SEEK_SET);
        for (int i = 0; i < n; i++) {
            memset(buf, 'a' + i % 26, MIB);
            if (read(fd, back, MIB) != MIB || memcmp(buf, back, MIB) != 0) return 3;
        }
    }
    if (read(fd, back, MIB) != 0) return 4;
    close(fd);
    unlink("/tmp/tmpfsread");
    printf("tmpfsread ok\n");
    return 0;
}
