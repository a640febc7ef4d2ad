/* Running a program's file, as Linux: ETXTBSY (a program that runs cannot
 * be opened for writing or truncated, and a file open for writing cannot
 * be run) and execveat. The checks run a copy of this program (in the
 * working directory). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define COPY "./textbusy-copy"

static char *self_bytes;
static size_t self_len;

/* Runs COPY with `mode` in a child; returns the child (exec's errno is
 * its exit status when exec fails). */
static pid_t run_copy(const char *mode) {
    pid_t p = fork();
    if (p == 0) {
        char *av[] = {"textbusy-copy", (char *)mode, NULL};
        execv(COPY, av);
        _exit(errno);
    }
    return p;
}

static int exit_status(pid_t p) {
    int st = -1;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int open_errno(int flags) {
    errno = 0;
    int fd = open(COPY, flags);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return errno;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "sleep") == 0) {
        usleep(300 * 1000);
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "execfn") == 0) {
        const char *fn = (const char *)getauxval(AT_EXECFN);
        return fn && strcmp(fn, argv[2]) == 0 ? 0 : 99;
    }
    if (argc > 2 && strcmp(argv[1], "comm") == 0) {
        char comm[32] = "";
        int fd = open("/proc/self/comm", O_RDONLY);
        ssize_t n = fd < 0 ? -1 : read(fd, comm, sizeof comm - 1);
        if (n > 0 && comm[n - 1] == '\n') comm[n - 1] = 0;
        return strcmp(comm, argv[2]) == 0 ? 0 : 98;
    }
    if (argc > 1 && strcmp(argv[1], "fork-and-exit") == 0) {
        /* The parent ends at once; its child runs on with the image. */
        if (fork() == 0) usleep(300 * 1000);
        return 0;
    }
    int in = open("/proc/self/exe", O_RDONLY);
    struct stat st;
    CHECK(in >= 0 && fstat(in, &st) == 0, "read my own program");
    self_len = st.st_size;
    self_bytes = malloc(self_len);
    CHECK(read(in, self_bytes, self_len) == (ssize_t)self_len, "%zu bytes", self_len);
    close(in);

    unlink(COPY);
    int w = open(COPY, O_CREAT | O_WRONLY | O_TRUNC, 0755);
    CHECK(w >= 0 && write(w, self_bytes, self_len) == (ssize_t)self_len, "a copy of it");
    CHECK(exit_status(run_copy("sleep")) == ETXTBSY, "exec of a file open for writing: ETXTBSY");
    close(w);

    pid_t p = run_copy("sleep");
    usleep(100 * 1000);
    CHECK(open_errno(O_WRONLY) == ETXTBSY, "open(O_WRONLY) of a program that runs: ETXTBSY");
    CHECK(open_errno(O_RDWR) == ETXTBSY, "open(O_RDWR): ETXTBSY");
    CHECK(open_errno(O_RDONLY | O_TRUNC) == ETXTBSY, "open(O_RDONLY|O_TRUNC): ETXTBSY");
    errno = 0;
    CHECK(truncate(COPY, 0) == -1 && errno == ETXTBSY, "truncate: ETXTBSY");
    CHECK(open_errno(O_RDONLY) == 0, "open(O_RDONLY) is fine");
    CHECK(exit_status(p) == 0, "the program ran to its end");
    CHECK(open_errno(O_WRONLY) == 0, "once it ended, its file opens for writing");

    /* A fork of the image holds it too. */
    CHECK(exit_status(run_copy("fork-and-exit")) == 0, "the forking program exits");
    CHECK(open_errno(O_WRONLY) == ETXTBSY, "its child still runs the image: ETXTBSY");
    usleep(400 * 1000);
    CHECK(open_errno(O_WRONLY) == 0, "once the child ended too, it opens for writing");

    /* Renaming or unlinking a running program is fine, and the name then
     * opens another file. */
    p = run_copy("sleep");
    usleep(100 * 1000);
    CHECK(rename(COPY, COPY ".old") == 0, "rename of a running program");
    w = open(COPY, O_CREAT | O_WRONLY | O_TRUNC, 0755);
    CHECK(w >= 0, "a new file under its name opens for writing");
    close(w);
    CHECK(unlink(COPY ".old") == 0 && unlink(COPY) == 0, "unlink");
    CHECK(exit_status(p) == 0, "the renamed program ran to its end");

    /* execveat: from a directory, from the file itself, refusals. */
    w = open(COPY, O_CREAT | O_WRONLY | O_TRUNC, 0755);
    CHECK(w >= 0 && write(w, self_bytes, self_len) == (ssize_t)self_len && close(w) == 0, "a copy again");
    CHECK(symlink(COPY, COPY ".link") == 0, "a symbolic link to it");
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    int prog = open(COPY, O_RDONLY);
    char fdpath[64], fdname[64];
    snprintf(fdpath, sizeof fdpath, "/dev/fd/%d", prog);
    snprintf(fdname, sizeof fdname, "/dev/fd/%d/textbusy-copy", dir);
    struct { int dirfd; const char *path; int flags; const char *execfn; int status; const char *what; } cases[] = {
        {AT_FDCWD, COPY, 0, COPY, 0, "execveat(AT_FDCWD, path) runs it as the path"},
        {dir, "textbusy-copy", 0, fdname, 0, "execveat(dirfd, name) runs it as /dev/fd/N/name"},
        {prog, "", AT_EMPTY_PATH, fdpath, 0, "execveat(fd, \"\", AT_EMPTY_PATH) runs it as /dev/fd/N"},
        {dir, "textbusy-copy.link", 0, NULL, 0, "a symbolic link is followed"},
        {dir, "textbusy-copy.link", AT_SYMLINK_NOFOLLOW, NULL, ELOOP, "AT_SYMLINK_NOFOLLOW on a symbolic link: ELOOP"},
        {prog, "", 0, NULL, ENOENT, "an empty path without AT_EMPTY_PATH: ENOENT"},
        {prog, "x", 0, NULL, ENOTDIR, "a name from a file that is no directory: ENOTDIR"},
        {dir, "textbusy-copy", 0x4000, NULL, EINVAL, "unknown flags: EINVAL"},
        {dir, "", AT_EMPTY_PATH, NULL, EACCES, "a directory itself: EACCES"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pid_t c = fork();
        if (c == 0) {
            const char *expect = cases[i].execfn ? cases[i].execfn : "-";
            char *av[] = {"textbusy-copy", cases[i].execfn ? "execfn" : "sleep", (char *)expect, NULL};
            syscall(SYS_execveat, cases[i].dirfd, cases[i].path, av, environ, cases[i].flags);
            _exit(errno);
        }
        int got = exit_status(c);
        CHECK(got == cases[i].status, "%s (%d)", cases[i].what, got);
    }
    /* Run from a descriptor, a program is named by its file (Linux 6.14
     * on), not by /dev/fd/N. */
    pid_t cp = fork();
    if (cp == 0) {
        char *av[] = {"textbusy-copy", "comm", "textbusy-copy", NULL};
        syscall(SYS_execveat, prog, "", av, environ, AT_EMPTY_PATH);
        _exit(errno);
    }
    CHECK(exit_status(cp) == 0, "its comm is its file's name");
    close(dir);
    close(prog);
    CHECK(unlink(COPY ".link") == 0 && unlink(COPY) == 0, "unlink the copy and its link");

    /* A memfd_create file is no writer: it runs (fexecve). */
    int m = memfd_create("textbusy", 0);
    CHECK(m >= 0 && write(m, self_bytes, self_len) == (ssize_t)self_len, "a memfd copy");
    p = fork();
    if (p == 0) {
        char *av[] = {"textbusy-memfd", "comm", "memfd:textbusy", NULL};
        fexecve(m, av, environ);
        _exit(errno);
    }
    CHECK(exit_status(p) == 0, "fexecve of a writable memfd runs, named memfd:textbusy");
    close(m);
    printf("%d failed\n", failed);
    return failed != 0;
}
