/* The line discipline on typed input, checked against Linux: for each
 * case this sets the terminal's modes, prints "READY n", and
 * tests/terminal.rs types the case's bytes; the program prints what its
 * read got ("GOT n" and the bytes in hex). The whole transcript (the
 * terminal's echo included) must be the same natively on a pty and in
 * the guest. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios base;
static volatile int sigints;
static volatile int sigquits, sigtstps;
static void on_int(int s) {
    if (s == SIGINT)
        sigints++;
    else if (s == SIGQUIT)
        sigquits++;
    else if (s == SIGTSTP)
        sigtstps++;
}

static void ready(int n, struct termios *t) {
    tcsetattr(0, TCSANOW, t);
    printf("READY %d\n", n);
    fflush(stdout);
}

static void got(int n, const char *buf, ssize_t r) {
    printf("\nGOT %d %zd:", n, r);
    for (ssize_t i = 0; i < r; i++)
        printf(" %02x", (unsigned char)buf[i]);
    printf("\n");
    fflush(stdout);
}

static void one(int n, struct termios *t) {
    char buf[256];
    ready(n, t);
    ssize_t r = read(0, buf, sizeof buf);
    got(n, buf, r);
}

int main(void) {
    tcgetattr(0, &base);
    struct termios t;
    /* 1: canonical editing: ERASE, WERASE, KILL with the default echo. */
    t = base;
    one(1, &t);
    /* 2: EOF ends a line without its byte; alone it is end of file. */
    one(2, &t);
    one(3, &t);
    /* 4: ECHOCTL and erasing a control character and a tab. */
    one(4, &t);
    /* 5: no ECHO but ECHONL. */
    t = base;
    t.c_lflag &= ~ECHO;
    t.c_lflag |= ECHONL;
    one(5, &t);
    /* 6: KILL with ECHOK but not ECHOKE; ERASE without ECHOE. */
    t = base;
    t.c_lflag &= ~(ECHOKE | ECHOE);
    one(6, &t);
    /* 7: LNEXT and REPRINT. */
    t = base;
    one(7, &t);
    /* 8: no ISIG: Ctrl-C is data (echoed as ^C). */
    t = base;
    t.c_lflag &= ~ISIG;
    one(8, &t);
    /* 9: IGNCR and INLCR. */
    t = base;
    t.c_iflag |= IGNCR;
    one(9, &t);
    /* 10: non-canonical, VMIN 3: three bytes at once; no ICRNL. */
    t = base;
    t.c_lflag &= ~(ICANON | ECHO);
    t.c_iflag &= ~ICRNL;
    t.c_cc[VMIN] = 3;
    t.c_cc[VTIME] = 0;
    one(10, &t);
    /* 11: ISIG: Ctrl-C is SIGINT and flushes what was typed. */
    t = base;
    signal(SIGINT, on_int);
    siginterrupt(SIGINT, 0);
    one(11, &t);
    printf("SIGINTS %d\n", sigints);
    /* 12: QUIT and SUSP are SIGQUIT and SIGTSTP; with NOFLSH nothing is
     * flushed. */
    t = base;
    t.c_lflag |= NOFLSH;
    signal(SIGQUIT, on_int);
    signal(SIGTSTP, on_int);
    siginterrupt(SIGQUIT, 0);
    siginterrupt(SIGTSTP, 0);
    one(12, &t);
    printf("SIGQUITS %d SIGTSTPS %d\n", sigquits, sigtstps);
    /* 12: output without ONLCR, and with OCRNL. */
    t = base;
    t.c_oflag &= ~ONLCR;
    tcsetattr(0, TCSANOW, &t);
    write(1, "a\nb\r\n", 5);
    t.c_oflag |= OCRNL;
    tcsetattr(0, TCSANOW, &t);
    write(1, "c\rd\n", 4);
    tcsetattr(0, TCSANOW, &base);
    printf("\nEND\n");
    return 0;
}
