// Linux's limits, not smaller ones (#15), checked against Linux: the same
// binary runs natively first, then in the guest (both pmaps). One section
// per run: `limits tasks [N]`, `limits memory`, `limits args` or (in the
// guest only) `limits oom`. Prints
// "ok - ..." per check, "FAIL - ..." on a mismatch, and "N failed".
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

// ---- tasks: thousands of processes and threads -------------------------

// How many at once: `limits tasks N` (default 2000; fork and thread
// creation are all there is to it, so the CI test takes fewer, see
// tests/limits.rs).
static int MANY = 2000;

// MANY children each blocked reading a pipe until the parent closes its
// end; then all are reaped.
static void many_processes(void) {
    int p[2];
    if (pipe(p) != 0) {
        CHECK(0, "pipe");
        return;
    }
    int forked = 0, err = 0;
    for (; forked < MANY; forked++) {
        pid_t c = fork();
        if (c < 0) {
            err = errno;
            break;
        }
        if (c == 0) {
            close(p[1]);
            char b;
            _exit(read(p[0], &b, 1) == 0 ? 0 : 1);
        }
    }
    errno = err;
    CHECK(forked == MANY, "%d children alive at once (forked %d)", MANY, forked);
    close(p[1]);
    close(p[0]);
    int reaped = 0, clean = 0, status;
    while (wait(&status) > 0) {
        reaped++;
        clean += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    CHECK(reaped == forked && clean == forked && errno == ECHILD,
          "all %d reaped, each exited 0 after its read saw end of file (%d clean)", reaped,
          clean);
}

static int release_fd;

static void *blocked_thread(void *arg) {
    (void)arg;
    char b;
    return read(release_fd, &b, 1) == 0 ? NULL : (void *)1;
}

// MANY threads of one process (glibc's default 8 MiB stacks: 16 GiB of
// address space reserved, almost none of it touched), each blocked reading
// a pipe; then all end and are joined.
static void many_threads(void) {
    int p[2];
    if (pipe(p) != 0) {
        CHECK(0, "pipe");
        return;
    }
    release_fd = p[0];
    pthread_t *t = calloc(MANY, sizeof *t);
    if (!t) {
        CHECK(0, "calloc");
        return;
    }
    int made = 0, err = 0;
    for (; made < MANY; made++) {
        err = pthread_create(&t[made], NULL, blocked_thread, NULL);
        if (err != 0)
            break;
    }
    errno = err;
    CHECK(made == MANY, "%d threads alive at once with default stacks (made %d)", MANY, made);
    close(p[1]);
    int clean = 0;
    for (int i = 0; i < made; i++) {
        void *r = (void *)1;
        clean += pthread_join(t[i], &r) == 0 && r == NULL;
    }
    CHECK(clean == made, "all %d joined, each saw end of file", clean);
    close(p[0]);
    free(t);
}

// RLIMIT_NPROC counts the tasks of the caller's real user; Linux lets root
// (INIT_USER) exceed it. Lowered to 1 in a child: fork is EAGAIN for
// anyone else, and works for root.
static void nproc_limit(void) {
    struct rlimit r;
    // Linux's default is half of threads-max, which memory sets.
    CHECK(getrlimit(RLIMIT_NPROC, &r) == 0 && r.rlim_cur != RLIM_INFINITY && r.rlim_cur >= 10,
          "RLIMIT_NPROC is finite (%llu)", (unsigned long long)r.rlim_cur);
    CHECK(sysconf(_SC_CHILD_MAX) == (long)r.rlim_cur, "sysconf(_SC_CHILD_MAX) is RLIMIT_NPROC");
    pid_t c = fork();
    if (c == 0) {
        struct rlimit one = {1, 1};
        if (setrlimit(RLIMIT_NPROC, &one) != 0)
            _exit(10);
        pid_t g = fork();
        if (g == 0)
            _exit(0);
        if (g > 0) {
            waitpid(g, NULL, 0);
            _exit(getuid() == 0 ? 0 : 11);
        }
        _exit(getuid() != 0 && errno == EAGAIN ? 0 : 12);
    }
    int status = -1;
    waitpid(c, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "RLIMIT_NPROC 1: fork %s for uid %d (status %#x)",
          getuid() == 0 ? "still works" : "is EAGAIN", (int)getuid(), status);
}

// ---- memory: reserved address space costs nothing until touched ----------

// Linux's heuristic overcommit is the mode these checks assume (natively:
// /proc/sys/vm/overcommit_memory 0; the guest has only that mode).
static int heuristic_overcommit(void) {
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = 0;
    if (f) {
        if (fscanf(f, "%d", &mode) != 1)
            mode = -1;
        fclose(f);
    }
    return mode == 0;
}

static void reservations(void) {
    const size_t GiB = 1ul << 30, MiB = 1ul << 20;
    // Go reserves its heap this way: 8 GiB PROT_NONE, then makes pieces
    // accessible as it grows.
    char *r = mmap(NULL, 8 * GiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(r != MAP_FAILED, "8 GiB PROT_NONE reservation");
    if (r != MAP_FAILED) {
        char *piece = r + 3 * GiB;
        int ok = mprotect(piece, MiB, PROT_READ | PROT_WRITE) == 0;
        CHECK(ok, "1 MiB of it made read-write");
        if (ok) {
            for (size_t i = 0; i < MiB; i += 4096)
                piece[i] = (char)i;
            int same = 1;
            for (size_t i = 0; i < MiB; i += 4096)
                same &= piece[i] == (char)i;
            CHECK(same, "and touched: each page holds what was written");
        }
        CHECK(munmap(r, 8 * GiB) == 0, "munmap of the reservation");
    }
    // MAP_NORESERVE: 4 GiB accessible, touched sparsely.
    char *n = mmap(NULL, 4 * GiB, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(n != MAP_FAILED, "4 GiB read-write MAP_NORESERVE mapping");
    if (n != MAP_FAILED) {
        int same = 1;
        for (size_t off = 0; off < 4 * GiB; off += 64 * MiB)
            n[off + 4096] = 7;
        for (size_t off = 0; off < 4 * GiB; off += 64 * MiB)
            same &= n[off + 4096] == 7 && n[off] == 0;
        CHECK(same, "touched every 64 MiB: 64 pages written, the others read zero");
        CHECK(munmap(n, 4 * GiB) == 0, "munmap of it");
    }
    // Accessible but untouched, without MAP_NORESERVE: half of memory is
    // accepted, as Linux's heuristic does; more than all of it is not.
    struct sysinfo si;
    sysinfo(&si);
    size_t total = (size_t)si.totalram * si.mem_unit, swap = (size_t)si.totalswap * si.mem_unit;
    char *h = mmap(NULL, total / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(h != MAP_FAILED, "half of memory (%zu MiB) read-write, untouched", total / 2 / MiB);
    if (h != MAP_FAILED) {
        h[0] = 1;
        h[total / 2 - 1] = 2;
        CHECK(h[0] == 1 && h[total / 2 - 1] == 2 && h[total / 4] == 0,
              "its first and last pages written");
        munmap(h, total / 2);
    }
    if (heuristic_overcommit()) {
        size_t over = (total + swap) / 4096 * 4096 + 64 * MiB;
        errno = 0;
        void *o = mmap(NULL, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(o == MAP_FAILED && errno == ENOMEM,
              "more than memory and swap, read-write, is ENOMEM");
        o = mmap(NULL, over, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(o != MAP_FAILED, "the same size PROT_NONE is not");
        if (o != MAP_FAILED)
            munmap(o, over);
        o = mmap(NULL, over, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        CHECK(o != MAP_FAILED, "nor with MAP_NORESERVE");
        if (o != MAP_FAILED)
            munmap(o, over);
    }
}

// More touched than memory can back (the guest is run with a small pool
// for this): the process that touched it is killed, its parent and the
// kernel carry on. Not a native check (the host has the memory).
static void out_of_memory(void) {
    const size_t size = 1ul << 30;
    pid_t c = fork();
    if (c == 0) {
        // MAP_NORESERVE: larger than memory, which the heuristic refuses
        // otherwise.
        char *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            _exit(10);
        for (size_t i = 0; i < size; i += 4096)
            m[i] = 1;
        _exit(11);
    }
    int status = -1;
    waitpid(c, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
          "touching 1 GiB more than memory holds: the toucher is killed (status %#x)", status);
    // What it held came back: the same again ends the same way.
    c = fork();
    if (c == 0) {
        char *m = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            _exit(10);
        for (size_t i = 0; i < 16 << 20; i += 4096)
            m[i] = 1;
        _exit(0);
    }
    waitpid(c, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "then 16 MiB touched by another process works (status %#x)", status);
}

// ---- args: execve's strings by Linux's rule -------------------------------

// Runs this program again (`limits argcount N`) with `count` arguments of
// `len` bytes each (NUL excluded) after argv[0..1]; returns execve's errno
// in the child (0 when the exec worked and the new image counted them all).
static int exec_with(const char *self, long count, long len) {
    char **argv = calloc(count + 4, sizeof *argv);
    char *text = malloc(len + 1);
    char n[32];
    if (!argv || !text)
        return ENOMEM;
    memset(text, 'a', len);
    text[len] = 0;
    snprintf(n, sizeof n, "%ld", count);
    argv[0] = (char *)self;
    argv[1] = "argcount";
    argv[2] = n;
    for (long i = 0; i < count; i++)
        argv[3 + i] = text;
    int p[2];
    if (pipe(p) != 0)
        return EIO;
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        char *envp[] = {"LIMITS=1", NULL};
        execve(self, argv, envp);
        int e = errno;
        if (write(p[1], &e, sizeof e) != sizeof e)
            _exit(3);
        _exit(2);
    }
    close(p[1]);
    int e = 0, status = -1;
    ssize_t got = read(p[0], &e, sizeof e);
    close(p[0]);
    waitpid(c, &status, 0);
    free(argv);
    free(text);
    if (got == sizeof e)
        return e;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

// execve(self, argv, {"LIMITS=1"}) in a child: its errno (0 when the
// exec worked and the new image checked what it got: `argcount 0`).
static int exec_argv(const char *self, char **argv) {
    pid_t c = fork();
    if (c == 0) {
        char *envp[] = {"LIMITS=1", NULL};
        execve(self, argv, envp);
        _exit(100 + errno);
    }
    int status = -1;
    waitpid(c, &status, 0);
    if (!WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status) >= 100 ? WEXITSTATUS(status) - 100 : WEXITSTATUS(status) ? -1 : 0;
}

// Bad pointers in execve's arrays and strings: EFAULT, as Linux; a string
// whose NUL is the last byte before an unmapped page is whole.
static void exec_faults(const char *self) {
    long ps = sysconf(_SC_PAGESIZE);
    char *two = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (two == MAP_FAILED) {
        CHECK(0, "mmap");
        return;
    }
    munmap(two + ps, ps);
    CHECK(exec_argv(self, (char **)8) == EFAULT, "execve with argv at a bad address: EFAULT");
    char *bad_str[] = {(char *)self, "argcount", (char *)8, NULL};
    CHECK(exec_argv(self, bad_str) == EFAULT, "execve with a bad string pointer: EFAULT");
    // No NUL before the unmapped page.
    memset(two, 'a', ps);
    char *runs_off[] = {(char *)self, "argcount", "1", two + ps - 10, NULL};
    CHECK(exec_argv(self, runs_off) == EFAULT,
          "execve with a string running into an unmapped page: EFAULT");
    // The array itself runs into the unmapped page without its NULL.
    char **tail = (char **)(two + ps - 2 * sizeof(char *));
    tail[0] = (char *)self;
    tail[1] = "argcount";
    CHECK(exec_argv(self, tail) == EFAULT, "execve with argv running into an unmapped page: EFAULT");
    // The NUL is the page's last byte: the string (9 bytes) is whole.
    memset(two, 'a', ps);
    two[ps - 1] = 0;
    char *at_end[] = {(char *)self, "argcount", "1", two + ps - 10, NULL};
    CHECK(exec_argv(self, at_end) == 0, "a string ending at the page before a hole is whole");
    munmap(two, ps);
}

// The strings and pointers a successful exec of `count` arguments of
// `len` bytes carries, as Linux counts them: each string with its NUL,
// the path, and a pointer per string.
static long arg_bytes(const char *self, long count, long len, long extra) {
    return (long)strlen(self) + 1 + count * (len + 1 + 8) + extra;
}

static void exec_args(const char *self) {
    struct rlimit st;
    getrlimit(RLIMIT_STACK, &st);
    long quarter = (long)(st.rlim_cur / 4);
    CHECK(st.rlim_cur == 8 << 20, "RLIMIT_STACK is 8 MiB (%llu)", (unsigned long long)st.rlim_cur);
    CHECK(sysconf(_SC_ARG_MAX) == quarter, "sysconf(_SC_ARG_MAX) is a quarter of it (%ld)",
          sysconf(_SC_ARG_MAX));
    // argv[0..2] and the environment: under 100 bytes beside the rest.
    long base = 100;
    int e = exec_with(self, 100, 1023);
    CHECK(e == 0, "execve with 100 KiB of arguments works (errno %d)", e);
    long n = (quarter - quarter / 20) / 1024; // 1.9 MiB in 1 KiB strings
    e = exec_with(self, n, 1023);
    CHECK(e == 0, "execve with %ld bytes of arguments (1.9 MiB) works (errno %d)",
          arg_bytes(self, n, 1023, base), e);
    n = (quarter + quarter / 20) / 1024; // 2.1 MiB
    e = exec_with(self, n, 1023);
    CHECK(e == E2BIG, "execve with %ld bytes of arguments (2.1 MiB) is E2BIG (errno %d)",
          arg_bytes(self, n, 1023, base), e);
    e = exec_with(self, 1, 128 * 1024 - 1);
    CHECK(e == 0, "one string of 128 KiB with its NUL (MAX_ARG_STRLEN) works (errno %d)", e);
    e = exec_with(self, 1, 128 * 1024);
    CHECK(e == E2BIG, "one string one byte longer is E2BIG (errno %d)", e);
    e = exec_with(self, 1, 200 * 1024);
    CHECK(e == E2BIG, "one string of 200 KiB is E2BIG (errno %d)", e);
    // A larger stack limit lets more through (inherited over fork and exec).
    pid_t c = fork();
    if (c == 0) {
        struct rlimit big = {32 << 20, st.rlim_max};
        if (setrlimit(RLIMIT_STACK, &big) != 0)
            _exit(10);
        // glibc caps it where Linux does: 3/4 of _STK_LIM (6 MiB).
        if (sysconf(_SC_ARG_MAX) != 6 << 20)
            _exit(11);
        _exit(exec_with(self, (3 << 20) / 1024, 1023) == 0 ? 0 : 12);
    }
    int status = -1;
    waitpid(c, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "with a 32 MiB stack limit, 3 MiB of arguments work (status %#x)", status);
    c = fork();
    if (c == 0) {
        struct rlimit small = {256 << 10, st.rlim_max};
        if (setrlimit(RLIMIT_STACK, &small) != 0)
            _exit(10);
        // A quarter is 64 KiB, but 128 KiB (ARG_MAX) is always allowed.
        if (exec_with(self, 100, 1023) != 0)
            _exit(11);
        _exit(exec_with(self, 130, 1023) == E2BIG ? 0 : 12);
    }
    waitpid(c, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "with a 256 KiB stack limit, 100 KiB work and 130 KiB are E2BIG (status %#x)", status);
    exec_faults(self);
}

// The re-executed image: checks it got `N` arguments after argv[2], each
// intact, and the environment.
static int arg_count(int argc, char **argv, char **envp) {
    long want = argc > 2 ? atol(argv[2]) : -1;
    if (argc - 3 != want)
        return 1;
    size_t len = argc > 3 ? strlen(argv[3]) : 0;
    for (int i = 3; i < argc; i++)
        if (strlen(argv[i]) != len || argv[i][0] != 'a' || argv[i][len - 1] != 'a')
            return 1;
    const char *mark = getenv("LIMITS");
    (void)envp;
    return mark && strcmp(mark, "1") == 0 ? 0 : 1;
}

// ---- main ---------------------------------------------------------------

int main(int argc, char **argv, char **envp) {
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "argcount") == 0)
        return arg_count(argc, argv, envp);
    if (strcmp(what, "threads") == 0) {
        if (argc > 2)
            MANY = atoi(argv[2]);
        many_threads();
    } else if (strcmp(what, "tasks") == 0) {
        if (argc > 2)
            MANY = atoi(argv[2]);
        many_processes();
        many_threads();
        nproc_limit();
    } else if (strcmp(what, "memory") == 0) {
        reservations();
    } else if (strcmp(what, "oom") == 0) {
        out_of_memory();
    } else if (strcmp(what, "args") == 0) {
        exec_args("/proc/self/exe");
    } else {
        printf("usage: limits tasks [N]|threads [N]|memory|args|oom\n");
        return 2;
    }
    printf("%d failed\n", failed);
    return failed != 0;
}
