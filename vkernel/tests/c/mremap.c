// mremap, checked against Linux: shrinking, growing in place, moving
// (MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP) with the contents kept,
// shared mappings (a file's pages, duplicated with old_len 0), protection
// kept across a move, and the errors in Linux's order. The same binary runs
// natively first, then in the guest. Prints "ok - ..." per check,
// "FAIL - ..." on a mismatch, and "N failed".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stdio.h>
#include <unistd.h>

#include "check.h"

#define PG 4096L

// Whether [p, p + len) is wholly mapped (msync says ENOMEM on a hole).
static int mapped(void *p, size_t len) { return msync(p, len, MS_ASYNC) == 0; }

static void fill(char *p, size_t len, int seed) {
    for (size_t i = 0; i < len; i += 512)
        p[i] = (char)(seed + i / 512);
}

static int same(const char *p, size_t len, int seed) {
    for (size_t i = 0; i < len; i += 512)
        if (p[i] != (char)(seed + i / 512))
            return 0;
    return 1;
}

// A free range of `pages` pages (mapped, then unmapped).
static char *hole(int pages) {
    char *p = mmap(NULL, pages * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p, pages * PG);
    return p;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    // --- the errors, in Linux's order ---
    char *a = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mremap(a, PG, 2 * PG, 8) == MAP_FAILED && errno == EINVAL, "an unknown flag: EINVAL");
    CHECK(mremap(a, PG, 2 * PG, MREMAP_FIXED, a + 8 * PG) == MAP_FAILED && errno == EINVAL, "FIXED without MAYMOVE: EINVAL");
    CHECK(mremap(a, PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP) == MAP_FAILED && errno == EINVAL,
          "DONTUNMAP resizing: EINVAL");
    CHECK(mremap(a, PG, PG, MREMAP_DONTUNMAP) == MAP_FAILED && errno == EINVAL, "DONTUNMAP without MAYMOVE: EINVAL");
    CHECK(mremap(a + 1, PG, 2 * PG, MREMAP_MAYMOVE) == MAP_FAILED && errno == EINVAL, "an unaligned address: EINVAL");
    CHECK(mremap(a, PG, 0, MREMAP_MAYMOVE) == MAP_FAILED && errno == EINVAL, "new size 0: EINVAL");
    char *free1 = hole(4);
    CHECK(mremap(free1, PG, 2 * PG, MREMAP_MAYMOVE) == MAP_FAILED && errno == EFAULT, "growing unmapped memory: EFAULT");
    CHECK(mremap(free1, 2 * PG, PG, 0) == MAP_FAILED && errno == EFAULT, "shrinking unmapped memory: EFAULT");
    CHECK(mremap(free1, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, a + 1) == MAP_FAILED && errno == EINVAL,
          "an unaligned new address before the old one's lookup: EINVAL");
    munmap(a, 4 * PG);

    // --- shrinking ---
    a = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fill(a, 4 * PG, 1);
    CHECK(mremap(a, 4 * PG, 2 * PG, 0) == a, "shrinking keeps the address");
    CHECK(same(a, 2 * PG, 1) && mapped(a, 2 * PG), "and the contents");
    CHECK(!mapped(a + 2 * PG, PG) && errno == ENOMEM, "the tail is unmapped");
    CHECK(mremap(a, 2 * PG, 2 * PG - 100, 0) == a && mapped(a, 2 * PG), "a size in the same page: nothing changes");

    // --- growing in place ---
    CHECK(mremap(a, 2 * PG, 4 * PG, 0) == a, "growing into free pages: in place");
    CHECK(same(a, 2 * PG, 1) && a[3 * PG] == 0 && mapped(a, 4 * PG), "old contents kept, new pages zero");
    a[3 * PG] = 7;
    munmap(a, 4 * PG);

    // --- no room after it ---
    a = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(a + PG, PG, PROT_READ);  // its own mapping now, right after the first page
    fill(a, PG, 2);
    CHECK(mremap(a, PG, 2 * PG, 0) == MAP_FAILED && errno == ENOMEM, "no room and no MAYMOVE: ENOMEM");
    CHECK(mremap(a, 2 * PG, 3 * PG, MREMAP_MAYMOVE) == MAP_FAILED && errno == EFAULT,
          "a range over two mappings: EFAULT");
    char *b = mremap(a, PG, 2 * PG, MREMAP_MAYMOVE);
    CHECK(b != MAP_FAILED && b != a, "MAYMOVE moves it");
    CHECK(same(b, PG, 2) && b[PG] == 0, "with its contents, the new page zero");
    CHECK(!mapped(a, PG) && mapped(a + PG, PG), "the old pages are gone, the neighbour stays");
    b[2 * PG - 1] = 1;
    munmap(b, 2 * PG);
    munmap(a, 3 * PG);

    // --- MREMAP_FIXED ---
    a = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fill(a, 2 * PG, 3);
    char *target = mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mremap(a, 2 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, a + PG) == MAP_FAILED && errno == EINVAL,
          "FIXED onto itself: EINVAL");
    CHECK(mremap(a, 2 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, target + 1) == MAP_FAILED && errno == EINVAL,
          "FIXED to an unaligned address: EINVAL");
    b = mremap(a, 2 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    CHECK(b == target, "FIXED moves it there, over what was mapped");
    CHECK(same(b, 2 * PG, 3) && b[2 * PG] == 0, "with its contents");
    b[2 * PG] = 1;
    CHECK(b[2 * PG] == 1, "writable as the original was");
    CHECK(!mapped(a, 2 * PG), "the old range is gone");
    char *c = mremap(b, 3 * PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, a);
    CHECK(c == a && same(c, PG, 3) && !mapped(b, 3 * PG), "FIXED with a smaller size: the tail goes first");
    munmap(c, PG);

    // --- DONTUNMAP ---
    a = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fill(a, 2 * PG, 4);
    b = mremap(a, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
    CHECK(b != MAP_FAILED && b != a && same(b, 2 * PG, 4), "DONTUNMAP moves the contents");
    CHECK(mapped(a, 2 * PG) && a[0] == 0 && a[PG + 512] == 0, "and leaves the old range mapped, empty");
    munmap(a, 2 * PG);
    munmap(b, 2 * PG);

    // --- protection kept ---
    a = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fill(a, 2 * PG, 5);
    mprotect(a, 2 * PG, PROT_NONE);
    b = mremap(a, 2 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, hole(8));
    CHECK(b != MAP_FAILED, "a PROT_NONE mapping moves");
    CHECK(mprotect(b, 8 * PG, PROT_READ) == 0 && same(b, 2 * PG, 5), "with its contents");
    munmap(b, 8 * PG);

    // --- a big one, sparsely written (glibc's realloc of a large block) ---
    size_t big = 16 << 20;
    a = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < big; i += 1 << 20)
        a[i] = (char)(i >> 20);
    b = mremap(a, big, 2 * big, MREMAP_MAYMOVE);
    int ok = b != MAP_FAILED;
    for (size_t i = 0; ok && i < big; i += 1 << 20)
        ok = b[i] == (char)(i >> 20) && b[i + 1] == 0;
    CHECK(ok && b[2 * big - 1] == 0, "16 MiB grown to 32 MiB: the contents kept");
    munmap(b, 2 * big);
    char *m = malloc(1 << 20);
    memset(m, 'x', 1 << 20);
    m = realloc(m, 32 << 20);
    CHECK(m && m[0] == 'x' && m[(1 << 20) - 1] == 'x', "realloc of a large block");
    free(m);

    // --- shared mappings ---
    char path[] = "/tmp/mremapXXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    ftruncate(fd, 4 * PG);
    a = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(mremap(a, 4 * PG, 2 * PG, 0) == a && mremap(a, 2 * PG, 4 * PG, 0) == a,
          "a shared file mapping shrinks and grows in place");
    a[3 * PG] = 'F';
    char ch = 0;
    CHECK(pread(fd, &ch, 1, 3 * PG) == 1 && ch == 'F', "over the file's next pages");
    b = mremap(a, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, hole(4));
    CHECK(b != MAP_FAILED && b[3 * PG] == 'F', "moved: the same file pages");
    b[PG] = 'G';
    CHECK(pread(fd, &ch, 1, PG) == 1 && ch == 'G', "writes reach the file");
    c = mremap(b, 0, 2 * PG, MREMAP_MAYMOVE);
    CHECK(c != MAP_FAILED && c != b && c[PG] == 'G', "old size 0: the shared pages mapped again");
    c[0] = 'H';
    CHECK(b[0] == 'H' && mapped(b, 4 * PG), "both see each other's writes; the first stays");
    munmap(b, 4 * PG);
    munmap(c, 2 * PG);
    a = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mremap(a, 0, PG, MREMAP_MAYMOVE) == MAP_FAILED && errno == EINVAL, "old size 0 of a private mapping: EINVAL");
    munmap(a, PG);
    a = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    b = mremap(a, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, hole(2));
    CHECK(b != MAP_FAILED && b[0] == 'H' && b[PG] == 'G', "a private read-only file mapping moves");
    munmap(b, 2 * PG);
    char *s = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    s[0] = 'S';
    b = mremap(s, PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, hole(3));
    CHECK(b != MAP_FAILED && b[0] == 'S', "shared anonymous memory moves");
    close(fd);
    printf("%d failed\n", failed);
    return failed != 0;
}
