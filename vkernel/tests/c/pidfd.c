// Process file descriptors, checked against Linux: pidfd_open (its flags
// and errors, close-on-exec), poll readable once the process exits and
// hung up once it is reaped, pidfd_send_signal (plain, with a siginfo,
// the scope flags, to a zombie, after the reap), waitid(P_PIDFD), and
// pidfd_getfd, CLONE_PIDFD (clone and clone3). The same binary runs natively first, then in the guest.
// Prints "ok - ..." per check, "FAIL - ..." on a mismatch, and "N failed".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#define PIDFD_THREAD O_EXCL

static int pidfd_open(pid_t pid, unsigned flags) { return syscall(SYS_pidfd_open, pid, flags); }
static int send_signal(int fd, int sig, siginfo_t *info, unsigned flags) {
    return syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}
static int getfd(int fd, int target, unsigned flags) { return syscall(SYS_pidfd_getfd, fd, target, flags); }

static int readable(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1 ? p.revents : 0;
}

static volatile pid_t tid_seen;
static void *thread_main(void *a) {
    (void)a;
    tid_seen = gettid();
    pause();
    return NULL;
}

static volatile sig_atomic_t got_usr1, usr1_code;
static void on_usr1(int s, siginfo_t *i, void *u) {
    (void)s;
    (void)u;
    got_usr1 = 1;
    usr1_code = i->si_code;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int self = pidfd_open(getpid(), 0);
    CHECK(self >= 0, "pidfd_open of itself");
    CHECK((fcntl(self, F_GETFD) & FD_CLOEXEC) && (fcntl(self, F_GETFL) & O_ACCMODE) == O_RDWR,
          "close-on-exec, O_RDWR");
    CHECK(readable(self, 0) == 0, "a live process: not readable");
    char b;
    CHECK(read(self, &b, 1) == -1 && errno == EINVAL, "read: EINVAL");
    int nb = pidfd_open(getpid(), O_NONBLOCK);
    CHECK(nb >= 0 && (fcntl(nb, F_GETFL) & O_NONBLOCK), "PIDFD_NONBLOCK");
    close(nb);
    CHECK(pidfd_open(getpid(), 1) == -1 && errno == EINVAL, "an unknown flag: EINVAL");
    CHECK(pidfd_open(0, 0) == -1 && errno == EINVAL, "pid 0: EINVAL");
    CHECK(pidfd_open(-1, 0) == -1 && errno == EINVAL, "pid -1: EINVAL");
    CHECK(pidfd_open(0x3ffffff0, 0) == -1 && errno == ESRCH, "no such pid: ESRCH");
    pthread_t th;
    pthread_create(&th, NULL, thread_main, NULL);
    while (!tid_seen)
        usleep(1000);
    CHECK(pidfd_open(tid_seen, 0) == -1 && errno == ENOENT, "a thread that leads no group: ENOENT");
    int tfd = pidfd_open(tid_seen, PIDFD_THREAD);
    CHECK(tfd >= 0, "with PIDFD_THREAD: a pidfd of the thread");
    close(tfd);
    CHECK(send_signal(self, 0, NULL, 0) == 0, "signal 0 to itself: allowed");
    CHECK(send_signal(self, 0, NULL, 8) == -1 && errno == EINVAL, "an unknown flag: EINVAL");
    CHECK(send_signal(self, 0, NULL, 3) == -1 && errno == EINVAL, "two scope flags: EINVAL");
    CHECK(send_signal(self, 99, NULL, 0) == -1 && errno == EINVAL, "signal 99: EINVAL");
    CHECK(send_signal(0, 0, NULL, 0) == -1 && errno == EBADF, "stdin is no pidfd: EBADF");
    CHECK(send_signal(1000, 0, NULL, 0) == -1 && errno == EBADF, "a closed descriptor: EBADF");
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    CHECK(send_signal(self, SIGUSR1, NULL, 0) == 0 && got_usr1 && usr1_code == SI_USER,
          "SIGUSR1 to itself: delivered, SI_USER");
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_QUEUE;
    got_usr1 = 0;
    CHECK(send_signal(self, SIGUSR1, &si, 0) == 0 && got_usr1 && usr1_code == SI_QUEUE, "with a siginfo: its code");
    si.si_signo = SIGUSR2;
    CHECK(send_signal(self, SIGUSR1, &si, 0) == -1 && errno == EINVAL, "a siginfo of another signal: EINVAL");

    // A child: readable at its exit, hung up at its reap.
    int go[2];
    pipe(go);
    pid_t c = fork();
    if (c == 0) {
        char x;
        read(go[0], &x, 1);
        _exit(7);
    }
    int cfd = pidfd_open(c, 0);
    CHECK(cfd >= 0 && readable(cfd, 0) == 0, "a child's pidfd: not readable while it runs");
    int stolen = getfd(cfd, go[1], 0);
    CHECK(stolen >= 0 && (fcntl(stolen, F_GETFD) & FD_CLOEXEC), "pidfd_getfd: its pipe end, close-on-exec");
    CHECK(getfd(cfd, 999, 0) == -1 && errno == EBADF, "pidfd_getfd of a descriptor it lacks: EBADF");
    CHECK(getfd(cfd, go[1], 1) == -1 && errno == EINVAL, "pidfd_getfd with flags: EINVAL");
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_USER;
    CHECK(send_signal(cfd, SIGUSR1, &si, 0) == -1 && errno == EPERM, "a kernel's code to another process: EPERM");
    CHECK(write(go[1], "x", 1) == 1, "let it exit");
    int ev = readable(cfd, 2000);
    CHECK((ev & POLLIN) && !(ev & POLLHUP), "exited: readable, not hung up");
    CHECK(send_signal(cfd, SIGUSR1, NULL, 0) == 0, "a signal to the zombie: no error");
    siginfo_t info;
    memset(&info, 0, sizeof info);
    CHECK(waitid(P_PIDFD, cfd, &info, WEXITED | WNOWAIT) == 0 && info.si_pid == c && info.si_status == 7,
          "waitid(P_PIDFD, WNOWAIT)");
    CHECK(waitid(P_PIDFD, cfd, &info, WEXITED) == 0 && info.si_status == 7, "waitid(P_PIDFD) reaps it");
    ev = readable(cfd, 0);
    CHECK((ev & POLLIN) && (ev & POLLHUP), "reaped: hung up");
    CHECK(send_signal(cfd, SIGUSR1, NULL, 0) == -1 && errno == ESRCH, "a signal after the reap: ESRCH");
    CHECK(waitid(P_PIDFD, cfd, &info, WEXITED) == -1 && errno == ECHILD, "waitid after the reap: ECHILD");
    CHECK(getfd(cfd, 0, 0) == -1 && errno == ESRCH, "pidfd_getfd after the exit: ESRCH");
    CHECK(waitid(P_PIDFD, 0, &info, WEXITED) == -1 && errno == EBADF, "waitid(P_PIDFD) of no pidfd: EBADF");
    close(cfd);
    close(stolen);

    // A pidfd's signal kills; another process's pid is not its.
    c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    cfd = pidfd_open(c, 0);
    CHECK(send_signal(cfd, SIGKILL, NULL, 0) == 0, "SIGKILL through a pidfd");
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child dies of it");
    close(cfd);

    // CLONE_PIDFD: the pidfd comes with the child.
    struct {
        unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    } ca = {0};
    int cpidfd = -1;
    ca.flags = CLONE_PIDFD;
    ca.pidfd = (unsigned long long)(unsigned long)&cpidfd;
    ca.exit_signal = SIGCHLD;
    c = syscall(SYS_clone3, &ca, 64);
    if (c == 0)
        _exit(5);
    CHECK(c > 0 && cpidfd >= 0 && (fcntl(cpidfd, F_GETFD) & FD_CLOEXEC), "clone3 with CLONE_PIDFD: a close-on-exec pidfd");
    memset(&info, 0, sizeof info);
    CHECK(waitid(P_PIDFD, cpidfd, &info, WEXITED) == 0 && info.si_pid == c && info.si_status == 5,
          "it names the child");
    close(cpidfd);
    ca.flags = CLONE_PIDFD;
    ca.pidfd = 8;
    CHECK(syscall(SYS_clone3, &ca, 64) == -1 && errno == EFAULT, "an unwritable pidfd slot: EFAULT, no child");
    CHECK(waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD, "(none was made)");
    int ptid_fd = -1;
    c = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &ptid_fd, 0, 0);
    if (c == 0)
        _exit(6);
    CHECK(c > 0 && ptid_fd >= 0, "clone with CLONE_PIDFD: the pidfd where the parent's tid would go");
    CHECK(waitid(P_PIDFD, ptid_fd, &info, WEXITED) == 0 && info.si_status == 6, "and it names the child");
    close(ptid_fd);
    CHECK(syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &ptid_fd, 0, 0) == -1 && errno == EINVAL,
          "CLONE_PIDFD with CLONE_PARENT_SETTID: EINVAL");

    // The process group scope.
    c = fork();
    if (c == 0) {
        setpgid(0, 0);
        pause();
        _exit(0);
    }
    setpgid(c, c);
    cfd = pidfd_open(c, 0);
    CHECK(send_signal(cfd, SIGTERM, NULL, 4) == 0, "PIDFD_SIGNAL_PROCESS_GROUP");
    CHECK(waitpid(c, &st, 0) == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "its group got it");
    close(cfd);
    printf("%d failed\n", failed);
    fflush(stdout);
    _exit(failed != 0);
}
