/* Random file-system operations, the same sequence for a given seed, with
 * every result printed: run in the guest and natively on the host (on a
 * tmpfs), the two outputs must be equal, so Linux itself is the model.
 * Usage: fsops DIR SEED COUNT */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static unsigned long long state;
static unsigned rnd(unsigned n) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (unsigned)(state % n);
}

static const char *names[] = {"a", "b", "c", "d/e", "d/f", "d/g/h", "d", "d/g", "x/y", "x"};
#define NNAMES (sizeof names / sizeof names[0])

static void result(const char *what, long r) {
    if (r < 0) printf("%s -> %s\n", what, strerrorname_np(errno));
    else printf("%s -> %ld\n", what, r);
}

/* A checksum of a file's bytes (FNV-1a). */
static unsigned long sum_file(const char *p, long *size) {
    int fd = open(p, O_RDONLY);
    unsigned long h = 1469598103934665603UL;
    *size = 0;
    if (fd < 0) return 0;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) h = (h ^ (unsigned char)buf[i]) * 1099511628211UL;
        *size += n;
    }
    close(fd);
    return h;
}

static void walk(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (!d) return;
    char *list[64]; int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) list[n++] = strdup(e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(list[i], list[j]) > 0) { char *t = list[i]; list[i] = list[j]; list[j] = t; }
    for (int i = 0; i < n; i++) {
        char p[512]; snprintf(p, sizeof p, "%s/%s", dir, list[i]);
        struct stat st;
        lstat(p, &st);
        if (S_ISDIR(st.st_mode)) {
            printf("%*sdir %s mode %o nlink %ld\n", depth * 2, "", list[i], st.st_mode & 07777, (long)st.st_nlink);
            walk(p, depth + 1);
        } else if (S_ISLNK(st.st_mode)) {
            char t[256]; ssize_t k = readlink(p, t, sizeof t - 1); t[k < 0 ? 0 : k] = 0;
            printf("%*slink %s -> %s\n", depth * 2, "", list[i], t);
        } else {
            long size; unsigned long h = sum_file(p, &size);
            printf("%*sfile %s size %ld nlink %ld sum %lx\n", depth * 2, "", list[i], size, (long)st.st_nlink, h);
        }
        free(list[i]);
    }
}

/* Removes everything below `dir`. */
static void remove_all(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char *list[64]; int n = 0;
    while ((e = readdir(d)) && n < 64)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) list[n++] = strdup(e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++) {
        char p[512]; snprintf(p, sizeof p, "%s/%s", dir, list[i]);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) { remove_all(p); rmdir(p); }
        else unlink(p);
        free(list[i]);
    }
}

/* vkernel's own call: pages the processes and file systems hold
 * (-ENOSYS natively). */
static long pages(void) {
    /* With the vDSO's page tables in place: under pmap=guest a fork drops
     * the parent's entries for its private file mappings (the vDSO is
     * one), and the tables of that range go with them until its next
     * use; they are not the files' pages this counts. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return syscall(0x7fff0001);
}

static int run(int argc, char **argv);

int main(int argc, char **argv) {
    long before = pages();
    if (before < 0) return run(argc, argv);
    /* In the guest: the work in a child, so that what the parent counts
     * after it is only what the files kept, not the child's memory. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(run(argc, argv));
    int st;
    waitpid(c, &st, 0);
    long after = pages();
    fprintf(stderr, "vkernel pages before %ld after %ld\n", before, after);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int run(int argc, char **argv) {
    if (argc < 4) return 2;
    if (chdir(argv[1]) != 0) { perror("chdir"); return 2; }
    state = strtoull(argv[2], 0, 10) * 2654435761ULL + 1;
    int count = atoi(argv[3]);
    static char data[72000]; /* writes take at most 70000 bytes from 1000 in */
    for (unsigned i = 0; i < sizeof data; i++) data[i] = (char)(i * 31 + 7);
    for (int i = 0; i < count; i++) {
        const char *p = names[rnd(NNAMES)], *q = names[rnd(NNAMES)];
        char what[128];
        switch (rnd(12)) {
        case 0: {
            int fd = open(p, O_CREAT | O_WRONLY | (rnd(2) ? O_EXCL : 0), 0640);
            snprintf(what, sizeof what, "create %s", p); result(what, fd < 0 ? -1 : 0);
            if (fd >= 0) close(fd);
            break; }
        case 1: case 2: {
            int fd = open(p, O_WRONLY | (rnd(3) == 0 ? O_APPEND : 0));
            long off = rnd(3) == 0 ? rnd(70000) : rnd(5000), len = rnd(3) == 0 ? rnd(70000) : rnd(300);
            long r = fd < 0 ? -1 : pwrite(fd, data + rnd(1000), len, off);
            snprintf(what, sizeof what, "write %s %ld@%ld", p, len, off); result(what, r);
            if (fd >= 0) close(fd);
            break; }
        case 3: {
            if (rnd(4) == 0) {
                /* Linux truncates a regular file opened O_RDONLY|O_TRUNC too. */
                int fd = open(p, O_RDONLY | O_TRUNC);
                snprintf(what, sizeof what, "open-trunc %s", p); result(what, fd < 0 ? -1 : 0);
                if (fd >= 0) close(fd);
                break;
            }
            long len = rnd(2) ? rnd(100) : rnd(90000);
            snprintf(what, sizeof what, "truncate %s %ld", p, len); result(what, truncate(p, len));
            break; }
        case 4: snprintf(what, sizeof what, "rename %s %s", p, q); result(what, rename(p, q)); break;
        case 5: snprintf(what, sizeof what, "unlink %s", p); result(what, unlink(p)); break;
        case 6: snprintf(what, sizeof what, "mkdir %s", p); result(what, mkdir(p, 0750)); break;
        case 7: snprintf(what, sizeof what, "rmdir %s", p); result(what, rmdir(p)); break;
        case 8: snprintf(what, sizeof what, "link %s %s", p, q); result(what, link(p, q)); break;
        case 9: snprintf(what, sizeof what, "symlink %s %s", p, q); result(what, symlink(p, q)); break;
        case 10: {
            struct stat st; long r = stat(p, &st);
            snprintf(what, sizeof what, "stat %s", p);
            if (r == 0 && !S_ISDIR(st.st_mode)) r = st.st_size;
            else if (r == 0) r = -2 - 0 * printf("");
            if (r == -2) { printf("%s -> dir\n", what); break; }
            result(what, r);
            break; }
        default: {
            long size; unsigned long h = sum_file(p, &size);
            printf("read %s -> %ld %lx\n", p, size, h);
            break; }
        }
    }
    walk(".", 0);
    remove_all(".");
    fflush(stdout);
    return 0;
}
