// The ids and scheduling queries a process makes, checked against Linux
// (run as root): getresuid/getresgid, sched_get_priority_min/max per
// policy, sched_rr_get_interval, nice values (getpriority, setpriority,
// nice; inherited by a child; /proc/self/stat), sched_setscheduler and
// sched_setparam. The same binary runs natively first,
// then in the guest. Prints "ok - ..." per check, "FAIL - ..." on a
// mismatch, and "N failed".
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    uid_t r = 1, e = 1, sv = 1;
    CHECK(getresuid(&r, &e, &sv) == 0 && r == 0 && e == 0 && sv == 0, "getresuid: root, three times");
    gid_t g1 = 1, g2 = 1, g3 = 1;
    CHECK(getresgid(&g1, &g2, &g3) == 0 && g1 == 0 && g2 == 0 && g3 == 0, "getresgid: root, three times");
    CHECK(getresuid(&r, (uid_t *)8, &sv) == -1 && errno == EFAULT, "getresuid with a bad pointer: EFAULT");
    CHECK(sched_get_priority_min(SCHED_FIFO) == 1 && sched_get_priority_max(SCHED_FIFO) == 99, "SCHED_FIFO: 1 to 99");
    CHECK(sched_get_priority_min(SCHED_RR) == 1 && sched_get_priority_max(SCHED_RR) == 99, "SCHED_RR: 1 to 99");
    CHECK(sched_get_priority_min(SCHED_OTHER) == 0 && sched_get_priority_max(SCHED_OTHER) == 0, "SCHED_OTHER: 0");
    CHECK(sched_get_priority_max(SCHED_BATCH) == 0 && sched_get_priority_max(SCHED_IDLE) == 0, "SCHED_BATCH, SCHED_IDLE: 0");
    CHECK(sched_get_priority_max(4) == -1 && errno == EINVAL, "policy 4: EINVAL");
    CHECK(sched_get_priority_min(-1) == -1 && errno == EINVAL, "policy -1: EINVAL");
    CHECK(sched_getscheduler(-1) == -1 && errno == EINVAL, "sched_getscheduler(-1): EINVAL");
    struct timespec ts = {-1, -1};
    // Linux gives 0 to a SCHED_OTHER task alone on its run queue, else
    // its slice.
    CHECK(sched_rr_get_interval(0, &ts) == 0 && ts.tv_sec == 0 && ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000,
          "sched_rr_get_interval: a slice under a second");
    CHECK(sched_rr_get_interval(-1, &ts) == -1 && errno == EINVAL, "pid -1: EINVAL");
    CHECK(sched_rr_get_interval(0x3fffffff, &ts) == -1 && errno == ESRCH, "no such pid: ESRCH");
    CHECK(sched_rr_get_interval(0, (struct timespec *)8) == -1 && errno == EFAULT, "a bad pointer: EFAULT");
    // Natively the test may run niced already: that value comes back at
    // the end.
    errno = 0;
    int start = getpriority(PRIO_PROCESS, 0);
    CHECK(errno == 0 && start >= -20 && start <= 19, "getpriority: a nice value (%d)", start);
    CHECK(setpriority(PRIO_PROCESS, 0, 5) == 0 && getpriority(PRIO_PROCESS, 0) == 5, "setpriority 5");
    CHECK(nice(1) == 6, "nice(1): 6");
    pid_t c = fork();
    if (c == 0)
        _exit(getpriority(PRIO_PROCESS, 0) == 6 ? 0 : 1);
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a child inherits it");
    char stat[512] = {0};
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
    }
    // Fields 18 and 19 (after the comm's closing parenthesis, 16 and 17).
    char *p = strrchr(stat, ')');
    int field = 2, prio = -1, ni = -1;
    for (; p && *p; p++)
        if (*p == ' ' && ++field == 18)
            sscanf(p + 1, "%d %d", &prio, &ni);
    CHECK(prio == 26 && ni == 6, "/proc/self/stat: priority 26, nice 6 (%d %d)", prio, ni);
    CHECK(setpriority(PRIO_PROCESS, 0, 100) == 0 && getpriority(PRIO_PROCESS, 0) == 19, "past 19: 19");
    CHECK(setpriority(PRIO_PROCESS, 0, -100) == 0 && getpriority(PRIO_PROCESS, 0) == -20, "below -20 (root): -20");
    CHECK(setpriority(PRIO_PGRP, 0, 3) == 0 && getpriority(PRIO_PROCESS, 0) == 3 && getpriority(PRIO_PGRP, 0) == 3,
          "PRIO_PGRP: the caller's group");
    CHECK(getpriority(PRIO_PROCESS, 0x3fffffff) == -1 && errno == ESRCH, "no such task: ESRCH");
    CHECK(setpriority(7, 0, 0) == -1 && errno == EINVAL, "which 7: EINVAL");
    setpriority(PRIO_PROCESS, 0, start);
    // sched_setscheduler / sched_setparam, read back.
    struct sched_param sp = {0};
    CHECK(sched_getscheduler(0) == SCHED_OTHER, "SCHED_OTHER at first");
    sp.sched_priority = 5;
    CHECK(sched_setscheduler(0, SCHED_OTHER, &sp) == -1 && errno == EINVAL, "SCHED_OTHER with priority 5: EINVAL");
    sp.sched_priority = 0;
    CHECK(sched_setscheduler(0, SCHED_BATCH, &sp) == 0 && sched_getscheduler(0) == SCHED_BATCH, "SCHED_BATCH");
    CHECK(sched_setscheduler(0, SCHED_IDLE, &sp) == 0 && sched_getscheduler(0) == SCHED_IDLE, "SCHED_IDLE");
    sp.sched_priority = 10;
    CHECK(sched_setscheduler(0, SCHED_RR, &sp) == 0 && sched_getscheduler(0) == SCHED_RR, "SCHED_RR 10 (root)");
    struct sched_param got = {-1};
    CHECK(sched_getparam(0, &got) == 0 && got.sched_priority == 10, "sched_getparam: 10");
    sp.sched_priority = 20;
    CHECK(sched_setparam(0, &sp) == 0 && sched_getparam(0, &got) == 0 && got.sched_priority == 20, "sched_setparam: 20");
    sp.sched_priority = 100;
    CHECK(sched_setparam(0, &sp) == -1 && errno == EINVAL, "priority 100: EINVAL");
    CHECK(sched_setscheduler(0, 6, &sp) == -1 && errno == EINVAL, "SCHED_DEADLINE here: EINVAL");
    CHECK(sched_setscheduler(0, 77, &sp) == -1 && errno == EINVAL, "an unknown policy: EINVAL");
    CHECK(sched_setscheduler(0, SCHED_RR, NULL) == -1 && errno == EINVAL, "no param: EINVAL");
    CHECK(sched_setscheduler(0x3fffffff, SCHED_RR, &sp) == -1 && errno == ESRCH, "no such pid: ESRCH");
    CHECK(sched_getparam(0, NULL) == -1 && errno == EINVAL, "sched_getparam(NULL): EINVAL");
    c = fork();
    if (c == 0)
        _exit(sched_getscheduler(0) == SCHED_RR ? 0 : 1);
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a child inherits SCHED_RR");
    sp.sched_priority = 1;
    CHECK(sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) == 0 &&
              sched_getscheduler(0) == (SCHED_FIFO | SCHED_RESET_ON_FORK),
          "SCHED_FIFO with SCHED_RESET_ON_FORK");
    c = fork();
    if (c == 0)
        _exit(sched_getscheduler(0) == SCHED_OTHER ? 0 : 1);
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "its child is SCHED_OTHER");
    struct timespec fifo_ts = {1, 1};
    CHECK(sched_rr_get_interval(0, &fifo_ts) == 0 && fifo_ts.tv_sec == 0 && fifo_ts.tv_nsec == 0,
          "SCHED_FIFO has no time slice");
    sp.sched_priority = 0;
    CHECK(sched_setscheduler(0, SCHED_OTHER, &sp) == 0 && sched_getscheduler(0) == SCHED_OTHER, "back to SCHED_OTHER");
    printf("%d failed\n", failed);
    return failed != 0;
}
