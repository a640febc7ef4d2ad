// Named Unix domain sockets, checked against Linux: bind (a socket file,
// the abstract namespace, autobind), listen, connect, accept and
// accept4, the names each side reports, SO_PEERCRED and SO_ACCEPTCONN,
// the backlog, poll on a listener, datagrams to and from names,
// SO_PASSCRED and SCM_CREDENTIALS, SO_RCVTIMEO and SO_SNDTIMEO, and the
// errors Linux gives. The same binary runs natively first, then in the
// guest. Prints "ok - ..." per check, "FAIL - ..." on a mismatch, and
// "N failed".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static char dir[] = "/tmp/unixXXXXXX";

// A path address in the test's directory, and its length as Linux counts
// it (the family, the path and its NUL).
static socklen_t path_addr(struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, name);
    return offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1;
}

// An abstract address: a 0, then the name (no NUL counted).
static socklen_t abstract_addr(struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "%s-%d", name, getpid());
    return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

static int listener(const char *name, int backlog) {
    struct sockaddr_un a;
    socklen_t len = path_addr(&a, name);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, len) != 0 || listen(s, backlog) != 0)
        return -1;
    return s;
}

static int connect_to(const char *name, int type) {
    struct sockaddr_un a;
    socklen_t len = path_addr(&a, name);
    int c = socket(AF_UNIX, type, 0);
    if (connect(c, (struct sockaddr *)&a, len) != 0) {
        int e = errno;
        close(c);
        errno = e;
        return -1;
    }
    return c;
}

static void stream(void) {
    struct sockaddr_un a, got;
    socklen_t len = path_addr(&a, "srv"), glen;
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(s >= 0, "socket(AF_UNIX, SOCK_STREAM)");
    char buf[64];
    CHECK(read(s, buf, 1) == -1 && errno == EINVAL, "read before connecting: EINVAL");
    CHECK(send(s, "x", 1, MSG_NOSIGNAL) == -1 && errno == ENOTCONN, "send before connecting: ENOTCONN");
    glen = sizeof got;
    CHECK(getpeername(s, (struct sockaddr *)&got, &glen) == -1 && errno == ENOTCONN,
          "getpeername before connecting: ENOTCONN");
    struct pollfd p = {s, POLLIN | POLLOUT, 0};
    CHECK(poll(&p, 1, 0) == 1 && p.revents == (POLLOUT | POLLHUP),
          "poll before connecting: POLLOUT|POLLHUP (%#x)", p.revents);
    CHECK(listen(s, 5) == -1 && errno == EINVAL, "listen before bind: EINVAL");
    CHECK(bind(s, (struct sockaddr *)&a, 1) == -1 && errno == EINVAL, "bind with a 1-byte address: EINVAL");
    struct sockaddr_un bad = a;
    bad.sun_family = AF_INET;
    CHECK(bind(s, (struct sockaddr *)&bad, len) == -1 && errno == EINVAL, "bind with AF_INET: EINVAL");
    CHECK(bind(s, (struct sockaddr *)&a, len) == 0, "bind to a path");
    struct stat st;
    CHECK(stat(a.sun_path, &st) == 0 && S_ISSOCK(st.st_mode), "the path is a socket file");
    CHECK(bind(s, (struct sockaddr *)&a, len) == -1 && errno == EADDRINUSE, "bind again to the path: EADDRINUSE");
    struct sockaddr_un a2;
    socklen_t len2 = path_addr(&a2, "srv2");
    CHECK(bind(s, (struct sockaddr *)&a2, len2) == -1 && errno == EINVAL && access(a2.sun_path, F_OK) == -1,
          "bind a named socket to a new path: EINVAL, and no file is left");
    int other = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(other, (struct sockaddr *)&a, len) == -1 && errno == EADDRINUSE,
          "another bind to the path: EADDRINUSE");
    close(other);
    glen = sizeof got;
    CHECK(getsockname(s, (struct sockaddr *)&got, &glen) == 0 && glen == len &&
              strcmp(got.sun_path, a.sun_path) == 0,
          "getsockname: the path (%u bytes)", glen);
    glen = 4;
    memset(&got, 0x55, sizeof got);
    CHECK(getsockname(s, (struct sockaddr *)&got, &glen) == 0 && glen == len && got.sun_path[2] == 0x55,
          "getsockname into 4 bytes: cut, with the full length");
    int v = -1;
    socklen_t vl = sizeof v;
    CHECK(getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) == 0 && v == 0, "SO_ACCEPTCONN before listen: 0");
    CHECK(connect_to("srv", SOCK_STREAM) == -1 && errno == ECONNREFUSED, "connect to a bound non-listener: ECONNREFUSED");
    CHECK(listen(s, 5) == 0, "listen");
    CHECK(getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) == 0 && v == 1, "SO_ACCEPTCONN: 1");
    CHECK(listen(s, 7) == 0, "listen again (a new backlog)");
    CHECK(read(s, buf, 1) == -1 && errno == EINVAL, "read from a listener: EINVAL");
    p = (struct pollfd){s, POLLIN | POLLOUT, 0};
    CHECK(poll(&p, 1, 0) == 0, "poll of a listener with no connection: nothing");
    int fl = fcntl(s, F_GETFL);
    fcntl(s, F_SETFL, fl | O_NONBLOCK);
    CHECK(accept(s, NULL, NULL) == -1 && errno == EAGAIN, "non-blocking accept with none queued: EAGAIN");
    fcntl(s, F_SETFL, fl);

    int c = connect_to("srv", SOCK_STREAM);
    CHECK(c >= 0, "connect");
    CHECK(connect(c, (struct sockaddr *)&a, len) == -1 && errno == EISCONN, "connect again: EISCONN");
    CHECK(connect(s, (struct sockaddr *)&a, len) == -1 && errno == EINVAL, "connect of a listener: EINVAL");
    CHECK(write(c, "early", 5) == 5, "the connecting side writes before it is accepted");
    p = (struct pollfd){s, POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLIN, "poll of the listener: POLLIN");
    glen = sizeof got;
    CHECK(getpeername(c, (struct sockaddr *)&got, &glen) == 0 && glen == len &&
              strcmp(got.sun_path, a.sun_path) == 0,
          "the connecting side's peer: the listener's path");
    glen = sizeof got;
    CHECK(getsockname(c, (struct sockaddr *)&got, &glen) == 0 && glen == 2, "its own name: unnamed");
    glen = sizeof got;
    int x = accept4(s, (struct sockaddr *)&got, &glen, SOCK_CLOEXEC | SOCK_NONBLOCK);
    CHECK(x >= 0 && glen == 2 && got.sun_family == AF_UNIX, "accept4: the connecting side is unnamed");
    CHECK((fcntl(x, F_GETFD) & FD_CLOEXEC) && (fcntl(x, F_GETFL) & O_NONBLOCK),
          "accept4's SOCK_CLOEXEC and SOCK_NONBLOCK");
    CHECK(read(x, buf, sizeof buf) == 5 && memcmp(buf, "early", 5) == 0, "the accepted side reads what came early");
    glen = sizeof got;
    CHECK(getsockname(x, (struct sockaddr *)&got, &glen) == 0 && glen == len &&
              strcmp(got.sun_path, a.sun_path) == 0,
          "the accepted socket's name: the listener's");
    glen = sizeof got;
    CHECK(getpeername(x, (struct sockaddr *)&got, &glen) == 0 && glen == 2, "its peer: unnamed");
    CHECK(getsockopt(x, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) == 0 && v == 0, "SO_ACCEPTCONN of it: 0");
    CHECK(accept(x, NULL, NULL) == -1 && errno == EINVAL, "accept on a connected socket: EINVAL");
    close(x);
    CHECK(read(c, buf, sizeof buf) == 0, "the accepted side closed: end of file");
    close(c);

    // A client in another process: SO_PEERCRED on both sides.
    pid_t child = fork();
    if (child == 0) {
        int cc = connect_to("srv", SOCK_STREAM);
        struct ucred cr;
        socklen_t cl = sizeof cr;
        int ok = cc >= 0 && getsockopt(cc, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cr.pid == getppid();
        char b[8];
        ok = ok && write(cc, "ping", 4) == 4 && read(cc, b, sizeof b) == 4 && memcmp(b, "pong", 4) == 0;
        _exit(ok ? 0 : 1);
    }
    // A blocking accept waits for it.
    x = accept(s, NULL, NULL);
    struct ucred cr;
    socklen_t cl = sizeof cr;
    CHECK(x >= 0 && getsockopt(x, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cr.pid == child,
          "a blocking accept; SO_PEERCRED: the connecting process");
    CHECK(read(x, buf, 4) == 4 && memcmp(buf, "ping", 4) == 0 && write(x, "pong", 4) == 4, "ping, pong");
    int status;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client saw the listener's process as its peer");
    close(x);

    // Errors of connect.
    CHECK(connect_to("missing", SOCK_STREAM) == -1 && errno == ENOENT, "connect to a missing path: ENOENT");
    struct sockaddr_un f;
    path_addr(&f, "plain");
    close(open(f.sun_path, O_CREAT | O_WRONLY, 0600));
    CHECK(connect_to("plain", SOCK_STREAM) == -1 && errno == ECONNREFUSED, "connect to a regular file: ECONNREFUSED");
    CHECK(connect_to("srv", SOCK_SEQPACKET) == -1 && errno == EPROTOTYPE, "a seqpacket socket to a stream listener: EPROTOTYPE");
    struct sockaddr_un shortaddr = {.sun_family = AF_UNIX};
    int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(c2, (struct sockaddr *)&shortaddr, 2) == -1 && errno == EINVAL, "connect with the family alone: EINVAL");
    close(c2);
    close(s);
    CHECK(connect_to("srv", SOCK_STREAM) == -1 && errno == ECONNREFUSED,
          "connect to the file of a closed listener: ECONNREFUSED");
    CHECK(unlink(a.sun_path) == 0 && bind(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&a, len) == 0,
          "once unlinked, the path can be bound again");
    unlink(a.sun_path);
    unlink(f.sun_path);
}

static void backlog(void) {
    int s = listener("bl", 0);
    CHECK(s >= 0, "a listener with backlog 0");
    struct sockaddr_un a;
    socklen_t len = path_addr(&a, "bl");
    int c1 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(connect(c1, (struct sockaddr *)&a, len) == 0, "the first connection queues");
    CHECK(connect(c2, (struct sockaddr *)&a, len) == -1 && errno == EAGAIN, "past the backlog, non-blocking: EAGAIN");
    int x = accept(s, NULL, NULL);
    CHECK(x >= 0 && connect(c2, (struct sockaddr *)&a, len) == 0, "after an accept there is room");
    // The listener goes with a connection not accepted: its connecting
    // side is hung up and reads end of file.
    close(s);
    char b[4];
    struct pollfd p = {c2, POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 1 && (p.revents & POLLHUP), "the listener closed: the queued connection is hung up");
    CHECK(read(c2, b, sizeof b) == -1 && errno == ECONNRESET, "its read: ECONNRESET");
    CHECK(read(c2, b, sizeof b) == 0, "then end of file");
    close(x);
    close(c1);
    close(c2);
    unlink(a.sun_path);
}

static void abstract(void) {
    struct sockaddr_un a, got;
    socklen_t len = abstract_addr(&a, "vk-abstract"), glen = sizeof got;
    int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK(bind(s, (struct sockaddr *)&a, len) == 0 && listen(s, 4) == 0, "bind an abstract name, listen");
    CHECK(getsockname(s, (struct sockaddr *)&got, &glen) == 0 && glen == len && got.sun_path[0] == 0 &&
              memcmp(got.sun_path, a.sun_path, len - 2) == 0,
          "getsockname: the abstract name (%u bytes)", glen);
    int s2 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK(bind(s2, (struct sockaddr *)&a, len) == -1 && errno == EADDRINUSE, "the name again: EADDRINUSE");
    int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK(connect(c, (struct sockaddr *)&a, len) == 0, "connect by the abstract name");
    int x = accept(s, NULL, NULL);
    char b[16];
    CHECK(send(c, "one", 3, 0) == 3 && send(c, "two", 3, 0) == 3 && recv(x, b, sizeof b, 0) == 3 &&
              recv(x, b, sizeof b, 0) == 3,
          "seqpacket keeps its messages");
    close(x);
    close(c);
    close(s);
    CHECK(bind(s2, (struct sockaddr *)&a, len) == 0, "free once the holder closed");
    close(s2);
    c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK(connect(c, (struct sockaddr *)&a, len) == -1 && errno == ECONNREFUSED, "connect to an unbound name: ECONNREFUSED");
    close(c);
    // Autobind: the family alone picks a name of five hex digits.
    int ab = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un fam = {.sun_family = AF_UNIX};
    glen = sizeof got;
    CHECK(bind(ab, (struct sockaddr *)&fam, 2) == 0 && getsockname(ab, (struct sockaddr *)&got, &glen) == 0 &&
              glen == 8 && got.sun_path[0] == 0,
          "autobind: an abstract name of 5 bytes (%u)", glen);
    close(ab);
}

static void datagrams(void) {
    struct sockaddr_un srv, me, got;
    socklen_t slen = path_addr(&srv, "dg"), mlen = abstract_addr(&me, "vk-dgram"), glen;
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(s, (struct sockaddr *)&srv, slen) == 0, "bind a datagram socket");
    CHECK(listen(s, 1) == -1 && errno == EOPNOTSUPP, "listen on a datagram socket: EOPNOTSUPP");
    int u = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(send(u, "x", 1, 0) == -1 && errno == ENOTCONN, "send with no peer and no address: ENOTCONN");
    CHECK(sendto(u, "anon", 4, 0, (struct sockaddr *)&srv, slen) == 4, "sendto a path from an unnamed socket");
    char b[32];
    glen = sizeof got;
    CHECK(recvfrom(s, b, sizeof b, 0, (struct sockaddr *)&got, &glen) == 4 && glen == 0,
          "recvfrom: an unnamed sender leaves the length 0");
    int n = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(n, (struct sockaddr *)&me, mlen) == 0, "a named sender");
    CHECK(sendto(n, "named", 5, 0, (struct sockaddr *)&srv, slen) == 5, "sendto from it");
    glen = sizeof got;
    CHECK(recvfrom(s, b, sizeof b, 0, (struct sockaddr *)&got, &glen) == 5 && glen == mlen &&
              memcmp(got.sun_path, me.sun_path, mlen - 2) == 0,
          "recvfrom: the sender's abstract name");
    CHECK(sendto(s, "reply", 5, 0, (struct sockaddr *)&got, glen) == 5 && recv(n, b, sizeof b, 0) == 5 &&
              memcmp(b, "reply", 5) == 0,
          "a reply to that name");
    // recvmsg's msg_name.
    sendto(n, "m", 1, 0, (struct sockaddr *)&srv, slen);
    struct sockaddr_un from;
    struct iovec io = {b, sizeof b};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &io, .msg_iovlen = 1};
    CHECK(recvmsg(s, &mh, 0) == 1 && mh.msg_namelen == mlen && from.sun_path[0] == 0, "recvmsg: msg_name");
    // connect: the peer sends go to; a socket connected to another
    // refuses the rest.
    CHECK(connect(u, (struct sockaddr *)&srv, slen) == 0 && send(u, "c", 1, 0) == 1, "connect a datagram socket, send");
    recv(s, b, sizeof b, 0);
    CHECK(connect(s, (struct sockaddr *)&me, mlen) == 0, "the bound socket connects to the named one");
    CHECK(send(u, "c", 1, 0) == -1 && errno == EPERM, "a third socket's send to it: EPERM");
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    CHECK(connect(u, &unspec, sizeof unspec) == 0 && send(u, "x", 1, 0) == -1 && errno == ENOTCONN,
          "connect(AF_UNSPEC) undoes the peer");
    struct sockaddr_un missing;
    socklen_t ml = path_addr(&missing, "nothing");
    CHECK(sendto(u, "x", 1, 0, (struct sockaddr *)&missing, ml) == -1 && errno == ENOENT, "sendto a missing path: ENOENT");
    int st = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(sendto(st, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&srv, slen) == -1 && errno == EOPNOTSUPP,
          "sendto with an address on an unconnected stream: EOPNOTSUPP");
    CHECK(connect(st, (struct sockaddr *)&srv, slen) == -1 && errno == EPROTOTYPE,
          "a stream socket to a datagram one: EPROTOTYPE");
    close(st);
    close(u);
    close(n);
    close(s);
    unlink(srv.sun_path);
}

static void unconnected_peercred(void) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct ucred cr;
    socklen_t cl = sizeof cr;
    CHECK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cr.pid == 0 && cr.uid == (uid_t)-1 &&
              cr.gid == (gid_t)-1,
          "SO_PEERCRED with no peer: pid 0, ids -1");
    int one = 1;
    CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "SO_REUSEADDR is taken");
    int v = 0;
    socklen_t vl = sizeof v;
    CHECK(getsockopt(s, 6 /* IPPROTO_TCP */, 1, &v, &vl) == -1 && errno == EOPNOTSUPP &&
              setsockopt(s, 6, 1, &one, sizeof one) == -1 && errno == EOPNOTSUPP,
          "another level: EOPNOTSUPP both ways");
    CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, 2) == -1 && errno == EINVAL, "a 2-byte option: EINVAL");
    CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, (void *)8, 4) == -1 && errno == EFAULT, "a bad pointer: EFAULT");
    close(s);
}

static long ms_since(struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

// The first control message of `m` of type `type`, or NULL.
static struct cmsghdr *cmsg_of(struct msghdr *m, int type) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == type)
            return c;
    return NULL;
}

static void credentials(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    int one = 1, v = 0;
    socklen_t vl = sizeof v;
    CHECK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == 0 &&
              getsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &v, &vl) == 0 && v == 1,
          "SO_PASSCRED on");
    pid_t child = fork();
    if (child == 0)
        _exit(send(sv[0], "c", 1, 0) == 1 ? 0 : 1);
    waitpid(child, NULL, 0);
    char b[8], ctl[256];
    struct iovec io = {b, sizeof b};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    CHECK(recvmsg(sv[1], &m, MSG_DONTWAIT) == 1, "a message from a child");
    struct cmsghdr *c = cmsg_of(&m, SCM_CREDENTIALS);
    struct ucred cr;
    if (c)
        memcpy(&cr, CMSG_DATA(c), sizeof cr);
    CHECK(c && c->cmsg_len == CMSG_LEN(sizeof cr) && cr.pid == child && cr.uid == getuid() && cr.gid == getgid(),
          "SCM_CREDENTIALS: the child's pid, uid, gid");
    // Credentials first, then the files.
    char ctl2[CMSG_SPACE(sizeof(int))];
    memset(ctl2, 0, sizeof ctl2);
    struct msghdr s2 = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl2, .msg_controllen = sizeof ctl2};
    struct cmsghdr *r = CMSG_FIRSTHDR(&s2);
    r->cmsg_level = SOL_SOCKET;
    r->cmsg_type = SCM_RIGHTS;
    r->cmsg_len = CMSG_LEN(sizeof(int));
    int zero = 0;
    memcpy(CMSG_DATA(r), &zero, sizeof zero);
    io.iov_len = 1;
    CHECK(sendmsg(sv[0], &s2, 0) == 1, "a message with a descriptor");
    m.msg_controllen = sizeof ctl;
    io.iov_len = sizeof b;
    CHECK(recvmsg(sv[1], &m, MSG_DONTWAIT) == 1 && CMSG_FIRSTHDR(&m) &&
              CMSG_FIRSTHDR(&m)->cmsg_type == SCM_CREDENTIALS &&
              cmsg_of(&m, SCM_RIGHTS) != NULL,
          "SCM_CREDENTIALS, then SCM_RIGHTS");
    struct cmsghdr *rights = cmsg_of(&m, SCM_RIGHTS);
    if (rights) {
        int passed;
        memcpy(&passed, CMSG_DATA(rights), sizeof passed);
        close(passed);
    }
    // A root sender may claim another process's pid; not one that is
    // not there.
    char ctl3[CMSG_SPACE(sizeof cr)];
    memset(ctl3, 0, sizeof ctl3);
    struct msghdr s3 = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl3, .msg_controllen = sizeof ctl3};
    struct cmsghdr *k = CMSG_FIRSTHDR(&s3);
    k->cmsg_level = SOL_SOCKET;
    k->cmsg_type = SCM_CREDENTIALS;
    k->cmsg_len = CMSG_LEN(sizeof cr);
    pid_t other = fork();
    if (other == 0) {
        pause();
        _exit(0);
    }
    struct ucred claim = {other, 0, 0};
    memcpy(CMSG_DATA(k), &claim, sizeof claim);
    io.iov_len = 1;
    CHECK(sendmsg(sv[0], &s3, 0) == 1, "SCM_CREDENTIALS sent, claiming another process's pid");
    m.msg_controllen = sizeof ctl;
    io.iov_len = sizeof b;
    c = NULL;
    if (recvmsg(sv[1], &m, MSG_DONTWAIT) == 1 && (c = cmsg_of(&m, SCM_CREDENTIALS)))
        memcpy(&cr, CMSG_DATA(c), sizeof cr);
    CHECK(c && cr.pid == other, "the receiver sees the claimed pid");
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    claim.pid = 0x3fffffff;
    memcpy(CMSG_DATA(k), &claim, sizeof claim);
    io.iov_len = 1;
    CHECK(sendmsg(sv[0], &s3, 0) == -1 && errno == ESRCH, "claiming a pid no process has: ESRCH");
    // A control buffer too short for the credentials: MSG_CTRUNC.
    send(sv[0], "t", 1, 0);
    m.msg_controllen = 4;
    io.iov_len = sizeof b;
    CHECK(recvmsg(sv[1], &m, MSG_DONTWAIT) == 1 && (m.msg_flags & MSG_CTRUNC) && m.msg_controllen == 0,
          "no room for the credentials: MSG_CTRUNC");
    close(sv[0]);
    close(sv[1]);
    // An unnamed sender with SO_PASSCRED is autobound, so it has a name.
    struct sockaddr_un srv, got;
    socklen_t slen = path_addr(&srv, "cred"), glen = sizeof got;
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(d, (struct sockaddr *)&srv, slen);
    int u = socket(AF_UNIX, SOCK_DGRAM, 0);
    setsockopt(u, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    CHECK(sendto(u, "a", 1, 0, (struct sockaddr *)&srv, slen) == 1 &&
              recvfrom(d, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&got, &glen) == 1 && glen == 8 && got.sun_path[0] == 0,
          "a sender with SO_PASSCRED is autobound (%u)", glen);
    close(u);
    close(d);
    unlink(srv.sun_path);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

static void timeouts(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct timeval tv = {0, 50000}, out;
    socklen_t ol = sizeof out;
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
              getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &out, &ol) == 0 && ol == sizeof out && out.tv_sec == 0 &&
              out.tv_usec >= 50000 && out.tv_usec < 60000,
          "SO_RCVTIMEO 50 ms, read back (Linux rounds up to its tick)");
    struct timeval bad = {0, 1000000};
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad) == -1 && errno == EDOM,
          "a timeval of 1000000 us: EDOM");
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, 8) == -1 && errno == EINVAL, "an 8-byte timeval: EINVAL");
    char b[4096];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(recv(sv[0], b, sizeof b, 0) == -1 && errno == EAGAIN && ms_since(&t0) >= 40,
          "recv with nothing: EAGAIN after the timeout");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(read(sv[0], b, sizeof b) == -1 && errno == EAGAIN && ms_since(&t0) >= 40, "read: the same");
    // A handler interrupts a timed receive: EINTR even with SA_RESTART.
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    struct timeval longer = {2, 0};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &longer, sizeof longer);
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(recv(sv[0], b, sizeof b, 0) == -1 && errno == EINTR && alarms == 1 && ms_since(&t0) < 1000,
          "a handler interrupts a timed recv: EINTR, SA_RESTART or not");
    signal(SIGALRM, SIG_DFL);
    // SO_SNDTIMEO: a full socket's send gives up.
    int fl = fcntl(sv[1], F_GETFL);
    fcntl(sv[1], F_SETFL, fl | O_NONBLOCK);
    memset(b, 'x', sizeof b);
    while (write(sv[1], b, sizeof b) > 0) {
    }
    fcntl(sv[1], F_SETFL, fl);
    CHECK(setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0, "SO_SNDTIMEO 50 ms");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(send(sv[1], b, sizeof b, 0) == -1 && errno == EAGAIN && ms_since(&t0) >= 40,
          "send to a full socket: EAGAIN after the timeout");
    close(sv[0]);
    close(sv[1]);
    // accept waits SO_RCVTIMEO.
    int s = listener("to", 1);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(accept(s, NULL, NULL) == -1 && errno == EAGAIN && ms_since(&t0) >= 40, "accept: EAGAIN after the timeout");
    close(s);
    struct sockaddr_un a;
    path_addr(&a, "to");
    unlink(a.sun_path);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    stream();
    backlog();
    abstract();
    datagrams();
    unconnected_peercred();
    credentials();
    timeouts();
    rmdir(dir);
    printf("%d failed\n", failed);
    return failed != 0;
}
