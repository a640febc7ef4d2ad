// Unix domain socket pairs and fifos, checked against Linux: stream, datagram and
// seqpacket pairs; send/recv flags (PEEK, DONTWAIT, TRUNC, NOSIGNAL);
// shutdown; end of file, EPIPE and SIGPIPE when the peer goes; poll;
// FIONREAD; descriptor passing (SCM_RIGHTS, MSG_CMSG_CLOEXEC,
// MSG_CTRUNC); names and options; the errors Linux gives; a fifo's
// open waiting for its other side (O_NONBLOCK: ENXIO for a writer),
// O_RDWR as both ends. The same
// binary runs natively first, then in the guest. Prints "ok - ..." per
// check, "FAIL - ..." on a mismatch, and "N failed".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static volatile sig_atomic_t pipes;
static void on_pipe(int s) { (void)s; pipes++; }

static void stream(void) {
    int sv[2];
    char buf[256];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair(SOCK_STREAM)");
    CHECK(write(sv[0], "hello", 5) == 5 && read(sv[1], buf, sizeof buf) == 5 &&
              memcmp(buf, "hello", 5) == 0,
          "write one end, read the other");
    CHECK(send(sv[1], "back", 4, 0) == 4 && recv(sv[0], buf, sizeof buf, 0) == 4, "and back");
    // A stream joins what was sent in pieces.
    send(sv[0], "ab", 2, 0);
    send(sv[0], "cd", 2, 0);
    int n = -1;
    CHECK(ioctl(sv[1], FIONREAD, &n) == 0 && n == 4, "FIONREAD counts the bytes (%d)", n);
    CHECK(recv(sv[1], buf, 3, MSG_PEEK) == 3 && memcmp(buf, "abc", 3) == 0, "MSG_PEEK across sends");
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 4 && memcmp(buf, "abcd", 4) == 0, "then read: all of it");
    CHECK(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN, "MSG_DONTWAIT: EAGAIN");
    struct pollfd p[2] = {{sv[0], POLLIN | POLLOUT, 0}, {sv[1], POLLIN, 0}};
    CHECK(poll(p, 2, 0) == 1 && p[0].revents == POLLOUT && p[1].revents == 0,
          "poll: writable, nothing to read");
    send(sv[0], "x", 1, 0);
    CHECK(poll(p, 2, 0) == 2 && (p[1].revents & POLLIN), "poll: readable after a send");
    recv(sv[1], buf, 1, 0);
    // shutdown(SHUT_WR): the peer reads end of file; a send is EPIPE.
    CHECK(shutdown(sv[0], SHUT_WR) == 0, "shutdown(SHUT_WR)");
    CHECK(read(sv[1], buf, sizeof buf) == 0, "the peer reads end of file");
    CHECK(send(sv[0], "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE && pipes == 0,
          "send after SHUT_WR: EPIPE (MSG_NOSIGNAL: no signal)");
    CHECK(write(sv[1], "still", 5) == 5 && read(sv[0], buf, 5) == 5, "the other way still works");
    CHECK(shutdown(sv[0], 7) == -1 && errno == EINVAL, "shutdown(7): EINVAL");
    close(sv[0]);
    close(sv[1]);

    // The peer closes: end of file for reads, EPIPE and SIGPIPE for writes.
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    signal(SIGPIPE, on_pipe);
    send(sv[0], "left", 4, 0);
    close(sv[0]);
    CHECK(read(sv[1], buf, sizeof buf) == 4, "data sent before the close is still read");
    CHECK(read(sv[1], buf, sizeof buf) == 0, "then end of file");
    p[0].fd = sv[1];
    p[0].events = POLLIN | POLLOUT;
    CHECK(poll(p, 1, 0) == 1 && (p[0].revents & POLLHUP), "poll: POLLHUP");
    CHECK(write(sv[1], "x", 1) == -1 && errno == EPIPE && pipes == 1, "write: EPIPE and SIGPIPE");
    close(sv[1]);

    // The peer closes with data it never read: ECONNRESET once.
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    send(sv[0], "unread", 6, 0);
    close(sv[1]);
    CHECK(read(sv[0], buf, sizeof buf) == -1 && errno == ECONNRESET, "ECONNRESET when unread data was lost");
    CHECK(read(sv[0], buf, sizeof buf) == 0, "then end of file");
    close(sv[0]);

    // A megabyte through a pair between two processes.
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    CHECK((fcntl(sv[0], F_GETFD) & FD_CLOEXEC) != 0, "SOCK_CLOEXEC");
    pid_t c = fork();
    if (c == 0) {
        close(sv[1]);
        static char chunk[65536];
        for (int i = 0; i < 16; i++) {
            memset(chunk, 'a' + i, sizeof chunk);
            if (write(sv[0], chunk, sizeof chunk) != sizeof chunk) {
                _exit(1);
            }
        }
        _exit(0);
    }
    close(sv[0]);
    long total = 0, sum = 0;
    ssize_t got;
    static char big[100000];
    while ((got = read(sv[1], big, sizeof big)) > 0) {
        for (ssize_t i = 0; i < got; i++) {
            sum += big[i];
        }
        total += got;
    }
    int st;
    waitpid(c, &st, 0);
    long want = 0;
    for (int i = 0; i < 16; i++) {
        want += 65536L * ('a' + i);
    }
    CHECK(total == 1 << 20 && sum == want && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "1 MiB between processes (%ld bytes)", total);
    close(sv[1]);
}

static void datagrams(void) {
    int sv[2];
    char buf[256];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair(SOCK_DGRAM)");
    send(sv[0], "0123456789", 10, 0);
    send(sv[0], "abc", 3, 0);
    int n = -1;
    CHECK(ioctl(sv[1], FIONREAD, &n) == 0 && n == 10, "FIONREAD: the next message (%d)", n);
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 10, "one message per read");
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 3, "the next");
    send(sv[0], "0123456789", 10, 0);
    struct iovec iov = {buf, 4};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK(recvmsg(sv[1], &m, 0) == 4 && (m.msg_flags & MSG_TRUNC), "a short buffer: MSG_TRUNC");
    CHECK(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN, "the rest was dropped");
    send(sv[0], "0123456789", 10, 0);
    CHECK(recv(sv[1], buf, 2, MSG_TRUNC) == 10, "recv(MSG_TRUNC) returns the real length");
    CHECK(send(sv[0], "", 0, 0) == 0 && recv(sv[1], buf, sizeof buf, 0) == 0, "an empty datagram");
    static char huge[300000];
    CHECK(send(sv[0], huge, sizeof huge, 0) == -1 && errno == EMSGSIZE, "a datagram past the buffer: EMSGSIZE");
    close(sv[1]);
    CHECK(send(sv[0], "x", 1, 0) == -1 && errno == ECONNREFUSED, "to a closed peer: ECONNREFUSED");
    close(sv[0]);

    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0, "socketpair(SOCK_SEQPACKET)");
    send(sv[0], "one", 3, 0);
    send(sv[0], "two!", 4, 0);
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 3 && recv(sv[1], buf, sizeof buf, 0) == 4, "boundaries kept");
    close(sv[0]);
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 0, "end of file when the peer goes");
    close(sv[1]);
}

static int send_fd(int sock, int fd) {
    char byte = 'F';
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(sock, &m, 0);
}

static void rights(void) {
    int sv[2], pp[2];
    char buf[64];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(pp);
    CHECK(send_fd(sv[0], pp[0]) == 1, "sendmsg with SCM_RIGHTS");
    close(pp[0]);
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    CHECK(recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC) == 1 && byte == 'F', "recvmsg gets the byte");
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    int fd = -1;
    CHECK(c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)),
          "an SCM_RIGHTS message");
    if (c) {
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
    }
    CHECK(m.msg_controllen == CMSG_SPACE(sizeof(int)) && !(m.msg_flags & MSG_CTRUNC), "msg_controllen (%zu)",
          (size_t)m.msg_controllen);
    CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "a new descriptor, close-on-exec");
    CHECK(write(pp[1], "via", 3) == 3 && read(fd, buf, 3) == 3 && memcmp(buf, "via", 3) == 0,
          "it is the pipe's read end");
    close(fd);
    // No room for the descriptor: MSG_CTRUNC, the file is dropped.
    send_fd(sv[0], pp[1]);
    m.msg_control = NULL;
    m.msg_controllen = 0;
    CHECK(recvmsg(sv[1], &m, 0) == 1 && (m.msg_flags & MSG_CTRUNC), "no control buffer: MSG_CTRUNC");
    // A bad descriptor to pass: EBADF.
    CHECK(send_fd(sv[0], 999) == -1 && errno == EBADF, "passing a bad descriptor: EBADF");
    close(pp[1]);
    close(sv[0]);
    close(sv[1]);
}

static void names_and_errors(void) {
    int sv[2];
    CHECK(socketpair(AF_INET, SOCK_STREAM, 0, sv) == -1 && errno == EOPNOTSUPP, "socketpair(AF_INET): EOPNOTSUPP");
    CHECK(socketpair(AF_UNIX, 12, 0, sv) == -1 && errno == EINVAL, "type 12: EINVAL");
    CHECK(socketpair(AF_UNIX, SOCK_RDM, 0, sv) == -1 && errno == ESOCKTNOSUPPORT, "SOCK_RDM: ESOCKTNOSUPPORT");
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 5, sv) == -1 && errno == EPROTONOSUPPORT, "protocol 5: EPROTONOSUPPORT");
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, (int *)8) == -1 && errno == EFAULT, "bad sv: EFAULT");
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0, "SOCK_NONBLOCK");
    char buf[8];
    CHECK(read(sv[0], buf, 8) == -1 && errno == EAGAIN, "a non-blocking read: EAGAIN");
    int v = 0;
    socklen_t len = sizeof v;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &len) == 0 && v == SOCK_STREAM && len == 4, "SO_TYPE");
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &v, &len) == 0 && v == AF_UNIX, "SO_DOMAIN");
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_ERROR, &v, &len) == 0 && v == 0, "SO_ERROR");
    struct ucred cr;
    len = sizeof cr;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.pid == getpid() && len == sizeof cr,
          "SO_PEERCRED: the pair's maker");
    struct sockaddr_un a;
    len = sizeof a;
    CHECK(getsockname(sv[0], (struct sockaddr *)&a, &len) == 0 && a.sun_family == AF_UNIX && len == 2,
          "getsockname: unnamed");
    len = sizeof a;
    CHECK(getpeername(sv[0], (struct sockaddr *)&a, &len) == 0 && len == 2, "getpeername: unnamed");
    struct sockaddr_un to = {.sun_family = AF_UNIX};
    CHECK(sendto(sv[0], "x", 1, 0, (struct sockaddr *)&to, sizeof to) == -1 && errno == EISCONN,
          "sendto with an address on a stream: EISCONN");
    int pp[2];
    pipe(pp);
    CHECK(send(pp[1], "x", 1, 0) == -1 && errno == ENOTSOCK, "send on a pipe: ENOTSOCK");
    CHECK(shutdown(pp[0], SHUT_RD) == -1 && errno == ENOTSOCK, "shutdown of a pipe: ENOTSOCK");
    CHECK(send(99, "x", 1, 0) == -1 && errno == EBADF, "send on no descriptor: EBADF");
    CHECK(send(sv[0], (void *)8, 1, 0) == -1 && errno == EFAULT, "send from a bad buffer: EFAULT");
    close(pp[0]);
    close(pp[1]);
    close(sv[0]);
    close(sv[1]);
}

static void fifos(void) {
    char path[] = "/tmp/fifoXXXXXX";
    CHECK(mkdtemp(path) != NULL, "a directory for the fifo");
    char f[64];
    snprintf(f, sizeof f, "%s/f", path);
    CHECK(mkfifo(f, 0600) == 0, "mkfifo");
    CHECK(open(f, O_WRONLY | O_NONBLOCK) == -1 && errno == ENXIO, "a non-blocking writer with no reader: ENXIO");
    int r = open(f, O_RDONLY | O_NONBLOCK);
    CHECK(r >= 0, "a non-blocking reader opens at once");
    char buf[16];
    CHECK(read(r, buf, sizeof buf) == 0, "and reads end of file (no writer yet)");
    int w = open(f, O_WRONLY | O_NONBLOCK);
    CHECK(w >= 0, "a non-blocking writer opens once a reader is there");
    close(w);
    close(r);
    // A blocking reader waits for the writer (a child opens it 30 ms later).
    pid_t c = fork();
    if (c == 0) {
        usleep(30000);
        int cw = open(f, O_WRONLY);
        _exit(cw >= 0 && write(cw, "late", 4) == 4 ? 0 : 1);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = open(f, O_RDONLY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long waited = (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
    CHECK(r >= 0 && waited >= 20000000, "a blocking reader waited for the writer (%ld ns)", waited);
    ssize_t n = read(r, buf, sizeof buf);
    CHECK(n == 4 && memcmp(buf, "late", 4) == 0, "and reads what it wrote");
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer's open did not wait (a reader was there)");
    close(r);
    // A blocking writer waits for a reader.
    c = fork();
    if (c == 0) {
        usleep(30000);
        int cr = open(f, O_RDONLY);
        char b[8];
        _exit(cr >= 0 && read(cr, b, 8) == 2 ? 0 : 1);
    }
    w = open(f, O_WRONLY);
    CHECK(w >= 0 && write(w, "hi", 2) == 2, "a blocking writer opens once the reader came");
    close(w);
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the reader read it");
    // O_RDWR: both ends, never waits; it reads what it writes.
    int rw = open(f, O_RDWR);
    CHECK(rw >= 0 && write(rw, "self", 4) == 4 && read(rw, buf, 4) == 4 && memcmp(buf, "self", 4) == 0,
          "O_RDWR is both ends");
    close(rw);
    unlink(f);
    rmdir(path);
    // An anonymous pipe's end reopened through /proc never waits, even
    // with its writer gone (only named fifos wait: `cat /dev/stdin`).
    int pp[2];
    pipe(pp);
    write(pp[1], "z", 1);
    close(pp[1]);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", pp[0]);
    int again = open(proc, O_RDONLY);
    CHECK(again >= 0 && read(again, buf, 4) == 1 && read(again, buf, 4) == 0,
          "a pipe reopened through /proc/self/fd does not wait");
    close(again);
    close(pp[0]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    stream();
    datagrams();
    rights();
    names_and_errors();
    fifos();
    printf("%d failed\n", failed);
    return failed != 0;
}
