#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <grp.h>

static int fails;
#define CHECK(c, ...) do { if (c) printf("ok " __VA_ARGS__); else { fails++; printf("FAIL (errno %d) ", errno); printf(__VA_ARGS__); } printf("\n"); } while (0)

int main(int argc, char **argv) {
    char buf[256];
    if (argc > 1) { printf("from pipe %s\n", argv[1]); return 0; }
    CHECK(mkdir("/tmp/d", 0755) == 0, "mkdir");
    CHECK(mkdir("/tmp/d", 0755) == -1 && errno == EEXIST, "mkdir EEXIST");
    int fd = open("/tmp/d/f", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 3, "open creat fd=%d", fd);
    CHECK(write(fd, "hello world\n", 12) == 12, "write");
    CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek");
    memset(buf, 0, sizeof buf);
    CHECK(read(fd, buf, sizeof buf) == 12 && strcmp(buf, "hello world\n") == 0, "read back");
    CHECK(pread(fd, buf, 5, 6) == 5 && memcmp(buf, "world", 5) == 0, "pread");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 12 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0644, "fstat size=%ld mode=%o", (long)st.st_size, st.st_mode);
    CHECK(ftruncate(fd, 100000) == 0 && fstat(fd, &st) == 0 && st.st_size == 100000, "sparse ftruncate");
    CHECK(pread(fd, buf, 4, 50000) == 4 && buf[0] == 0, "hole reads zero");
    close(fd);
    CHECK(rename("/tmp/d/f", "/tmp/d/g") == 0 && access("/tmp/d/f", F_OK) == -1 && access("/tmp/d/g", F_OK) == 0, "rename");
    CHECK(symlink("g", "/tmp/d/l") == 0, "symlink");
    ssize_t n = readlink("/tmp/d/l", buf, sizeof buf);
    CHECK(n == 1 && buf[0] == 'g', "readlink");
    CHECK(stat("/tmp/d/l", &st) == 0 && st.st_size == 100000, "stat through symlink");
    CHECK(lstat("/tmp/d/l", &st) == 0 && S_ISLNK(st.st_mode), "lstat");
    CHECK(link("/tmp/d/g", "/tmp/d/h") == 0 && stat("/tmp/d/g", &st) == 0 && st.st_nlink == 2, "link nlink=%ld", (long)st.st_nlink);
    CHECK(chdir("/tmp/d") == 0 && getcwd(buf, sizeof buf) && strcmp(buf, "/tmp/d") == 0, "chdir/getcwd %s", buf);
    FILE *f = fopen("stdio.txt", "w");
    CHECK(f != NULL, "fopen relative");
    fprintf(f, "line %d\n", 42); fclose(f);
    f = fopen("/tmp/d/stdio.txt", "r");
    int v = 0; CHECK(f && fscanf(f, "line %d", &v) == 1 && v == 42, "fscanf"); if (f) fclose(f);
    DIR *d = opendir("."); int count = 0; struct dirent *e;
    while (d && (e = readdir(d))) count++;
    CHECK(count == 6, "readdir count=%d", count); if (d) closedir(d);
    CHECK(rmdir("/tmp/d") == -1 && errno == ENOTEMPTY, "rmdir ENOTEMPTY");
    CHECK(unlink("/tmp/d/h") == 0 && unlink("l") == 0 && unlink("g") == 0 && unlink("stdio.txt") == 0, "unlink");
    CHECK(chdir("/") == 0 && rmdir("/tmp/d") == 0, "rmdir");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    pid_t c = fork();
    if (c == 0) { close(p[0]); dup2(p[1], 1); const char *self = access(argv[0], X_OK) == 0 ? argv[0] : "/init"; execl(self, self, "child", NULL); _exit(99); }
    close(p[1]);
    int total = 0; while ((n = read(p[0], buf + total, sizeof buf - 1 - total)) > 0) total += n;
    buf[total] = 0;
    int status; waitpid(c, &status, 0);
    CHECK(total > 0 && strstr(buf, "from") != NULL, "pipe from exec'd child: %d bytes", total);
    CHECK(open("/nonexistent/x", O_RDONLY) == -1 && errno == ENOENT, "ENOENT");
    close(open("/tmp/plain", O_CREAT | O_WRONLY, 0600));
    CHECK(open("/tmp/plain/x", O_RDONLY) == -1 && errno == ENOTDIR, "ENOTDIR");
    unlink("/tmp/plain");
    fd = open("/dev/null", O_WRONLY); CHECK(fd >= 0 && write(fd, "x", 1) == 1, "/dev/null");
    fd = open("/dev/zero", O_RDONLY); CHECK(fd >= 0 && read(fd, buf, 10) == 10 && buf[3] == 0, "/dev/zero");
    /* A big write through a pipe: 1 MiB, read in odd-sized pieces. */
    CHECK(pipe(p) == 0, "pipe 2");
    c = fork();
    if (c == 0) { close(p[0]); static char big[1 << 20]; for (int i = 0; i < (1 << 20); i++) big[i] = i * 7; ssize_t w = write(p[1], big, sizeof big); _exit(w == sizeof big ? 0 : 1); }
    close(p[1]);
    static char got[1 << 20]; total = 0; int bad = 0;
    while ((n = read(p[0], got + total, 1000)) > 0) total += n;
    for (int i = 0; i < total; i++) if (got[i] != (char)(i * 7)) { bad = 1; break; }
    waitpid(c, &status, 0);
    CHECK(total == (1 << 20) && !bad && WIFEXITED(status) && WEXITSTATUS(status) == 0, "1 MiB through a pipe (%d bytes, status %d)", total, status);
    /* Writing to a pipe with no reader: SIGPIPE kills the writer. */
    CHECK(pipe(p) == 0, "pipe 3");
    close(p[0]);
    c = fork();
    if (c == 0) { write(p[1], "x", 1); _exit(0); }
    waitpid(c, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE, "SIGPIPE (status %#x)", status);
    /* sendfile from a file into a pipe, copy_file_range between files. */
    fd = open("/tmp/src", O_CREAT | O_RDWR | O_TRUNC, 0644);
    for (int i = 0; i < 1000; i++) dprintf(fd, "line %04d\n", i);
    off_t off = 10;
    CHECK(pipe(p) == 0, "pipe 4");
    n = sendfile(p[1], fd, &off, 20);
    memset(buf, 0, sizeof buf);
    CHECK(n == 20 && off == 30 && read(p[0], buf, 20) == 20 && memcmp(buf, "line 0001\nline 0002\n", 20) == 0, "sendfile (%zd, off %ld)", n, (long)off);
    int dst = open("/tmp/dst", O_CREAT | O_RDWR | O_TRUNC, 0644);
    loff_t in_off = 0;
    n = copy_file_range(fd, &in_off, dst, NULL, 10000, 0); /* spans pages */
    CHECK(n == 10000 && in_off == 10000 && fstat(dst, &st) == 0 && st.st_size == 10000, "copy_file_range (%zd)", n);
    CHECK(pread(dst, buf, 10, 9990) == 10 && memcmp(buf, "line 0999\n", 10) == 0, "copied data");
    CHECK(pread(dst, buf, 10, 4090) == 10 && memcmp(buf, "line 0409\n", 10) == 0, "copied data across a page");
    /* posix_fadvise: Linux's checks (it returns the error number). */
    CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL) == 0, "fadvise SEQUENTIAL");
    CHECK(posix_fadvise(fd, 0, 4096, POSIX_FADV_DONTNEED) == 0, "fadvise DONTNEED");
    CHECK(posix_fadvise(fd, 0, 0, 99) == EINVAL, "fadvise bad advice: EINVAL");
    CHECK(posix_fadvise(fd, 0, -1, POSIX_FADV_NORMAL) == EINVAL, "fadvise negative length: EINVAL");
    CHECK(posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL) == ESPIPE, "fadvise of a pipe: ESPIPE");
    CHECK(posix_fadvise(999, 0, 0, POSIX_FADV_NORMAL) == EBADF, "fadvise of no fd: EBADF");
    close(fd); close(dst); close(p[0]); close(p[1]);
    unlink("/tmp/src"); unlink("/tmp/dst");
    /* Supplementary groups: set (root may), read back sorted. */
    gid_t gs[4] = {27, 4, 100, 4}, gl[8];
    int ng0 = getgroups(0, NULL);
    CHECK(ng0 >= 0, "getgroups(0) = %d", ng0);
    CHECK(setgroups(4, gs) == 0, "setgroups");
    CHECK(getgroups(0, NULL) == 4, "getgroups(0) counts them");
    CHECK(getgroups(2, gl) == -1 && errno == EINVAL, "getgroups too small: EINVAL");
    CHECK(getgroups(8, gl) == 4 && gl[0] == 4 && gl[1] == 4 && gl[2] == 27 && gl[3] == 100,
          "getgroups: sorted (%d %d %d %d)", gl[0], gl[1], gl[2], gl[3]);
    CHECK(setgroups(65537, gs) == -1 && errno == EINVAL, "setgroups past NGROUPS_MAX: EINVAL");
    CHECK(setgroups(1, (gid_t *)8) == -1 && errno == EFAULT, "setgroups bad pointer: EFAULT");
    pid_t gc = fork();
    if (gc == 0) _exit(getgroups(8, gl) == 4 && gl[2] == 27 ? 0 : 1);
    int gst;
    waitpid(gc, &gst, 0);
    CHECK(WIFEXITED(gst) && WEXITSTATUS(gst) == 0, "fork keeps them");
    CHECK(setgroups(0, NULL) == 0 && getgroups(0, NULL) == 0, "setgroups(0) clears them");
    printf("%d failed\n", fails);
    return fails != 0;
}
