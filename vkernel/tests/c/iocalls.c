// A pipe's capacity (F_GETPIPE_SZ, F_SETPIPE_SZ), preadv2/pwritev2 with
// their per-call flags, fallocate on tmpfs (/dev/shm), memfd_create,
// O_TMPFILE, get_mempolicy/set_mempolicy, splice, tee and vmsplice, checked against Linux: the same binary runs
// natively first, then in the guest. Prints "ok - ..." per check,
// "FAIL - ..." on a mismatch, and "N failed".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static void pipe_size(void) {
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    CHECK(fcntl(p[0], F_GETPIPE_SZ) == 65536 && fcntl(p[1], F_GETPIPE_SZ) == 65536,
          "F_GETPIPE_SZ: 64 KiB on both ends");
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 100000) == 131072 && fcntl(p[0], F_GETPIPE_SZ) == 131072,
          "F_SETPIPE_SZ 100000: rounded up to 128 KiB, for both ends");
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 1) == 4096, "F_SETPIPE_SZ 1: one page");
    char buf[8192];
    memset(buf, 'p', sizeof buf);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    CHECK(write(p[1], buf, sizeof buf) == 4096, "a one-page pipe takes 4096 bytes");
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 1) == 4096, "shrinking to what it holds is fine");
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 65536) == 65536, "grown while holding data");
    CHECK(write(p[1], buf, sizeof buf) == 8192, "and it takes more");
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) == -1 && errno == EBUSY, "smaller than what it holds: EBUSY");
    char in[16384];
    CHECK(read(p[0], in, sizeof in) == 12288 && in[0] == 'p' && in[12287] == 'p', "the bytes survive resizing");
    int f = open("/proc/self/exe", O_RDONLY);
    CHECK(fcntl(f, F_GETPIPE_SZ) == -1 && errno == EBADF, "F_GETPIPE_SZ of a file: EBADF");
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    CHECK(fcntl(sv[0], F_GETPIPE_SZ) == -1 && errno == EBADF, "of a socket: EBADF");
    close(f);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

static void rw2(void) {
    char path[] = "/tmp/rw2XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "a file");
    struct iovec w[2] = {{"hello ", 6}, {"world", 5}};
    CHECK(pwritev2(fd, w, 2, 0, 0) == 11, "pwritev2 at 0");
    CHECK(lseek(fd, 0, SEEK_CUR) == 0, "the position stays");
    char a[6] = {0}, b[6] = {0};
    struct iovec r[2] = {{a, 5}, {b, 5}};
    CHECK(preadv2(fd, r, 2, 1, RWF_HIPRI) == 10 && memcmp(a, "ello ", 5) == 0 && memcmp(b, "world", 5) == 0,
          "preadv2 at 1 (RWF_HIPRI)");
    CHECK(preadv2(fd, r, 2, -1, 0) == 10 && lseek(fd, 0, SEEK_CUR) == 10, "offset -1: the file position, moved");
    CHECK(pwritev2(fd, w, 1, 0, RWF_APPEND) == 6, "RWF_APPEND with an offset");
    struct stat st;
    fstat(fd, &st);
    CHECK(st.st_size == 17 && lseek(fd, 0, SEEK_CUR) == 10, "went to the end; the position stays");
    lseek(fd, 0, SEEK_SET);
    CHECK(pwritev2(fd, w + 1, 1, -1, RWF_APPEND | RWF_DSYNC) == 5 && lseek(fd, 0, SEEK_CUR) == 22,
          "RWF_APPEND at offset -1: the position follows the end (RWF_DSYNC)");
    CHECK(pwritev2(fd, w, 1, 0, 0x1000) == -1 && errno == EOPNOTSUPP, "an unknown flag: EOPNOTSUPP");
    CHECK(preadv2(fd, r, 1, -2, 0) == -1 && errno == EINVAL, "offset -2: EINVAL");
    int p[2];
    pipe(p);
    CHECK(preadv2(p[0], r, 1, -1, RWF_NOWAIT) == -1 && errno == EAGAIN, "RWF_NOWAIT on an empty pipe: EAGAIN");
    CHECK(preadv2(p[0], r, 1, 0, 0) == -1 && errno == ESPIPE, "an offset on a pipe: ESPIPE");
    write(p[1], "x", 1);
    CHECK(preadv2(p[0], r, 1, -1, RWF_NOWAIT) == 1, "with data it reads");
    close(p[0]);
    close(p[1]);
    close(fd);
    unlink(path);
}

static void allocate(void) {
    char path[] = "/dev/shm/fallocXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "a tmpfs file");
    struct stat st;
    CHECK(fallocate(fd, 0, 0, 10000) == 0 && fstat(fd, &st) == 0 && st.st_size == 10000 && st.st_blocks == 24,
          "fallocate 10000 bytes: the size, three pages (%ld blocks)", (long)st.st_blocks);
    CHECK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 8192, 8192) == 0 && fstat(fd, &st) == 0 && st.st_size == 10000 &&
              st.st_blocks == 32,
          "KEEP_SIZE past the end: pages, the same size");
    char page[4096];
    memset(page, 'a', sizeof page);
    for (int i = 0; i < 3; i++)
        pwrite(fd, page, sizeof page, i * 4096);
    char *m = mmap(NULL, 3 * 4096, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED && m[4096] == 'a', "mapped, the middle page reads 'a'");
    CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4000, 4096 + 200) == 0,
          "punch a hole over the middle page and the ends of its neighbours");
    char back[3 * 4096];
    CHECK(pread(fd, back, sizeof back, 0) == sizeof back && back[3999] == 'a' && back[4000] == 0 && back[8295] == 0 &&
              back[8296] == 'a',
          "the hole reads zeros, around it what was written");
    CHECK(m[4096] == 0 && m[4095] == 0 && m[3999] == 'a', "the mapping sees the hole too");
    fstat(fd, &st);
    // (Linux's tmpfs may count the freed page in st_blocks a while yet.)
    CHECK(st.st_size == 12288 && st.st_blocks <= 32, "the size stays (%ld blocks)", (long)st.st_blocks);
    munmap(m, 3 * 4096);
    CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10, 10) == 0 && pread(fd, back, 30, 0) == 30 &&
              back[9] == 'a' && back[10] == 0 && back[19] == 0 && back[20] == 'a',
          "a hole inside one page zeroes just that");
    CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096) == -1 && errno == EOPNOTSUPP,
          "PUNCH_HOLE without KEEP_SIZE: EOPNOTSUPP");
    CHECK(fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4096) == -1 && errno == EOPNOTSUPP, "ZERO_RANGE on tmpfs: EOPNOTSUPP");
    CHECK(fallocate(fd, 0, 0, 0) == -1 && errno == EINVAL, "length 0: EINVAL");
    CHECK(fallocate(fd, 0, -1, 10) == -1 && errno == EINVAL, "offset -1: EINVAL");
    CHECK(fallocate(fd, 0x100, 0, 10) == -1 && errno == EOPNOTSUPP, "an unknown mode: EOPNOTSUPP");
    CHECK(posix_fallocate(fd, 0, 20000) == 0 && fstat(fd, &st) == 0 && st.st_size == 20000, "posix_fallocate");
    int ro = open(path, O_RDONLY);
    CHECK(fallocate(ro, 0, 0, 10) == -1 && errno == EBADF, "a read-only descriptor: EBADF");
    CHECK(fallocate(ro, FALLOC_FL_ZERO_RANGE, 0, 10) == -1 && errno == EBADF, "EBADF before tmpfs's EOPNOTSUPP");
    int p[2];
    pipe(p);
    CHECK(fallocate(p[1], 0, 0, 10) == -1 && errno == ESPIPE, "a pipe: ESPIPE");
    close(p[0]);
    close(p[1]);
    close(ro);
    close(fd);
    unlink(path);
}

static void memfd(void) {
    int fd = memfd_create("vk-test", MFD_CLOEXEC);
    CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "memfd_create(MFD_CLOEXEC)");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0777 && st.st_nlink == 0 &&
              st.st_size == 0,
          "a regular file, mode 0777, no links, empty");
    char link[64] = {0}, proc[32];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    CHECK(readlink(proc, link, sizeof link - 1) > 0 && strcmp(link, "/memfd:vk-test (deleted)") == 0,
          "/proc/self/fd: %s", link);
    CHECK(write(fd, "memory", 6) == 6 && ftruncate(fd, 8192) == 0, "written, grown");
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED && memcmp(m, "memory", 6) == 0, "mapped, it reads what was written");
    if (m != MAP_FAILED) {
        memcpy(m + 4096, "mapped", 6);
        munmap(m, 8192);
    }
    char b[8] = {0};
    CHECK(pread(fd, b, 6, 4096) == 6 && memcmp(b, "mapped", 6) == 0, "a write through the mapping reads back");
    pid_t c = fork();
    if (c == 0) {
        char cb[8] = {0};
        _exit(pread(fd, cb, 6, 0) == 6 && memcmp(cb, "memory", 6) == 0 ? 0 : 1);
    }
    int status;
    waitpid(c, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a child shares it");
    CHECK(fcntl(fd, F_GET_SEALS) == F_SEAL_SEAL, "without MFD_ALLOW_SEALING: sealed against seals");
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == -1 && errno == EPERM, "F_ADD_SEALS: EPERM");
    close(fd);
    char longname[300];
    memset(longname, 'n', sizeof longname);
    longname[250] = 0;
    CHECK(memfd_create(longname, 0) == -1 && errno == EINVAL, "a 250-byte name: EINVAL");
    longname[249] = 0;
    fd = memfd_create(longname, 0);
    CHECK(fd >= 0, "a 249-byte name");
    close(fd);
    CHECK(memfd_create("x", 0x100) == -1 && errno == EINVAL, "an unknown flag: EINVAL");
    CHECK(memfd_create((char *)8, 0) == -1 && errno == EFAULT, "a bad name pointer: EFAULT");
    int p[2];
    pipe(p);
    CHECK(fcntl(p[0], F_GET_SEALS) == -1 && errno == EINVAL, "F_GET_SEALS of a pipe: EINVAL");
    close(p[0]);
    close(p[1]);
}

// O_TMPFILE in /tmp: an unnamed file linkat may name (unless O_EXCL),
// Linux's flag checks, and tmpfile(3) on top of it.
static void tmpfile_flag(void) {
    mode_t old = umask(022);
    int fd = open("/tmp", O_TMPFILE | O_RDWR, 0666);
    CHECK(fd >= 0, "O_TMPFILE in /tmp");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0 && (st.st_mode & 0777) == 0644,
          "a regular file with no link, its mode under the umask");
    char buf[64] = {0};
    CHECK(write(fd, "tmp data", 8) == 8 && pread(fd, buf, 8, 0) == 8 && memcmp(buf, "tmp data", 8) == 0,
          "written and read back");
    char link[64], target[128] = {0};
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    CHECK(n > 0 && strncmp(target, "/tmp/#", 6) == 0 && strstr(target, " (deleted)"),
          "/proc/self/fd names it /tmp/#INO (deleted)");
    unlink("/tmp/vk-named");
    CHECK(linkat(fd, "", AT_FDCWD, "/tmp/vk-named", AT_EMPTY_PATH) == 0, "linkat names it");
    CHECK(stat("/tmp/vk-named", &st) == 0 && st.st_nlink == 1 && st.st_size == 8, "the name holds it");
    CHECK(unlink("/tmp/vk-named") == 0 && linkat(fd, "", AT_FDCWD, "/tmp/vk-named", AT_EMPTY_PATH) == -1 &&
              errno == ENOENT,
          "once named and unlinked again, it cannot be linked: ENOENT");
    close(fd);
    fd = open("/tmp", O_TMPFILE | O_RDWR | O_EXCL, 0600);
    CHECK(fd >= 0 && linkat(fd, "", AT_FDCWD, "/tmp/vk-named", AT_EMPTY_PATH) == -1 && errno == ENOENT,
          "with O_EXCL it can never be linked");
    close(fd);
    fd = open("/tmp/vk-plain", O_CREAT | O_RDWR | O_TRUNC, 0600);
    unlink("/tmp/vk-plain");
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    CHECK(linkat(AT_FDCWD, link, AT_FDCWD, "/tmp/vk-named", AT_SYMLINK_FOLLOW) == -1 && errno == ENOENT,
          "an unlinked ordinary file cannot be linked again: ENOENT");
    close(fd);
    CHECK(open("/tmp", O_TMPFILE | O_RDONLY, 0600) == -1 && errno == EINVAL, "O_TMPFILE read-only: EINVAL");
    CHECK(open("/tmp", O_TMPFILE | O_RDWR | O_CREAT, 0600) == -1 && errno == EINVAL, "with O_CREAT: EINVAL");
    CHECK(open("/tmp/vk-none/x", O_TMPFILE | O_RDWR, 0600) == -1 && errno == ENOENT, "a missing directory: ENOENT");
    close(open("/tmp/vk-file", O_CREAT | O_WRONLY, 0600));
    CHECK(open("/tmp/vk-file", O_TMPFILE | O_RDWR, 0600) == -1 && errno == ENOTDIR, "a file, not a directory: ENOTDIR");
    unlink("/tmp/vk-file");
    CHECK(open("/proc", O_TMPFILE | O_RDWR, 0600) == -1 && errno == EOPNOTSUPP, "in /proc: EOPNOTSUPP");
    FILE *t = tmpfile();
    CHECK(t && fputs("x", t) >= 0 && fflush(t) == 0, "tmpfile(3)");
    if (t)
        fclose(t);
    umask(old);
}

// get_mempolicy and set_mempolicy on one NUMA node, as Linux answers.
static long getmp(int *mode, unsigned long *mask, unsigned long maxnode, void *addr, unsigned long flags) {
    return syscall(SYS_get_mempolicy, mode, mask, maxnode, addr, flags);
}

static void mempolicy(void) {
    int mode = -1;
    unsigned long mask[3];
    CHECK(getmp(&mode, NULL, 0, 0, 0) == 0 && mode == 0, "get_mempolicy: MPOL_DEFAULT");
    memset(mask, 0xff, sizeof mask);
    CHECK(getmp(&mode, mask, 65, 0, 0) == 0 && mask[0] == 0 && mask[1] == ~0UL, "an empty mask, one long for 64 nodes");
    memset(mask, 0xff, sizeof mask);
    CHECK(getmp(&mode, mask, 129, 0, 0) == 0 && mask[0] == 0 && mask[1] == 0 && mask[2] == ~0UL,
          "two longs for 128 nodes");
    memset(mask, 0xff, sizeof mask);
    CHECK(getmp(&mode, mask, 1, 0, 0) == 0 && mask[0] == ~0UL, "maxnode 1: nothing written");
    CHECK(getmp(&mode, mask, 0, 0, 0) == -1 && errno == EINVAL, "maxnode 0 with a mask: EINVAL");
    CHECK(getmp(&mode, mask, 64, 0, 4) == 0 && mask[0] == 1, "MPOL_F_MEMS_ALLOWED: node 0");
    CHECK(getmp(&mode, mask, 64, 0, 8) == -1 && errno == EINVAL, "an unknown flag: EINVAL");
    CHECK(getmp(&mode, NULL, 0, 0, 1) == -1 && errno == EINVAL, "MPOL_F_NODE alone: EINVAL");
    CHECK(getmp(&mode, NULL, 0, 0, 6) == -1 && errno == EINVAL, "MEMS_ALLOWED with ADDR: EINVAL");
    mode = -1;
    CHECK(getmp(&mode, NULL, 0, &mode, 3) == 0 && mode == 0, "MPOL_F_NODE|MPOL_F_ADDR: node 0");
    CHECK(getmp(&mode, NULL, 0, (void *)0x1000, 2) == -1 && errno == EFAULT, "MPOL_F_ADDR unmapped: EFAULT");
    CHECK(getmp((int *)8, NULL, 0, 0, 0) == -1 && errno == EFAULT, "a bad mode pointer: EFAULT");
    mode = -1;
    CHECK(getmp(&mode, mask, 100000, 0, 0) == -1 && errno == EINVAL && mode == 0,
          "a mask over a page: EINVAL, the mode written first");

    // set_mempolicy, read back by get_mempolicy.
    unsigned long one[2] = {1, 0}, two[2] = {2, 0}, none[2] = {0, 0}, far[3] = {1, 1, 0};
#define SETMP(m, mask, maxnode) syscall(SYS_set_mempolicy, (m), (mask), (maxnode))
#define POLICY(want_mode, want_mask)                                                                     \
    (mode = -1, mask[0] = ~0UL, getmp(&mode, mask, 65, 0, 0) == 0 && mode == (want_mode) && mask[0] == (want_mask))
    CHECK(SETMP(2, one, 65) == 0 && POLICY(2, 1), "MPOL_BIND to node 0");
    CHECK(getmp(&mode, NULL, 0, 0, 1) == -1 && errno == EINVAL, "MPOL_F_NODE under BIND: EINVAL");
    pid_t c = fork();
    if (c == 0)
        _exit(POLICY(2, 1) ? 0 : 1);
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a child inherits it");
    CHECK(SETMP(3, one, 65) == 0 && POLICY(3, 1), "MPOL_INTERLEAVE");
    CHECK(getmp(&mode, NULL, 0, 0, 1) == 0 && mode == 0, "MPOL_F_NODE under INTERLEAVE: the next node, 0");
    CHECK(SETMP(1, none, 65) == 0 && POLICY(4, 0), "MPOL_PREFERRED with no nodes is MPOL_LOCAL");
    CHECK(SETMP(2 | (1 << 14), two, 65) == 0 && POLICY(2 | (1 << 14), 2), "RELATIVE_NODES: the mask as given");
    CHECK(SETMP(2 | (1 << 13), one, 65) == 0 && POLICY(2 | (1 << 13), 1), "NUMA_BALANCING with BIND");
    CHECK(SETMP(2, far, 129) == 0 && POLICY(2, 1), "a node past the first long but under MAX_NUMNODES");
    CHECK(SETMP(0, one, 65) == -1 && errno == EINVAL, "MPOL_DEFAULT with nodes: EINVAL");
    CHECK(SETMP(2, none, 65) == -1 && errno == EINVAL, "BIND with no nodes: EINVAL");
    CHECK(SETMP(2, two, 65) == -1 && errno == EINVAL, "BIND to a node that does not exist: EINVAL");
    CHECK(SETMP(2 | (1 << 15), two, 65) == -1 && errno == EINVAL, "STATIC_NODES to none that exist: EINVAL");
    CHECK(SETMP(4, one, 65) == -1 && errno == EINVAL, "MPOL_LOCAL with nodes: EINVAL");
    CHECK(SETMP(7, NULL, 0) == -1 && errno == EINVAL, "an unknown mode: EINVAL");
    CHECK(SETMP(2 | (3 << 14), one, 65) == -1 && errno == EINVAL, "STATIC and RELATIVE: EINVAL");
    CHECK(SETMP(3 | (1 << 13), one, 65) == -1 && errno == EINVAL, "NUMA_BALANCING with INTERLEAVE: EINVAL");
    CHECK(SETMP(2, (unsigned long *)8, 65) == -1 && errno == EFAULT, "a bad mask pointer: EFAULT");
    CHECK(SETMP(2, one, 100000) == -1 && errno == EINVAL, "a mask over a page: EINVAL");
    CHECK(SETMP(0, NULL, 0) == 0 && POLICY(0, 0), "back to MPOL_DEFAULT");
}

// splice between pipes, files and sockets.
static void splicing(void) {
    int p[2], q[2], sv[2];
    pipe(p);
    pipe(q);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    char buf[64] = {0};
    CHECK(splice(p[0], NULL, sv[0], NULL, 0, 0) == 0, "len 0: 0");
    CHECK(splice(p[0], NULL, sv[0], NULL, 10, 0x10) == -1 && errno == EINVAL, "an unknown flag: EINVAL");
    CHECK(splice(sv[0], NULL, sv[1], NULL, 10, 0) == -1 && errno == EINVAL, "no pipe either side: EINVAL");
    CHECK(splice(p[1], NULL, sv[0], NULL, 10, 0) == -1 && errno == EBADF, "from a pipe's write end: EBADF");
    loff_t off = 0;
    CHECK(splice(p[0], &off, sv[0], NULL, 10, 0) == -1 && errno == ESPIPE, "a pipe's offset: ESPIPE");
    CHECK(splice(p[0], NULL, sv[0], NULL, 10, SPLICE_F_NONBLOCK) == -1 && errno == EAGAIN,
          "an empty pipe with SPLICE_F_NONBLOCK: EAGAIN");
    write(p[1], "through a pipe", 14);
    CHECK(splice(p[0], NULL, sv[0], NULL, 100, 0) == 14 && read(sv[1], buf, sizeof buf) == 14 &&
              memcmp(buf, "through a pipe", 14) == 0,
          "pipe to socket");
    write(sv[1], "from a socket", 13);
    CHECK(splice(sv[0], NULL, q[1], NULL, 100, 0) == 13 && read(q[0], buf, sizeof buf) == 13 &&
              memcmp(buf, "from a socket", 13) == 0,
          "socket to pipe");
    write(p[1], "pipe2pipe", 9);
    CHECK(splice(p[0], NULL, q[1], NULL, 4, 0) == 4 && read(q[0], buf, sizeof buf) == 4 && memcmp(buf, "pipe", 4) == 0,
          "pipe to pipe, part of it");
    CHECK(read(p[0], buf, sizeof buf) == 5 && memcmp(buf, "2pipe", 5) == 0, "the rest stays in the first pipe");
    int fd = open("/tmp/vk-splice", O_CREAT | O_RDWR | O_TRUNC, 0600);
    write(fd, "0123456789", 10);
    off = 3;
    CHECK(splice(fd, &off, q[1], NULL, 4, 0) == 4 && off == 7 && lseek(fd, 0, SEEK_CUR) == 10,
          "file at an offset to pipe: the offset moves, the file's does not");
    CHECK(read(q[0], buf, sizeof buf) == 4 && memcmp(buf, "3456", 4) == 0, "the bytes");
    lseek(fd, 1, SEEK_SET);
    CHECK(splice(fd, NULL, q[1], NULL, 2, 0) == 2 && lseek(fd, 0, SEEK_CUR) == 3, "at the file's offset, which moves");
    read(q[0], buf, sizeof buf);
    write(p[1], "ab", 2);
    off = 8;
    CHECK(splice(p[0], NULL, fd, &off, 2, 0) == 2 && off == 10 && pread(fd, buf, 10, 0) == 10 &&
              memcmp(buf, "01234567ab", 10) == 0,
          "pipe to file at an offset");
    int app = open("/tmp/vk-splice", O_WRONLY | O_APPEND);
    write(p[1], "z", 1);
    CHECK(splice(p[0], NULL, app, NULL, 1, 0) == -1 && errno == EINVAL, "to an O_APPEND file: EINVAL");
    read(p[0], buf, 1);
    close(app);
    close(fd);
    unlink("/tmp/vk-splice");
    close(p[1]);
    CHECK(splice(p[0], NULL, sv[0], NULL, 10, 0) == 0, "no writer left: 0");
    close(p[0]);
    close(q[0]);
    CHECK(splice(sv[0], NULL, q[1], NULL, 10, 0) == -1 && errno == EPIPE, "into a pipe no one reads: EPIPE");
    close(q[1]);
    close(sv[0]);
    close(sv[1]);

    // tee copies without taking; vmsplice is a writev or readv of a pipe.
    pipe(p);
    pipe(q);
    write(p[1], "teed", 4);
    CHECK(tee(p[0], q[1], 100, 0) == 4, "tee");
    memset(buf, 0, sizeof buf);
    CHECK(read(q[0], buf, sizeof buf) == 4 && memcmp(buf, "teed", 4) == 0, "the copy arrives");
    CHECK(read(p[0], buf, sizeof buf) == 4, "and the original stays");
    CHECK(tee(p[0], q[1], 10, SPLICE_F_NONBLOCK) == -1 && errno == EAGAIN, "tee of an empty pipe, non-blocking: EAGAIN");
    CHECK(tee(p[0], p[1], 10, 0) == -1 && errno == EINVAL, "tee of a pipe to itself: EINVAL");
    int fd2 = open("/dev/null", O_WRONLY);
    CHECK(tee(p[0], fd2, 10, 0) == -1 && errno == EINVAL, "tee to what is no pipe: EINVAL");
    struct iovec iv[2] = {{"vm", 2}, {"splice", 6}};
    CHECK(vmsplice(p[1], iv, 2, 0) == 8, "vmsplice into a pipe");
    char got[16] = {0};
    struct iovec ov = {got, sizeof got};
    CHECK(vmsplice(p[0], &ov, 1, 0) == 8 && memcmp(got, "vmsplice", 8) == 0, "and out of it");
    CHECK(vmsplice(p[0], &ov, 1, SPLICE_F_NONBLOCK) == -1 && errno == EAGAIN, "out of an empty pipe, non-blocking: EAGAIN");
    CHECK(vmsplice(fd2, iv, 1, 0) == -1 && errno == EBADF, "vmsplice of what is no pipe: EBADF");
    CHECK(vmsplice(p[1], iv, 1, 0x10) == -1 && errno == EINVAL, "an unknown flag: EINVAL");
    close(fd2);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    splicing();
    pipe_size();
    rw2();
    allocate();
    memfd();
    tmpfile_flag();
    mempolicy();
    printf("%d failed\n", failed);
    return failed != 0;
}
