// Timers, checked against Linux: POSIX timers (timer_create and friends:
// SIGEV_SIGNAL/NONE/THREAD_ID, si_value, SI_TIMER, overruns, absolute
// deadlines on CLOCK_MONOTONIC/REALTIME, CPU-time clocks), the interval
// timers ITIMER_VIRTUAL/ITIMER_PROF, what fork and execve keep of them,
// and a process's CPU time counting its threads. The same binary runs
// natively first, then in the guest. Prints "ok - ..." per check,
// "FAIL - ..." on a mismatch, and "N failed".
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

// Raw system calls: glibc's timer_* wrap SIGEV_THREAD and map ids.
static long tcreate(clockid_t c, struct sigevent *ev, int *id) {
    return syscall(SYS_timer_create, c, ev, id);
}
static long tset(int id, int flags, const struct itimerspec *n, struct itimerspec *o) {
    return syscall(SYS_timer_settime, id, flags, n, o);
}
static long tget(int id, struct itimerspec *cur) {
    return syscall(SYS_timer_gettime, id, cur);
}
static long tdelete(int id) { return syscall(SYS_timer_delete, id); }
static long toverrun(int id) { return syscall(SYS_timer_getoverrun, id); }

static int64_t ns_of(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }
static int64_t now_ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return ns_of(t);
}
static struct itimerspec its(int64_t value_ns, int64_t interval_ns) {
    struct itimerspec s = {
        .it_interval = {interval_ns / 1000000000, interval_ns % 1000000000},
        .it_value = {value_ns / 1000000000, value_ns % 1000000000},
    };
    return s;
}
static void spin_cpu(int64_t ns) {
    int64_t end = now_ns(CLOCK_THREAD_CPUTIME_ID) + ns;
    while (now_ns(CLOCK_THREAD_CPUTIME_ID) < end) {
    }
}

// Waits (blocked) for `sig` up to `ms`; its siginfo in *si. 0 or -1.
static int wait_sig(int sig, int ms, siginfo_t *si) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    return sigtimedwait(&set, si, &t) == sig ? 0 : -1;
}

static void block(int sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

static volatile sig_atomic_t vt_hits, prof_hits;
static void on_vtalrm(int s) { (void)s; vt_hits++; }
static void on_prof(int s) { (void)s; prof_hits++; }

static void *spinner(void *arg) {
    spin_cpu((int64_t)(intptr_t)arg);
    return NULL;
}

static void posix_timers(void) {
    block(SIGALRM);
    block(SIGRTMIN);
    block(SIGRTMIN + 1);
    siginfo_t si;
    int id = -1;

    // No sigevent: SIGALRM, si_value the timer's id.
    CHECK(tcreate(CLOCK_MONOTONIC, NULL, &id) == 0 && id >= 0, "timer_create(NULL sigevent)");
    CHECK(toverrun(id) == 0, "a new timer has no overruns");
    struct itimerspec s = its(20000000, 0), cur;
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    CHECK(tset(id, 0, &s, NULL) == 0, "timer_settime 20 ms");
    CHECK(tget(id, &cur) == 0 && ns_of(cur.it_value) > 0 && ns_of(cur.it_value) <= 20000000 &&
              ns_of(cur.it_interval) == 0,
          "timer_gettime: armed, at most 20 ms left");
    CHECK(wait_sig(SIGALRM, 2000, &si) == 0, "SIGALRM from the timer");
    int64_t took = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK(took >= 20000000, "not before its deadline (%lld ns)", (long long)took);
    CHECK(si.si_code == SI_TIMER && si.si_timerid == id && si.si_value.sival_int == id &&
              si.si_overrun == 0,
          "SI_TIMER, si_timerid, si_value = id, no overrun (code %d value %d)", si.si_code,
          si.si_value.sival_int);
    CHECK(tget(id, &cur) == 0 && ns_of(cur.it_value) == 0, "a fired one-shot timer reads 0");
    CHECK(tdelete(id) == 0, "timer_delete");
    CHECK(tdelete(id) == -1 && errno == EINVAL, "timer_delete twice: EINVAL");
    CHECK(tget(id, &cur) == -1 && errno == EINVAL, "timer_gettime of a deleted timer: EINVAL");

    // A periodic timer whose signal stays blocked: one signal, overruns.
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    ev.sigev_value.sival_ptr = (void *)0x1234567890ULL;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0, "timer_create(SIGEV_SIGNAL, SIGRTMIN)");
    // 20 ms: the check that no second signal is queued runs right after
    // the first is taken, and must do so before the next expiry.
    s = its(20000000, 20000000);
    CHECK(tset(id, 0, &s, NULL) == 0, "periodic every 20 ms");
    usleep(200000);
    CHECK(wait_sig(SIGRTMIN, 1000, &si) == 0, "its signal");
    CHECK(si.si_value.sival_ptr == (void *)0x1234567890ULL, "si_value is sigev_value");
    CHECK(si.si_overrun >= 4, "overruns counted while it was pending (%d)", si.si_overrun);
    CHECK(toverrun(id) == si.si_overrun, "timer_getoverrun = the last si_overrun");
    CHECK(wait_sig(SIGRTMIN, 0, &si) == -1, "one signal queued, not one per expiry");
    CHECK(tset(id, 0, &(struct itimerspec){0}, &cur) == 0 && ns_of(cur.it_interval) == 20000000 &&
              ns_of(cur.it_value) >= 0 && ns_of(cur.it_value) <= 20100000,
          "disarming returns the old setting");
    CHECK(tget(id, &cur) == 0 && ns_of(cur.it_value) == 0 && ns_of(cur.it_interval) == 0,
          "disarmed");
    tdelete(id);
    while (wait_sig(SIGRTMIN, 0, &si) == 0) {
    }

    // TIMER_ABSTIME: a monotonic time already past fires at once; a
    // realtime one 30 ms ahead fires then.
    ev.sigev_signo = SIGRTMIN + 1;
    ev.sigev_value.sival_int = 77;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0, "timer_create CLOCK_MONOTONIC");
    s = its(now_ns(CLOCK_MONOTONIC) - 1000000, 0);
    CHECK(tset(id, TIMER_ABSTIME, &s, NULL) == 0, "TIMER_ABSTIME in the past");
    CHECK(wait_sig(SIGRTMIN + 1, 500, &si) == 0 && si.si_value.sival_int == 77, "fires at once");
    tdelete(id);
    CHECK(tcreate(CLOCK_REALTIME, &ev, &id) == 0, "timer_create CLOCK_REALTIME");
    int64_t at = now_ns(CLOCK_REALTIME) + 30000000;
    s = its(at, 0);
    CHECK(tset(id, TIMER_ABSTIME, &s, NULL) == 0, "TIMER_ABSTIME realtime +30 ms");
    CHECK(wait_sig(SIGRTMIN + 1, 2000, &si) == 0 && now_ns(CLOCK_REALTIME) >= at,
          "fires at the realtime deadline");
    tdelete(id);

    // SIGEV_NONE: nothing is sent; the time left counts down to 0.
    ev.sigev_notify = SIGEV_NONE;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0, "timer_create(SIGEV_NONE)");
    s = its(10000000, 0);
    tset(id, 0, &s, NULL);
    usleep(30000);
    CHECK(tget(id, &cur) == 0 && ns_of(cur.it_value) == 0, "SIGEV_NONE: expired reads 0");
    CHECK(wait_sig(SIGRTMIN + 1, 0, &si) == -1, "SIGEV_NONE sends nothing");
    tdelete(id);

    // SIGEV_THREAD_ID: to this thread; another process's tid is EINVAL.
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev._sigev_un._tid = gettid();
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0, "timer_create(SIGEV_THREAD_ID, own tid)");
    s = its(5000000, 0);
    tset(id, 0, &s, NULL);
    CHECK(wait_sig(SIGRTMIN + 1, 1000, &si) == 0 && si.si_code == SI_TIMER, "to the thread");
    tdelete(id);
    ev._sigev_un._tid = getppid();
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL,
          "SIGEV_THREAD_ID of another process: EINVAL");

    // Bad arguments.
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = 0;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL, "signal 0: EINVAL");
    ev.sigev_signo = 65;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL, "signal 65: EINVAL");
    ev.sigev_signo = SIGRTMIN;
    ev.sigev_notify = 99;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL, "bad sigev_notify: EINVAL");
    CHECK(tcreate(123, NULL, &id) == -1 && errno == EINVAL, "unknown clock: EINVAL");
    CHECK(tcreate(CLOCK_MONOTONIC_RAW, NULL, &id) == -1 && errno == EOPNOTSUPP,
          "CLOCK_MONOTONIC_RAW: EOPNOTSUPP");
    CHECK(tcreate(CLOCK_MONOTONIC, NULL, (int *)8) == -1 && errno == EFAULT, "bad id pointer: EFAULT");
    CHECK(tcreate(CLOCK_MONOTONIC, (struct sigevent *)8, &id) == -1 && errno == EFAULT,
          "bad sigevent pointer: EFAULT");
    CHECK(tcreate(CLOCK_MONOTONIC, NULL, &id) == 0, "timer_create");
    s = its(0, 0);
    s.it_value.tv_nsec = 1000000000;
    CHECK(tset(id, 0, &s, NULL) == -1 && errno == EINVAL, "tv_nsec 1e9: EINVAL");
    CHECK(tset(id, 0, NULL, NULL) == -1 && errno == EINVAL, "no new setting: EINVAL");
    CHECK(tset(id + 1000, 0, &s, NULL) == -1 && errno == EINVAL, "unknown id: EINVAL");
    CHECK(toverrun(-1) == -1 && errno == EINVAL, "timer_getoverrun(-1): EINVAL");
    tdelete(id);
}

static void cpu_timers(void) {
    siginfo_t si;
    int id;
    // A timer on the process's CPU time fires after that much CPU.
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    CHECK(tcreate(CLOCK_PROCESS_CPUTIME_ID, &ev, &id) == 0, "timer_create(CLOCK_PROCESS_CPUTIME_ID)");
    int64_t c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    struct itimerspec s = its(30000000, 0);
    tset(id, 0, &s, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    int got = 0;
    int64_t wall0 = now_ns(CLOCK_MONOTONIC);
    while (!got && now_ns(CLOCK_MONOTONIC) - wall0 < 3000000000LL) {
        spin_cpu(1000000);
        struct timespec zero = {0, 0};
        got = sigtimedwait(&set, &si, &zero) == SIGRTMIN;
    }
    int64_t used = now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
    CHECK(got && si.si_code == SI_TIMER, "its signal after CPU time");
    CHECK(used >= 30000000, "not before 30 ms of CPU (%lld)", (long long)used);
    tdelete(id);

    // ITIMER_VIRTUAL and ITIMER_PROF: SIGVTALRM, SIGPROF.
    signal(SIGVTALRM, on_vtalrm);
    signal(SIGPROF, on_prof);
    struct itimerval v = {{0, 0}, {0, 20000}}, old;
    CHECK(setitimer(ITIMER_VIRTUAL, &v, NULL) == 0, "setitimer(ITIMER_VIRTUAL, 20 ms)");
    // (Linux adds a tick to a CPU timer's first expiry.)
    CHECK(getitimer(ITIMER_VIRTUAL, &old) == 0 && old.it_value.tv_sec == 0 &&
              old.it_value.tv_usec > 0 && old.it_value.tv_usec <= 30000,
          "getitimer(ITIMER_VIRTUAL) is armed (%ld us)", (long)old.it_value.tv_usec);
    wall0 = now_ns(CLOCK_MONOTONIC);
    while (!vt_hits && now_ns(CLOCK_MONOTONIC) - wall0 < 3000000000LL) {
        spin_cpu(1000000);
    }
    CHECK(vt_hits == 1, "SIGVTALRM after 20 ms of user time");
    CHECK(getitimer(ITIMER_VIRTUAL, &old) == 0 && old.it_value.tv_usec == 0 &&
              old.it_value.tv_sec == 0,
          "a fired one-shot ITIMER_VIRTUAL reads 0");
    v.it_interval.tv_usec = 10000;
    v.it_value.tv_usec = 10000;
    CHECK(setitimer(ITIMER_PROF, &v, NULL) == 0, "setitimer(ITIMER_PROF, every 10 ms)");
    wall0 = now_ns(CLOCK_MONOTONIC);
    while (prof_hits < 2 && now_ns(CLOCK_MONOTONIC) - wall0 < 3000000000LL) {
        spin_cpu(1000000);
    }
    CHECK(prof_hits >= 2, "SIGPROF, periodic");
    CHECK(setitimer(ITIMER_PROF, NULL, &old) == 0 && old.it_interval.tv_usec == 10000,
          "setitimer(NULL) returns the old setting");
    CHECK(getitimer(ITIMER_PROF, &old) == 0 && old.it_value.tv_usec == 0 &&
              old.it_interval.tv_usec == 0,
          "... and disarms (Linux's misfeature)");
    CHECK(getitimer(3, &old) == -1 && errno == EINVAL, "getitimer(3): EINVAL");
}

static void threads_cpu(void) {
    // A thread's CPU time is the process's, also after it ended.
    struct rusage before, after, self_thread;
    getrusage(RUSAGE_SELF, &before);
    int64_t p0 = now_ns(CLOCK_PROCESS_CPUTIME_ID), t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    pthread_t t;
    pthread_create(&t, NULL, spinner, (void *)(intptr_t)60000000);
    pthread_join(t, NULL);
    getrusage(RUSAGE_SELF, &after);
    getrusage(RUSAGE_THREAD, &self_thread);
    int64_t p1 = now_ns(CLOCK_PROCESS_CPUTIME_ID), t1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    int64_t ru = (after.ru_utime.tv_sec - before.ru_utime.tv_sec) * 1000000000LL +
                 (after.ru_utime.tv_usec - before.ru_utime.tv_usec) * 1000LL +
                 (after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1000000000LL +
                 (after.ru_stime.tv_usec - before.ru_stime.tv_usec) * 1000LL;
    CHECK(p1 - p0 >= 55000000, "CLOCK_PROCESS_CPUTIME_ID counts an ended thread (%lld)",
          (long long)(p1 - p0));
    CHECK(t1 - t0 < 40000000, "CLOCK_THREAD_CPUTIME_ID does not (%lld)", (long long)(t1 - t0));
    CHECK(ru >= 55000000, "getrusage(RUSAGE_SELF) counts it (%lld)", (long long)ru);
    int64_t th = self_thread.ru_utime.tv_sec * 1000000000LL + self_thread.ru_utime.tv_usec * 1000LL +
                 self_thread.ru_stime.tv_sec * 1000000000LL + self_thread.ru_stime.tv_usec * 1000LL;
    CHECK(th < (after.ru_utime.tv_sec * 1000000000LL + after.ru_utime.tv_usec * 1000LL +
                after.ru_stime.tv_sec * 1000000000LL + after.ru_stime.tv_usec * 1000LL),
          "getrusage(RUSAGE_THREAD) is less");
    // A child's threads count in its parent's RUSAGE_CHILDREN.
    struct rusage kids0, kids1;
    getrusage(RUSAGE_CHILDREN, &kids0);
    pid_t c = fork();
    if (c == 0) {
        pthread_t u;
        pthread_create(&u, NULL, spinner, (void *)(intptr_t)60000000);
        pthread_join(u, NULL);
        _exit(0);
    }
    int st;
    struct rusage ru4;
    wait4(c, &st, 0, &ru4);
    getrusage(RUSAGE_CHILDREN, &kids1);
    int64_t k = (kids1.ru_utime.tv_sec - kids0.ru_utime.tv_sec) * 1000000000LL +
                (kids1.ru_utime.tv_usec - kids0.ru_utime.tv_usec) * 1000LL +
                (kids1.ru_stime.tv_sec - kids0.ru_stime.tv_sec) * 1000000000LL +
                (kids1.ru_stime.tv_usec - kids0.ru_stime.tv_usec) * 1000LL;
    int64_t w = ru4.ru_utime.tv_sec * 1000000000LL + ru4.ru_utime.tv_usec * 1000LL +
                ru4.ru_stime.tv_sec * 1000000000LL + ru4.ru_stime.tv_usec * 1000LL;
    CHECK(k >= 55000000, "RUSAGE_CHILDREN counts a child's threads (%lld)", (long long)k);
    CHECK(w >= 55000000, "wait4's rusage too (%lld)", (long long)w);
}

static void inheritance(const char *self) {
    // fork: the child has none of its parent's timers.
    int id;
    tcreate(CLOCK_MONOTONIC, NULL, &id);
    struct itimerspec s = its(5000000000LL, 0), cur;
    tset(id, 0, &s, NULL);
    struct itimerval v = {{0, 0}, {5, 0}}, got;
    setitimer(ITIMER_REAL, &v, NULL);
    pid_t c = fork();
    if (c == 0) {
        int bad = tget(id, &cur) == 0;
        getitimer(ITIMER_REAL, &got);
        _exit(bad ? 1 : got.it_value.tv_sec || got.it_value.tv_usec ? 2 : 0);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork: no POSIX timers, no ITIMER_REAL (%d)",
          WEXITSTATUS(st));
    // execve: ITIMER_REAL stays, POSIX timers go.
    c = fork();
    if (c == 0) {
        char idbuf[16];
        setitimer(ITIMER_REAL, &v, NULL);
        tcreate(CLOCK_MONOTONIC, NULL, &id);
        tset(id, 0, &s, NULL);
        snprintf(idbuf, sizeof idbuf, "%d", id);
        execl(self, self, "after-exec", idbuf, (char *)NULL);
        _exit(9);
    }
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "execve: ITIMER_REAL kept, POSIX timers gone (%d)",
          WEXITSTATUS(st));
    v.it_value.tv_sec = 0;
    setitimer(ITIMER_REAL, &v, NULL);
    tdelete(id);
}

static void timerfds(void) {
    uint64_t n = 0;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    CHECK(fd >= 0, "timerfd_create(CLOCK_MONOTONIC, NONBLOCK|CLOEXEC)");
    CHECK(read(fd, &n, 8) == -1 && errno == EAGAIN, "read of an unarmed timerfd: EAGAIN");
    struct itimerspec s = its(20000000, 0), cur;
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    CHECK(timerfd_settime(fd, 0, &s, NULL) == 0, "timerfd_settime 20 ms");
    struct pollfd p = {fd, POLLIN, 0};
    CHECK(poll(&p, 1, 2000) == 1 && (p.revents & POLLIN), "poll: readable when it goes off");
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 >= 20000000, "not before");
    CHECK(read(fd, &n, 8) == 8 && n == 1, "read: 1 expiration (%llu)", (unsigned long long)n);
    CHECK(read(fd, &n, 8) == -1 && errno == EAGAIN, "the count was reset");
    CHECK(read(fd, &n, 4) == -1 && errno == EINVAL, "a read of 4 bytes: EINVAL");
    CHECK(write(fd, &n, 8) == -1 && errno == EINVAL, "write: EINVAL");

    // Periodic: the expirations missed are counted.
    s = its(5000000, 5000000);
    int64_t armed = now_ns(CLOCK_MONOTONIC);
    timerfd_settime(fd, 0, &s, NULL);
    usleep(52000);
    CHECK(timerfd_gettime(fd, &cur) == 0 && ns_of(cur.it_interval) == 5000000 &&
              ns_of(cur.it_value) >= 0 && ns_of(cur.it_value) <= 5100000,
          "timerfd_gettime of a periodic timer (%lld %lld)", (long long)ns_of(cur.it_interval), (long long)ns_of(cur.it_value));
    ssize_t got = read(fd, &n, 8);
    int64_t most = (now_ns(CLOCK_MONOTONIC) - armed) / 5000000;
    CHECK(got == 8 && n >= 10 && (int64_t)n <= most, "every 5 ms counted: %llu of at most %lld",
          (unsigned long long)n, (long long)most);
    // epoll sees it go off again.
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42}, out;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl ADD a timerfd");
    CHECK(epoll_wait(ep, &out, 1, 2000) == 1 && out.data.u64 == 42, "epoll_wait: it goes off");
    close(ep);
    // Setting it again drops the count; disarming reads 0.
    s = its(0, 0);
    CHECK(timerfd_settime(fd, 0, &s, &cur) == 0 && ns_of(cur.it_interval) == 5000000,
          "disarm returns the old setting");
    CHECK(read(fd, &n, 8) == -1 && errno == EAGAIN, "setting it dropped the expirations");
    CHECK(timerfd_gettime(fd, &cur) == 0 && ns_of(cur.it_value) == 0, "disarmed reads 0");
    close(fd);

    // Blocking read; an absolute realtime deadline.
    fd = timerfd_create(CLOCK_REALTIME, 0);
    int64_t at = now_ns(CLOCK_REALTIME) + 15000000;
    s = its(at, 0);
    CHECK(timerfd_settime(fd, TFD_TIMER_ABSTIME, &s, NULL) == 0, "TFD_TIMER_ABSTIME realtime");
    CHECK(read(fd, &n, 8) == 8 && n == 1 && now_ns(CLOCK_REALTIME) >= at,
          "a blocking read returns at the deadline");
    // A timerfd is shared across fork like any open file.
    s = its(10000000, 0);
    timerfd_settime(fd, 0, &s, NULL);
    pid_t c = fork();
    if (c == 0) {
        _exit(read(fd, &n, 8) == 8 && n == 1 ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child reads the parent's timerfd");
    close(fd);

    CHECK(timerfd_create(CLOCK_MONOTONIC_RAW, 0) == -1 && errno == EINVAL, "CLOCK_MONOTONIC_RAW: EINVAL");
    CHECK(timerfd_create(CLOCK_MONOTONIC, 1) == -1 && errno == EINVAL, "bad flags: EINVAL");
    int pp[2];
    pipe(pp);
    CHECK(timerfd_settime(pp[0], 0, &s, NULL) == -1 && errno == EINVAL, "settime of a pipe: EINVAL");
    CHECK(timerfd_gettime(999, &cur) == -1 && errno == EBADF, "gettime of no fd: EBADF");
    fd = timerfd_create(CLOCK_BOOTTIME, 0);
    CHECK(timerfd_settime(fd, 4, &s, NULL) == -1 && errno == EINVAL, "bad settime flags: EINVAL");
    CHECK(timerfd_settime(fd, 0, (struct itimerspec *)8, NULL) == -1 && errno == EFAULT,
          "bad pointer: EFAULT");
    close(fd);
    close(pp[0]);
    close(pp[1]);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "after-exec") == 0) {
        struct itimerval got;
        struct itimerspec cur;
        getitimer(ITIMER_REAL, &got);
        if (tget(atoi(argv[2]), &cur) == 0) {
            return 1;
        }
        return got.it_value.tv_sec || got.it_value.tv_usec ? 0 : 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    // The checks before an exec must not see an armed ITIMER_REAL.
    struct itimerval v = {{0, 0}, {5, 0}};
    setitimer(ITIMER_REAL, &v, NULL);
    v.it_value.tv_sec = 0;
    setitimer(ITIMER_REAL, &v, NULL);
    posix_timers();
    cpu_timers();
    threads_cpu();
    timerfds();
    inheritance("/proc/self/exe");
    printf("%d failed\n", failed);
    return failed != 0;
}
