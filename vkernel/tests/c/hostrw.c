/* A writable host volume (tests/hostfs.rs): `hostrw DIR native` runs
 * natively in a host directory, `hostrw DIR guest RO` in the guest with
 * DIR a `-v HOST:DIR:rw` volume and RO a read-only one (`-v HOST:RO`,
 * holding `file`). Both runs start from the same tree, which holds
 *
 *   esc -> an absolute host path outside the volume (a file there)
 *   rel -> ../outside/victim
 *
 * and must leave the same tree (the test compares them): writes,
 * appends, pwrite, truncate both ways, a write larger than one host
 * call, mkdir, rmdir, rename (over a file, of a directory), symlink,
 * hard link, unlink, chmod, utimensat, fsync, mkfifo. In the guest it
 * then checks confinement (the planted links are resolved in the
 * guest's root and never written through; links and renames out of the
 * volume are EXDEV), the page cache's coherence with writes, the refusal
 * of a writable MAP_SHARED mapping, and EROFS on the read-only volume.
 * Prints "ok ..." / "FAIL ..." lines and "N failed". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int failed;

static void check(const char *what, int ok) {
    if (ok) {
        printf("ok %s\n", what);
    } else {
        printf("FAIL %s (errno %d)\n", what, errno);
        failed++;
    }
}

static int fails_with(int r, int e) { return r == -1 && errno == e; }

static int content(const char *path, const char *want, size_t len) {
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n == (ssize_t)len && memcmp(buf, want, len) == 0;
}

static int put(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 0;
    ssize_t n = write(fd, s, strlen(s));
    close(fd);
    return n == (ssize_t)strlen(s);
}

int main(int argc, char **argv) {
    if (argc < 3 || chdir(argv[1]) != 0) {
        printf("FAIL usage: hostrw DIR native|guest [RO]\n1 failed\n");
        return 1;
    }
    int guest = strcmp(argv[2], "guest") == 0;
    umask(022);

    /* Create exclusively, append, pwrite, truncate. */
    int fd = open("a", O_CREAT | O_EXCL | O_WRONLY, 0640);
    check("create a (O_EXCL)", fd >= 0);
    check("write a", write(fd, "hello\n", 6) == 6);
    close(fd);
    check("O_EXCL on an existing name -> EEXIST",
          fails_with(open("a", O_CREAT | O_EXCL | O_WRONLY, 0640), EEXIST));
    fd = open("a", O_WRONLY | O_APPEND);
    check("append", fd >= 0 && write(fd, "world\n", 6) == 6);
    close(fd);
    fd = open("a", O_RDWR);
    check("pwrite at 0", pwrite(fd, "J", 1, 0) == 1);
    check("a is Jello world", content("a", "Jello\nworld\n", 12));
    check("truncate to 8", truncate("a", 8) == 0 && content("a", "Jello\nwo", 8));
    check("ftruncate to 20 (a hole)", ftruncate(fd, 20) == 0);
    struct stat st;
    check("size 20", fstat(fd, &st) == 0 && st.st_size == 20);
    char hole[20];
    check("the hole reads as zeros",
          pread(fd, hole, 20, 0) == 20 && memcmp(hole, "Jello\nwo", 8) == 0 && hole[8] == 0 &&
              hole[19] == 0);
    check("fsync", fsync(fd) == 0);
    check("fdatasync", fdatasync(fd) == 0);
    close(fd);
    check("O_TRUNC", put("t", "long text\n") && put("t", "s\n") && content("t", "s\n", 2));

    /* More than one host call's worth (the guest sends 256 KiB a call). */
    size_t big = 700000;
    char *buf = malloc(big), *back = malloc(big);
    for (size_t i = 0; i < big; i++)
        buf[i] = (char)(i * 7 % 251);
    fd = open("big", O_CREAT | O_RDWR | O_TRUNC, 0600);
    check("write 700000 bytes at once", fd >= 0 && write(fd, buf, big) == (ssize_t)big);
    check("read them back", pread(fd, back, big, 0) == (ssize_t)big && memcmp(buf, back, big) == 0);
    close(fd);

    /* Directories, rename, links. */
    check("mkdir d", mkdir("d", 0750) == 0);
    check("mkdir d/e", mkdir("d/e", 0700) == 0);
    check("mkdir d again -> EEXIST", fails_with(mkdir("d", 0755), EEXIST));
    check("d/f", put("d/f", "F\n"));
    check("rmdir a full d -> ENOTEMPTY", fails_with(rmdir("d"), ENOTEMPTY));
    check("rmdir a file -> ENOTDIR", fails_with(rmdir("d/f"), ENOTDIR));
    check("unlink a directory -> EISDIR", fails_with(unlink("d/e"), EISDIR));
    check("rename a -> d/a2", rename("a", "d/a2") == 0);
    check("a is gone", fails_with(access("a", F_OK), ENOENT));
    check("d/a2 has a's bytes", content("d/a2", "Jello\nwo\0\0\0\0\0\0\0\0\0\0\0\0", 20));
    check("b", put("b", "B\n"));
    check("rename b over d/f", rename("b", "d/f") == 0 && content("d/f", "B\n", 2));
    check("rename a directory d/e -> e2", rename("d/e", "e2") == 0);
    check("e2 is a directory", stat("e2", &st) == 0 && S_ISDIR(st.st_mode));
    check("rmdir e2", rmdir("e2") == 0);
    check("symlink l -> d/a2", symlink("d/a2", "l") == 0);
    char target[64] = {0};
    check("readlink l", readlink("l", target, sizeof target) == 4 && strcmp(target, "d/a2") == 0);
    check("read through l", content("l", "Jello\nwo\0\0\0\0\0\0\0\0\0\0\0\0", 20));
    check("symlink dangling", symlink("../../nowhere", "dangling") == 0);
    check("link d/a2 -> hard", link("d/a2", "hard") == 0);
    check("nlink 2", stat("d/a2", &st) == 0 && st.st_nlink == 2);
    fd = open("hard", O_WRONLY);
    check("write through the hard link", fd >= 0 && pwrite(fd, "H", 1, 0) == 1);
    close(fd);
    check("seen through the other name", content("d/a2", "Hello\nwo\0\0\0\0\0\0\0\0\0\0\0\0", 20));
    check("unlink hard", unlink("hard") == 0);
    check("nlink 1", stat("d/a2", &st) == 0 && st.st_nlink == 1);
    check("chmod d/f 0600", chmod("d/f", 0600) == 0);
    check("mode 0600", stat("d/f", &st) == 0 && (st.st_mode & 07777) == 0600);
    struct timespec times[2] = {{1000000000, 0}, {1234567890, 500}};
    check("utimensat", utimensat(AT_FDCWD, "d/f", times, 0) == 0);
    check("mtime set",
          stat("d/f", &st) == 0 && st.st_mtim.tv_sec == 1234567890 &&
              st.st_mtim.tv_nsec == 500 && st.st_atim.tv_sec == 1000000000);
    check("mkfifo", mkfifo("p", 0640) == 0);
    check("unlink t", unlink("t") == 0);

    /* A descriptor kept across an unlink still reads its file. */
    check("k", put("k", "kept\n"));
    fd = open("k", O_RDONLY);
    check("unlink an open file", unlink("k") == 0);
    char kept[8] = {0};
    check("still readable", fd >= 0 && read(fd, kept, 8) == 5 && strcmp(kept, "kept\n") == 0);
    close(fd);

    /* The page cache sees writes: a shared read-only mapping and a
     * reader, both after a write through another descriptor. */
    fd = open("d/a2", O_RDONLY);
    char *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    check("mmap MAP_SHARED read-only", map != MAP_FAILED);
    char first[2] = {0};
    check("read through the cache", pread(fd, first, 1, 0) == 1 && first[0] == 'H');
    int wfd = open("d/a2", O_RDWR);
    check("write W at 0", wfd >= 0 && pwrite(wfd, "W", 1, 0) == 1);
    check("the mapping sees it", map != MAP_FAILED && map[0] == 'W');
    check("a read sees it", pread(fd, first, 1, 0) == 1 && first[0] == 'W');
    check("truncate to 1", ftruncate(wfd, 1) == 0);
    check("a read stops at 1", pread(fd, hole, 20, 0) == 1);
    check("write it back", pwrite(wfd, "Hello\n", 6, 0) == 6 && content("d/a2", "Hello\n", 6));
    if (map != MAP_FAILED)
        munmap(map, 4096);
    close(fd);

    /* A writable shared mapping: Linux makes one; the guest refuses it
     * on a writable volume (its stores would never reach the host). */
    void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, wfd, 0);
    if (guest) {
        check("writable MAP_SHARED -> ENODEV", w == MAP_FAILED && errno == ENODEV);
    } else {
        check("writable MAP_SHARED", w != MAP_FAILED);
        if (w != MAP_FAILED)
            munmap(w, 4096);
    }
    close(wfd);

    if (guest) {
        /* The planted links resolve in the guest's root: nothing there. */
        check("open esc for writing -> ENOENT",
              fails_with(open("esc", O_WRONLY | O_TRUNC), ENOENT));
        check("create through esc -> ENOENT",
              fails_with(open("esc", O_WRONLY | O_CREAT, 0644), ENOENT));
        check("create through rel -> ENOENT",
              fails_with(open("rel", O_WRONLY | O_CREAT, 0644), ENOENT));
        check("truncate esc -> ENOENT", fails_with(truncate("esc", 0), ENOENT));
        check("chmod rel -> ENOENT", fails_with(chmod("rel", 0777), ENOENT));
        check("link from outside the volume -> EXDEV",
              fails_with(link("/init", "hardout"), EXDEV));
        check("rename out of the volume -> EXDEV",
              fails_with(rename("d/f", "/tmp/f"), EXDEV));
        check("rename into the volume -> EXDEV",
              fails_with(rename("/init", "init"), EXDEV));
        check("mkdir ../up lands in the guest's root",
              mkdir("../up", 0755) == 0 && rmdir("/up") == 0);
        /* A read-only volume. */
        char path[256];
        const char *ro = argc > 3 ? argv[3] : "/ro";
        snprintf(path, sizeof path, "%s/file", ro);
        check("ro: read", content(path, "ro\n", 3));
        check("ro: open for writing -> EROFS", fails_with(open(path, O_WRONLY), EROFS));
        check("ro: truncate -> EROFS", fails_with(truncate(path, 0), EROFS));
        check("ro: chmod -> EROFS", fails_with(chmod(path, 0600), EROFS));
        check("ro: unlink -> EROFS", fails_with(unlink(path), EROFS));
        snprintf(path, sizeof path, "%s/new", ro);
        check("ro: create -> EROFS", fails_with(open(path, O_WRONLY | O_CREAT, 0644), EROFS));
        check("ro: mkdir -> EROFS", fails_with(mkdir(path, 0755), EROFS));
        check("ro: symlink -> EROFS", fails_with(symlink("x", path), EROFS));
    }
    printf("%d failed\n", failed);
    return failed != 0;
}
