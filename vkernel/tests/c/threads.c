// Threads (#15), checked against Linux: the same binary runs natively
// first, then in the guest (both pmaps). Prints "ok - ..." per check,
// "FAIL - ..." on a mismatch, and "N failed".
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static long futex(uint32_t *uaddr, int op, uint32_t val, const void *timeout, uint32_t *uaddr2,
                  uint32_t val3) {
    return syscall(SYS_futex, uaddr, op, val, timeout, uaddr2, val3);
}

static uint64_t now_ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

// Waits until task `tid` of this process is asleep (state S in its stat).
static int wait_asleep(pid_t tid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    for (int i = 0; i < 20000; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            char *p = strrchr(buf, ')');
            if (p && p[1] == ' ' && p[2] == 'S')
                return 1;
        }
        sched_yield();
        if (i > 100)
            usleep(100);
    }
    return 0;
}

// ---- create / join, ids, TLS ----------------------------------------------

static __thread int tls_value;
static pid_t main_pid;

struct ids {
    pid_t pid, tid, ppid;
    int tls;
    uintptr_t fs;
};

static void *report_ids(void *arg) {
    struct ids *r = arg;
    tls_value = r->tls;
    sched_yield();
    r->pid = getpid();
    r->tid = gettid_();
    r->ppid = getppid();
    r->tls = tls_value;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(r->fs));
    return (void *)(intptr_t)(r->tls * 2);
}

static void test_create_join(void) {
    struct ids r[8];
    pthread_t t[8];
    tls_value = 99;
    int ok = 1;
    for (int i = 0; i < 8; i++) {
        r[i].tls = i + 1;
        ok &= pthread_create(&t[i], NULL, report_ids, &r[i]) == 0;
    }
    int joined = 1, distinct = 1, same_pid = 1, tls_ok = 1;
    for (int i = 0; i < 8; i++) {
        void *ret;
        joined &= pthread_join(t[i], &ret) == 0 && (intptr_t)ret == (i + 1) * 2;
        same_pid &= r[i].pid == main_pid && r[i].ppid == getppid();
        distinct &= r[i].tid != main_pid;
        tls_ok &= r[i].tls == i + 1;
        for (int j = 0; j < i; j++)
            distinct &= r[i].tid != r[j].tid && r[i].fs != r[j].fs;
    }
    CHECK(ok && joined, "8 threads created and joined with their results");
    CHECK(same_pid, "getpid and getppid in a thread are the process's");
    CHECK(distinct, "each thread has its own tid and fs base");
    CHECK(tls_ok && tls_value == 99, "each thread's __thread variable is its own");
    CHECK(gettid_() == getpid(), "the main thread's tid is the pid");
}

static atomic_int many_alive, many_go;
static void *wait_for_all(void *arg) {
    atomic_fetch_add(&many_alive, 1);
    while (!atomic_load(&many_go))
        usleep(1000);
    return arg;
}

static void test_many(void) {
    pthread_t t[64];
    int ok = 1, n = 0;
    for (int i = 0; i < 64; i++) {
        if (pthread_create(&t[i], NULL, wait_for_all, (void *)(intptr_t)i) != 0) {
            ok = 0;
            break;
        }
        n++;
    }
    // All 64 live at once before any ends.
    while (atomic_load(&many_alive) < n)
        usleep(1000);
    atomic_store(&many_go, 1);
    for (int i = 0; i < n; i++) {
        void *r;
        ok &= pthread_join(t[i], &r) == 0 && (intptr_t)r == i;
    }
    CHECK(ok && n == 64, "64 threads alive at once");
}

// Hundreds of threads (small stacks) at once, then a broadcast wakes them.
static pthread_mutex_t crowd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t crowd_cond = PTHREAD_COND_INITIALIZER;
static int crowd_go;
static void *crowd_member(void *arg) {
    pthread_mutex_lock(&crowd_lock);
    while (!crowd_go)
        pthread_cond_wait(&crowd_cond, &crowd_lock);
    pthread_mutex_unlock(&crowd_lock);
    return arg;
}

static void test_crowd(void) {
    enum { N = 256 };
    static pthread_t t[N];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int n = 0, ok = 1;
    while (n < N && pthread_create(&t[n], &attr, crowd_member, (void *)(intptr_t)n) == 0)
        n++;
    pthread_mutex_lock(&crowd_lock);
    crowd_go = 1;
    pthread_cond_broadcast(&crowd_cond);
    pthread_mutex_unlock(&crowd_lock);
    for (int i = 0; i < n; i++) {
        void *r;
        ok &= pthread_join(t[i], &r) == 0 && (intptr_t)r == i;
    }
    CHECK(n == N && ok, "%d threads alive at once, woken by one broadcast", n);
}

// ---- mutexes, condition variables, barriers --------------------------------

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long counter;
static int queue[16], qhead, qtail;
static pthread_barrier_t barrier;
static atomic_int barrier_after;

static void *add_many(void *arg) {
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&lock);
        long c = counter;
        if (i % 512 == 0)
            sched_yield();
        counter = c + 1;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void *consume(void *arg) {
    long sum = 0;
    (void)arg;
    for (int n = 0; n < 1000; n++) {
        pthread_mutex_lock(&lock);
        while (qhead == qtail)
            pthread_cond_wait(&cond, &lock);
        sum += queue[qhead++ % 16];
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    return (void *)sum;
}

static void *at_barrier(void *arg) {
    (void)arg;
    pthread_barrier_wait(&barrier);
    atomic_fetch_add(&barrier_after, 1);
    pthread_barrier_wait(&barrier);
    return NULL;
}

static void test_sync(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, add_many, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(counter == 80000, "4 threads contending on a mutex (with yields) count to 80000: %ld",
          counter);

    pthread_t c;
    pthread_create(&c, NULL, consume, NULL);
    long want = 0;
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&lock);
        while (qtail - qhead == 16)
            pthread_cond_wait(&cond, &lock);
        queue[qtail++ % 16] = i;
        want += i;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    void *got;
    pthread_join(c, &got);
    CHECK((long)got == want, "producer and consumer through a condition variable");

    pthread_barrier_init(&barrier, NULL, 5);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, at_barrier, NULL);
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier);
    int after = atomic_load(&barrier_after);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(after == 4, "a barrier of 5 holds until all arrive");
}

// ---- SIMD registers per thread ---------------------------------------------

static uint64_t hold_xmm(uint64_t v) {
    uint64_t out;
    __asm__ volatile("movq %[v], %%xmm9\n"
                     "mov $3000, %%r12d\n"
                     "1: mov $24, %%eax\n" // sched_yield
                     "syscall\n"
                     "dec %%r12d\n"
                     "jnz 1b\n"
                     "movq %%xmm9, %[out]\n"
                     : [out] "=r"(out)
                     : [v] "r"(v)
                     : "rax", "rcx", "r11", "r12", "xmm9", "memory");
    return out;
}

static void *simd_thread(void *arg) {
    uint64_t v = (uintptr_t)arg;
    return (void *)(uintptr_t)(hold_xmm(v) == v);
}

static void test_simd(void) {
    pthread_t a, b;
    pthread_create(&a, NULL, simd_thread, (void *)0x1111222233334444ull);
    pthread_create(&b, NULL, simd_thread, (void *)0x5555666677778888ull);
    int mine = hold_xmm(0x0123456789abcdefull) == 0x0123456789abcdefull;
    void *ra, *rb;
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    CHECK(mine && ra && rb, "three threads keep their own xmm9 across 3000 yields");
}

// ---- signals per thread ----------------------------------------------------

static volatile pid_t handled_by;
static volatile int handled;
static void note_tid(int sig) {
    (void)sig;
    handled_by = gettid_();
    handled++;
}

static atomic_int go_on;
static volatile pid_t waiter_tid;

static void *blocks_nothing(void *arg) {
    (void)arg;
    // The creator's mask is inherited: this thread lets SIGUSR1 in.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    waiter_tid = gettid_();
    while (!atomic_load(&go_on))
        usleep(1000);
    return NULL;
}

static volatile int sigwait_got;
static void *sigwait_later(void *arg) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (arg)
        usleep(20000); // the signal comes before this thread waits
    int sig = 0;
    sigwait_got = sigwait(&set, &sig) == 0 ? sig : -1;
    return NULL;
}

// The sigwait pattern: every thread blocks the signal, one waits for it.
static void test_sigwait(void) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    for (int later = 0; later < 2; later++) {
        pthread_t t;
        sigwait_got = 0;
        pthread_create(&t, NULL, sigwait_later, later ? (void *)1 : NULL);
        if (!later)
            usleep(20000); // the thread waits first
        kill(getpid(), SIGUSR1);
        pthread_join(t, NULL);
        CHECK(sigwait_got == SIGUSR1, "a process signal every thread blocks %s",
              later ? "waits for the thread that sigwaits later"
                    : "goes to the thread in sigwait");
    }
    sigset_t pending;
    sigpending(&pending);
    CHECK(!sigismember(&pending, SIGUSR1), "and it is taken only once");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void test_signals(void) {
    struct sigaction sa = {.sa_handler = note_tid};
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    waiter_tid = 0;
    atomic_store(&go_on, 0);
    pthread_t t;
    pthread_create(&t, NULL, blocks_nothing, NULL);
    while (!waiter_tid)
        sched_yield();
    // A process-wide signal the main thread blocks goes to the other.
    handled = 0;
    kill(getpid(), SIGUSR1);
    for (int i = 0; i < 2000 && !handled; i++)
        usleep(500);
    CHECK(handled == 1 && handled_by == waiter_tid,
          "kill to the process is handled by the thread that does not block it");
    // tgkill picks the thread.
    handled = 0;
    syscall(SYS_tgkill, getpid(), waiter_tid, SIGUSR2);
    for (int i = 0; i < 2000 && !handled; i++)
        usleep(500);
    CHECK(handled == 1 && handled_by == waiter_tid, "tgkill runs the handler in that thread");
    handled = 0;
    syscall(SYS_tgkill, getpid(), gettid_(), SIGUSR2);
    CHECK(handled == 1 && handled_by == gettid_(), "tgkill to itself");
    errno = 0;
    CHECK(syscall(SYS_tgkill, getpid() + 100000, waiter_tid, SIGUSR2) == -1 && errno == ESRCH,
          "tgkill with the wrong tgid is ESRCH");
    atomic_store(&go_on, 1);
    pthread_join(t, NULL);
    // Each thread's mask is its own: the main thread still blocks SIGUSR1.
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    CHECK(sigismember(&now, SIGUSR1), "the mask is per thread");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

// ---- futexes ---------------------------------------------------------------

static uint32_t f1, f2;
struct waiter {
    uint32_t *word;
    uint32_t val, bitset;
    long ret;
    int err;
    pid_t tid;
};

static void *futex_waiter(void *arg) {
    struct waiter *w = arg;
    w->tid = gettid_();
    w->ret = futex(w->word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, w->val, NULL, NULL,
                   w->bitset);
    w->err = errno;
    return NULL;
}

static void start_waiter(pthread_t *t, struct waiter *w, uint32_t *word, uint32_t bitset) {
    *w = (struct waiter){.word = word, .val = *word, .bitset = bitset, .ret = -2};
    pthread_create(t, NULL, futex_waiter, w);
    while (!__atomic_load_n(&w->tid, __ATOMIC_SEQ_CST))
        sched_yield();
    wait_asleep(w->tid);
}

static void on_usr2(int sig) { (void)sig; }

static void test_futex(void) {
    errno = 0;
    f1 = 5;
    CHECK(futex(&f1, FUTEX_WAIT, 4, NULL, NULL, 0) == -1 && errno == EAGAIN,
          "FUTEX_WAIT on a changed value is EAGAIN");
    struct timespec rel = {0, 30 * 1000000};
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    errno = 0;
    long r = futex(&f1, FUTEX_WAIT_PRIVATE, 5, &rel, NULL, 0);
    uint64_t took = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK(r == -1 && errno == ETIMEDOUT && took >= 30000000,
          "FUTEX_WAIT's relative timeout: ETIMEDOUT after %llu ms",
          (unsigned long long)(took / 1000000));
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 20000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    t0 = now_ns(CLOCK_MONOTONIC);
    errno = 0;
    r = futex(&f1, FUTEX_WAIT_BITSET, 5, &abs, NULL, FUTEX_BITSET_MATCH_ANY);
    took = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK(r == -1 && errno == ETIMEDOUT && took >= 15000000,
          "FUTEX_WAIT_BITSET's absolute CLOCK_MONOTONIC deadline");
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_sec -= 1;
    errno = 0;
    r = futex(&f1, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 5, &abs, NULL,
              FUTEX_BITSET_MATCH_ANY);
    CHECK(r == -1 && errno == ETIMEDOUT, "a CLOCK_REALTIME deadline in the past: ETIMEDOUT");
    errno = 0;
    CHECK(futex(&f1, FUTEX_WAIT_BITSET, 5, NULL, NULL, 0) == -1 && errno == EINVAL,
          "an empty bitset is EINVAL");
    errno = 0;
    CHECK(futex((uint32_t *)((char *)&f1 + 1), FUTEX_WAKE, 1, NULL, NULL, 0) == -1 &&
              errno == EINVAL,
          "a misaligned futex is EINVAL");
    CHECK(futex(&f1, FUTEX_WAKE, 1, NULL, NULL, 0) == 0, "FUTEX_WAKE with no waiter wakes 0");

    // Bitsets: a wake for other bits passes the waiter by.
    pthread_t t[3];
    struct waiter w[3];
    f1 = 0;
    start_waiter(&t[0], &w[0], &f1, 1);
    CHECK(futex(&f1, FUTEX_WAKE_BITSET, 10, NULL, NULL, 2) == 0,
          "FUTEX_WAKE_BITSET skips a waiter of other bits");
    CHECK(futex(&f1, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG, 10, NULL, NULL, 3) == 1,
          "FUTEX_WAKE_BITSET wakes a waiter sharing a bit");
    pthread_join(t[0], NULL);
    CHECK(w[0].ret == 0, "the woken wait returns 0 (the word did not change)");

    // Requeue: one woken, two moved to f2.
    f1 = 0;
    f2 = 0;
    for (int i = 0; i < 3; i++)
        start_waiter(&t[i], &w[i], &f1, FUTEX_BITSET_MATCH_ANY);
    errno = 0;
    CHECK(futex(&f1, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)2, &f2, 7) == -1 && errno == EAGAIN,
          "FUTEX_CMP_REQUEUE with a changed value is EAGAIN");
    CHECK(futex(&f1, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)2, &f2, 0) == 3,
          "FUTEX_CMP_REQUEUE counts 1 woken + 2 requeued");
    CHECK(futex(&f1, FUTEX_WAKE_PRIVATE, 10, NULL, NULL, 0) == 0, "nobody is left on the first");
    CHECK(futex(&f2, FUTEX_WAKE_PRIVATE, 10, NULL, NULL, 0) == 2, "both wait on the second");
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);

    f1 = 0;
    start_waiter(&t[0], &w[0], &f1, FUTEX_BITSET_MATCH_ANY);
    CHECK(futex(&f1, FUTEX_REQUEUE_PRIVATE, 0, (void *)1, &f2, 0) == 1, "FUTEX_REQUEUE moves one");
    CHECK(futex(&f2, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 1, "and it wakes from the second");
    pthread_join(t[0], NULL);

    // WAKE_OP: f2 = 1 (op SET), wake one on f1, and one on f2 if old f2 == 0.
    f1 = 0;
    f2 = 0;
    start_waiter(&t[0], &w[0], &f1, FUTEX_BITSET_MATCH_ANY);
    start_waiter(&t[1], &w[1], &f2, FUTEX_BITSET_MATCH_ANY);
    r = futex(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &f2,
              FUTEX_OP(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0));
    CHECK(r == 2 && f2 == 1, "FUTEX_WAKE_OP sets the word and wakes on both (%ld)", r);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    f1 = 0;
    f2 = 5;
    start_waiter(&t[1], &w[1], &f2, FUTEX_BITSET_MATCH_ANY);
    r = futex(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &f2,
              FUTEX_OP(FUTEX_OP_ADD, 2, FUTEX_OP_CMP_GT, 9));
    CHECK(r == 0 && f2 == 7, "FUTEX_WAKE_OP whose comparison fails wakes nobody on the second");
    CHECK(futex(&f2, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 1, "its waiter still waits");
    pthread_join(t[1], NULL);

    // A handler without SA_RESTART interrupts a wait: EINTR.
    struct sigaction sa = {.sa_handler = on_usr2};
    sigaction(SIGUSR2, &sa, NULL);
    f1 = 0;
    start_waiter(&t[0], &w[0], &f1, FUTEX_BITSET_MATCH_ANY);
    syscall(SYS_tgkill, getpid(), w[0].tid, SIGUSR2);
    pthread_join(t[0], NULL);
    CHECK(w[0].ret == -1 && w[0].err == EINTR, "a signal handler interrupts FUTEX_WAIT: EINTR");

    // Shared futexes between processes, through MAP_SHARED memory.
    uint32_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *shared = 0;
    pid_t c = fork();
    if (c == 0) {
        long rr = futex(shared, FUTEX_WAIT, 0, NULL, NULL, 0);
        _exit(rr == 0 && shared[1] == 42 ? 0 : 1);
    }
    // Wait until the child sleeps, then wake it through the same page.
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    for (int i = 0; i < 20000; i++) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        if (p && p[2] == 'S')
            break;
        usleep(200);
    }
    shared[1] = 42;
    int woke = 0;
    for (int i = 0; i < 100 && !woke; i++) {
        woke = futex(shared, FUTEX_WAKE, 1, NULL, NULL, 0);
        if (!woke)
            usleep(1000);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK(woke == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "a shared futex wakes a waiter in another process");
    munmap(shared, 4096);
}

// ---- futexes against a model ----------------------------------------------
// Rounds of: NW waiters each asleep on a random one of NF words (all
// asleep before anything else happens), then random WAKE, REQUEUE and
// CMP_REQUEUE operations whose results must match a model that counts
// the sleepers per word; then every word is woken. A lost wakeup shows as
// a waiter's timeout, a wrong count as a mismatch.

#define NW 6
#define NF 3
static uint32_t mwords[NF];
struct mwaiter {
    pthread_t t;
    int word;
    long ret;
    int err;
    volatile pid_t tid;
};
static struct mwaiter mw[NW];

static void *model_waiter(void *arg) {
    struct mwaiter *w = arg;
    struct timespec limit = {5, 0};
    w->tid = gettid_();
    w->ret = futex(&mwords[w->word], FUTEX_WAIT_PRIVATE, 0, &limit, NULL, 0);
    w->err = errno;
    return NULL;
}

static unsigned rnd_state = 12345;
static unsigned rnd(unsigned n) {
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 16) % n;
}

static void test_futex_model(void) {
    int mismatches = 0, lost = 0, ops = 0;
    for (int round = 0; round < 12; round++) {
        int count[NF] = {0};
        for (int i = 0; i < NF; i++)
            mwords[i] = 0;
        for (int i = 0; i < NW; i++) {
            mw[i] = (struct mwaiter){.word = (int)rnd(NF), .ret = -2};
            count[mw[i].word]++;
            pthread_create(&mw[i].t, NULL, model_waiter, &mw[i]);
        }
        for (int i = 0; i < NW; i++) {
            while (!mw[i].tid)
                sched_yield();
            wait_asleep(mw[i].tid);
        }
        for (int k = 0; k < 4; k++, ops++) {
            // Requeue onto another word (onto the same one Linux may count
            // a waiter twice).
            int a = (int)rnd(NF), b = (a + 1 + (int)rnd(NF - 1)) % NF;
            unsigned n1 = rnd(3), n2 = rnd(3);
            long got, want;
            switch (rnd(3)) {
            case 0:
                // Linux's FUTEX_WAKE of 0 wakes one, as of 1.
                got = futex(&mwords[a], FUTEX_WAKE_PRIVATE, n1, NULL, NULL, 0);
                want = (long)(n1 ? n1 : 1) < count[a] ? (long)(n1 ? n1 : 1) : count[a];
                count[a] -= want;
                break;
            case 1: {
                long w1 = (long)n1 < count[a] ? (long)n1 : count[a];
                long left = count[a] - w1;
                long m = (long)n2 < left ? (long)n2 : left;
                got = futex(&mwords[a], FUTEX_REQUEUE_PRIVATE, n1, (void *)(uintptr_t)n2,
                            &mwords[b], 0);
                want = w1 + m;
                count[a] -= w1 + m;
                count[b] += m;
                break;
            }
            default:
                // A stale expected value: EAGAIN, nothing moves.
                got = futex(&mwords[a], FUTEX_CMP_REQUEUE_PRIVATE, n1, (void *)(uintptr_t)n2,
                            &mwords[b], 1);
                want = -1;
                if (got == -1 && errno != EAGAIN)
                    got = -2;
                break;
            }
            if (got != want && getenv("MODEL_DEBUG"))
                fprintf(stderr, "op a=%d b=%d n1=%u n2=%u got %ld want %ld\n", a, b, n1, n2, got,
                        want);
            mismatches += got != want;
        }
        for (int i = 0; i < NF; i++) {
            long got = futex(&mwords[i], FUTEX_WAKE_PRIVATE, NW, NULL, NULL, 0);
            mismatches += got != count[i];
        }
        for (int i = 0; i < NW; i++) {
            pthread_join(mw[i].t, NULL);
            lost += mw[i].ret != 0;
        }
    }
    CHECK(mismatches == 0 && lost == 0,
          "futex WAKE/REQUEUE/CMP_REQUEUE counts match a model over %d random ops, no lost "
          "wakeup (%d mismatches, %d lost)",
          ops, mismatches, lost);
}

// ---- robust mutexes, CLONE_CHILD_CLEARTID ----------------------------------

static pthread_mutex_t robust;
static void *lock_and_die(void *arg) {
    (void)arg;
    pthread_mutex_lock(&robust);
    return NULL; // ends holding it
}

static void test_robust(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &a);
    pthread_t t;
    pthread_create(&t, NULL, lock_and_die, NULL);
    pthread_join(t, NULL);
    int r = pthread_mutex_lock(&robust);
    CHECK(r == EOWNERDEAD, "a robust mutex whose owner died: EOWNERDEAD (%d)", r);
    CHECK(pthread_mutex_consistent(&robust) == 0 && pthread_mutex_unlock(&robust) == 0 &&
              pthread_mutex_lock(&robust) == 0 && pthread_mutex_unlock(&robust) == 0,
          "made consistent, it locks again");
    long head = 0;
    size_t len = 0;
    CHECK(syscall(SYS_get_robust_list, 0, &head, &len) == 0 && head != 0 && len == 24,
          "get_robust_list returns glibc's head");
}

/* A robust mutex in memory shared between processes, held by a child
 * process when it exits: the next locker gets EOWNERDEAD. */
static void test_robust_shared(void) {
    pthread_mutex_t *m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "shared memory for the mutex");
    if (m == MAP_FAILED) return;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(m, &a);
    pid_t pid = fork();
    if (pid == 0) _exit(pthread_mutex_lock(m) == 0 ? 0 : 1); // exits holding it
    int status = -1;
    waitpid(pid, &status, 0);
    int r = pthread_mutex_lock(m);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && r == EOWNERDEAD,
          "a process-shared robust mutex whose owner process exited: EOWNERDEAD (%d)", r);
    if (r == EOWNERDEAD) pthread_mutex_consistent(m);
    pthread_mutex_unlock(m);
    munmap(m, sizeof *m);
}

static volatile pid_t child_tid = -1;
static int clone_fn(void *arg) {
    (void)arg;
    usleep(20000);
    syscall(SYS_exit, 0);
    return 0;
}

static void test_cleartid(void) {
    size_t sz = 64 * 1024;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
    pid_t ptid = 0;
    int tid = clone(clone_fn, stack + sz, flags, NULL, &ptid, NULL, &child_tid);
    CHECK(tid > 0 && ptid == tid, "clone(CLONE_THREAD) returns the tid, CLONE_PARENT_SETTID stores it");
    // CLONE_CHILD_CLEARTID: the word is zeroed and woken at exit.
    child_tid = tid;
    uint32_t v;
    int waits = 0;
    while ((v = child_tid) != 0) {
        futex((uint32_t *)&child_tid, FUTEX_WAIT, v, NULL, NULL, 0);
        waits++;
    }
    CHECK(child_tid == 0, "CLONE_CHILD_CLEARTID zeroes the tid and wakes the joiner");
    munmap(stack, sz);

    errno = 0;
    CHECK(syscall(SYS_clone, CLONE_THREAD | CLONE_VM, stack + sz, NULL, NULL, 0) == -1 &&
              errno == EINVAL,
          "CLONE_THREAD without CLONE_SIGHAND is EINVAL");
    errno = 0;
    CHECK(syscall(SYS_clone, CLONE_SIGHAND, stack + sz, NULL, NULL, 0) == -1 && errno == EINVAL,
          "CLONE_SIGHAND without CLONE_VM is EINVAL");
    pid_t tid2 = 0;
    errno = 0;
    CHECK(waitpid(tid, NULL, __WALL | WNOHANG) == -1 && errno == ECHILD,
          "a thread is never a child to wait for");
    (void)tid2;
}

// ---- group exit, exec from a thread, vfork --------------------------------

static void *exit_group_later(void *arg) {
    (void)arg;
    usleep(10000);
    exit(7);
}

static void *exit_thread_later(void *arg) {
    usleep(20000 * (int)(intptr_t)arg);
    syscall(SYS_exit, 8 + (int)(intptr_t)arg); // only this thread
    return NULL;
}

static void *segfault(void *arg) {
    (void)arg;
    usleep(5000);
    *(volatile int *)(uintptr_t)arg = 1;
    return NULL;
}

static void *exec_self(void *arg) {
    char tid[32];
    snprintf(tid, sizeof tid, "%d", gettid_());
    char *argv[] = {"/proc/self/exe", "exec-child", tid, (char *)arg, NULL};
    execv("/proc/self/exe", argv);
    _exit(100);
}

static void *sleep_forever(void *arg) {
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static int run_child(void (*body)(void)) {
    pid_t c = fork();
    if (c == 0) {
        body();
        _exit(99);
    }
    int st = 0;
    if (waitpid(c, &st, 0) != c)
        return -1;
    return st;
}

static void body_exit_group(void) {
    pthread_t t;
    pthread_create(&t, NULL, exit_group_later, NULL);
    pthread_create(&t, NULL, sleep_forever, NULL);
    for (;;)
        pause();
}

static void body_leader_exits(void) {
    pthread_t t;
    pthread_create(&t, NULL, exit_thread_later, (void *)1);
    pthread_create(&t, NULL, exit_thread_later, (void *)2);
    syscall(SYS_exit, 3); // the leader ends first; the group lives on
}

static void body_segfault(void) {
    pthread_t t;
    pthread_create(&t, NULL, segfault, (void *)8);
    for (;;)
        pause();
}

static char pid_text[32];
static void body_exec(void) {
    snprintf(pid_text, sizeof pid_text, "%d", getpid());
    pthread_t t;
    pthread_create(&t, NULL, sleep_forever, NULL);
    pthread_create(&t, NULL, exec_self, pid_text);
    for (;;)
        pause();
}

static void test_group_exit(void) {
    int st = run_child(body_exit_group);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "exit() in a thread ends every thread (status %#x)",
          st);
    st = run_child(body_leader_exits);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 10,
          "the leader exits first: the process ends with the last thread, and its status "
          "(%#x)",
          st);
    st = run_child(body_segfault);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "a thread that segfaults kills the group");
    st = run_child(body_exec);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42,
          "execve from a thread: the new image has the process's pid, one thread (%#x)", st);
}

static int exec_child(char **argv) {
    // argv: exe exec-child TID PID. The image runs as the process, alone.
    int ok = getpid() == atoi(argv[3]) && gettid_() == getpid() && getpid() != atoi(argv[2]);
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return ok && n == 1 ? 42 : 1;
}

static void test_vfork(void) {
    volatile int shared_var = 0;
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    pid_t c = vfork();
    if (c == 0) {
        shared_var = 1;
        usleep(20000);
        _exit(5);
    }
    uint64_t took = now_ns(CLOCK_MONOTONIC) - t0;
    int st;
    waitpid(c, &st, 0);
    CHECK(shared_var == 1 && took >= 20000000 && WEXITSTATUS(st) == 5,
          "vfork: the child shares memory, the parent waits for its exit");
    char *argv[] = {"/proc/self/exe", "spawn-child", NULL};
    pid_t p;
    int r = posix_spawn(&p, "/proc/self/exe", NULL, NULL, argv, NULL);
    waitpid(p, &st, 0);
    CHECK(r == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 17, "posix_spawn (CLONE_VM|CLONE_VFORK)");
    char *bad[] = {"/nonexistent", NULL};
    r = posix_spawn(&p, "/nonexistent", NULL, NULL, bad, NULL);
    CHECK(r == ENOENT, "posix_spawn reports the child's exec error through shared memory");
}

// ---- /proc/self/task, scheduling calls ------------------------------------

static void test_proc_task(void) {
    pthread_t t[2];
    pthread_create(&t[0], NULL, sleep_forever, NULL);
    pthread_create(&t[1], NULL, sleep_forever, NULL);
    int n = 0, self = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        self |= atoi(e->d_name) == getpid();
    }
    if (d)
        closedir(d);
    CHECK(n == 3 && self, "/proc/self/task lists the 3 threads (%d)", n);
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[len] = 0;
    CHECK(strstr(buf, "\nThreads:\t3\n") != NULL, "/proc/self/status says Threads: 3");
    int hidden = 1;
    d = opendir("/proc");
    while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid == 0 || pid == getpid() || kill(pid, 0) == 0)
            continue;
        // Natively, on a busy host, a process may end between the listing
        // and the kill: then its directory is gone too.
        int gone = errno == ESRCH;
        snprintf(path, sizeof path, "/proc/%d", pid);
        hidden &= gone && access(path, F_OK) != 0;
    }
    if (d)
        closedir(d);
    CHECK(hidden, "/proc lists processes");
    pthread_cancel(t[0]);
    pthread_cancel(t[1]);
    void *r0, *r1;
    pthread_join(t[0], &r0);
    pthread_join(t[1], &r1);
    CHECK(r0 == PTHREAD_CANCELED && r1 == PTHREAD_CANCELED, "pthread_cancel of threads in pause");

    cpu_set_t set;
    CPU_ZERO(&set);
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 1,
          "sched_getaffinity");
    CHECK(sched_setaffinity(0, sizeof set, &set) == 0, "sched_setaffinity to the same set");
    CHECK(sched_getscheduler(0) == SCHED_OTHER, "SCHED_OTHER");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec-child") == 0)
        return exec_child(argv);
    if (argc > 1 && strcmp(argv[1], "spawn-child") == 0)
        return 17;
    setvbuf(stdout, NULL, _IOLBF, 0);
    main_pid = getpid();
    test_create_join();
    test_many();
    test_crowd();
    test_sync();
    test_simd();
    test_signals();
    test_sigwait();
    test_futex();
    test_futex_model();
    test_robust();
    test_robust_shared();
    test_cleartid();
    test_group_exit();
    test_vfork();
    test_proc_task();
    printf("%d failed\n", failed);
    return failed != 0;
}
