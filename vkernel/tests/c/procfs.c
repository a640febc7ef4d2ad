/* /proc as Linux gives it: checked natively and under vkernel (procfs.rs).
 * Prints "ok ..." per check, "FAIL ..." otherwise, then "N failed". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

static int fails;
#define CHECK(c, ...) do { if (c) printf("ok " __VA_ARGS__); else { fails++; printf("FAIL (errno %d) ", errno); printf(__VA_ARGS__); } printf("\n"); } while (0)

/* Reads all of `path` into buf (NUL-terminated); the length or -1. */
static long slurp(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r < 0) { close(fd); return -1; }
        if (r == 0) break;
        n += r;
    }
    close(fd);
    buf[n] = 0;
    return n;
}

/* The state letter of `pid` from /proc/PID/stat, or 0. */
static char state_of(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (slurp(path, buf, sizeof buf) < 0) return 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

static unsigned long meminfo(const char *buf, const char *key) {
    const char *p = strstr(buf, key);
    unsigned long v = 0;
    if (p) sscanf(p + strlen(key), " %lu kB", &v);
    return v;
}

int main(int argc, char **argv) {
    static char buf[65536];
    char path[512], want[512];
    pid_t me = getpid();
    (void)argc;

    /* /proc/self */
    ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    snprintf(want, sizeof want, "%d", me);
    CHECK(n > 0 && strcmp(buf, want) == 0, "readlink /proc/self = %s", buf);
    struct stat a, b;
    snprintf(path, sizeof path, "/proc/%d", me);
    CHECK(stat("/proc/self", &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && S_ISDIR(a.st_mode), "/proc/self is /proc/PID");

    /* stat: 52 fields, comm in parentheses */
    CHECK(slurp("/proc/self/stat", buf, sizeof buf) > 0, "read /proc/self/stat");
    int pid = 0, ppid = 0; char state = 0;
    char *close_paren = strrchr(buf, ')');
    int fields = 2;
    for (char *p = close_paren ? close_paren + 1 : buf; *p; p++) if (*p == ' ') fields++;
    sscanf(buf, "%d", &pid);
    if (close_paren) sscanf(close_paren + 2, "%c %d", &state, &ppid);
    CHECK(pid == me && state == 'R' && ppid == getppid(), "stat: pid %d state %c ppid %d", pid, state, ppid);
    CHECK(fields == 52, "stat has %d fields", fields);
    CHECK(buf[strlen(buf) - 1] == '\n', "stat ends in a newline");

    /* status */
    CHECK(slurp("/proc/self/status", buf, sizeof buf) > 0, "read /proc/self/status");
    snprintf(want, sizeof want, "\nPid:\t%d\n", me);
    CHECK(strstr(buf, want) != NULL, "status has Pid");
    snprintf(want, sizeof want, "\nPPid:\t%d\n", getppid());
    CHECK(strstr(buf, want) != NULL, "status has PPid");
    CHECK(strncmp(buf, "Name:\t", 6) == 0 && strstr(buf, "\nState:\tR (running)\n") && strstr(buf, "\nVmSize:"), "status Name, State, VmSize");

    /* cmdline: argv, each ending in NUL */
    long len = slurp("/proc/self/cmdline", buf, sizeof buf);
    size_t want_len = 0;
    for (char **a = argv; *a; a++) want_len += strlen(*a) + 1;
    CHECK(len == (long)want_len && strcmp(buf, argv[0]) == 0, "cmdline (%ld bytes)", len);

    /* environ: envp, the same way */
    extern char **environ;
    len = slurp("/proc/self/environ", buf, sizeof buf);
    size_t env_len = 0;
    int env_same = 1;
    for (char **e = environ; *e; e++) {
        if (env_len + strlen(*e) < sizeof buf && strcmp(buf + env_len, *e) != 0) env_same = 0;
        env_len += strlen(*e) + 1;
    }
    CHECK(len == (long)env_len && env_same, "environ (%ld bytes)", len);

    /* exe and comm */
    n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    CHECK(n > 0 && buf[0] == '/' && stat(buf, &a) == 0 && stat("/proc/self/exe", &b) == 0 && a.st_ino == b.st_ino, "exe -> %s", buf);
    char *base = strrchr(buf, '/') + 1;
    char comm[64];
    snprintf(want, sizeof want, "%.15s\n", base);
    CHECK(slurp("/proc/self/comm", comm, sizeof comm) > 0 && strcmp(comm, want) == 0, "comm %s", comm);
    n = readlink("/proc/self/cwd", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    CHECK(n > 0 && getcwd(want, sizeof want) && strcmp(buf, want) == 0, "cwd -> %s", buf);

    /* fd/ */
    int fd = open("procfs-test-file", O_CREAT | O_RDWR | O_TRUNC, 0644);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    n = readlink(path, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    char cwd[256];
    snprintf(want, sizeof want, "%s/procfs-test-file", strcmp(getcwd(cwd, sizeof cwd), "/") == 0 ? "" : cwd);
    CHECK(n > 0 && strcmp(buf, want) == 0, "fd/%d -> %s", fd, buf);
    CHECK(lstat(path, &a) == 0 && S_ISLNK(a.st_mode) && (a.st_mode & 0777) == 0700, "lstat fd link mode %o", a.st_mode);
    DIR *d = opendir("/proc/self/fd");
    int seen0 = 0, seen_fd = 0, count = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        count++;
        if (strcmp(e->d_name, "0") == 0) seen0 = e->d_type == DT_LNK;
        if (atoi(e->d_name) == fd && e->d_name[0] != '.') seen_fd = 1;
    }
    if (d) closedir(d);
    CHECK(seen0 && seen_fd, "readdir fd/ (%d entries)", count);
    CHECK(access("/dev/fd/0", F_OK) == 0 || errno != ENOENT, "/dev/fd/0");
    d = opendir("/dev/fd");
    CHECK(d != NULL, "opendir /dev/fd");
    if (d) closedir(d);
    /* The links are magic: they open the file itself, even unlinked. */
    write(fd, "kept", 4);
    unlink("procfs-test-file");
    int again = open(path, O_RDONLY);
    memset(buf, 0, 8);
    CHECK(again >= 0 && read(again, buf, 8) == 4 && memcmp(buf, "kept", 4) == 0, "reopen an unlinked file through fd/%d", fd);
    close(again);
    int pp[2];
    pipe(pp);
    char rpath[64], wpath[64];
    snprintf(rpath, sizeof rpath, "/dev/fd/%d", pp[0]);
    snprintf(wpath, sizeof wpath, "/proc/self/fd/%d", pp[1]);
    int r2 = open(rpath, O_RDONLY), w2 = open(wpath, O_WRONLY);
    CHECK(r2 >= 0 && w2 >= 0 && fstat(r2, &a) == 0 && S_ISFIFO(a.st_mode), "reopen a pipe's ends (%d %d)", r2, w2);
    close(pp[0]);
    close(pp[1]);
    memset(buf, 0, 8);
    CHECK(write(w2, "pipe", 4) == 4 && read(r2, buf, 8) == 4 && memcmp(buf, "pipe", 4) == 0, "the reopened ends are one pipe");
    close(w2);
    CHECK(read(r2, buf, 8) == 0, "EOF once the last writer is gone");
    close(r2);
    close(fd);
    errno = 0;
    CHECK(readlink(path, buf, sizeof buf) == -1 && errno == ENOENT, "closed fd's link: ENOENT");

    /* maps */
    CHECK(slurp("/proc/self/maps", buf, sizeof buf) > 0, "read maps");
    int stack_found = 0, code_found = 0, lines = 0, bad = 0;
    unsigned long here = (unsigned long)&here, code = (unsigned long)&main;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned long lo, hi, off, ino; char perms[8]; unsigned maj, mnr; int used = 0;
        lines++;
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu %n", &lo, &hi, perms, &off, &maj, &mnr, &ino, &used) < 7 || strlen(perms) != 4) { bad++; continue; }
        if (lo <= here && here < hi && strstr(line, "[stack]") && perms[0] == 'r' && perms[1] == 'w') stack_found = 1;
        if (lo <= code && code < hi && perms[2] == 'x') code_found = 1;
        if (strlen(line) > (size_t)used && used != 73) bad++;
    }
    CHECK(stack_found && code_found && bad == 0, "maps: %d lines, stack %d code %d malformed %d", lines, stack_found, code_found, bad);
    /* The program's segments map its file, as Linux's exec maps them:
     * its text (r-xp) and its initialized data (rw-p, at the data's page
     * offset in the file) name /proc/self/exe's target. */
    static int initialized_data = 42;
    char exe[PATH_MAX] = "";
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (exe_len > 0) exe[exe_len] = 0;
    unsigned long datum = (unsigned long)&initialized_data;
    int text_named = 0, data_named = 0;
    CHECK(exe_len > 0 && slurp("/proc/self/maps", buf, sizeof buf) > 0, "read maps again");
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned long lo, hi, off, ino; char perms[8]; unsigned maj, mnr; int used = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu %n", &lo, &hi, perms, &off, &maj, &mnr, &ino, &used) < 7) continue;
        int named = ino != 0 && strcmp(line + used, exe) == 0;
        if (lo <= code && code < hi) text_named = named && strcmp(perms, "r-xp") == 0;
        if (lo <= datum && datum < hi) data_named = named && strcmp(perms, "rw-p") == 0 && off > 0;
    }
    CHECK(text_named && data_named && initialized_data == 42, "maps: the text and data segments map %s (%d %d)", exe, text_named, data_named);
    pthread_attr_t attr; void *stk = 0; size_t stksz = 0;
    CHECK(pthread_getattr_np(pthread_self(), &attr) == 0 && pthread_attr_getstack(&attr, &stk, &stksz) == 0 && (char *)stk < (char *)&here && (char *)&here < (char *)stk + stksz, "pthread_getattr_np finds the stack (%zu bytes)", stksz);

    /* meminfo, sysinfo */
    CHECK(slurp("/proc/meminfo", buf, sizeof buf) > 0, "read meminfo");
    unsigned long total = meminfo(buf, "MemTotal:"), mfree = meminfo(buf, "MemFree:");
    CHECK(strncmp(buf, "MemTotal:", 9) == 0 && total > 0 && mfree <= total && strstr(buf, "\nMemAvailable:") && strstr(buf, "\nCached:") && strstr(buf, "\nSwapTotal:"), "meminfo MemTotal %lu MemFree %lu", total, mfree);
    CHECK(strncmp(buf, "MemTotal:       ", 16) == 0 && buf[16] != ' ' - 1 && strstr(buf, " kB\nMemFree:        "), "meminfo line layout");
    struct sysinfo si;
    CHECK(sysinfo(&si) == 0 && (unsigned long long)si.totalram * si.mem_unit / 1024 == total && si.procs > 0, "sysinfo totalram %lu procs %d", si.totalram, si.procs);

    /* uptime, loadavg, cpuinfo, mounts, stat */
    double up = -1, idle = -1;
    CHECK(slurp("/proc/uptime", buf, sizeof buf) > 0 && sscanf(buf, "%lf %lf", &up, &idle) == 2 && up >= 0 && idle >= 0, "uptime %.2f", up);
    float l1, l5, l15; int running, all, last;
    CHECK(slurp("/proc/loadavg", buf, sizeof buf) > 0 && sscanf(buf, "%f %f %f %d/%d %d", &l1, &l5, &l15, &running, &all, &last) == 6 && running >= 1 && all >= running, "loadavg %s", strtok(buf, "\n"));
    CHECK(slurp("/proc/cpuinfo", buf, sizeof buf) > 0 && strncmp(buf, "processor\t: 0\n", 14) == 0 && strstr(buf, "\nvendor_id\t: ") && strstr(buf, "\nflags\t\t: ") && strstr(buf, " sse2 "), "cpuinfo");
    CHECK(slurp("/proc/mounts", buf, sizeof buf) > 0 && strstr(buf, " /proc proc rw") && strstr(buf, " / "), "mounts");
    CHECK(slurp("/proc/self/mountinfo", buf, sizeof buf) > 0 && strstr(buf, " / /proc rw,") && strstr(buf, " - proc proc rw"), "mountinfo");
    CHECK(slurp("/proc/stat", buf, sizeof buf) > 0 && strncmp(buf, "cpu ", 4) == 0 && strstr(buf, "\nbtime "), "stat");

    /* task/: one thread, the process itself */
    d = opendir("/proc/self/task");
    int threads = 0, seen_tid = 0;
    snprintf(want, sizeof want, "%d", me);
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        threads++;
        seen_tid |= strcmp(e->d_name, want) == 0 && e->d_type == DT_DIR;
    }
    if (d) closedir(d);
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", me);
    pid = 0;
    CHECK(threads == 1 && seen_tid && slurp(path, buf, sizeof buf) > 0 && sscanf(buf, "%d", &pid) == 1 && pid == me, "task/%d", me);

    struct statfs sfs;
    CHECK(statfs("/proc", &sfs) == 0 && sfs.f_type == 0x9fa0, "statfs /proc is procfs (%lx)", (long)sfs.f_type);

    /* /proc lists pids */
    d = opendir("/proc");
    int seen_me = 0, seen_self = 0;
    snprintf(want, sizeof want, "%d", me);
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, want) == 0 && e->d_type == DT_DIR) seen_me = 1;
        if (strcmp(e->d_name, "self") == 0 && e->d_type == DT_LNK) seen_self = 1;
    }
    if (d) closedir(d);
    CHECK(seen_me && seen_self, "readdir /proc has self and %d", me);

    /* A child: sleeping, then a zombie, then gone. */
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) { char x; close(p[1]); read(p[0], &x, 1); _exit(7); }
    close(p[0]);
    char st = 0;
    for (int i = 0; i < 2000 && (st = state_of(c)) != 'S'; i++) usleep(1000);
    CHECK(st == 'S', "child sleeping on a pipe: %c", st);
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    slurp(path, buf, sizeof buf);
    close_paren = strrchr(buf, ')');
    ppid = 0;
    if (close_paren) sscanf(close_paren + 2, "%*c %d", &ppid);
    CHECK(ppid == me, "child's ppid %d", ppid);
    snprintf(path, sizeof path, "/proc/%d/status", c);
    int held = open(path, O_RDONLY);
    snprintf(path, sizeof path, "/proc/%d", c);
    int held_dir = open(path, O_RDONLY | O_DIRECTORY);
    write(p[1], "x", 1);
    close(p[1]);
    for (int i = 0; i < 2000 && (st = state_of(c)) != 'Z'; i++) usleep(1000);
    CHECK(st == 'Z', "child a zombie: %c", st);
    int status;
    CHECK(waitpid(c, &status, 0) == c && WEXITSTATUS(status) == 7, "reaped");
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    errno = 0;
    CHECK(open(path, O_RDONLY) == -1 && errno == ENOENT, "reaped child's stat: ENOENT");
    errno = 0;
    CHECK(held >= 0 && read(held, buf, sizeof buf) == -1 && errno == ESRCH, "status held open past the reap: ESRCH");
    close(held);
    errno = 0;
    CHECK(held_dir >= 0 && openat(held_dir, "stat", O_RDONLY) == -1 && (errno == ESRCH || errno == ENOENT), "a reaped child's directory fd: ESRCH below it");
    close(held_dir);

    /* Processes come and go while /proc is read: every answer is a
     * file's text or ENOENT/ESRCH (natively also EACCES for processes
     * that are not ours). */
    int odd = 0, reads = 0;
    for (int round = 0; round < 20; round++) {
        pid_t k = fork();
        if (k == 0) _exit(0);
        DIR *pd = opendir("/proc");
        while (pd && (e = readdir(pd))) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
            const char *files[] = {"stat", "status", "cmdline", "maps", "statm"};
            for (int i = 0; i < 5; i++) {
                snprintf(path, sizeof path, "/proc/%s/%s", e->d_name, files[i]);
                errno = 0;
                if (slurp(path, buf, sizeof buf) >= 0) reads++;
                else if (errno != ENOENT && errno != ESRCH && errno != EACCES && errno != EPERM) odd++;
            }
        }
        if (pd) closedir(pd);
        waitpid(k, NULL, 0);
    }
    CHECK(odd == 0 && reads > 0, "reading /proc while processes exit (%d reads)", reads);

    /* Bad input. */
    errno = 0;
    CHECK(open("/proc/999999/stat", O_RDONLY) == -1 && errno == ENOENT, "no such pid: ENOENT");
    errno = 0;
    CHECK(open("/proc/self/fd/999", O_RDONLY) == -1 && errno == ENOENT, "no such fd: ENOENT");
    errno = 0;
    CHECK(open("/proc/0001", O_RDONLY) == -1 && errno == ENOENT, "/proc/0001: ENOENT");
    errno = 0;
    CHECK(open("/proc/+1/stat", O_RDONLY) == -1 && errno == ENOENT, "/proc/+1: ENOENT");
    errno = 0;
    CHECK(open("/proc/self/fd/01", O_RDONLY) == -1 && errno == ENOENT, "fd/01: ENOENT");
    errno = 0;
    char *volatile bad_buf = (char *)8;
    CHECK(readlink("/proc/self/exe", bad_buf, 100) == -1 && errno == EFAULT, "readlink to a bad buffer: EFAULT");
    fd = open("/proc/self/stat", O_RDONLY);
    errno = 0;
    CHECK(read(fd, bad_buf, 100) == -1 && errno == EFAULT, "read to a bad buffer: EFAULT");
    close(fd);
    errno = 0;
    CHECK(open("/proc/self/stat", O_RDONLY | O_DIRECTORY) == -1 && errno == ENOTDIR, "O_DIRECTORY on a file: ENOTDIR");
    errno = 0;
    CHECK(mkdir("/proc/x", 0755) == -1 && (errno == ENOENT || errno == EACCES || errno == ENOTDIR || errno == EPERM), "mkdir in /proc refused (errno %d)", errno);

    printf("%d failed\n", fails);
    return fails != 0;
}
