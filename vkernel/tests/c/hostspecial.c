/* Special files in a host root (tests/hostfs.rs), run as init of
 * `vkernel run --rootfs ROOT`, where ROOT holds
 *
 *   fifo     a FIFO: the guest's own pipe, never opened on the host
 *   null     char 1:3, mem char 1:1 (when the host could make them):
 *            the guest's devices of those numbers, never the host's
 *   hl       a hard link to a file outside ROOT holding "secret\n"
 *
 * Prints what it saw, one line each, for the test to compare; `DEVICES`
 * (argv[1] = 1) says whether null and mem are device nodes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char buf[64] = {0};
    /* A reader that does not wait for a writer (O_NONBLOCK), then a
     * writer (a reader exists, so it does not wait either), as on Linux. */
    int r = open("/fifo", O_RDONLY | O_NONBLOCK);
    int w = open("/fifo", O_WRONLY);
    if (r < 0 || w < 0 || write(w, "via-guest-pipe\n", 15) != 15) {
        printf("fifo failed: errno %d\n", errno);
        return 1;
    }
    /* The host probes the FIFO meanwhile: no reader must exist there. */
    sleep(1);
    ssize_t n = read(r, buf, sizeof buf - 1);
    printf("%.*s", n > 0 ? (int)n : 0, buf);
    close(w);
    close(r);
    if (argc > 1 && strcmp(argv[1], "1") == 0) {
        int fd = open("/null", O_RDWR);
        printf("null: write %zd, read %zd\n", write(fd, "gone", 4), read(fd, buf, sizeof buf));
        close(fd);
        fd = open("/mem", O_RDONLY);
        printf("mem: %s\n", fd < 0 ? "refused" : "opened");
    }
    int fd = open("/hl", O_RDONLY);
    memset(buf, 0, sizeof buf);
    n = read(fd, buf, sizeof buf - 1);
    printf("hl: %s", n > 0 ? buf : "unreadable\n");
    close(fd);
    /* Under --rootfs a write lands in the upper layer. */
    fd = open("/hl", O_WRONLY | O_TRUNC);
    printf("hl write: %zd\n", fd < 0 ? (ssize_t)-1 : write(fd, "changed\n", 8));
    close(fd);
    return 0;
}
