// Credentials as Linux keeps them (run as root): the set*id calls and
// their EPERM rules once a process is no longer root, the capabilities
// following the uids (cap_emulate_setxuid, PR_SET_KEEPCAPS, capget and
// capset), setfsuid, what fork keeps and exec recomputes (AT_UID,
// AT_EUID, AT_SECURE, the saved ids), /proc/self/status's Uid/Gid/Cap
// lines, the owner of a file a process creates (its fsuid and fsgid, a
// set-group-ID directory's group) and SO_PEERCRED. Each scenario runs in
// a child, so the parent stays root. Capability sets are compared with
// the ones the program started with (root's, whatever its bounding set
// is here). The same binary runs natively first, then in the guest.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdio.h>
#include <unistd.h>

#include "check.h"

struct caps {
    uint64_t eff, prm, inh;
};

static int capget_self(struct caps *c) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0) return -1;
    c->eff = d[0].effective | (uint64_t)d[1].effective << 32;
    c->prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
    c->inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
    return 0;
}

static int capset_self(uint64_t eff, uint64_t prm, uint64_t inh) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {
        {(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
        {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)},
    };
    return syscall(SYS_capset, &h, d);
}

// The line of /proc/self/status that starts with `key`, into `out`.
static int status_line(const char *key, char *out, size_t len) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, strlen(key))) {
            snprintf(out, len, "%s", line + strlen(key));
            out[strcspn(out, "\n")] = 0;
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

static int ids_are(uid_t r, uid_t e, uid_t s) {
    uid_t a, b, c;
    return getresuid(&a, &b, &c) == 0 && a == r && b == e && c == s;
}

static int gids_are(gid_t r, gid_t e, gid_t s) {
    gid_t a, b, c;
    return getresgid(&a, &b, &c) == 0 && a == r && b == e && c == s;
}

static struct caps root;
static int thread_go;

// Runs `f` in a child; its checks count toward the parent's through the
// exit status (the number of its failures).
static void in_child(void (*f)(void)) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        failed = 0;
        f();
        fflush(stdout);
        _exit(failed);
    }
    int st;
    waitpid(p, &st, 0);
    failed += WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static void dropping_uids(void) {
    struct caps c;
    char line[128];
    CHECK(setresgid(100, 200, 300) == 0 && gids_are(100, 200, 300), "setresgid as root: any ids");
    CHECK(setfsgid(-1) == 200, "the fsgid follows the egid");
    CHECK(setresuid(1000, 1001, 0) == 0 && ids_are(1000, 1001, 0), "setresuid as root: any ids");
    CHECK(capget_self(&c) == 0 && c.eff == 0 && c.prm == root.prm,
          "an effective uid leaving 0 drops the effective set; a saved uid of 0 keeps the permitted one");
    CHECK(status_line("Uid:\t", line, sizeof line) == 0 && !strcmp(line, "1000\t1001\t0\t1001"),
          "/proc/self/status Uid: real, effective, saved, fs (%s)", line);
    CHECK(status_line("Gid:\t", line, sizeof line) == 0 && !strcmp(line, "100\t200\t300\t200"),
          "/proc/self/status Gid (%s)", line);
    CHECK(setresuid(-1, 0, -1) == 0 && ids_are(1000, 0, 0), "back to euid 0 through the saved uid");
    CHECK(capget_self(&c) == 0 && c.eff == root.prm, "the effective set comes back with euid 0");
    CHECK(setresuid(1000, 1000, 1000) == 0 && ids_are(1000, 1000, 1000), "setresuid to a user everywhere");
    CHECK(capget_self(&c) == 0 && c.eff == 0 && c.prm == 0, "leaving uid 0 everywhere drops every capability");
    CHECK(status_line("CapEff:\t", line, sizeof line) == 0 && !strcmp(line, "0000000000000000"),
          "/proc/self/status CapEff (%s)", line);
    CHECK(setuid(0) == -1 && errno == EPERM, "setuid(0) as a user: EPERM");
    CHECK(setresuid(-1, 0, -1) == -1 && errno == EPERM, "setresuid to 0 as a user: EPERM");
    CHECK(setreuid(-1, 2000) == -1 && errno == EPERM, "setreuid to another user: EPERM");
    CHECK(setresuid(-1, 1000, -1) == 0, "setresuid to its own id: a no-op, allowed");
    CHECK(setuid(1000) == 0 && ids_are(1000, 1000, 1000), "setuid to its own id");
    CHECK(setfsuid(0) == 1000 && setfsuid(-1) == 1000, "setfsuid(0) as a user: refused, the old one returned");
    CHECK(setgroups(0, NULL) == -1 && errno == EPERM, "setgroups as a user: EPERM");
    CHECK(setgid(0) == -1 && errno == EPERM, "setgid(0) as a user: EPERM");
    CHECK(setgid(300) == 0 && gids_are(100, 300, 300), "setgid to its saved gid: the effective one only");
    CHECK(setregid(300, -1) == 0 && gids_are(300, 300, 300), "setregid: the real gid, the saved one follows");
    CHECK(capset_self(root.prm, root.prm, 0) == -1 && errno == EPERM, "capset beyond the permitted set: EPERM");
    CHECK(capset_self(0, 0, 0) == 0, "capset within it");
    CHECK(setuid(-1) == -1 && errno == EINVAL, "setuid(-1): EINVAL");
}

static void *thread_ids(void *arg) {
    (void)arg;
    // Released once the main thread changed its ids (glibc then has
    // every thread make the same call: Linux's ids are per thread).
    while (!__atomic_load_n(&thread_go, __ATOMIC_ACQUIRE)) usleep(1000);
    long r, e, s;
    syscall(SYS_getresuid, &r, &e, &s);
    return (void *)(long)((uid_t)r == 1000 && (uid_t)e == 1000 && (uid_t)s == 1000);
}

static void threads(void) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_ids, NULL) == 0, "a thread");
    CHECK(setresuid(1000, 1000, 1000) == 0, "setresuid in the main thread");
    __atomic_store_n(&thread_go, 1, __ATOMIC_RELEASE);
    void *ok = NULL;
    CHECK(pthread_join(t, &ok) == 0 && ok, "the other thread has the same ids (glibc's SIGSETXID)");
}

static void keeping_caps(void) {
    struct caps c;
    CHECK(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 0, "PR_GET_KEEPCAPS: off");
    CHECK(prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0) == -1 && errno == EINVAL, "PR_SET_KEEPCAPS 2: EINVAL");
    CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0 && prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 1, "PR_SET_KEEPCAPS");
    CHECK(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) & (1 << 4), "its securebit (SECBIT_KEEP_CAPS)");
    CHECK(setresuid(1000, 1000, 1000) == 0, "leaving uid 0 with PR_SET_KEEPCAPS");
    CHECK(capget_self(&c) == 0 && c.prm == root.prm && c.eff == 0,
          "the permitted set stays, the effective one goes");
    CHECK(capset_self(1ull << CAP_SETUID, c.prm, 0) == 0 && capget_self(&c) == 0 && c.eff == 1ull << CAP_SETUID,
          "capset: CAP_SETUID effective again");
    CHECK(setuid(0) == 0 && ids_are(0, 0, 0), "with CAP_SETUID a user may become root");
    CHECK(prctl(PR_CAPBSET_READ, CAP_SETUID, 0, 0, 0) == 1 && prctl(PR_CAPBSET_READ, 99, 0, 0, 0) == -1 &&
              errno == EINVAL,
          "PR_CAPBSET_READ");
    CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SETUID, 0, 0) == -1 && errno == EPERM,
          "an ambient capability not inheritable: EPERM");
    CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SETUID, 0, 0) == 0, "PR_CAP_AMBIENT_IS_SET");
}

static void fork_and_exec(void) {
    CHECK(setresgid(5, 5, 5) == 0 && setresuid(1000, 1001, 1001) == 0, "ids for the exec");
    pid_t p = fork();
    if (p == 0) {
        CHECK(ids_are(1000, 1001, 1001) && gids_are(5, 5, 5), "fork keeps them");
        fflush(stdout);
        execl("/proc/self/exe", "creds", "aux", (char *)NULL);
        _exit(99);
    }
    int st;
    waitpid(p, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the exec'd program saw its ids (status %#x)", st);
}

// After the exec above: the auxiliary vector and the ids.
static int aux(void) {
    struct caps c;
    CHECK(getauxval(AT_UID) == 1000 && getauxval(AT_EUID) == 1001 && getauxval(AT_GID) == 5 &&
              getauxval(AT_EGID) == 5,
          "AT_UID, AT_EUID, AT_GID, AT_EGID");
    CHECK(getauxval(AT_SECURE) == 1, "AT_SECURE: the effective uid is not the real one");
    CHECK(ids_are(1000, 1001, 1001), "exec keeps the ids (the saved one is the effective one)");
    CHECK(capget_self(&c) == 0 && c.eff == 0 && c.prm == 0, "a user's exec has no capabilities");
    return failed;
}

static void owners(void) {
    char dir[] = "credsXXXXXX";
    struct stat st;
    CHECK(mkdtemp(dir) != NULL && chmod(dir, 0777) == 0, "a directory anyone may write");
    char sub[64], f[96], g[96];
    snprintf(sub, sizeof sub, "%s/sgid", dir);
    CHECK(mkdir(sub, 0777) == 0 && chown(sub, 0, 77) == 0 && chmod(sub, 02777) == 0, "a set-group-ID one inside");
    pid_t p = fork();
    if (p == 0) {
        setresgid(100, 100, 100);
        setresuid(1000, 1000, 1000);
        snprintf(f, sizeof f, "%s/mine", dir);
        int fd = open(f, O_CREAT | O_WRONLY, 0644);
        snprintf(g, sizeof g, "%s/sub", sub);
        int d = mkdir(g, 0755);
        _exit(fd < 0 || d != 0);
    }
    int status;
    waitpid(p, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a user creates a file and a directory");
    snprintf(f, sizeof f, "%s/mine", dir);
    CHECK(stat(f, &st) == 0 && st.st_uid == 1000 && st.st_gid == 100, "the file is the user's (%d:%d)",
          (int)st.st_uid, (int)st.st_gid);
    snprintf(g, sizeof g, "%s/sub", sub);
    CHECK(stat(g, &st) == 0 && st.st_uid == 1000 && st.st_gid == 77 && (st.st_mode & 02000),
          "in a set-group-ID directory: its group, and set-group-ID itself (%d:%d %o)", (int)st.st_uid,
          (int)st.st_gid, st.st_mode);
    unlink(f);
    rmdir(g);
    rmdir(sub);
    rmdir(dir);
}

static void peercred(void) {
    CHECK(setresgid(7, 8, 8) == 0 && setresuid(1000, 1001, 1001) == 0, "ids for a socket pair");
    int sv[2];
    struct ucred u;
    socklen_t len = sizeof u;
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &u, &len) == 0 && u.pid == getpid() && u.uid == 1001 &&
              u.gid == 8,
          "SO_PEERCRED: the maker's pid and effective ids (%d %d %d)", u.pid, u.uid, u.gid);
    int one = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    char cbuf[CMSG_SPACE(sizeof u)];
    struct iovec iov = {"x", 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof u);
    struct ucred claim = {getpid(), 0, 8};
    memcpy(CMSG_DATA(c), &claim, sizeof claim);
    CHECK(sendmsg(sv[0], &m, 0) == -1 && errno == EPERM, "SCM_CREDENTIALS claiming uid 0 as a user: EPERM");
    claim.uid = 1000;
    memcpy(CMSG_DATA(c), &claim, sizeof claim);
    CHECK(sendmsg(sv[0], &m, 0) == 1, "claiming its real uid");
    char b;
    struct iovec riov = {&b, 1};
    char rbuf[CMSG_SPACE(sizeof u)];
    struct msghdr r = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf, .msg_controllen = sizeof rbuf};
    CHECK(recvmsg(sv[1], &r, 0) == 1, "received");
    struct cmsghdr *rc = CMSG_FIRSTHDR(&r);
    struct ucred got = {0, 0, 0};
    if (rc && rc->cmsg_type == SCM_CREDENTIALS) memcpy(&got, CMSG_DATA(rc), sizeof got);
    CHECK(got.pid == getpid() && got.uid == 1000 && got.gid == 8, "the receiver sees the claim (%d %d %d)",
          got.pid, got.uid, got.gid);
    CHECK(write(sv[0], "y", 1) == 1 && recvmsg(sv[1], &r, 0) == 1, "a plain write");
    rc = CMSG_FIRSTHDR(&r);
    if (rc && rc->cmsg_type == SCM_CREDENTIALS) memcpy(&got, CMSG_DATA(rc), sizeof got);
    CHECK(got.uid == 1000 && got.gid == 7, "sends the real ids (%d %d)", got.uid, got.gid);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "aux")) return aux();
    CHECK(ids_are(0, 0, 0) && gids_are(0, 0, 0), "root to start with");
    CHECK(capget_self(&root) == 0 && root.eff == root.prm && root.inh == 0, "root's capabilities");
    struct __user_cap_header_struct h = {0x12345678, 0};
    CHECK(syscall(SYS_capget, &h, NULL) == 0 && h.version == _LINUX_CAPABILITY_VERSION_3,
          "capget without data: 0, the version it prefers written back");
    struct __user_cap_data_struct d[2];
    h.version = 0x12345678;
    CHECK(syscall(SYS_capget, &h, d) == -1 && errno == EINVAL && h.version == _LINUX_CAPABILITY_VERSION_3,
          "capget of an unknown version: EINVAL, the version it prefers written back");
    h.version = _LINUX_CAPABILITY_VERSION_1;
    CHECK(syscall(SYS_capget, &h, d) == 0 && d[0].effective == (uint32_t)root.eff,
          "capget version 1: one word per set");
    h.pid = -1;
    CHECK(syscall(SYS_capget, &h, d) == -1 && errno == EINVAL, "capget of pid -1: EINVAL");
    h.pid = 999999;
    CHECK(syscall(SYS_capget, &h, d) == -1 && errno == ESRCH, "capget of no process: ESRCH");
    in_child(dropping_uids);
    in_child(keeping_caps);
    in_child(threads);
    in_child(fork_and_exec);
    in_child(owners);
    in_child(peercred);
    CHECK(ids_are(0, 0, 0), "the parent is still root");
    printf("%d failed\n", failed);
    return 0;
}
