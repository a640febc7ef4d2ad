// Pseudo-terminals, checked against Linux: /dev/ptmx and devpts
// (posix_openpt, grantpt, unlockpt, ptsname, the lock, the slave's node),
// the line discipline between the two sides (output processing, echo,
// canonical editing, raw mode, VMIN), a controlling terminal taken on open
// and by TIOCSCTTY (forkpty, login_tty), signals from input characters to
// the foreground group, the window size and SIGWINCH, /dev/tty, packet
// mode, TIOCGPTPEER, and both kinds of close (the master's hangs the
// slave up and sends its session SIGHUP; the slave's makes the master
// read EIO). The same binary runs natively first, then in the guest.
// Prints "ok - ..." per check, "FAIL - ..." on a mismatch, and "N failed".
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <utmp.h>

#include "check.h"

// Reads what the master has within `ms` (several reads: output may come
// in pieces), up to `cap` bytes; returns the count.
static int drain(int m, char *buf, int cap, int ms) {
    int n = 0;
    while (n < cap) {
        struct pollfd p = {m, POLLIN, 0};
        if (poll(&p, 1, ms) <= 0 || !(p.revents & POLLIN))
            break;
        int r = read(m, buf + n, cap - n);
        if (r <= 0)
            break;
        n += r;
        ms = 50;
    }
    buf[n < cap ? n : cap - 1] = 0;
    return n;
}

static int open_pair(int *slave) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m))
        return -1;
    *slave = open(ptsname(m), O_RDWR | O_NOCTTY);
    return m;
}

static volatile sig_atomic_t got_hup, got_winch;
static void on_hup(int s) { (void)s; got_hup = 1; }
static void on_winch(int s) { (void)s; got_winch = 1; }

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char buf[512];

    // --- /dev/ptmx and devpts ---
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(m >= 0, "posix_openpt");
    CHECK(isatty(m), "the master is a terminal");
    unsigned n = 12345;
    CHECK(ioctl(m, TIOCGPTN, &n) == 0 && n < 4096, "TIOCGPTN");
    char name[64];
    snprintf(name, sizeof name, "/dev/pts/%u", n);
    CHECK(strcmp(ptsname(m), name) == 0, "ptsname is /dev/pts/N");
    int lock = 0;
    CHECK(ioctl(m, TIOCGPTLCK, &lock) == 0 && lock == 1, "a new slave is locked");
    CHECK(open(name, O_RDWR | O_NOCTTY) == -1 && errno == EIO, "opening a locked slave: EIO");
    CHECK(grantpt(m) == 0 && unlockpt(m) == 0, "grantpt, unlockpt");
    CHECK(ioctl(m, TIOCGPTLCK, &lock) == 0 && lock == 0, "unlocked");
    struct stat st;
    CHECK(stat(name, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 136 && minor(st.st_rdev) == n,
          "the slave's node: a character device, 136:N");
    // devpts as the kernel mounts it with no options (the guest's; a
    // system whose init mounts it gid=5,mode=620 differs).
    CHECK((st.st_mode & 0777) == 0600 && st.st_gid == getgid(), "mode 0600, the opener's group");
    CHECK(stat("/dev/ptmx", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(5, 2), "/dev/ptmx is 5:2");
    int s = open(name, O_RDWR | O_NOCTTY);
    CHECK(s >= 0 && isatty(s), "the slave opens, a terminal");
    char *tn = ttyname(s);
    CHECK(tn && strcmp(tn, name) == 0, "ttyname of the slave");
    CHECK(ioctl(s, TIOCGPTN, &n) == -1 && errno == ENOTTY, "TIOCGPTN on the slave: ENOTTY");
    CHECK(fstat(s, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 136, "fstat of the slave");
    int seen = 0;
    DIR *d = opendir("/dev/pts");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, name + 9) == 0)
            seen = 1;
    if (d)
        closedir(d);
    CHECK(seen, "/dev/pts lists it");

    // --- the line discipline ---
    struct termios t;
    CHECK(tcgetattr(s, &t) == 0 && (t.c_lflag & ICANON) && (t.c_lflag & ECHO) && (t.c_oflag & ONLCR),
          "default settings: canonical, echo, ONLCR");
    struct termios tm;
    CHECK(tcgetattr(m, &tm) == 0 && tm.c_lflag == t.c_lflag, "the master reports the slave's settings");
    CHECK(write(s, "hello\n", 6) == 6, "slave writes");
    CHECK(drain(m, buf, sizeof buf, 1000) == 7 && strcmp(buf, "hello\r\n") == 0, "the master reads it, \\n as \\r\\n");
    CHECK(write(m, "ab\x7f" "c\n", 5) == 5, "master writes a line with an erase");
    memset(buf, 0, sizeof buf);
    CHECK(read(s, buf, sizeof buf) == 3 && strcmp(buf, "ac\n") == 0, "the slave reads the edited line");
    CHECK(drain(m, buf, sizeof buf, 1000) > 0 && strcmp(buf, "ab\b \bc\r\n") == 0, "the echo, with the erase rubbed out");
    CHECK(write(m, "one\ntwo\n", 8) == 8, "two lines");
    memset(buf, 0, sizeof buf);
    CHECK(read(s, buf, sizeof buf) == 4 && strcmp(buf, "one\n") == 0, "a canonical read takes one line");
    memset(buf, 0, sizeof buf);
    CHECK(read(s, buf, sizeof buf) == 4 && strcmp(buf, "two\n") == 0, "then the next");
    drain(m, buf, sizeof buf, 200);
    int avail = -1;
    CHECK(write(m, "x", 1) == 1 && ioctl(s, FIONREAD, &avail) == 0 && avail == 0,
          "an unfinished line is not readable (FIONREAD 0)");
    CHECK(write(m, "\x04", 1) == 1 && read(s, buf, sizeof buf) == 1 && buf[0] == 'x', "EOF ends the line without itself");
    CHECK(write(m, "\x04", 1) == 1 && read(s, buf, sizeof buf) == 0, "EOF on an empty line: end of file");
    drain(m, buf, sizeof buf, 200);
    struct termios raw = t;
    cfmakeraw(&raw);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    CHECK(tcsetattr(s, TCSANOW, &raw) == 0, "raw mode");
    CHECK(write(m, "xyz\r", 4) == 4, "master writes in raw mode");
    memset(buf, 0, sizeof buf);
    CHECK(read(s, buf, sizeof buf) == 4 && memcmp(buf, "xyz\r", 4) == 0, "the slave reads it as it came");
    CHECK(drain(m, buf, sizeof buf, 200) == 0, "no echo");
    CHECK(write(s, "a\nb", 3) == 3 && drain(m, buf, sizeof buf, 1000) == 3 && memcmp(buf, "a\nb", 3) == 0,
          "no output processing");
    fcntl(s, F_SETFL, O_NONBLOCK);
    CHECK(read(s, buf, 1) == -1 && errno == EAGAIN, "a non-blocking slave read with nothing: EAGAIN");
    fcntl(s, F_SETFL, 0);
    fcntl(m, F_SETFL, O_NONBLOCK);
    CHECK(read(m, buf, 1) == -1 && errno == EAGAIN, "a non-blocking master read with nothing: EAGAIN");
    fcntl(m, F_SETFL, 0);
    // (Linux moves input to the line discipline in a worker: a moment.)
    CHECK(write(m, "12345", 5) == 5 && usleep(20000) == 0 && ioctl(s, FIONREAD, &avail) == 0 && avail == 5,
          "FIONREAD on the slave");
    CHECK(tcflush(s, TCIFLUSH) == 0 && ioctl(s, FIONREAD, &avail) == 0 && avail == 0, "TCIFLUSH empties it");
    CHECK(write(s, "pending", 7) == 7 && usleep(20000) == 0 && ioctl(m, FIONREAD, &avail) == 0 && avail == 7,
          "FIONREAD on the master");
    // The slave's TCOFLUSH drops only what is still on its way (Linux's
    // flip buffer, moved into the master's input within a moment): here,
    // nothing. The master's TCIFLUSH drops its input.
    CHECK(tcflush(s, TCOFLUSH) == 0 && ioctl(m, FIONREAD, &avail) == 0 && avail == 7,
          "the slave's TCOFLUSH leaves what reached the master");
    CHECK(tcflush(m, TCIFLUSH) == 0 && ioctl(m, FIONREAD, &avail) == 0 && avail == 0,
          "the master's TCIFLUSH drops it");
    CHECK(tcsetattr(s, TCSANOW, &t) == 0, "back to canonical");

    // The window size, set through the master, read on the slave.
    struct winsize ws = {40, 132, 0, 0}, ws2 = {1, 1, 1, 1};
    CHECK(ioctl(s, TIOCGWINSZ, &ws2) == 0 && ws2.ws_row == 0 && ws2.ws_col == 0, "a new pty has no size");
    CHECK(ioctl(m, TIOCSWINSZ, &ws) == 0 && ioctl(s, TIOCGWINSZ, &ws2) == 0 && ws2.ws_row == 40 && ws2.ws_col == 132,
          "TIOCSWINSZ on the master, TIOCGWINSZ on the slave");
    // No session holds it.
    pid_t pg = 1;
    CHECK(ioctl(m, TIOCGPGRP, &pg) == 0 && pg == 0, "through the master: no foreground group");
    CHECK(ioctl(s, TIOCGPGRP, &pg) == -1 && errno == ENOTTY, "on the slave, not the caller's terminal: ENOTTY");
    CHECK(ioctl(m, TIOCGSID, &pg) == -1 && errno == ENOTTY, "TIOCGSID: no session, ENOTTY");

    // --- packet mode ---
    int on = 1;
    CHECK(ioctl(m, TIOCPKT, &on) == 0, "TIOCPKT");
    CHECK(write(s, "pk", 2) == 2 && usleep(20000) == 0 && read(m, buf, sizeof buf) == 3 && buf[0] == 0 &&
              memcmp(buf + 1, "pk", 2) == 0,
          "packet mode: a 0 byte before the data");
    CHECK(tcflush(s, TCIFLUSH) == 0 && read(m, buf, sizeof buf) == 1 && buf[0] == TIOCPKT_FLUSHREAD,
          "packet mode: the slave's input flush is an event");
    CHECK(tcflush(s, TCOFLUSH) == 0 && read(m, buf, sizeof buf) == 1 && buf[0] == TIOCPKT_FLUSHWRITE,
          "and its output flush");
    on = 0;
    CHECK(ioctl(m, TIOCPKT, &on) == 0, "packet mode off");

    // --- TIOCGPTPEER ---
    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    CHECK(peer >= 0 && isatty(peer) && (fcntl(peer, F_GETFD) & FD_CLOEXEC), "TIOCGPTPEER opens the slave");
    tn = peer >= 0 ? ttyname(peer) : NULL;
    CHECK(tn && strcmp(tn, name) == 0, "its ttyname");
    CHECK(write(peer, "p\n", 2) == 2 && drain(m, buf, sizeof buf, 1000) == 3, "it is the same terminal");
    close(peer);

    // --- the slave's close ---
    close(s);
    struct pollfd p = {m, POLLIN, 0};
    CHECK(poll(&p, 1, 1000) == 1 && (p.revents & POLLHUP), "the last slave closed: POLLHUP on the master");
    CHECK(read(m, buf, sizeof buf) == -1 && errno == EIO, "and its reads are EIO");
    s = open(name, O_RDWR | O_NOCTTY);
    CHECK(s >= 0, "the slave opens again");
    p.revents = 0;
    CHECK(poll(&p, 1, 0) == 0, "and the master no longer polls POLLHUP");

    // --- the master's close ---
    CHECK(write(m, "unread\n", 7) == 7, "input the slave never reads");
    close(m);
    CHECK(stat(name, &st) == -1 && errno == ENOENT, "the master closed: the slave's node is gone");
    CHECK(read(s, buf, sizeof buf) == 0, "the slave reads end of file");
    CHECK(write(s, "x", 1) == -1 && errno == EIO, "its writes are EIO");
    p.fd = s;
    p.events = POLLIN | POLLOUT;
    CHECK(poll(&p, 1, 0) == 1 && (p.revents & POLLHUP), "it polls POLLHUP");
    CHECK(tcgetattr(s, &t) == -1 && errno == EIO, "its ioctls are EIO");
    close(s);

    // --- a controlling terminal: forkpty, /dev/tty, signals ---
    struct winsize start = {24, 80, 0, 0};
    pid_t c = forkpty(&m, NULL, NULL, &start);
    if (c == 0) {
        // The child: a new session whose terminal is the slave.
        int tty = open("/dev/tty", O_RDWR);
        struct winsize w = {0};
        char line[64];
        int sized = ioctl(tty, TIOCGWINSZ, &w) == 0;
        int k = snprintf(line, sizeof line, "child: sid==pid %d, pgrp %d, tty %d, %dx%d\n", getsid(0) == getpid(),
                         tcgetpgrp(0) == getpgrp(), tty >= 0 && isatty(tty), sized ? w.ws_row : -1, w.ws_col);
        write(tty, line, k);
        signal(SIGWINCH, on_winch);
        // Wait for the parent's resize, then report it and wait for ^C.
        char b[16];
        read(0, b, sizeof b);
        k = snprintf(line, sizeof line, "winch %d\n", (int)got_winch);
        write(1, line, k);
        pause();
        _exit(3);
    }
    CHECK(c > 0, "forkpty");
    buf[0] = 0;
    drain(m, buf, sizeof buf, 2000);
    CHECK(strcmp(buf, "child: sid==pid 1, pgrp 1, tty 1, 24x80\r\n") == 0,
          "the child leads a session whose terminal it is, /dev/tty opens it: %s", buf);
    struct winsize big = {50, 160, 0, 0};
    CHECK(ioctl(m, TIOCSWINSZ, &big) == 0, "resize through the master");
    usleep(100000);
    CHECK(write(m, "go\n", 3) == 3, "wake the child");
    drain(m, buf, sizeof buf, 2000);
    CHECK(strstr(buf, "winch 1\r\n") != NULL, "the foreground group got SIGWINCH");
    CHECK(ioctl(m, TIOCGPGRP, &pg) == 0 && pg == c, "through the master: the child's group is the foreground");
    CHECK(ioctl(m, TIOCGSID, &pg) == 0 && pg == c, "through the master: the child's session");
    CHECK(write(m, "\x03", 1) == 1, "^C on the master");
    int status = 0;
    CHECK(waitpid(c, &status, 0) == c && WIFSIGNALED(status) && WTERMSIG(status) == SIGINT,
          "the foreground group dies of SIGINT");
    drain(m, buf, sizeof buf, 300);
    CHECK(strcmp(buf, "^C") == 0, "the ^C echoes");
    close(m);

    // --- the master's close hangs the session up ---
    int pfd[2];
    pipe(pfd);
    c = forkpty(&m, NULL, NULL, NULL);
    if (c == 0) {
        close(pfd[0]);
        signal(SIGHUP, on_hup);
        write(1, "r\n", 2);
        while (!got_hup)
            pause();
        char b[8];
        int r = read(0, b, sizeof b);
        int w = write(1, "x", 1);
        char line[64];
        int k = snprintf(line, sizeof line, "hup %d read %d write %d %d\n", (int)got_hup, r, w, errno);
        write(pfd[1], line, k);
        _exit(0);
    }
    close(pfd[1]);
    drain(m, buf, sizeof buf, 2000);
    close(m);
    memset(buf, 0, sizeof buf);
    int got = read(pfd[0], buf, sizeof buf);
    CHECK(got > 0 && strcmp(buf, "hup 1 read 0 write -1 5\n") == 0,
          "the session leader gets SIGHUP; the hung-up slave reads 0, writes EIO");
    waitpid(c, &status, 0);
    close(pfd[0]);

    // --- TIOCSCTTY and O_NOCTTY ---
    m = open_pair(&s);
    CHECK(m >= 0 && s >= 0, "another pair");
    c = fork();
    if (c == 0) {
        setsid();
        int r1 = ioctl(s, TIOCGPGRP, &pg) == -1 && errno == ENOTTY;
        int r2 = open("/dev/tty", O_RDWR) == -1 && errno == ENXIO;
        // The slave opened without O_NOCTTY by a session leader with none.
        int again = open(ptsname(m), O_RDWR);
        int r3 = again >= 0 && tcgetpgrp(again) == getpid();
        int r4 = ioctl(s, TIOCSCTTY, 0) == 0;
        _exit(r1 && r2 && r3 && r4 ? 0 : 1 + !r1 + 2 * !r2 + 4 * !r3);
    }
    waitpid(c, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "an open without O_NOCTTY makes it the leader's terminal");
    c = fork();
    if (c == 0) {
        setsid();
        _exit(ioctl(s, TIOCSCTTY, 0) == 0 && tcgetpgrp(s) == getpid() ? 0 : 1);
    }
    waitpid(c, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "TIOCSCTTY after the last leader exited");
    c = fork();
    if (c == 0) {
        _exit(ioctl(s, TIOCSCTTY, 0) == -1 && errno == EPERM ? 0 : 1);
    }
    waitpid(c, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "TIOCSCTTY by a process that leads no session: EPERM");
    close(s);
    close(m);

    // --- many pairs ---
    int ms[40], ok = 1;
    for (int i = 0; i < 40; i++) {
        ms[i] = posix_openpt(O_RDWR | O_NOCTTY);
        ok &= ms[i] >= 0;
    }
    for (int i = 0; i < 40; i++)
        close(ms[i]);
    CHECK(ok, "40 pairs at once");
    printf("%d failed\n", failed);
    return failed != 0;
}
