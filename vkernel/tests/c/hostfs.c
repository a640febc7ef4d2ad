/* A host directory as the root (tests/hostfs.rs): run as init of
 * `vkernel run --rootfs ROOT`, where ROOT holds
 *
 *   etc/passwd          "inside\n" (the host's /etc/passwd must not show)
 *   etc/abs  -> /etc/passwd        (absolute: the root's, not the host's)
 *   etc/up   -> ../../../../../../etc/passwd   (climbs: stays at the root)
 *   etc/magic -> /proc/self/root/etc/passwd    (a magic link: the guest's)
 *   data/big            SIZE bytes, byte i = i * 7 mod 251
 *   data/keep           "keep\n"
 *   tree/a/x, tree/b    "x\n", "b\n"
 *   lowdir/f            "f\n"
 *
 * and `../outside` beside ROOT. Checks confinement, reads, readdir,
 * copy-up writes, whiteouts, opaque directories, rename, chmod, truncate,
 * and two processes sharing one file's pages through mmap. The test
 * then checks the host files did not change.
 *
 * The expected values are Linux overlayfs's behaviour over a read-only
 * lower directory. Prints "ok ..." / "FAIL ..." lines and "N failed". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failed;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failed++;
}

static int slurp(const char *path, char *buf, int cap) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -errno;
    int n = 0, r;
    while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += r;
    buf[n] = 0;
    close(fd);
    return n;
}

static int is(const char *path, const char *want) {
    char buf[256];
    return slurp(path, buf, sizeof buf) >= 0 && strcmp(buf, want) == 0;
}

static int listed(const char *dir, const char *name) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, name) == 0) found = 1;
    closedir(d);
    return found;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static unsigned sum_file(const char *path, long size, int use_mmap) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    unsigned s = 0;
    if (use_mmap) {
        unsigned char *p = mmap(0, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) return 0;
        for (long i = 0; i < size; i++) s = s * 31 + p[i];
        munmap(p, size);
    } else {
        static unsigned char buf[65536];
        long r;
        while ((r = read(fd, buf, sizeof buf)) > 0)
            for (long i = 0; i < r; i++) s = s * 31 + buf[i];
    }
    close(fd);
    return s;
}

int main(int argc, char **argv) {
    long size = argc > 1 ? atol(argv[1]) : 0;
    char buf[256];
    struct stat st;

    /* Confinement: every way out leads back inside. */
    check(is("/etc/passwd", "inside\n"), "/etc/passwd is the root's");
    check(is("/etc/abs", "inside\n"), "absolute symlink resolves inside the root");
    check(is("/etc/up", "inside\n"), "climbing symlink stays at the root");
    check(is("/etc/magic", "inside\n"), "a planted /proc/self/root link names the guest's root");
    check(is("/../../../../etc/passwd", "inside\n"), ".. at the root stays at the root");
    check(chdir("/etc") == 0 && is("../../../../etc/passwd", "inside\n"),
          "relative .. from a directory cannot escape");
    check(chdir("/") == 0 && chdir("..") == 0 && getcwd(buf, sizeof buf) && strcmp(buf, "/") == 0,
          "cd .. at the root stays at /");
    check(access("/outside", F_OK) != 0 && access("/../outside", F_OK) != 0,
          "the directory beside the root is not reachable");

    /* Reads and readdir. */
    check(is("/tree/a/x", "x\n") && is("/tree/b", "b\n"), "reads from the host directory");
    check(listed("/tree", "a") == 1 && listed("/tree", "b") == 1 && count_entries("/tree") == 2,
          "readdir lists the host directory");
    check(stat("/data/keep", &st) == 0 && st.st_size == 5 && S_ISREG(st.st_mode),
          "stat of a host file");
    check(open("/data/keep/x", O_RDONLY) < 0 && errno == ENOTDIR, "a file as a directory: ENOTDIR");
    check(open("/nothing", O_RDONLY) < 0 && errno == ENOENT, "a missing name: ENOENT");

    /* Copy-up on write: the guest sees its change, the host keeps its file. */
    int fd = open("/etc/passwd", O_WRONLY | O_APPEND);
    check(fd >= 0 && write(fd, "more\n", 5) == 5, "append to a lower file (copy-up)");
    close(fd);
    check(is("/etc/passwd", "inside\nmore\n"), "the guest reads its own write");
    check(is("/etc/abs", "inside\nmore\n"), "the symlink reads the copied-up file");
    fd = open("/data/keep", O_RDWR | O_TRUNC);
    check(fd >= 0 && write(fd, "new\n", 4) == 4, "O_TRUNC of a lower file");
    close(fd);
    check(is("/data/keep", "new\n"), "truncated and rewritten");
    check(chmod("/tree/b", 0600) == 0 && stat("/tree/b", &st) == 0 && (st.st_mode & 0777) == 0600,
          "chmod of a lower file (copy-up)");
    check(truncate("/tree/a/x", 1) == 0 && is("/tree/a/x", "x"), "truncate of a lower file");
    check(mkdir("/newdir", 0755) == 0 && (fd = open("/newdir/f", O_CREAT | O_WRONLY, 0644)) >= 0,
          "new directory and file in the upper layer");
    close(fd);

    /* Whiteouts. */
    check(unlink("/etc/abs") == 0 && access("/etc/abs", F_OK) != 0 && errno == ENOENT,
          "unlink of a lower symlink");
    check(listed("/etc", "abs") == 0 && listed("/etc", "up") == 1, "readdir hides the whiteout");
    check(rmdir("/tree") < 0 && errno == ENOTEMPTY, "rmdir of a non-empty lower directory: ENOTEMPTY");
    check(unlink("/tree/a/x") == 0 && rmdir("/tree/a") == 0 && unlink("/tree/b") == 0 &&
              rmdir("/tree") == 0,
          "emptying and removing a lower directory");
    check(access("/tree", F_OK) != 0 && listed("/", "tree") == 0, "the removed directory is gone");
    /* Opaque: a directory made where a lower one was shows nothing of it. */
    check(mkdir("/tree", 0755) == 0 && count_entries("/tree") == 0 &&
              access("/tree/b", F_OK) != 0,
          "a directory remade over a whiteout is opaque");
    fd = open("/etc/abs", O_CREAT | O_WRONLY, 0644);
    check(fd >= 0 && write(fd, "file\n", 5) == 5, "a file made over a whiteout");
    close(fd);
    check(is("/etc/abs", "file\n"), "and it reads back");

    /* Rename. */
    check(rename("/lowdir/f", "/lowdir/g") == 0 && is("/lowdir/g", "f\n") &&
              access("/lowdir/f", F_OK) != 0 && listed("/lowdir", "f") == 0,
          "rename of a lower file leaves a whiteout");
    check(rename("/lowdir", "/lowdir2") < 0 && errno == EXDEV,
          "rename of a lower directory: EXDEV (as overlayfs without redirect_dir)");
    check(rename("/newdir", "/newdir2") == 0 && access("/newdir2/f", F_OK) == 0,
          "rename of an upper directory");

    /* Page cache: a big file read and mapped by two processes at once. */
    if (size > 0) {
        unsigned want = 0;
        for (long i = 0; i < size; i++) want = want * 31 + (unsigned char)(i * 7 % 251);
        pid_t kid = fork();
        if (kid == 0) _exit(sum_file("/data/big", size, 1) == want ? 0 : 1);
        unsigned mine = sum_file("/data/big", size, 1);
        int status = -1;
        waitpid(kid, &status, 0);
        check(mine == want && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "two processes map the same file and see its bytes");
        check(sum_file("/data/big", size, 0) == want, "read() of the mapped file agrees");
    }
    printf("%d failed\n", failed);
    return failed != 0;
}
