/* The console as a terminal, checked against Linux: tests/terminal.rs
 * runs this natively on the slave side of a pty (as a session leader
 * whose controlling terminal it is, 30 rows by 100 columns, default
 * termios) and then as the guest's init under vkernel on the same kind
 * of pty. It needs no typed input. Each check prints "ok" or "FAIL"; the
 * last line counts failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int failed;

static void check(const char *what, int ok) {
    printf("%s - %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        failed++;
}

static volatile int winches;
static void on_winch(int sig) {
    (void)sig;
    winches++;
}

static long ms_since(struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Runs `fn` in a child in its own (background) process group and
 * returns its wait status (WUNTRACED: a stop is a status too). */
static int in_background(void (*fn)(void)) {
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        fn();
        _exit(0);
    }
    setpgid(c, c);
    int st = 0;
    waitpid(c, &st, WUNTRACED);
    if (WIFSTOPPED(st)) {
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
    }
    return st;
}

static void bg_read(void) {
    char b;
    read(0, &b, 1);
}
static void bg_read_ignoring(void) {
    signal(SIGTTIN, SIG_IGN);
    char b;
    _exit(read(0, &b, 1) < 0 && errno == EIO ? 42 : 1);
}
static void bg_write(void) {
    write(1, "\r\n", 2);
}
static void bg_tcsetattr(void) {
    struct termios t;
    tcgetattr(0, &t);
    tcsetattr(0, TCSANOW, &t);
}
static void bg_tcsetattr_ignoring(void) {
    signal(SIGTTOU, SIG_IGN);
    struct termios t;
    tcgetattr(0, &t);
    _exit(tcsetattr(0, TCSANOW, &t) == 0 ? 43 : 1);
}
static void bg_tcsetpgrp(void) {
    tcsetpgrp(0, getpgrp());
}

int main(void) {
    check("isatty(0)", isatty(0) == 1);
    {
        /* ttyname finds the terminal (`tty`): its name's node is the
         * descriptor's (on Linux /dev/pts/N here; in the guest
         * /dev/console). */
        char *name = ttyname(0);
        struct stat a, b;
        check("ttyname(0): a name whose node is the descriptor's",
              name && stat(name, &a) == 0 && fstat(0, &b) == 0 && a.st_rdev == b.st_rdev && a.st_ino == b.st_ino &&
                  a.st_dev == b.st_dev);
    }
    int tfd = open("/dev/tty", O_RDWR);
    check("/dev/tty opens: a terminal", tfd >= 0 && isatty(tfd));
    close(tfd);
    struct termios t0, t;
    check("tcgetattr", tcgetattr(0, &t0) == 0);
    check("default lflag: ISIG ICANON ECHO ECHOE ECHOK IEXTEN ECHOCTL ECHOKE",
          (t0.c_lflag & (ISIG | ICANON | ECHO | ECHOE | ECHOK | IEXTEN | ECHOCTL | ECHOKE)) ==
              (ISIG | ICANON | ECHO | ECHOE | ECHOK | IEXTEN | ECHOCTL | ECHOKE));
    check("default iflag ICRNL IXON, oflag OPOST ONLCR",
          (t0.c_iflag & (ICRNL | IXON)) == (ICRNL | IXON) &&
              (t0.c_oflag & (OPOST | ONLCR)) == (OPOST | ONLCR));
    check("default cc: INTR ^C QUIT ^\\ ERASE DEL KILL ^U EOF ^D SUSP ^Z VMIN 1 VTIME 0",
          t0.c_cc[VINTR] == 3 && t0.c_cc[VQUIT] == 28 && t0.c_cc[VERASE] == 127 &&
              t0.c_cc[VKILL] == 21 && t0.c_cc[VEOF] == 4 && t0.c_cc[VSUSP] == 26 &&
              t0.c_cc[VMIN] == 1 && t0.c_cc[VTIME] == 0);
    t = t0;
    t.c_cc[VINTR] = 7;
    t.c_lflag &= ~ECHOCTL;
    check("tcsetattr", tcsetattr(0, TCSANOW, &t) == 0);
    struct termios back;
    tcgetattr(0, &back);
    check("the new settings read back", back.c_cc[VINTR] == 7 && !(back.c_lflag & ECHOCTL));
    check("TCSAFLUSH and TCSADRAIN", tcsetattr(0, TCSAFLUSH, &t0) == 0 &&
                                         tcsetattr(0, TCSADRAIN, &t0) == 0);
    tcgetattr(0, &back);
    check("restored", back.c_cc[VINTR] == 3 && (back.c_lflag & ECHOCTL));

    check("tcgetpgrp is our group", tcgetpgrp(0) == getpgrp());
    pid_t sid = -1;
    check("TIOCGSID is our session", ioctl(0, TIOCGSID, &sid) == 0 && sid == getsid(0));
    check("TIOCSCTTY on our own terminal", ioctl(0, TIOCSCTTY, 0) == 0);
    errno = 0;
    check("tcsetpgrp to no group: ESRCH", tcsetpgrp(0, 999999) < 0 && errno == ESRCH);
    pid_t neg = -5;
    errno = 0;
    check("TIOCSPGRP negative: EINVAL", ioctl(0, TIOCSPGRP, &neg) < 0 && errno == EINVAL);
    check("tcsetpgrp to our own group", tcsetpgrp(0, getpgrp()) == 0);
    errno = 0;
    check("TCFLSH 7: EINVAL", ioctl(0, TCFLSH, 7) < 0 && errno == EINVAL);
    /* (TCIOFLUSH would drop this program's own lines not yet shown.) */
    check("tcflush(TCIFLUSH)", tcflush(0, TCIFLUSH) == 0);
    errno = 0;
    check("TCXONC 9: EINVAL", ioctl(0, TCXONC, 9) < 0 && errno == EINVAL);
    check("tcflow(TCOON) and tcdrain", tcflow(0, TCOON) == 0 && tcdrain(0) == 0);
    errno = 0;
    check("TCGETS to a bad pointer: EFAULT", ioctl(0, TCGETS, (void *)8) < 0 && errno == EFAULT);
    errno = 0;
    check("TCSETS from a bad pointer: EFAULT", ioctl(0, TCSETS, (void *)8) < 0 && errno == EFAULT);
    errno = 0;
    check("TIOCGWINSZ to a bad pointer: EFAULT",
          ioctl(0, TIOCGWINSZ, (void *)-4096L) < 0 && errno == EFAULT);
    errno = 0;
    check("TIOCSPGRP from a bad pointer: EFAULT", ioctl(0, TIOCSPGRP, (void *)8) < 0 && errno == EFAULT);
    errno = 0;
    check("TIOCGPGRP to a bad pointer: EFAULT", ioctl(0, TIOCGPGRP, (void *)8) < 0 && errno == EFAULT);
    errno = 0;
    check("FIONREAD to a bad pointer: EFAULT", ioctl(0, FIONREAD, (void *)8) < 0 && errno == EFAULT);
    char none[1];
    check("a read of 0 bytes: 0 at once", read(0, none, 0) == 0);
    int n = -1;
    check("FIONREAD with nothing typed: 0", ioctl(0, FIONREAD, &n) == 0 && n == 0);
    errno = 0;
    check("an unknown ioctl: ENOTTY", ioctl(0, 0x54ff, 0) < 0 && errno == ENOTTY);

    struct winsize ws;
    check("TIOCGWINSZ: 30 x 100",
          ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 30 && ws.ws_col == 100);
    signal(SIGWINCH, on_winch);
    struct winsize w2 = {50, 60, 0, 0};
    check("TIOCSWINSZ", ioctl(1, TIOCSWINSZ, &w2) == 0);
    ioctl(0, TIOCGWINSZ, &ws);
    check("the new size reads back", ws.ws_row == 50 && ws.ws_col == 60);
    check("SIGWINCH for the foreground group", winches == 1);
    ioctl(1, TIOCSWINSZ, &w2);
    check("the same size again: no SIGWINCH", winches == 1);
    struct winsize w3 = {30, 100, 0, 0};
    ioctl(1, TIOCSWINSZ, &w3);

    /* Non-canonical reads: VMIN 0 VTIME 0 is a poll; VTIME 2 waits 0.2 s. */
    t = t0;
    t.c_lflag &= ~(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    tcsetattr(0, TCSANOW, &t);
    char buf[8];
    struct timespec s0;
    clock_gettime(CLOCK_MONOTONIC, &s0);
    t.c_cc[VMIN] = 1;
    tcsetattr(0, TCSANOW, &t);
    check("a raw read of 0 bytes: 0 at once", read(0, buf, 0) == 0);
    t.c_cc[VMIN] = 0;
    tcsetattr(0, TCSANOW, &t);
    check("VMIN 0 VTIME 0 with nothing: 0 at once", read(0, buf, 8) == 0 && ms_since(&s0) < 100);
    t.c_cc[VTIME] = 2;
    tcsetattr(0, TCSANOW, &t);
    clock_gettime(CLOCK_MONOTONIC, &s0);
    ssize_t r = read(0, buf, 8);
    long took = ms_since(&s0);
    check("VMIN 0 VTIME 2 with nothing: 0 after 0.2 s", r == 0 && took >= 180 && took < 1000);
    int fl = fcntl(0, F_GETFL);
    fcntl(0, F_SETFL, fl | O_NONBLOCK);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    tcsetattr(0, TCSANOW, &t);
    errno = 0;
    check("O_NONBLOCK raw read with nothing: EAGAIN", read(0, buf, 8) < 0 && errno == EAGAIN);
    t.c_lflag |= ICANON;
    tcsetattr(0, TCSANOW, &t);
    errno = 0;
    check("O_NONBLOCK canonical read with nothing: EAGAIN", read(0, buf, 8) < 0 && errno == EAGAIN);
    fcntl(0, F_SETFL, fl);
    tcsetattr(0, TCSANOW, &t0);

    /* Job control: a background group. */
    int st = in_background(bg_read);
    check("a background read: stopped by SIGTTIN", WIFSTOPPED(st) && WSTOPSIG(st) == SIGTTIN);
    st = in_background(bg_read_ignoring);
    check("a background read ignoring SIGTTIN: EIO", WIFEXITED(st) && WEXITSTATUS(st) == 42);
    st = in_background(bg_write);
    check("a background write without TOSTOP goes", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    t = t0;
    t.c_lflag |= TOSTOP;
    tcsetattr(0, TCSANOW, &t);
    st = in_background(bg_write);
    check("a background write with TOSTOP: stopped by SIGTTOU",
          WIFSTOPPED(st) && WSTOPSIG(st) == SIGTTOU);
    tcsetattr(0, TCSANOW, &t0);
    st = in_background(bg_tcsetattr);
    check("a background tcsetattr: stopped by SIGTTOU", WIFSTOPPED(st) && WSTOPSIG(st) == SIGTTOU);
    st = in_background(bg_tcsetattr_ignoring);
    check("a background tcsetattr ignoring SIGTTOU goes", WIFEXITED(st) && WEXITSTATUS(st) == 43);
    st = in_background(bg_tcsetpgrp);
    check("a background tcsetpgrp: stopped by SIGTTOU", WIFSTOPPED(st) && WSTOPSIG(st) == SIGTTOU);
    check("the foreground is still ours", tcgetpgrp(0) == getpgrp());

    /* A child that leaves the session has no controlling terminal. */
    pid_t c = fork();
    if (c == 0) {
        setsid();
        errno = 0;
        int bad = tcgetpgrp(0) < 0 && errno == ENOTTY;
        errno = 0;
        bad = bad && open("/dev/tty", O_RDWR) < 0 && errno == ENXIO;
        _exit(bad ? 44 : 1);
    }
    waitpid(c, &st, 0);
    check("another session: tcgetpgrp ENOTTY, /dev/tty ENXIO", WIFEXITED(st) && WEXITSTATUS(st) == 44);
    c = fork();
    if (c == 0) {
        setsid();
        errno = 0;
        _exit(ioctl(0, TIOCSCTTY, 0) < 0 && errno == EPERM ? 45 : 1);
    }
    waitpid(c, &st, 0);
    check("another session leader cannot take it: EPERM", WIFEXITED(st) && WEXITSTATUS(st) == 45);

    printf("%d failed\n", failed);
    return failed != 0;
}
