/* Waiting on many (#13): poll, ppoll, select, pselect6, epoll and eventfd
 * over pipes, /dev/null, regular files and each other, checked against
 * what Linux does (the test runs it natively too). Prints "ok ..." lines
 * and "N failed". With an argument it waits on the console instead:
 * "console-poll" / "console-epoll" wait for a line on fd 0 and echo it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fails;
/* An address no process maps (volatile: gcc would warn about it). */
static void *volatile bad_ptr = (void *)8;
#define CHECK(c, ...) do { if (c) printf("ok " __VA_ARGS__); else { fails++; printf("FAIL (errno %d) ", errno); printf(__VA_ARGS__); } printf("\n"); } while (0)

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* A child that sleeps `ms`, writes `n` bytes to `fd` (or adds to an
 * eventfd when n == 8) and exits. */
static pid_t later_write(int fd, int ms, const void *buf, size_t n) {
    pid_t c = fork();
    if (c == 0) {
        usleep(ms * 1000);
        _exit(write(fd, buf, n) == (ssize_t)n ? 0 : 1);
    }
    return c;
}

static int reaped_ok(pid_t c) {
    int st;
    return waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int console(const char *how) {
    char buf[256];
    int n = -1;
    if (strcmp(how, "console-poll") == 0) {
        struct pollfd p = {0, POLLIN, 0};
        int r = poll(&p, 1, -1);
        printf("poll %d revents %#x\n", r, p.revents);
    } else {
        int ep = epoll_create1(0);
        struct epoll_event e = {.events = EPOLLIN, .data.u64 = 7}, got;
        int r = epoll_ctl(ep, EPOLL_CTL_ADD, 0, &e);
        printf("epoll_ctl %d\n", r);
        r = r == 0 ? epoll_wait(ep, &got, 1, -1) : -1;
        printf("epoll_wait %d data %llu\n", r, (unsigned long long)got.data.u64);
    }
    fflush(stdout);
    n = read(0, buf, sizeof buf - 1);
    if (n < 0) n = 0;
    buf[n] = 0;
    printf("got %d: %s", n, buf);
    return 0;
}

static void test_poll(void) {
    int p[2];
    char buf[64];
    CHECK(pipe(p) == 0, "pipe");
    struct pollfd f[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {-1, POLLIN, 0}};
    CHECK(poll(f, 1, 0) == 0 && f[0].revents == 0, "poll empty pipe: nothing");
    CHECK(poll(f, 3, 0) == 1 && f[1].revents == POLLOUT && f[2].revents == 0, "poll: write end writable, negative fd ignored (%#x)", f[1].revents);
    write(p[1], "x", 1);
    CHECK(poll(f, 2, 0) == 2 && f[0].revents == POLLIN, "poll: readable after a write (%#x)", f[0].revents);
    f[0].events = POLLIN | POLLRDNORM;
    CHECK(poll(f, 1, 0) == 1 && f[0].revents == (POLLIN | POLLRDNORM), "poll: POLLRDNORM too");
    read(p[0], buf, 1);
    long long t0 = now_ms();
    CHECK(poll(f, 1, 100) == 0 && f[0].revents == 0, "poll timeout 100 ms");
    long long dt = now_ms() - t0;
    CHECK(dt >= 95 && dt < 2000, "poll waited %lld ms", dt);
    /* Blocking: the parent sleeps in poll until a child writes. */
    t0 = now_ms();
    pid_t c = later_write(p[1], 100, "hi", 2);
    int r = poll(f, 1, 5000);
    dt = now_ms() - t0;
    CHECK(r == 1 && f[0].revents & POLLIN && dt >= 90 && dt < 4000, "poll woken by a child's write after %lld ms", dt);
    CHECK(reaped_ok(c), "writer child");
    CHECK(read(p[0], buf, sizeof buf) == 2, "read what woke poll");
    /* An infinite timeout, woken the same way. */
    c = later_write(p[1], 50, "z", 1);
    CHECK(poll(f, 1, -1) == 1 && f[0].revents & POLLIN, "poll -1 woken");
    reaped_ok(c);
    read(p[0], buf, 1);
    /* Hang-up and error. */
    int q[2];
    pipe(q);
    close(q[1]);
    struct pollfd h = {q[0], POLLIN, 0};
    CHECK(poll(&h, 1, 0) == 1 && h.revents == POLLHUP, "poll: no writer is POLLHUP (%#x)", h.revents);
    h.events = 0;
    CHECK(poll(&h, 1, 0) == 1 && h.revents == POLLHUP, "poll: POLLHUP even unasked");
    close(q[0]);
    pipe(q);
    close(q[0]);
    h = (struct pollfd){q[1], POLLOUT, 0};
    CHECK(poll(&h, 1, 0) == 1 && h.revents == (POLLOUT | POLLERR), "poll: no reader is POLLERR (%#x)", h.revents);
    close(q[1]);
    /* A closed descriptor is POLLNVAL and counts. */
    h = (struct pollfd){q[1], POLLIN, 0};
    CHECK(poll(&h, 1, 0) == 1 && h.revents == POLLNVAL, "poll: closed fd POLLNVAL");
    /* Regular files and /dev/null are always ready. */
    int rf = open("/tmp/poll-reg", O_CREAT | O_RDWR | O_TRUNC, 0644);
    int dn = open("/dev/null", O_RDWR);
    struct pollfd g[2] = {{rf, POLLIN | POLLOUT, 0}, {dn, POLLIN | POLLOUT, 0}};
    CHECK(poll(g, 2, -1) == 2 && g[0].revents == (POLLIN | POLLOUT) && g[1].revents == (POLLIN | POLLOUT), "poll: regular file and /dev/null ready (%#x %#x)", g[0].revents, g[1].revents);
    close(rf);
    unlink("/tmp/poll-reg");
    close(dn);
    /* Bad input. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    errno = 0;
    CHECK(poll(f, rl.rlim_cur + 1, 0) == -1 && errno == EINVAL, "poll: nfds > RLIMIT_NOFILE is EINVAL");
    errno = 0;
    CHECK(poll(bad_ptr, 1, 0) == -1 && errno == EFAULT, "poll: bad pointer EFAULT");
    errno = 0;
    CHECK(poll(NULL, 0, 10) == 0, "poll: no fds, a sleep");
    /* ppoll: a timespec, written back by the raw call. */
    struct timespec ts = {0, 50 * 1000000};
    t0 = now_ms();
    r = syscall(SYS_ppoll, f, 1, &ts, NULL, 8);
    dt = now_ms() - t0;
    CHECK(r == 0 && dt >= 45 && ts.tv_sec == 0 && ts.tv_nsec == 0, "ppoll timeout, time left written back (%ld.%09ld, %lld ms)", (long)ts.tv_sec, ts.tv_nsec, dt);
    write(p[1], "y", 1);
    ts = (struct timespec){5, 0};
    r = syscall(SYS_ppoll, f, 1, &ts, NULL, 8);
    CHECK(r == 1 && ts.tv_sec >= 4 && ts.tv_sec <= 5, "ppoll ready, time left %ld s", (long)ts.tv_sec);
    ts = (struct timespec){0, 2000000000L};
    errno = 0;
    CHECK(ppoll(f, 1, &ts, NULL) == -1 && errno == EINVAL, "ppoll: bad timespec EINVAL");
    sigset_t none;
    sigemptyset(&none);
    ts = (struct timespec){0, 0};
    CHECK(ppoll(f, 1, &ts, &none) == 1, "ppoll with a signal mask");
    errno = 0;
    CHECK(syscall(SYS_ppoll, f, 1, NULL, &none, 4) == -1 && errno == EINVAL, "ppoll: bad sigsetsize EINVAL");
    read(p[0], buf, 1);
    close(p[0]);
    close(p[1]);
}

static void test_select(void) {
    int p[2];
    char buf[8];
    pipe(p);
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    struct timeval tv = {0, 0};
    CHECK(select(p[1] + 1, &r, &w, NULL, &tv) == 1 && !FD_ISSET(p[0], &r) && FD_ISSET(p[1], &w), "select: write end writable only");
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv = (struct timeval){0, 60000};
    long long t0 = now_ms();
    int n = select(p[0] + 1, &r, NULL, NULL, &tv);
    long long dt = now_ms() - t0;
    CHECK(n == 0 && !FD_ISSET(p[0], &r) && dt >= 55 && tv.tv_sec == 0 && tv.tv_usec == 0, "select timeout clears the set, time left 0 (%lld ms)", dt);
    FD_SET(p[0], &r);
    tv = (struct timeval){5, 0};
    pid_t c = later_write(p[1], 100, "ab", 2);
    n = select(p[0] + 1, &r, NULL, NULL, &tv);
    CHECK(n == 1 && FD_ISSET(p[0], &r) && tv.tv_sec >= 3 && tv.tv_sec <= 4, "select woken by a child, time left %ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    CHECK(reaped_ok(c), "select writer child");
    /* A huge nfds is cut to the table's size, not refused. */
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv = (struct timeval){0, 0};
    CHECK(select(FD_SETSIZE, &r, NULL, NULL, &tv) == 1, "select FD_SETSIZE");
    read(p[0], buf, 2);
    errno = 0;
    CHECK(select(-1, NULL, NULL, NULL, &tv) == -1 && errno == EINVAL, "select: negative nfds EINVAL");
    int bad = dup(p[0]);
    close(bad);
    FD_ZERO(&r);
    FD_SET(bad, &r);
    errno = 0;
    CHECK(select(bad + 1, &r, NULL, NULL, &tv) == -1 && errno == EBADF, "select: closed fd EBADF");
    tv = (struct timeval){0, -1};
    FD_ZERO(&r);
    errno = 0;
    CHECK(select(1, &r, NULL, NULL, &tv) == -1 && errno == EINVAL, "select: negative usec EINVAL");
    tv = (struct timeval){0, 0};
    errno = 0;
    CHECK(select(p[0] + 1, bad_ptr, NULL, NULL, &tv) == -1 && errno == EFAULT, "select: bad set EFAULT");
    /* pselect: a timespec and a mask. */
    sigset_t none;
    sigemptyset(&none);
    struct timespec ts = {0, 30 * 1000000};
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    t0 = now_ms();
    n = pselect(p[0] + 1, &r, NULL, NULL, &ts, &none);
    dt = now_ms() - t0;
    CHECK(n == 0 && dt >= 25, "pselect timeout (%lld ms)", dt);
    write(p[1], "q", 1);
    FD_SET(p[0], &r);
    CHECK(pselect(p[0] + 1, &r, NULL, NULL, NULL, NULL) == 1 && FD_ISSET(p[0], &r), "pselect ready");
    close(p[0]);
    close(p[1]);
}

static void test_epoll(void) {
    int p[2];
    char buf[64];
    struct epoll_event e, got[4];
    pipe(p);
    errno = 0;
    CHECK(epoll_create1(12345) == -1 && errno == EINVAL, "epoll_create1 bad flags EINVAL");
    errno = 0;
    CHECK(epoll_create(0) == -1 && errno == EINVAL, "epoll_create(0) EINVAL");
    int ep = epoll_create(1);
    CHECK(ep >= 0, "epoll_create");
    close(ep);
    ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0 && fcntl(ep, F_GETFD) == FD_CLOEXEC, "epoll_create1 EPOLL_CLOEXEC");
    e = (struct epoll_event){.events = EPOLLIN, .data.u64 = 0x1122334455667788ULL};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e) == 0, "epoll_ctl ADD");
    CHECK(epoll_wait(ep, got, 4, 0) == 0, "epoll_wait: nothing ready");
    write(p[1], "abc", 3);
    CHECK(epoll_wait(ep, got, 4, 0) == 1 && got[0].events == EPOLLIN && got[0].data.u64 == 0x1122334455667788ULL, "epoll_wait: readable, data back");
    CHECK(epoll_wait(ep, got, 4, 0) == 1, "level-triggered: reported again");
    read(p[0], buf, sizeof buf);
    long long t0 = now_ms();
    CHECK(epoll_wait(ep, got, 4, 80) == 0, "epoll_wait timeout");
    long long dt = now_ms() - t0;
    CHECK(dt >= 75 && dt < 2000, "epoll_wait waited %lld ms", dt);
    pid_t c = later_write(p[1], 100, "w", 1);
    t0 = now_ms();
    int n = epoll_wait(ep, got, 4, -1);
    dt = now_ms() - t0;
    CHECK(n == 1 && got[0].events == EPOLLIN && dt >= 90, "epoll_wait woken by a child after %lld ms", dt);
    CHECK(reaped_ok(c), "epoll writer child");
    read(p[0], buf, sizeof buf);
    /* The epoll fd itself is pollable. */
    struct pollfd pf = {ep, POLLIN, 0};
    CHECK(poll(&pf, 1, 0) == 0, "epoll fd not readable when nothing is");
    write(p[1], "x", 1);
    CHECK(poll(&pf, 1, 0) == 1 && pf.revents == POLLIN, "epoll fd readable when an item is");
    /* Nested: ep inside ep2; ep2 inside ep is a loop. */
    int ep2 = epoll_create1(0);
    e = (struct epoll_event){.events = EPOLLIN, .data.u32 = 99};
    CHECK(epoll_ctl(ep2, EPOLL_CTL_ADD, ep, &e) == 0, "epoll in epoll");
    CHECK(epoll_wait(ep2, got, 4, 0) == 1 && got[0].data.u32 == 99, "nested epoll reports");
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, ep2, &e) == -1 && errno == ELOOP, "epoll loop ELOOP");
    close(ep2);
    read(p[0], buf, sizeof buf);
    /* Errors. */
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e) == -1 && errno == EEXIST, "ADD twice EEXIST");
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &e) == -1 && errno == ENOENT, "MOD unknown ENOENT");
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL) == -1 && errno == ENOENT, "DEL unknown ENOENT");
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, 999, &e) == -1 && errno == EBADF, "bad fd EBADF");
    errno = 0;
    CHECK(epoll_ctl(999, EPOLL_CTL_ADD, p[0], &e) == -1 && errno == EBADF, "bad epfd EBADF");
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &e) == -1 && errno == EINVAL, "epfd == fd EINVAL");
    errno = 0;
    CHECK(epoll_ctl(p[1], EPOLL_CTL_ADD, p[0], &e) == -1 && errno == EINVAL, "epfd not epoll EINVAL");
    errno = 0;
    CHECK(epoll_ctl(ep, 77, p[0], &e) == -1 && errno == EINVAL, "bad op EINVAL");
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], bad_ptr) == -1 && errno == EFAULT, "bad event EFAULT");
    int rf = open("/tmp/epoll-reg", O_CREAT | O_RDWR, 0644);
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, rf, &e) == -1 && errno == EPERM, "regular file EPERM");
    close(rf);
    unlink("/tmp/epoll-reg");
    int dn = open("/dev/null", O_RDONLY);
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, dn, &e) == -1 && errno == EPERM, "/dev/null EPERM");
    close(dn);
    errno = 0;
    CHECK(epoll_wait(ep, got, 0, 0) == -1 && errno == EINVAL, "epoll_wait maxevents 0 EINVAL");
    write(p[1], "x", 1);
    errno = 0;
    CHECK(epoll_wait(ep, bad_ptr, 1, 0) == -1 && errno == EFAULT, "epoll_wait bad buffer EFAULT");
    read(p[0], buf, sizeof buf);
    errno = 0;
    CHECK(epoll_wait(p[0], got, 1, 0) == -1 && errno == EINVAL, "epoll_wait on a pipe EINVAL");
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL) == 0, "DEL");
    write(p[1], "x", 1);
    CHECK(epoll_wait(ep, got, 4, 0) == 0, "deleted item not reported");
    read(p[0], buf, sizeof buf);
    /* Edge-triggered: once per write. */
    e = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.u32 = 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
    CHECK(epoll_wait(ep, got, 4, 0) == 0, "ET: empty pipe nothing");
    write(p[1], "1", 1);
    CHECK(epoll_wait(ep, got, 4, 0) == 1, "ET: reported after a write");
    CHECK(epoll_wait(ep, got, 4, 0) == 0, "ET: not again while unread");
    write(p[1], "2", 1);
    CHECK(epoll_wait(ep, got, 4, 0) == 1, "ET: reported after another write");
    c = later_write(p[1], 80, "3", 1);
    CHECK(epoll_wait(ep, got, 4, 3000) == 1, "ET: blocking wait woken by a write");
    reaped_ok(c);
    read(p[0], buf, sizeof buf);
    /* One-shot: once, then re-armed by MOD. */
    e = (struct epoll_event){.events = EPOLLIN | EPOLLONESHOT, .data.u32 = 2};
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e) == 0, "MOD to one-shot");
    write(p[1], "o", 1);
    CHECK(epoll_wait(ep, got, 4, 0) == 1 && got[0].data.u32 == 2, "ONESHOT reported");
    write(p[1], "o", 1);
    CHECK(epoll_wait(ep, got, 4, 0) == 0, "ONESHOT disabled after");
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e) == 0 && epoll_wait(ep, got, 4, 0) == 1, "ONESHOT re-armed by MOD");
    read(p[0], buf, sizeof buf);
    /* Hang-up reported without asking; EPOLLRDHUP accepted. */
    e = (struct epoll_event){.events = EPOLLIN | EPOLLRDHUP, .data.u32 = 3};
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e) == 0, "MOD with EPOLLRDHUP");
    int wdup = dup(p[1]);
    close(p[1]);
    CHECK(epoll_wait(ep, got, 4, 0) == 0, "writer still open through a dup");
    close(wdup);
    CHECK(epoll_wait(ep, got, 4, 0) == 1 && got[0].events == EPOLLHUP, "EPOLLHUP when the last writer goes (%#x)", got[0].events);
    /* Closing the last descriptor removes the item; a dup keeps it. */
    int rdup = dup(p[0]);
    close(p[0]);
    CHECK(epoll_wait(ep, got, 4, 0) == 1, "item kept while a dup holds the file");
    close(rdup);
    CHECK(epoll_wait(ep, got, 4, 0) == 0, "item gone with the file's last descriptor");
    /* Many ready, fewer slots: every one gets its turn. */
    int a[2], b[2];
    pipe(a);
    pipe(b);
    e = (struct epoll_event){.events = EPOLLOUT, .data.u32 = 10};
    epoll_ctl(ep, EPOLL_CTL_ADD, a[1], &e);
    e.data.u32 = 11;
    epoll_ctl(ep, EPOLL_CTL_ADD, b[1], &e);
    int first, second;
    CHECK(epoll_wait(ep, got, 1, 0) == 1 && (first = got[0].data.u32, 1) && epoll_wait(ep, got, 1, 0) == 1 && (second = got[0].data.u32) != first, "round robin over ready items");
    CHECK(epoll_pwait(ep, got, 4, 0, NULL) == 2, "epoll_pwait");
    close(a[0]); close(a[1]); close(b[0]); close(b[1]);
    close(ep);
}

static void test_eventfd(void) {
    uint64_t v = 0;
    int fd = eventfd(3, 0);
    CHECK(fd >= 0 && read(fd, &v, 8) == 8 && v == 3, "eventfd read the initial value");
    CHECK(write(fd, &(uint64_t){5}, 8) == 8 && write(fd, &(uint64_t){6}, 8) == 8 && read(fd, &v, 8) == 8 && v == 11, "eventfd writes add up");
    errno = 0;
    CHECK(read(fd, &v, 4) == -1 && errno == EINVAL, "eventfd short read EINVAL");
    errno = 0;
    CHECK(write(fd, &v, 4) == -1 && errno == EINVAL, "eventfd short write EINVAL");
    errno = 0;
    CHECK(write(fd, &(uint64_t){UINT64_MAX}, 8) == -1 && errno == EINVAL, "eventfd write of 2^64-1 EINVAL");
    uint64_t two[2] = {1, 2};
    errno = 0;
    CHECK(write(fd, two, 16) == -1 && errno == EINVAL, "eventfd long write EINVAL");
    CHECK(write(fd, two, 8) == 8 && read(fd, two, 16) == 8 && two[0] == 1, "eventfd long read");
    close(fd);
    /* Non-blocking. */
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC && (fcntl(fd, F_GETFL) & O_NONBLOCK), "EFD_NONBLOCK | EFD_CLOEXEC");
    errno = 0;
    CHECK(read(fd, &v, 8) == -1 && errno == EAGAIN, "eventfd empty read EAGAIN");
    struct pollfd p = {fd, POLLIN | POLLOUT, 0};
    CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLOUT, "eventfd 0: writable only");
    CHECK(write(fd, &(uint64_t){0xfffffffffffffffeULL}, 8) == 8, "eventfd to the maximum");
    CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLIN, "eventfd at the maximum: readable only");
    errno = 0;
    CHECK(write(fd, &(uint64_t){1}, 8) == -1 && errno == EAGAIN, "eventfd overflow EAGAIN");
    CHECK(read(fd, &v, 8) == 8 && v == 0xfffffffffffffffeULL, "eventfd read the maximum");
    close(fd);
    /* Semaphore. */
    fd = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    CHECK(read(fd, &v, 8) == 8 && v == 1 && read(fd, &v, 8) == 8 && v == 1, "EFD_SEMAPHORE reads 1 at a time");
    errno = 0;
    CHECK(read(fd, &v, 8) == -1 && errno == EAGAIN, "EFD_SEMAPHORE empty EAGAIN");
    close(fd);
    errno = 0;
    CHECK(eventfd(0, 0x40000000) == -1 && errno == EINVAL, "eventfd bad flags EINVAL");
    /* Blocking read woken by a child; epoll over an eventfd. */
    fd = eventfd(0, 0);
    long long t0 = now_ms();
    pid_t c = later_write(fd, 100, &(uint64_t){42}, 8);
    CHECK(read(fd, &v, 8) == 8 && v == 42 && now_ms() - t0 >= 90, "eventfd blocking read woken by a child");
    CHECK(reaped_ok(c), "eventfd writer child");
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.u32 = 5}, got;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    c = later_write(fd, 50, &(uint64_t){1}, 8);
    CHECK(epoll_wait(ep, &got, 1, 3000) == 1 && got.data.u32 == 5, "epoll on an eventfd woken by a child");
    reaped_ok(c);
    CHECK(epoll_wait(ep, &got, 1, 0) == 0, "eventfd ET: once");
    write(fd, &(uint64_t){1}, 8);
    CHECK(epoll_wait(ep, &got, 1, 0) == 1, "eventfd ET: again after a write");
    /* Blocking write woken by a read. */
    read(fd, &v, 8);
    write(fd, &(uint64_t){0xfffffffffffffffeULL}, 8);
    c = fork();
    if (c == 0) { usleep(80000); uint64_t x; _exit(read(fd, &x, 8) == 8 ? 0 : 1); }
    CHECK(write(fd, &(uint64_t){7}, 8) == 8, "eventfd blocking write woken by a read");
    CHECK(reaped_ok(c) && read(fd, &v, 8) == 8 && v == 7, "eventfd after the blocked write");
    close(ep);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc > 1) return console(argv[1]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_poll();
    test_select();
    test_epoll();
    test_eventfd();
    printf("%d failed\n", fails);
    return fails != 0;
}
