/* Memory-mapped files (#13): private (copy-on-write) and shared mappings
 * of tmpfs files, shared anonymous memory and /dev/zero, across fork,
 * with truncate (SIGBUS past the end), mprotect, msync, /proc/self/maps
 * and Linux's errno for every refusal. Checked natively first (in a tmpfs
 * directory given as argv[1]), then in the guest under both pmaps. In the
 * guest the work runs in a child, and the parent checks that every page
 * is back once it is gone (vkernel's own page-count call). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

static int fails;
#define CHECK(c, ...) do { if (c) printf("ok " __VA_ARGS__); else { fails++; printf("FAIL (errno %d) ", errno); printf(__VA_ARGS__); } printf("\n"); } while (0)

#define PS 4096L
static const char *dir;
static char path[512], path2[512];
static char *self;

/* vkernel's own call: pages the processes and file systems hold (-1 with
 * ENOSYS natively). */
static long pages(void) {
    /* With the vDSO's page tables in place: under pmap=guest a fork drops
     * the parent's entries for its private file mappings (the vDSO is
     * one), and the tables of that range go with them until its next
     * use; they are not the files' pages this counts. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return syscall(0x7fff0001);
}

/* Runs `fn(arg)` in a child; its exit status (or 128 + the signal that
 * killed it). */
static int in_child(void (*fn)(void *), void *arg) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) { fn(arg); _exit(0); }
    int st;
    if (waitpid(c, &st, 0) != c) return -1;
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}
static void touch_read(void *p) { (void)*(volatile char *)p; }
static void touch_write(void *p) { *(volatile char *)p = 1; }

static char file_byte(int fd, off_t at) {
    char c = '?';
    if (pread(fd, &c, 1, at) != 1) return '!';
    return c;
}

/* The /proc/self/maps line of the mapping starting at `addr`, or "". */
static const char *maps_line(void *addr) {
    static char line[1024];
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return "";
    char want[32];
    snprintf(want, sizeof want, "%lx-", (unsigned long)addr);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, want, strlen(want)) == 0) {
            fclose(f);
            line[strcspn(line, "\n")] = 0;
            return line;
        }
    }
    fclose(f);
    return "";
}

struct fork_args { char *q, *p, *a, *z, *zp; };
static void child_writes(void *v) {
    struct fork_args *f = v;
    int bad = 0;
    /* What the parent did before fork is here. */
    if (f->q[5] != 'S' || f->p[0] != 'x' || f->a[0] != 1 || f->z[0] != 0) bad |= 1;
    f->q[10] = 'C';   /* shared: the parent sees it */
    f->p[10] = 'c';   /* private: it does not */
    f->a[1] = 2; f->a[3 * PS] = 3;
    f->z[0] = 7;
    f->zp[0] = 9;
    _exit(bad ? 10 + bad : 0);
}

static void run_exec_child(void *v) {
    /* Maps an unlinked file, touches it, then execs: the new image must
     * drop the old one's references. */
    (void)v;
    int fd = open(path2, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 8 * PS) != 0) _exit(3);
    char *m = mmap(NULL, 8 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) _exit(4);
    for (int i = 0; i < 8; i++) m[i * PS] = 'e';
    unlink(path2);
    close(fd);
    execl(self, self, "noop", (char *)NULL);
    _exit(5);
}

static int run(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(path, sizeof path, "%s/mapped", dir);
    snprintf(path2, sizeof path2, "%s/mapped2", dir);
    unlink(path);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0, "open %s", path);
    static char buf[4 * PS];
    memset(buf, 'A', PS); memset(buf + PS, 'B', PS); memset(buf + 2 * PS, 'C', PS); memset(buf + 3 * PS, 'D', 100);
    CHECK(write(fd, buf, 3 * PS + 100) == 3 * PS + 100, "write 3 pages + 100 bytes");

    /* ---- private and shared mappings of one file */
    char *p = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *q = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED && q != MAP_FAILED, "mmap private and shared");
    CHECK(p[0] == 'A' && p[PS] == 'B' && p[2 * PS + 5] == 'C' && p[3 * PS + 99] == 'D', "private mapping reads the file");
    CHECK(p[3 * PS + 100] == 0 && p[4 * PS - 1] == 0, "the last page is zero past the end of the file");
    p[0] = 'x';
    CHECK(file_byte(fd, 0) == 'A' && q[0] == 'A', "a private write is invisible to read() and to a shared mapping");
    q[PS] = 'y';
    CHECK(file_byte(fd, PS) == 'y' && p[PS] == 'y', "a shared write reaches read() and an untouched private page");
    CHECK(pwrite(fd, "z", 1, 2 * PS) == 1 && q[2 * PS] == 'z' && p[2 * PS] == 'z', "write() shows through shared and untouched private pages");
    char *q2 = mmap(NULL, 4 * PS, PROT_READ, MAP_SHARED, fd, 0);
    q[5] = 'S';
    CHECK(q2 != MAP_FAILED && q2[5] == 'S' && file_byte(fd, 5) == 'S', "a second shared mapping sees the first's writes");
    CHECK(pwrite(fd, "W", 1, 20) == 1 && q[20] == 'W' && q2[20] == 'W', "write() is visible through existing shared mappings");
    char *p2 = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(p2 != MAP_FAILED && p2[0] == 'A', "a second private mapping does not see the first's writes");
    p2[1] = 'u';
    CHECK(p[1] == 'A' && q[1] == 'A', "nor the first the second's");

    /* read() into mappings */
    CHECK(pread(fd, q + 30, 1, 5) == 1 && file_byte(fd, 30) == 'S', "read() into a shared mapping writes the file");
    CHECK(pread(fd, p + 3 * PS + 200, 1, 5) == 1 && p[3 * PS + 200] == 'S' && file_byte(fd, 3 * PS + 99) == 'D', "read() into a private mapping stays private");
    CHECK(pread(fd, q2 + 40, 1, 5) == -1 && errno == EFAULT, "read() into a read-only shared mapping is EFAULT");
    CHECK(write(fd, p, 0) == 0 && pwrite(fd, q + 5, 1, 50) == 1 && q[50] == 'S', "write() from a mapping of the same file");

    /* ---- offset mappings */
    char *r = mmap(NULL, 2 * PS, PROT_READ, MAP_SHARED, fd, PS);
    CHECK(r != MAP_FAILED && r[0] == 'y' && r[PS] == 'z', "a mapping at offset 1 page");
    q[PS + 1] = 'o';
    CHECK(r[1] == 'o', "its pages are the file's pages");
    struct stat st;
    fstat(fd, &st);
    const char *line = maps_line(r);
    unsigned long lo, hi, off, ino; unsigned maj, min; char perms[8], name[400] = "";
    int got = sscanf(line, "%lx-%lx %7s %lx %x:%x %lu %399[^\n]", &lo, &hi, perms, &off, &maj, &min, &ino, name);
    CHECK(got == 8 && hi - lo == 2 * PS && strcmp(perms, "r--s") == 0 && off == PS && maj == major(st.st_dev) && min == minor(st.st_dev) && ino == st.st_ino && strcmp(name, path) == 0,
          "/proc/self/maps: '%s'", line);
    line = maps_line(p);
    CHECK(strstr(line, "rw-p 00000000") && strstr(line, path), "/proc/self/maps private: '%s'", line);

    /* ---- partial munmap */
    CHECK(munmap(q + PS, PS) == 0, "munmap the middle page");
    CHECK(q[0] == 'A' && q[2 * PS] == 'z' && q[3 * PS + 99] == 'D', "the pages around it are the right ones");
    q[2 * PS + 1] = 'v';
    CHECK(file_byte(fd, 2 * PS + 1) == 'v', "and still shared");
    CHECK(in_child(touch_read, q + PS) == 128 + SIGSEGV, "the hole is SIGSEGV");
    line = maps_line(q + 2 * PS);
    CHECK(strstr(line, "rw-s 00002000") != NULL, "the upper part keeps its offset: '%s'", line);

    /* ---- msync */
    CHECK(msync(q, PS, MS_SYNC) == 0 && msync(q, PS, MS_ASYNC) == 0 && msync(q, PS, MS_INVALIDATE) == 0, "msync");
    CHECK(msync(q, PS, MS_SYNC | MS_ASYNC) == -1 && errno == EINVAL, "msync MS_SYNC|MS_ASYNC EINVAL");
    CHECK(msync(q, PS, 8) == -1 && errno == EINVAL, "msync unknown flag EINVAL");
    CHECK(msync(q + 1, PS, MS_SYNC) == -1 && errno == EINVAL, "msync unaligned EINVAL");
    CHECK(msync(q, 3 * PS, MS_SYNC) == -1 && errno == ENOMEM, "msync over a hole ENOMEM");
    CHECK(msync(q, 0, MS_SYNC) == 0, "msync of nothing");

    /* ---- mprotect */
    CHECK(mprotect(q, PS, PROT_READ) == 0, "mprotect shared read-only");
    CHECK(in_child(touch_write, q) == 128 + SIGSEGV, "a write is SIGSEGV");
    CHECK(mprotect(q, PS, PROT_READ | PROT_WRITE) == 0, "mprotect back");
    q[3] = 'm';
    CHECK(file_byte(fd, 3) == 'm', "writes reach the file again");
    CHECK(mprotect(p, 4 * PS, PROT_READ) == 0 && mprotect(p, 4 * PS, PROT_READ | PROT_WRITE) == 0, "mprotect private read-only and back");
    p[PS + 2] = 'P';
    CHECK(file_byte(fd, PS + 2) == 'B' && p[PS + 2] == 'P', "a private page read before stays private after mprotect");

    /* ---- fork */
    char *a = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int zfd = open("/dev/zero", O_RDWR);
    char *z = mmap(NULL, 2 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, zfd, 0);
    char *zp = mmap(NULL, 2 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, zfd, 0);
    CHECK(a != MAP_FAILED && z != MAP_FAILED && zp != MAP_FAILED && a[PS] == 0 && z[PS] == 0 && zp[0] == 0, "shared anonymous and /dev/zero mappings are zero");
    line = maps_line(a);
    CHECK(strstr(line, "rw-s 00000000") && strstr(line, "/dev/zero (deleted)"), "/proc/self/maps shared anonymous: '%s'", line);
    line = maps_line(z);
    CHECK(strstr(line, "rw-s 00000000") && strstr(line, "/dev/zero (deleted)"), "/proc/self/maps shared /dev/zero: '%s'", line);
    a[0] = 1;
    struct fork_args fa = { q, p, a, z, zp };
    CHECK(in_child(child_writes, &fa) == 0, "the child sees what the parent wrote");
    CHECK(q[10] == 'C' && file_byte(fd, 10) == 'C', "the child's shared file writes reach the parent");
    CHECK(p[10] == 'A', "the child's private writes do not");
    CHECK(a[1] == 2 && a[3 * PS] == 3, "MAP_SHARED|MAP_ANONYMOUS is shared across fork");
    CHECK(z[0] == 7 && zp[0] == 0, "shared /dev/zero is shared across fork, private is not");

    /* ---- truncate: pages past the end leave every mapping */
    p[3 * PS] = 'k';  /* a private copy of page 3 */
    CHECK(ftruncate(fd, PS + 10) == 0, "ftruncate to 1 page + 10");
    CHECK(q[PS - 1] == file_byte(fd, PS - 1) && p[0] == 'x', "pages inside the file stay");
    CHECK(in_child(touch_read, q + 2 * PS) == 128 + SIGBUS, "reading a shared page past the end is SIGBUS");
    CHECK(in_child(touch_write, q + 3 * PS) == 128 + SIGBUS, "writing one is SIGBUS");
    CHECK(in_child(touch_read, p + 2 * PS) == 128 + SIGBUS, "reading a private page past the end is SIGBUS");
    CHECK(in_child(touch_read, p + 3 * PS) == 128 + SIGBUS, "a private copy past the end is gone too (SIGBUS)");
    CHECK(in_child(touch_read, r + PS) == 128 + SIGBUS, "so is the offset mapping's page");
    CHECK(r[0] == file_byte(fd, PS), "the offset mapping's first page is inside");
    CHECK(pread(fd, q + 2 * PS, 1, 0) == -1 && errno == EFAULT, "read() into a page past the end is EFAULT");
    CHECK(ftruncate(fd, 4 * PS) == 0 && q[2 * PS] == 0 && q[3 * PS + 99] == 0 && p[3 * PS] == 0, "grown again, the pages read as zero");
    q[2 * PS] = 'g';
    CHECK(file_byte(fd, 2 * PS) == 'g', "and are the file's");

    /* ---- errno */
    errno = 0;
    CHECK(mmap(NULL, PS, PROT_READ, MAP_PRIVATE, -1, 0) == MAP_FAILED && errno == EBADF, "fd -1 EBADF");
    CHECK(mmap(NULL, PS, PROT_READ, MAP_PRIVATE, 999, 0) == MAP_FAILED && errno == EBADF, "closed fd EBADF");
    CHECK(mmap(NULL, PS, PROT_READ, MAP_PRIVATE, fd, 100) == MAP_FAILED && errno == EINVAL, "unaligned offset EINVAL");
    CHECK(mmap(NULL, PS, PROT_READ, MAP_PRIVATE, -1, 100) == MAP_FAILED && errno == EINVAL, "unaligned offset before EBADF");
    CHECK(mmap(NULL, 0, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED && errno == EINVAL, "length 0 EINVAL");
    CHECK(mmap(NULL, PS, PROT_READ, 0, fd, 0) == MAP_FAILED && errno == EINVAL, "no map type EINVAL");
    CHECK(mmap(NULL, 2 * PS, PROT_READ, MAP_SHARED, fd, 0x7ffffffffffff000L) == MAP_FAILED && errno == EOVERFLOW, "offset + length past the largest file EOVERFLOW");
    CHECK(mmap(NULL, PS, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0) == MAP_FAILED && errno == EOPNOTSUPP, "MAP_SHARED_VALIDATE with an unsupported flag EOPNOTSUPP");
    char *v = mmap(NULL, PS, PROT_READ, MAP_SHARED | MAP_SYNC, fd, 0);
    CHECK(v != MAP_FAILED && v[0] == q[0], "MAP_SHARED ignores it");
    munmap(v, PS);
    v = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE, fd, 0);
    CHECK(v != MAP_FAILED && (v[7] = 'V', file_byte(fd, 7) == 'V'), "MAP_SHARED_VALIDATE with known flags maps shared");
    munmap(v, PS);
    int ro = open(path, O_RDONLY), wo = open(path, O_WRONLY), ap = open(path, O_RDWR | O_APPEND);
    CHECK(mmap(NULL, PS, PROT_READ, MAP_PRIVATE, wo, 0) == MAP_FAILED && errno == EACCES, "write-only fd EACCES");
    CHECK(mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED && errno == EACCES, "shared writable of a read-only fd EACCES");
    v = mmap(NULL, PS, PROT_READ, MAP_SHARED, ro, 0);
    CHECK(v != MAP_FAILED && mprotect(v, PS, PROT_READ | PROT_WRITE) == -1 && errno == EACCES, "mprotect it writable EACCES");
    CHECK(mprotect(v, PS, PROT_READ | PROT_EXEC) == 0, "but executable is fine");
    munmap(v, PS);
    v = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro, 0);
    CHECK(v != MAP_FAILED && (v[0] = 'R', file_byte(fd, 0) != 'R'), "private writable of a read-only fd: its own copy");
    munmap(v, PS);
    v = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, ap, 0);
    CHECK(v != MAP_FAILED, "O_APPEND does not stop a shared writable mapping (only the append-only inode flag would)");
    if (v != MAP_FAILED) munmap(v, PS);
    close(ro); close(wo); close(ap);
    int pp[2];
    CHECK(pipe(pp) == 0 && mmap(NULL, PS, PROT_READ, MAP_PRIVATE, pp[0], 0) == MAP_FAILED && errno == ENODEV, "pipe ENODEV");
    CHECK(mmap(NULL, PS, PROT_READ, MAP_PRIVATE, pp[1], 0) == MAP_FAILED && errno == EACCES, "pipe write end EACCES");
    close(pp[0]); close(pp[1]);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(mmap(NULL, PS, PROT_READ, MAP_PRIVATE, dfd, 0) == MAP_FAILED && errno == ENODEV, "directory ENODEV");
    close(dfd);
    int nfd = open("/dev/null", O_RDWR);
    CHECK(mmap(NULL, PS, PROT_READ, MAP_SHARED, nfd, 0) == MAP_FAILED && errno == ENODEV, "/dev/null ENODEV");
    close(nfd);
    int pfd = open("/proc/self/status", O_RDONLY);
    CHECK(mmap(NULL, PS, PROT_READ, MAP_PRIVATE, pfd, 0) == MAP_FAILED && errno == ENODEV, "procfs file ENODEV");
    close(pfd);
    int opath = open(path, O_PATH);
    CHECK(mmap(NULL, PS, PROT_READ, MAP_PRIVATE, opath, 0) == MAP_FAILED && errno == EBADF, "O_PATH fd EBADF");
    close(opath);
    int zro = open("/dev/zero", O_RDONLY);
    CHECK(mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, zro, 0) == MAP_FAILED && errno == EACCES, "shared writable /dev/zero opened read-only EACCES");
    close(zro);
    CHECK(mmap(NULL, PS, PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL, "MAP_SHARED_VALIDATE|MAP_ANONYMOUS EINVAL");
    CHECK(mmap(NULL, PS, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_SYNC, -1, 0) != MAP_FAILED, "MAP_SHARED|MAP_ANONYMOUS ignores unknown flags");

    /* ---- unlink while mapped; pages come back with the last mapping */
    long before = pages();
    int ufd = open(path2, O_CREAT | O_RDWR | O_TRUNC, 0600);
    CHECK(ftruncate(ufd, 64 * PS) == 0, "a 64-page file");
    char *u = mmap(NULL, 64 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, ufd, 0);
    for (int i = 0; i < 64; i++) u[i * PS] = (char)i;
    CHECK(unlink(path2) == 0 && close(ufd) == 0, "unlinked and closed while mapped");
    CHECK(u[5 * PS] == 5 && u[63 * PS] == 63, "the mapping still works");
    line = maps_line(u);
    CHECK(strstr(line, "(deleted)") != NULL, "/proc/self/maps says deleted: '%s'", line);
    long mid = pages();
    CHECK(munmap(u, 64 * PS) == 0, "munmap the last mapping");
    long after = pages();
    CHECK(before < 0 || (mid - before >= 64 && mid - after >= 64), "its 64 pages are freed (before %ld, mapped %ld, after %ld)", before, mid, after);
    CHECK(in_child(run_exec_child, NULL) == 0, "exec drops a mapping of an unlinked file");

    /* ---- madvise over a hole: applied to what is mapped, then ENOMEM */
    char *h = mmap(NULL, 3 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    h[0] = 'a'; h[2 * PS] = 'c';
    munmap(h + PS, PS);
    int advices[] = {MADV_NORMAL, MADV_WILLNEED, MADV_DONTNEED, MADV_DONTDUMP}, holes = 0;
    for (int i = 0; i < 4; i++) {
        errno = 0;
        holes += madvise(h, 3 * PS, advices[i]) == -1 && errno == ENOMEM;
    }
    CHECK(holes == 4 && h[0] == 0 && h[2 * PS] == 0, "madvise over a hole: ENOMEM, the mapped pages advised (%d)", holes);
    errno = 0;
    CHECK(madvise(h, 3 * PS, 12345) == -1 && errno == EINVAL, "an unknown advice over a hole: EINVAL");
    munmap(h, 3 * PS);

    munmap(p, 4 * PS); munmap(q, 4 * PS); munmap(q2, 4 * PS); munmap(p2, PS); munmap(r, 2 * PS);
    munmap(a, 4 * PS); munmap(z, 2 * PS); munmap(zp, 2 * PS);
    close(zfd);
    close(fd);
    CHECK(unlink(path) == 0, "unlink");
    printf("%d failed\n", fails);
    return fails ? 1 : 0;
}

int main(int argc, char **argv) {
    self = argv[0];
    if (argc > 1 && strcmp(argv[1], "noop") == 0) return 0;
    dir = argc > 1 ? argv[1] : "/tmp";
    if (access(self, X_OK) != 0) self = "/init";
    long before = pages();
    if (before < 0) return run();
    /* In the guest: the work in a child, so that what the parent counts
     * after it is only what was left behind. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(run());
    int st;
    waitpid(c, &st, 0);
    long after = pages();
    printf("pages before %ld after %ld\n", before, after);
    CHECK(before == after, "every page is back");
    printf("%d failed\n", fails + (WIFEXITED(st) ? WEXITSTATUS(st) : 1));
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && fails == 0 ? 0 : 1;
}
