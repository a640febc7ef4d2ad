/* File locks (#13): fcntl record locks (F_GETLK, F_SETLK, F_SETLKW), OFD
 * locks (F_OFD_*) and flock(2), between a process and its forked
 * children, checked against what Linux does (the test runs it natively
 * too). Prints "ok ..." lines and "N failed". Files are made in the
 * working directory. "hold W R" (after exec) is the re-executed child of
 * the exec test: it reports on fd W, waits on fd R, exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fails;
/* An address no process maps (volatile: gcc would warn about it). */
static void *volatile bad_ptr = (void *)8;
#define CHECK(c, ...) do { if (c) printf("ok " __VA_ARGS__); else { fails++; printf("FAIL (errno %d) ", errno); printf(__VA_ARGS__); } printf("\n"); fflush(stdout); } while (0)

static struct flock fl(short type, short whence, off_t start, off_t len) {
    struct flock f;
    memset(&f, 0, sizeof f);
    f.l_type = type;
    f.l_whence = whence;
    f.l_start = start;
    f.l_len = len;
    return f;
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock f = fl(type, SEEK_SET, start, len);
    return fcntl(fd, cmd, &f);
}

/* F_GETLK for `type` on [start, start+len): the answer in *out. */
static int getlk(int fd, int cmd, short type, off_t start, off_t len, struct flock *out) {
    *out = fl(type, SEEK_SET, start, len);
    return fcntl(fd, cmd, out);
}

static int open_file(const char *name) {
    int fd = open(name, O_RDWR | O_CREAT, 0644);
    if (fd < 0) {
        perror(name);
        exit(2);
    }
    return fd;
}

static int reaped_ok(pid_t c) {
    int st;
    return waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Runs `fn(arg)` in a child; whether it exited 0. */
static int in_child(int (*fn)(int), int arg) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(fn(arg) ? 0 : 1);
    return reaped_ok(c);
}

/* Waits (up to 20 s) until `pid` sleeps (state S in /proc/PID/stat). */
static int wait_sleeping(pid_t pid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 4000; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) return 0;
        int n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = 0;
            char *p = strrchr(buf, ')');
            if (p && p[1] == ' ' && p[2] == 'S') return 1;
        }
        usleep(5000);
    }
    return 0;
}

static int fd_a; /* "locks-a", open in the parent */

/* ---- children of the record-lock tests */

static int child_conflicts(int expect_pid) {
    struct flock g;
    int ok = setlk(fd_a, F_SETLK, F_WRLCK, 50, 10) == -1 && errno == EAGAIN;
    ok &= setlk(fd_a, F_SETLK, F_RDLCK, 99, 1) == -1 && errno == EAGAIN;
    ok &= getlk(fd_a, F_GETLK, F_RDLCK, 50, 10, &g) == 0 && g.l_type == F_WRLCK &&
          g.l_pid == expect_pid && g.l_start == 0 && g.l_len == 100 && g.l_whence == SEEK_SET;
    /* Past the parent's range there is no conflict. */
    ok &= setlk(fd_a, F_SETLK, F_WRLCK, 100, 100) == 0;
    /* Unlocking the parent's range unlocks nothing of the parent's. */
    ok &= setlk(fd_a, F_SETLK, F_UNLCK, 0, 100) == 0;
    ok &= setlk(fd_a, F_SETLK, F_WRLCK, 0, 1) == -1 && errno == EAGAIN;
    return ok;
}

static int child_sees_parent_lock(int parent) {
    struct flock g;
    return getlk(fd_a, F_GETLK, F_WRLCK, 0, 0, &g) == 0 && g.l_type != F_UNLCK && g.l_pid == parent;
}

static int child_sees_no_lock(int unused) {
    struct flock g;
    (void)unused;
    return getlk(fd_a, F_GETLK, F_WRLCK, 0, 0, &g) == 0 && g.l_type == F_UNLCK;
}

static int child_read_shares(int unused) {
    (void)unused;
    return setlk(fd_a, F_SETLK, F_RDLCK, 0, 100) == 0 &&
           setlk(fd_a, F_SETLK, F_WRLCK, 0, 100) == -1 && errno == EAGAIN;
}

/* The ranges the parent holds, as F_GETLK (write) reports them one by one
 * from `from`: "start+len" each, len 0 for to-EOF. */
static void describe(int fd, off_t from, char *out, size_t n) {
    out[0] = 0;
    for (int i = 0; i < 8; i++) {
        struct flock g;
        if (getlk(fd, F_GETLK, F_WRLCK, from, 0, &g) != 0 || g.l_type == F_UNLCK) break;
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%c%lld+%lld", l ? " " : "", g.l_type == F_RDLCK ? 'r' : 'w',
                 (long long)g.l_start, (long long)g.l_len);
        if (g.l_len == 0) break;
        from = g.l_start + g.l_len;
    }
}

static const char *expect_ranges;
static int child_describes(int unused) {
    char got[256];
    (void)unused;
    describe(fd_a, 0, got, sizeof got);
    if (strcmp(got, expect_ranges) != 0) printf("  (child saw \"%s\", want \"%s\")\n", got, expect_ranges);
    return strcmp(got, expect_ranges) == 0;
}

static int ranges_are(const char *want) {
    expect_ranges = want;
    return in_child(child_describes, 0);
}

static void test_record_locks(void) {
    pid_t me = getpid();
    fd_a = open_file("locks-a");
    CHECK(ftruncate(fd_a, 1000) == 0, "ftruncate");
    CHECK(setlk(fd_a, F_SETLK, F_WRLCK, 0, 100) == 0, "F_SETLK write [0,100)");
    CHECK(in_child(child_conflicts, me), "child: EAGAIN on overlap, F_GETLK names the parent, locks past it");
    CHECK(in_child(child_sees_parent_lock, me), "the child's unlock left the parent's lock (locks are not inherited)");
    /* A process's own locks never conflict with it. */
    CHECK(setlk(fd_a, F_SETLK, F_WRLCK, 50, 100) == 0, "own overlapping lock: granted");
    struct flock g;
    CHECK(getlk(fd_a, F_GETLK, F_WRLCK, 0, 0, &g) == 0 && g.l_type == F_UNLCK, "F_GETLK: own locks do not conflict");
    CHECK(ranges_are("w0+150"), "overlapping same-type locks merge");
    CHECK(setlk(fd_a, F_SETLK, F_UNLCK, 40, 20) == 0, "unlock the middle");
    CHECK(ranges_are("w0+40 w60+90"), "unlocking the middle splits");
    CHECK(setlk(fd_a, F_SETLK, F_WRLCK, 40, 20) == 0, "lock the middle again");
    CHECK(ranges_are("w0+150"), "adjacent same-type locks merge");
    CHECK(setlk(fd_a, F_SETLK, F_RDLCK, 20, 10) == 0, "read lock inside a write lock");
    CHECK(ranges_are("w0+20 r20+10 w30+120"), "a different type splits the lock in three");
    CHECK(in_child(child_read_shares, 0) == 0, "child: the write parts still conflict with a read lock");
    CHECK(setlk(fd_a, F_SETLK, F_RDLCK, 0, 150) == 0, "downgrade all to read");
    CHECK(ranges_are("r0+150"), "the read locks merge into one");
    CHECK(in_child(child_read_shares, 0), "child: read locks share, a write lock does not");
    CHECK(setlk(fd_a, F_SETLK, F_UNLCK, 0, 0) == 0, "unlock to EOF");
    CHECK(ranges_are(""), "no locks left");

    /* l_whence and l_len forms. */
    struct flock f = fl(F_WRLCK, SEEK_SET, 10, -5);
    CHECK(fcntl(fd_a, F_SETLK, &f) == 0 && ranges_are("w5+5"), "negative l_len locks the bytes before l_start");
    CHECK(lseek(fd_a, 200, SEEK_SET) == 200, "lseek");
    f = fl(F_UNLCK, SEEK_SET, 0, 0);
    fcntl(fd_a, F_SETLK, &f);
    f = fl(F_WRLCK, SEEK_CUR, 10, 5);
    CHECK(fcntl(fd_a, F_SETLK, &f) == 0 && ranges_are("w210+5"), "SEEK_CUR counts from the offset");
    f = fl(F_WRLCK, SEEK_END, -10, 0);
    CHECK(fcntl(fd_a, F_SETLK, &f) == 0 && ranges_are("w210+5 w990+0"), "SEEK_END, l_len 0: to EOF and beyond (l_len 0 reported)");
    f = fl(F_UNLCK, SEEK_SET, 0, 0);
    fcntl(fd_a, F_SETLK, &f);
    lseek(fd_a, 0, SEEK_SET);

    /* Errors. */
    f = fl(5, SEEK_SET, 0, 1);
    CHECK(fcntl(fd_a, F_SETLK, &f) == -1 && errno == EINVAL, "bad l_type: EINVAL");
    f = fl(F_WRLCK, 7, 0, 1);
    CHECK(fcntl(fd_a, F_SETLK, &f) == -1 && errno == EINVAL, "bad l_whence: EINVAL");
    f = fl(F_WRLCK, SEEK_SET, -1, 1);
    CHECK(fcntl(fd_a, F_SETLK, &f) == -1 && errno == EINVAL, "negative start: EINVAL");
    f = fl(F_WRLCK, SEEK_SET, 3, -4);
    CHECK(fcntl(fd_a, F_SETLK, &f) == -1 && errno == EINVAL, "negative l_len before 0: EINVAL");
    f = fl(F_WRLCK, SEEK_SET, LLONG_MAX, 2);
    CHECK(fcntl(fd_a, F_SETLK, &f) == -1 && errno == EOVERFLOW, "range past OFFSET_MAX: EOVERFLOW");
    f = fl(F_UNLCK, SEEK_SET, 0, 1);
    CHECK(fcntl(fd_a, F_GETLK, &f) == -1 && errno == EINVAL, "F_GETLK with F_UNLCK: EINVAL");
    CHECK(fcntl(fd_a, F_SETLK, bad_ptr) == -1 && errno == EFAULT, "bad struct flock: EFAULT");
    CHECK(fcntl(fd_a, F_GETLK, bad_ptr) == -1 && errno == EFAULT, "F_GETLK bad pointer: EFAULT");
    f = fl(F_WRLCK, SEEK_SET, 0, 1);
    CHECK(fcntl(999, F_SETLK, &f) == -1 && errno == EBADF, "bad fd: EBADF");
    int ro = open("locks-a", O_RDONLY), wo = open("locks-a", O_WRONLY);
    CHECK(setlk(ro, F_SETLK, F_WRLCK, 0, 1) == -1 && errno == EBADF, "write lock on O_RDONLY: EBADF");
    CHECK(setlk(wo, F_SETLK, F_RDLCK, 0, 1) == -1 && errno == EBADF, "read lock on O_WRONLY: EBADF");
    CHECK(setlk(ro, F_SETLK, F_RDLCK, 0, 1) == 0 && setlk(wo, F_SETLK, F_WRLCK, 0, 1) == 0, "matching modes lock");
    CHECK(setlk(ro, F_SETLK, F_UNLCK, 0, 0) == 0, "unlock through any descriptor");
    int path = open("locks-a", O_PATH);
    CHECK(setlk(path, F_SETLK, F_UNLCK, 0, 0) == -1 && errno == EBADF, "O_PATH descriptor: EBADF");
    close(path);

    /* Any close of the file drops the process's locks. */
    CHECK(setlk(fd_a, F_SETLK, F_WRLCK, 0, 10) == 0 && in_child(child_sees_parent_lock, me), "lock again");
    close(ro);
    CHECK(in_child(child_sees_no_lock, 0), "closing another descriptor of the file released the lock");
    int d = dup(fd_a);
    CHECK(setlk(fd_a, F_SETLK, F_WRLCK, 0, 10) == 0 && in_child(child_sees_parent_lock, me), "lock again");
    close(d);
    CHECK(in_child(child_sees_no_lock, 0), "closing a dup released it");
    CHECK(setlk(fd_a, F_SETLK, F_WRLCK, 0, 10) == 0, "lock again");
    int other = open_file("locks-b");
    close(other);
    close(wo);
    CHECK(in_child(child_sees_no_lock, 0), "closing descriptors of other files and the O_WRONLY one: released too");
}

/* A child that locks [0,10) and exits (or is killed): its locks go. */
static int child_locks_and_exits(int how) {
    if (setlk(fd_a, F_SETLK, F_WRLCK, 0, 10) != 0) return 0;
    if (how) {
        kill(getpid(), SIGKILL);
        for (;;) pause();
    }
    return 1;
}

static void test_exit_and_wait(void) {
    CHECK(in_child(child_locks_and_exits, 0), "child locks and exits");
    CHECK(setlk(fd_a, F_SETLK, F_WRLCK, 0, 10) == 0 && setlk(fd_a, F_SETLK, F_UNLCK, 0, 0) == 0, "its locks went at exit");
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) child_locks_and_exits(1);
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFSIGNALED(st), "child killed holding a lock");
    CHECK(setlk(fd_a, F_SETLK, F_WRLCK, 0, 10) == 0, "its locks went when it was killed");

    /* F_SETLKW sleeps until the holder unlocks. */
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    fflush(stdout);
    c = fork();
    if (c == 0) {
        int ok = setlk(fd_a, F_SETLKW, F_WRLCK, 5, 1) == 0;
        char b = ok ? 'y' : 'n';
        write(p[1], &b, 1);
        _exit(0);
    }
    CHECK(wait_sleeping(c), "child sleeps in F_SETLKW");
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    char b = 0;
    CHECK(read(p[0], &b, 1) == -1 && errno == EAGAIN, "it has not got the lock");
    fcntl(p[0], F_SETFL, 0);
    CHECK(setlk(fd_a, F_SETLK, F_UNLCK, 0, 0) == 0, "parent unlocks");
    CHECK(read(p[0], &b, 1) == 1 && b == 'y', "the waiter got its lock");
    CHECK(reaped_ok(c), "waiter exits");

    /* EDEADLK: each holds what the other wants. */
    CHECK(setlk(fd_a, F_SETLK, F_WRLCK, 0, 1) == 0, "parent locks byte 0");
    fflush(stdout);
    c = fork();
    if (c == 0) {
        int ok = setlk(fd_a, F_SETLK, F_WRLCK, 1, 1) == 0;
        char r = 'r';
        write(p[1], &r, 1);
        ok &= setlk(fd_a, F_SETLKW, F_WRLCK, 0, 1) == 0;
        _exit(ok ? 0 : 1);
    }
    CHECK(read(p[0], &b, 1) == 1 && wait_sleeping(c), "child locks byte 1 and sleeps for byte 0");
    CHECK(setlk(fd_a, F_SETLKW, F_WRLCK, 1, 1) == -1 && errno == EDEADLK, "parent waiting for byte 1: EDEADLK");
    CHECK(setlk(fd_a, F_SETLK, F_WRLCK, 1, 1) == -1 && errno == EAGAIN, "F_SETLK does not check: EAGAIN");
    CHECK(setlk(fd_a, F_SETLK, F_UNLCK, 0, 1) == 0, "parent unlocks byte 0");
    CHECK(reaped_ok(c), "the child got byte 0");
    close(p[0]);
    close(p[1]);
}

/* ---- OFD locks */

static int child_ofd(int fd) {
    struct flock g;
    int own = open("locks-c", O_RDWR);
    /* The inherited description is the owner: no conflict through it. */
    int ok = getlk(fd, F_OFD_GETLK, F_WRLCK, 0, 10, &g) == 0 && g.l_type == F_UNLCK;
    ok &= getlk(own, F_OFD_GETLK, F_WRLCK, 0, 10, &g) == 0 && g.l_type == F_WRLCK && g.l_pid == -1;
    /* A POSIX lock of another process conflicts with it. */
    ok &= setlk(own, F_SETLK, F_RDLCK, 0, 1) == -1 && errno == EAGAIN;
    return ok;
}

static void test_ofd(void) {
    int a = open_file("locks-c"), b = open_file("locks-c");
    struct flock g;
    CHECK(setlk(a, F_OFD_SETLK, F_WRLCK, 0, 10) == 0, "F_OFD_SETLK write through one description");
    CHECK(setlk(b, F_OFD_SETLK, F_WRLCK, 5, 10) == -1 && errno == EAGAIN, "another description of the same process conflicts");
    CHECK(getlk(b, F_OFD_GETLK, F_RDLCK, 0, 0, &g) == 0 && g.l_type == F_WRLCK && g.l_pid == -1 && g.l_start == 0 && g.l_len == 10, "F_OFD_GETLK reports l_pid -1");
    CHECK(getlk(b, F_GETLK, F_RDLCK, 0, 0, &g) == 0 && g.l_type == F_WRLCK && g.l_pid == -1, "F_GETLK sees the OFD lock");
    CHECK(setlk(b, F_SETLK, F_WRLCK, 0, 1) == -1 && errno == EAGAIN, "a POSIX lock of the same process conflicts with it");
    /* F_UNLCK asks for the description's own locks (Linux 6.x). */
    CHECK(getlk(b, F_OFD_GETLK, F_UNLCK, 0, 0, &g) == 0 && g.l_type == F_UNLCK, "F_OFD_GETLK F_UNLCK: another description's locks are not reported");
    CHECK(getlk(a, F_OFD_GETLK, F_UNLCK, 5, 0, &g) == 0 && g.l_type == F_WRLCK && g.l_start == 0 && g.l_len == 10, "F_OFD_GETLK F_UNLCK: reports the description's own lock");
    struct flock f = fl(F_WRLCK, SEEK_SET, 0, 1);
    f.l_pid = 1;
    CHECK(fcntl(b, F_OFD_SETLK, &f) == -1 && errno == EINVAL, "F_OFD_SETLK with l_pid set: EINVAL");
    CHECK(fcntl(b, F_OFD_GETLK, &f) == -1 && errno == EINVAL, "F_OFD_GETLK with l_pid set: EINVAL");
    CHECK(in_child(child_ofd, a), "child: shares the description's lock, not its own open's");
    int c = open_file("locks-c");
    close(c);
    CHECK(setlk(b, F_OFD_SETLK, F_WRLCK, 0, 1) == -1 && errno == EAGAIN, "closing another descriptor of the file keeps OFD locks");
    int d = dup(a);
    close(a);
    CHECK(setlk(b, F_OFD_SETLK, F_WRLCK, 0, 1) == -1 && errno == EAGAIN, "a dup keeps the description (and its lock)");
    close(d);
    CHECK(setlk(b, F_OFD_SETLK, F_WRLCK, 0, 1) == 0, "the last close of the description released it");
    /* F_OFD_SETLKW sleeps too. */
    a = open_file("locks-c");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    fflush(stdout);
    pid_t k = fork();
    if (k == 0) {
        close(b);
        int ok = setlk(a, F_OFD_SETLKW, F_RDLCK, 0, 1) == 0;
        char r = ok ? 'y' : 'n';
        write(p[1], &r, 1);
        _exit(0);
    }
    CHECK(wait_sleeping(k), "child sleeps in F_OFD_SETLKW");
    CHECK(setlk(b, F_OFD_SETLK, F_UNLCK, 0, 0) == 0, "unlock");
    char r = 0;
    CHECK(read(p[0], &r, 1) == 1 && r == 'y' && reaped_ok(k), "the waiter got it");
    close(a);
    close(b);
    close(p[0]);
    close(p[1]);
}

/* ---- flock */

static int child_flock_shared(int fd) {
    /* The inherited description holds the lock: relocking is granted. */
    int own = open("locks-d", O_RDONLY);
    int ok = flock(fd, LOCK_EX | LOCK_NB) == 0;
    ok &= flock(own, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK;
    return ok;
}

static void test_flock(void) {
    int a = open_file("locks-d"), b = open_file("locks-d");
    CHECK(flock(a, LOCK_EX) == 0, "LOCK_EX");
    CHECK(flock(b, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK, "another description: EWOULDBLOCK");
    CHECK(flock(b, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK, "shared too");
    CHECK(setlk(b, F_SETLK, F_WRLCK, 0, 0) == 0 && setlk(b, F_SETLK, F_UNLCK, 0, 0) == 0, "flock and record locks are independent");
    CHECK(in_child(child_flock_shared, a), "a forked child shares the description's lock");
    CHECK(flock(a, LOCK_SH) == 0 && flock(b, LOCK_SH | LOCK_NB) == 0, "converted to shared: both share");
    CHECK(flock(a, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK, "converting to exclusive with a sharer: EWOULDBLOCK");
    CHECK(flock(b, LOCK_EX | LOCK_NB) == 0, "the failed conversion dropped the old lock (as Linux)");
    CHECK(flock(b, LOCK_UN) == 0 && flock(a, LOCK_EX) == 0, "LOCK_UN");
    int d = dup(a);
    close(a);
    CHECK(flock(b, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK, "a dup keeps the lock");
    close(d);
    CHECK(flock(b, LOCK_EX | LOCK_NB) == 0, "released at the last close");
    /* Blocking. */
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int own = open("locks-d", O_RDONLY);
        int ok = flock(own, LOCK_SH) == 0;
        char r = ok ? 'y' : 'n';
        write(p[1], &r, 1);
        _exit(0);
    }
    CHECK(wait_sleeping(c), "child sleeps in flock");
    CHECK(flock(b, LOCK_UN) == 0, "unlock");
    char r = 0;
    CHECK(read(p[0], &r, 1) == 1 && r == 'y' && reaped_ok(c), "the waiter got it");
    /* Errors. */
    CHECK(flock(b, 0) == -1 && errno == EINVAL, "no operation: EINVAL");
    CHECK(flock(b, LOCK_SH | LOCK_EX) == -1 && errno == EINVAL, "two operations: EINVAL");
    CHECK(flock(999, LOCK_SH) == -1 && errno == EBADF, "bad fd: EBADF");
    int path = open("locks-d", O_PATH);
    CHECK(flock(path, LOCK_SH) == -1 && errno == EBADF, "O_PATH: EBADF");
    close(path);
    close(b);
    close(p[0]);
    close(p[1]);
}

/* ---- pipes and devices, and exec */

static int pipe_w;
static int child_pipe(int unused) {
    (void)unused;
    return setlk(pipe_w, F_SETLK, F_WRLCK, 0, 1) == -1 && errno == EAGAIN;
}

static void test_other_files(void) {
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    pipe_w = p[1];
    CHECK(setlk(p[1], F_SETLK, F_WRLCK, 0, 1) == 0, "record lock on a pipe");
    CHECK(setlk(p[0], F_SETLK, F_WRLCK, 0, 1) == -1 && errno == EBADF, "write lock on the read end: EBADF");
    CHECK(in_child(child_pipe, 0), "the pipe's lock conflicts in a child");
    CHECK(flock(p[0], LOCK_EX | LOCK_NB) == 0 && flock(p[1], LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK, "flock on a pipe: both ends are one inode");
    close(p[0]);
    close(p[1]);
    int n = open("/dev/null", O_RDWR);
    CHECK(n >= 0 && setlk(n, F_SETLK, F_WRLCK, 0, 0) == 0 && flock(n, LOCK_EX) == 0, "locks on /dev/null");
    close(n);
}

static void test_exec(const char *self) {
    int p[2], q[2];
    CHECK(pipe(p) == 0 && pipe(q) == 0, "pipes");
    int cx = open("locks-e", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char w[16], r[16];
        setlk(fd_a, F_SETLK, F_WRLCK, 0, 10);
        setlk(cx, F_SETLK, F_WRLCK, 0, 10);
        snprintf(w, sizeof w, "%d", p[1]);
        snprintf(r, sizeof r, "%d", q[0]);
        execl(self, self, "hold", w, r, (char *)0);
        _exit(3);
    }
    char b = 0;
    CHECK(read(p[0], &b, 1) == 1, "the child exec'd");
    struct flock g;
    CHECK(getlk(fd_a, F_GETLK, F_WRLCK, 0, 10, &g) == 0 && g.l_type == F_WRLCK && g.l_pid == c, "its lock survived exec");
    CHECK(getlk(cx, F_GETLK, F_WRLCK, 0, 10, &g) == 0 && g.l_type == F_UNLCK, "closing its O_CLOEXEC descriptor at exec released that file's lock");
    write(q[1], "x", 1);
    CHECK(reaped_ok(c), "child exits");
    close(cx);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "hold") == 0) {
        write(atoi(argv[2]), "x", 1);
        char b;
        read(atoi(argv[3]), &b, 1);
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_record_locks();
    test_exit_and_wait();
    test_ofd();
    test_flock();
    test_other_files();
    test_exec("/proc/self/exe");
    printf("%d failed\n", fails);
    return fails != 0;
}
