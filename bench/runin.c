/* The launcher bench/peers.sh puts in front of a benchmark program where
 * a runtime needs one: natively (a tmpfs on /tmp, or a chroot into the
 * Debian root directory) and as User-Mode Linux's init. Static, so it
 * adds one small exec and nothing a dynamic loader would.
 *
 * Usage: runin [-t] [-r ROOT] PROG ARGS...
 *        runin [-t] [-r ROOT] -f FILE
 *   -f FILE  PROG and ARGS are FILE's NUL-terminated strings instead
 *            (read before the chroot): a kernel command line splits at
 *            spaces, so UML's init gets `bash -c SCRIPT` this way
 *   -t       mount a fresh tmpfs on /tmp first (in a private mount
 *            namespace natively, so the host's /tmp is untouched): the
 *            file benchmark writes /tmp/vkernel-filebench, and the
 *            peers' /tmp is memory too (vkernel's tmpfs, gVisor's
 *            overlay), while the host's /tmp here is ext4
 *   -r ROOT  chroot into ROOT (and cd /) before running PROG
 * Runs PROG, waits for it and exits with its status. As process 1 (UML's
 * init) it prints "runin: exit N" and powers the machine off instead,
 * since init may not exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

static int finish(int code) {
    if (getpid() != 1) return code;
    printf("runin: exit %d\n", code);
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    return code; /* not reached */
}

/* FILE's NUL-terminated strings as an argument vector, or NULL. */
static char **read_args(const char *path) {
    static char buf[1 << 16];
    static char *args[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0) return NULL;
    buf[len] = 0;
    size_t n = 0;
    for (char *p = buf; p < buf + len && n + 1 < sizeof args / sizeof *args; p += strlen(p) + 1)
        args[n++] = p;
    args[n] = NULL;
    return args;
}

int main(int argc, char **argv) {
    int tmpfs = 0;
    const char *root = NULL;
    char **cmd = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-t")) {
            tmpfs = 1;
        } else if (!strcmp(argv[i], "-r") && i + 1 < argc) {
            root = argv[++i];
        } else if (!strcmp(argv[i], "-f") && i + 1 < argc) {
            if (!(cmd = read_args(argv[++i]))) {
                fprintf(stderr, "runin: no command in %s\n", argv[i]);
                return finish(2);
            }
        } else {
            fprintf(stderr, "runin: unknown option %s\n", argv[i]);
            return finish(2);
        }
    }
    if (!cmd && i < argc) cmd = argv + i;
    if (!cmd) {
        fprintf(stderr, "usage: runin [-t] [-r ROOT] PROG ARGS... | -f FILE\n");
        return finish(2);
    }
    if (tmpfs) {
        if (getpid() != 1 && (unshare(CLONE_NEWNS) != 0 ||
                              mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)) {
            perror("runin: private mount namespace");
            return finish(1);
        }
        if (mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777") != 0) {
            perror("runin: mount tmpfs on /tmp");
            return finish(1);
        }
    }
    if (root && (chroot(root) != 0 || chdir("/") != 0)) {
        fprintf(stderr, "runin: chroot %s: %s\n", root, strerror(errno));
        return finish(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("runin: fork");
        return finish(1);
    }
    if (pid == 0) {
        execv(cmd[0], cmd);
        fprintf(stderr, "runin: exec %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("runin: waitpid");
            return finish(1);
        }
    }
    return finish(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}
