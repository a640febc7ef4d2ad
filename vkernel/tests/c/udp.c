/* UDP over loopback, as Linux: datagrams with their boundaries and their
 * sender's address, ephemeral ports, connected sockets and the refused
 * port's ECONNREFUSED, drops when a receiver is full, IPv6 and dual stack,
 * and the errors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static struct sockaddr_in v4(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int bound_udp(struct sockaddr_in *a) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    *a = v4(0);
    socklen_t len = sizeof *a;
    if (bind(fd, (struct sockaddr *)a, sizeof *a) != 0 || getsockname(fd, (struct sockaddr *)a, &len) != 0) return -1;
    return fd;
}

static int port_of(int fd) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    return getsockname(fd, (struct sockaddr *)&a, &len) == 0 ? ntohs(a.sin_port) : -1;
}

int main(void) {
    struct sockaddr_in ra;
    int r = bound_udp(&ra);
    CHECK(r >= 0 && ntohs(ra.sin_port) != 0, "bind to 127.0.0.1:0 takes an ephemeral port (%d)", ntohs(ra.sin_port));
    int v = 0;
    socklen_t vl = sizeof v;
    CHECK(getsockopt(r, SOL_SOCKET, SO_TYPE, &v, &vl) == 0 && v == SOCK_DGRAM, "SO_TYPE SOCK_DGRAM");
    CHECK(getsockopt(r, SOL_SOCKET, SO_PROTOCOL, &v, &vl) == 0 && v == IPPROTO_UDP, "SO_PROTOCOL IPPROTO_UDP");
    errno = 0;
    CHECK(getsockopt(r, IPPROTO_TCP, 1 /* TCP_NODELAY */, &v, &vl) == -1 && errno == EOPNOTSUPP, "no TCP options: EOPNOTSUPP");

    /* An unbound sender is bound to an ephemeral port by its first send;
     * the receiver sees it as the source. */
    int w = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    CHECK(port_of(w) == 0, "unbound: port 0");
    CHECK(sendto(w, "hello", 5, 0, (struct sockaddr *)&ra, sizeof ra) == 5, "sendto");
    int wport = port_of(w);
    char buf[70000];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0 && fl == sizeof from && from.sin_family == AF_INET &&
              ntohs(from.sin_port) == wport && wport != 0 && from.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
          "recvfrom: the datagram and its sender 127.0.0.1:%d", wport);

    /* Boundaries, FIONREAD, truncation, MSG_PEEK, an empty datagram. */
    static char big[1000];
    memset(big, 'x', sizeof big);
    sendto(w, big, 1, 0, (struct sockaddr *)&ra, sizeof ra);
    sendto(w, big, 100, 0, (struct sockaddr *)&ra, sizeof ra);
    sendto(w, big, 1000, 0, (struct sockaddr *)&ra, sizeof ra);
    CHECK(sendto(w, "", 0, 0, (struct sockaddr *)&ra, sizeof ra) == 0, "an empty datagram");
    int avail = -1;
    CHECK(ioctl(r, FIONREAD, &avail) == 0 && avail == 1, "FIONREAD: the next datagram's size (%d)", avail);
    CHECK(recv(r, buf, sizeof buf, 0) == 1 && recv(r, buf, sizeof buf, MSG_PEEK) == 100 && recv(r, buf, sizeof buf, 0) == 100,
          "one datagram a receive, MSG_PEEK leaves it");
    struct iovec iov = {buf, 10};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    n = recvmsg(r, &mh, 0);
    CHECK(n == 10 && (mh.msg_flags & MSG_TRUNC), "a short buffer truncates, MSG_TRUNC in msg_flags");
    fl = sizeof from;
    n = recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    CHECK(n == 0 && ntohs(from.sin_port) == wport, "the empty datagram: 0 bytes, with its sender");
    errno = 0;
    CHECK(recv(r, buf, sizeof buf, 0) == -1 && errno == EAGAIN, "nothing left: EAGAIN");
    sendto(w, big, 1000, 0, (struct sockaddr *)&ra, sizeof ra);
    CHECK(recv(r, buf, 10, MSG_TRUNC) == 1000, "recv(MSG_TRUNC): the datagram's full length");

    /* No socket at the port: dropped; an unconnected sender hears nothing. */
    struct sockaddr_in gone;
    int g = bound_udp(&gone);
    close(g);
    CHECK(sendto(w, "x", 1, 0, (struct sockaddr *)&gone, sizeof gone) == 1 &&
              sendto(w, "x", 1, 0, (struct sockaddr *)&ra, sizeof ra) == 1,
          "to a closed port: sent; the next send is fine");
    recv(r, buf, sizeof buf, 0);

    /* A connected socket: send() goes to the peer; its refused port is
     * ECONNREFUSED on the next call. */
    int c = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    errno = 0;
    CHECK(send(c, "x", 1, 0) == -1 && errno == EDESTADDRREQ, "send without an address: EDESTADDRREQ");
    CHECK(connect(c, (struct sockaddr *)&gone, sizeof gone) == 0, "connect to a closed port");
    struct sockaddr_in peer, me;
    socklen_t pl = sizeof peer, ml = sizeof me;
    CHECK(getpeername(c, (struct sockaddr *)&peer, &pl) == 0 && peer.sin_port == gone.sin_port, "getpeername");
    CHECK(getsockname(c, (struct sockaddr *)&me, &ml) == 0 && me.sin_port != 0 && me.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
          "connect binds an ephemeral port on 127.0.0.1");
    CHECK(send(c, "x", 1, 0) == 1, "the first send goes");
    errno = 0;
    CHECK(send(c, "x", 1, 0) == -1 && errno == ECONNREFUSED, "the next is ECONNREFUSED");
    CHECK(send(c, "x", 1, 0) == 1, "then it is reported");
    errno = 0;
    CHECK(recv(c, buf, 1, 0) == -1 && errno == ECONNREFUSED, "a receive reports it too");
    struct sockaddr_in unspec = {.sin_family = AF_UNSPEC};
    CHECK(connect(c, (struct sockaddr *)&unspec, sizeof unspec) == 0, "connect(AF_UNSPEC) dissolves it");
    errno = 0;
    CHECK(getpeername(c, (struct sockaddr *)&peer, &pl) == -1 && errno == ENOTCONN, "getpeername: ENOTCONN");
    CHECK(port_of(c) == 0, "the port connect took is given back");
    struct sockaddr_in fixed = v4(0);
    int f1 = bound_udp(&fixed);
    fixed.sin_port = htons(port_of(f1));
    close(f1);
    int f2 = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(bind(f2, (struct sockaddr *)&fixed, sizeof fixed) == 0 && connect(f2, (struct sockaddr *)&ra, sizeof ra) == 0 &&
              connect(f2, (struct sockaddr *)&unspec, sizeof unspec) == 0 && port_of(f2) == ntohs(fixed.sin_port),
          "a port bind chose stays");
    close(f2);

    /* A socket connected to one peer receives from it alone. */
    struct sockaddr_in r2a;
    int r2 = bound_udp(&r2a);
    int c2 = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(connect(c2, (struct sockaddr *)&r2a, sizeof r2a) == 0, "a sender connects");
    struct sockaddr_in c2a;
    socklen_t c2l = sizeof c2a;
    getsockname(c2, (struct sockaddr *)&c2a, &c2l);
    CHECK(connect(r2, (struct sockaddr *)&c2a, sizeof c2a) == 0, "the receiver connects to it");
    sendto(w, "no", 2, 0, (struct sockaddr *)&r2a, sizeof r2a);
    CHECK(send(c2, "yes", 3, 0) == 3, "its peer sends");
    n = recv(r2, buf, sizeof buf, 0);
    CHECK(n == 3 && memcmp(buf, "yes", 3) == 0, "only the peer's datagram arrives");
    errno = 0;
    CHECK(recv(r2, buf, sizeof buf, 0) == -1 && errno == EAGAIN, "the other was dropped");
    close(r2);
    close(c2);

    /* Sizes, names, shutdown, poll. */
    static char huge[65508];
    errno = 0;
    CHECK(sendto(w, huge, 65508, 0, (struct sockaddr *)&ra, sizeof ra) == -1 && errno == EMSGSIZE, "65508 bytes: EMSGSIZE");
    CHECK(sendto(w, huge, 65507, 0, (struct sockaddr *)&ra, sizeof ra) == 65507 && recv(r, buf, sizeof buf, 0) == 65507, "65507 bytes go");
    struct sockaddr_in zero = v4(0);
    errno = 0;
    CHECK(sendto(w, "x", 1, 0, (struct sockaddr *)&zero, sizeof zero) == -1 && errno == EINVAL, "to port 0: EINVAL");
    int d = socket(AF_INET, SOCK_DGRAM, 0);
    errno = 0;
    CHECK(bind(d, (struct sockaddr *)&ra, sizeof ra) == -1 && errno == EADDRINUSE, "a bound port: EADDRINUSE");
    int t = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(bind(t, (struct sockaddr *)&ra, sizeof ra) == 0, "TCP has a port space of its own");
    close(t);
    close(d);
    int sh = socket(AF_INET, SOCK_DGRAM, 0);
    errno = 0;
    CHECK(shutdown(sh, SHUT_RDWR) == -1 && errno == ENOTCONN, "shutdown of an unconnected socket: ENOTCONN");
    errno = 0;
    CHECK(sendto(sh, "x", 1, 0, (struct sockaddr *)&ra, sizeof ra) == -1 && errno == EPIPE, "but it is shut: EPIPE");
    CHECK(recv(sh, buf, 1, 0) == 0, "and a blocking receive ends");
    close(sh);
    struct pollfd p = {r, POLLIN | POLLOUT, 0};
    CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLOUT, "poll: writable, nothing to read");
    sendto(c, "z", 1, 0, (struct sockaddr *)&ra, sizeof ra);
    CHECK(poll(&p, 1, 0) == 1 && p.revents == (POLLIN | POLLOUT), "poll: readable once a datagram came");
    recv(r, buf, sizeof buf, 0);

    /* A receiver blocked in recv wakes for a write() of a connected
     * socket, as for a sendto. */
    struct sockaddr_in ba;
    int bl = bound_udp(&ba);
    fcntl(bl, F_SETFL, 0);
    pid_t kid = fork();
    if (kid == 0) {
        alarm(5);
        char m[8];
        _exit(recv(bl, m, sizeof m, 0) == 4 && memcmp(m, "wake", 4) == 0 ? 0 : 1);
    }
    usleep(100 * 1000);
    int wc = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(connect(wc, (struct sockaddr *)&ba, sizeof ba) == 0 && write(wc, "wake", 4) == 4, "write() on a connected socket");
    int kst = -1;
    waitpid(kid, &kst, 0);
    CHECK(WIFEXITED(kst) && WEXITSTATUS(kst) == 0, "it wakes the blocked receiver (status %#x)", kst);
    close(wc);
    close(bl);

    /* A full receiver drops; sends never fail or wait. */
    int sent = 0, got = 0;
    for (int i = 0; i < 1000; i++) sent += sendto(c, big, sizeof big, 0, (struct sockaddr *)&ra, sizeof ra) == sizeof big;
    while (recv(r, buf, sizeof buf, 0) == sizeof big) got++;
    CHECK(sent == 1000 && got > 50 && got < 1000, "1000 datagrams sent at a full receiver: %d arrived", got);

    /* IPv6: ::1, and a dual-stack socket receiving IPv4 as v4-mapped. */
    int s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
    socklen_t l6 = sizeof a6;
    CHECK(bind(s6, (struct sockaddr *)&a6, sizeof a6) == 0 && getsockname(s6, (struct sockaddr *)&a6, &l6) == 0, "bind [::]:0");
    struct sockaddr_in to4 = v4(ntohs(a6.sin6_port));
    CHECK(sendto(w, "four", 4, 0, (struct sockaddr *)&to4, sizeof to4) == 4, "IPv4 to the dual-stack port");
    struct sockaddr_in6 f6;
    socklen_t f6l = sizeof f6;
    n = recvfrom(s6, buf, sizeof buf, 0, (struct sockaddr *)&f6, &f6l);
    char text[64] = "";
    inet_ntop(AF_INET6, &f6.sin6_addr, text, sizeof text);
    CHECK(n == 4 && f6l == sizeof f6 && f6.sin6_family == AF_INET6 && strcmp(text, "::ffff:127.0.0.1") == 0 &&
              ntohs(f6.sin6_port) == wport,
          "it arrives from %s", text);
    int u6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT, .sin6_port = a6.sin6_port};
    CHECK(sendto(u6, "six", 3, 0, (struct sockaddr *)&lo6, sizeof lo6) == 3, "sendto [::1]");
    f6l = sizeof f6;
    n = recvfrom(s6, buf, sizeof buf, 0, (struct sockaddr *)&f6, &f6l);
    inet_ntop(AF_INET6, &f6.sin6_addr, text, sizeof text);
    CHECK(n == 3 && strcmp(text, "::1") == 0, "it arrives from %s", text);
    int only = 1;
    int v6o = socket(AF_INET6, SOCK_DGRAM, 0);
    setsockopt(v6o, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only);
    errno = 0;
    CHECK(sendto(v6o, "x", 1, 0, (struct sockaddr *)&to4, sizeof to4) == -1 && errno == ENETUNREACH,
          "IPV6_V6ONLY to an IPv4 address: ENETUNREACH");

    printf("%d failed\n", failed);
    return failed != 0;
}
