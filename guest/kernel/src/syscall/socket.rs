//! Socket system calls over [`crate::fs::unix`]: Unix domain sockets,
//! as pairs (socketpair) or made by `socket` and named (`bind`: a
//! socket file, or Linux's abstract namespace), listening (`listen`,
//! `accept`, `accept4`) and connecting (`connect`); their sends and
//! receives (datagrams to and from names, `SCM_RIGHTS` descriptor
//! passing), shutdown, names and options. TCP over loopback
//! (`AF_INET`, `AF_INET6`) is the same stream machinery with Internet
//! addresses and ports: the only network is this machine. Every other
//! family, and UDP, is refused with a log line.

use alloc::rc::Rc;
use alloc::vec::Vec;

use super::fd::file;
use super::poll::install;
use super::uio::iovecs;
use super::{err, log_refused, Outcome, Outcome::*};
use crate::fs::device::IoError;
use crate::fs::file::OpenFile;
use crate::fs::unix::{
    caller_creds, Addr, Creds, Family, InetAddr, Key, SockType, State, UnixSocket, NO_ID, RCVBUF,
    SCM_MAX_FD, SOCKADDR_IN_LEN, SOCKADDR_UN_LEN, SUN_PATH_OFFSET,
};
use crate::fs::vfs::{Follow, Kind};
use crate::kernel::Kernel;
use crate::mm::uaccess::{self, copy_in, copy_out, read_u64};
use crate::mm::SpaceRef;
use crate::proc::creds;
use crate::proc::signal::{self, SigInfo};
use linux_raw_sys::general::*;
use linux_raw_sys::net::*;
use vkernel_abi::Errno;

/// socket's type flags (the uapi headers spell them as O_ flags).
const SOCK_NONBLOCK: u32 = O_NONBLOCK;
const SOCK_CLOEXEC: u32 = O_CLOEXEC;
/// The first socket type Linux does not know (`EINVAL` from there on).
const SOCK_MAX: u32 = 11;
/// Linux's `net.core.somaxconn`: listen's backlog is capped there.
const SOMAXCONN: u64 = 4096;
/// The protocol levels of socket options, as `u32`s.
const LEVEL_IP: u32 = IPPROTO_IP as u32;
const LEVEL_TCP: u32 = IPPROTO_TCP as u32;
const LEVEL_IPV6: u32 = IPPROTO_IPV6 as u32;
/// `sizeof(struct sockaddr_storage)`: the longest address a call takes.
const SOCKADDR_STORAGE_LEN: u64 = 128;

/// socket(domain, type, protocol): a Unix socket; every other family is
/// refused with a log line.
pub fn sys_socket(
    k: &mut Kernel,
    s: usize,
    domain: u64,
    kind: u64,
    protocol: u64,
) -> Result<i64, Errno> {
    if domain == AF_INET as u64 || domain == AF_INET6 as u64 {
        return inet_socket(k, s, domain, kind, protocol);
    }
    if domain != AF_UNIX as u64 {
        log_refused(
            k,
            s,
            "socket",
            format_args!("family {domain} type {kind:#x} (only AF_UNIX, AF_INET and AF_INET6 are)"),
        );
        return Err(Errno::EAFNOSUPPORT);
    }
    let (t, flags) = sock_type(kind, protocol)?;
    install(
        k,
        s,
        socket_file(UnixSocket::unconnected(t), flags),
        flags & SOCK_CLOEXEC != 0,
    )
}

/// socket(AF_INET or AF_INET6, SOCK_STREAM or SOCK_DGRAM, 0 or the
/// protocol): a TCP or UDP socket over loopback. Raw sockets and other
/// protocols are refused with a log line (`EPROTONOSUPPORT`).
fn inet_socket(
    k: &mut Kernel,
    s: usize,
    domain: u64,
    kind: u64,
    protocol: u64,
) -> Result<i64, Errno> {
    let (t, flags) = type_and_flags(kind)?;
    if t >= SOCK_MAX {
        return Err(Errno::EINVAL);
    }
    let tcp = t == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP as u64);
    let udp = t == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP as u64);
    if !tcp && !udp {
        log_refused(
            k,
            s,
            "socket",
            format_args!(
                "family {domain} type {t} protocol {protocol} (only TCP and UDP over loopback are)"
            ),
        );
        return Err(Errno::EPROTONOSUPPORT);
    }
    let family = if domain == AF_INET6 as u64 {
        Family::Inet6
    } else {
        Family::Inet
    };
    let sock = if udp {
        UnixSocket::unconnected_udp(family, &k.unix_names)
    } else {
        UnixSocket::unconnected_in(family)
    };
    install(k, s, socket_file(sock, flags), flags & SOCK_CLOEXEC != 0)
}

/// An open file of `sock`, non-blocking with `SOCK_NONBLOCK` in `flags`.
fn socket_file(sock: Rc<UnixSocket>, flags: u32) -> Rc<OpenFile> {
    let name = if sock.udp() {
        "socket:[udp]"
    } else if sock.inet() {
        "socket:[tcp]"
    } else {
        "socket:[unix]"
    };
    OpenFile::anon(sock, O_RDWR | (flags & O_NONBLOCK), name)
}

/// Reads the `sockaddr_in` or `sockaddr_in6` at `addr` for a TCP socket
/// of `family`, as Linux's inet_bind and tcp_v4_connect (and their IPv6
/// forms) check it: `EINVAL` when shorter than the family's address,
/// `EAFNOSUPPORT` for another family (`Ok(None)`: AF_UNSPEC, which bind
/// takes as the unspecified IPv4 address and connect as a disconnect).
fn read_inet(
    space: &SpaceRef,
    family: Family,
    addr: u64,
    len: u64,
) -> Result<Option<InetAddr>, Errno> {
    let len = len as u32 as i32;
    if len < 0 || len as u64 > SOCKADDR_STORAGE_LEN {
        return Err(Errno::EINVAL);
    }
    let v6 = family == Family::Inet6;
    // IPv6 takes the RFC 2133 length (without the scope id) too.
    let need = if v6 { 24 } else { SOCKADDR_IN_LEN };
    if (len as usize) < 2 {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; SOCKADDR_STORAGE_LEN as usize];
    copy_in(space, addr, &mut b[..len as usize])?;
    let fam = u16::from_le_bytes([b[0], b[1]]);
    if fam == AF_UNSPEC as u16 {
        return Ok(None);
    }
    if (len as usize) < need {
        return Err(Errno::EINVAL);
    }
    let want = if v6 { AF_INET6 } else { AF_INET } as u16;
    if fam != want {
        return Err(Errno::EAFNOSUPPORT);
    }
    let port = u16::from_be_bytes([b[2], b[3]]);
    let mut ip = [0u8; 16];
    if v6 {
        ip.copy_from_slice(&b[8..24]);
    } else {
        ip[..4].copy_from_slice(&b[4..8]);
    }
    Ok(Some(InetAddr { v6, ip, port }))
}

/// Binds TCP or UDP socket `sock` at `a` (port 0: an ephemeral one): an IPv4
/// socket in the IPv4 port space; an IPv6 one in the IPv6 space, in both
/// for the unspecified address unless IPV6_V6ONLY, in the IPv4 one for a
/// v4-mapped address.
fn bind_inet(k: &Kernel, sock: &Rc<UnixSocket>, a: InetAddr) -> Result<InetAddr, Errno> {
    let is_v6_sock = sock.family == Family::Inet6;
    let mapped = a.v6 && a.v4().is_some();
    if mapped && sock.v6only() {
        return Err(Errno::EINVAL);
    }
    let (space_v6, dual) = if !is_v6_sock || mapped {
        (false, false)
    } else {
        (true, a.is_any() && !sock.v6only())
    };
    let port = if a.port == 0 {
        k.unix_names.autobind_port(sock, space_v6, dual)?
    } else {
        k.unix_names
            .bind_port(sock, a.port, space_v6, dual, sock.udp())?;
        a.port
    };
    let bound = InetAddr { port, ..a };
    sock.set_name(Addr::Inet(bound))?;
    sock.set_bind_locks(!a.is_any(), a.port != 0);
    Ok(bound)
}

/// The address a TCP socket of `family` reports: an IPv4 one v4-mapped
/// for an IPv6 socket; a connected socket's unspecified local address
/// as the loopback address it is reached at.
fn shown(sock: &UnixSocket, name: Addr, local: bool) -> Addr {
    let Addr::Inet(mut a) = name else {
        return name;
    };
    if local && a.is_any() && sock.state() == State::Connected {
        let v4 = sock
            .peer_name()
            .ok()
            .is_some_and(|p| matches!(p, Addr::Inet(p) if p.v4().is_some()));
        a = InetAddr::loopback(!v4, a.port);
    }
    if sock.family == Family::Inet6 {
        a = a.to_v6();
    }
    Addr::Inet(a)
}

/// What a `sockaddr_un` from the process names.
enum SockAddr {
    /// The family alone (`len` 2: bind's autobind), or a family other
    /// than AF_UNIX.
    Family(u16),
    /// A name, with the family AF_UNIX.
    Name(Addr),
}

/// Reads the `len`-byte address at `addr`, as Linux's
/// move_addr_to_kernel and unix_validate_addr take it: a path ends at its
/// first NUL (unix_mkname_bsd), an abstract name (first byte 0) is every
/// byte after it.
fn read_sockaddr(space: &SpaceRef, addr: u64, len: u64) -> Result<SockAddr, Errno> {
    // The length is an int: its register's upper half is not looked at.
    let len = len as u32 as i32;
    if len < 0 || len as u64 > SOCKADDR_STORAGE_LEN {
        return Err(Errno::EINVAL);
    }
    let len = len as usize;
    if len < SUN_PATH_OFFSET {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; SOCKADDR_STORAGE_LEN as usize];
    copy_in(space, addr, &mut b[..len])?;
    let family = u16::from_le_bytes([b[0], b[1]]);
    // The family alone, or another family: the callers decide (bind
    // autobinds, a datagram connect to AF_UNSPEC disconnects, the rest
    // is EINVAL).
    if len == SUN_PATH_OFFSET || family != AF_UNIX as u16 {
        return Ok(SockAddr::Family(family));
    }
    if len > SOCKADDR_UN_LEN {
        return Err(Errno::EINVAL);
    }
    let path = &b[SUN_PATH_OFFSET..len];
    Ok(SockAddr::Name(if path[0] == 0 {
        Addr::Abstract(path[1..].to_vec())
    } else {
        let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
        Addr::Path(path[..end].to_vec())
    }))
}

/// The open socket bound at `name`: a path's socket file (`ENOENT` and
/// the other lookup errors; `ECONNREFUSED` for a file that is not a
/// socket or one no open socket is bound at), or an abstract name
/// (`ECONNREFUSED` if unbound).
fn find_bound(k: &Kernel, s: usize, name: &Addr) -> Result<Rc<UnixSocket>, Errno> {
    let key = match name {
        // (A Unix socket's name never is an Internet one.)
        Addr::Unnamed | Addr::Inet(_) => return Err(Errno::EINVAL),
        Addr::Abstract(n) => Key::Abstract(n.clone()),
        Addr::Path(p) => {
            let node = k.vfs.resolve(&k.cwd(s), p, Follow::Yes)?;
            let m = node.meta();
            if m.kind != Kind::Socket {
                return Err(Errno::ECONNREFUSED);
            }
            Key::Inode(m.dev, m.ino)
        }
    };
    k.unix_names.find(&key).ok_or(Errno::ECONNREFUSED)
}

/// The socket behind `fd` as the `Rc` the names and connections hold.
fn socket_rc(k: &Kernel, s: usize, fd: u64) -> Result<(Rc<OpenFile>, Rc<UnixSocket>), Errno> {
    let f = socket(k, s, fd)?;
    let rc = unix(&f)?.rc().ok_or(Errno::ENOTSOCK)?;
    Ok((f, rc))
}

/// bind(fd, addr, len): a path becomes a socket file (`EADDRINUSE` if
/// anything is there), an abstract name is taken (`EADDRINUSE` while
/// another open socket has it), the family alone picks a free abstract
/// name (autobind); a socket named already is `EINVAL`.
pub fn sys_bind(k: &mut Kernel, s: usize, fd: u64, addr: u64, len: u64) -> Result<i64, Errno> {
    let (_, sock) = socket_rc(k, s, fd)?;
    if sock.inet() {
        // AF_UNSPEC: the unspecified IPv4 address, for an IPv4 socket
        // (Linux's compatibility rule; its port is ignored).
        let a = match read_inet(&k.space(s), sock.family, addr, len)? {
            Some(a) => a,
            None if sock.family == Family::Inet => InetAddr::default(),
            None => return Err(Errno::EAFNOSUPPORT),
        };
        if !a.is_local() {
            return Err(Errno::EADDRNOTAVAIL);
        }
        if sock.name() != Addr::Unnamed {
            return Err(Errno::EINVAL);
        }
        bind_inet(k, &sock, a)?;
        return Ok(0);
    }
    let name = match read_sockaddr(&k.space(s), addr, len)? {
        SockAddr::Family(f) if f == AF_UNIX as u16 => {
            if sock.name() != Addr::Unnamed {
                return Err(Errno::EINVAL);
            }
            let n = k.unix_names.autobind(&sock)?;
            sock.set_name(Addr::Abstract(n))?;
            return Ok(0);
        }
        SockAddr::Family(_) => return Err(Errno::EINVAL),
        SockAddr::Name(n) => n,
    };
    match &name {
        Addr::Abstract(n) => {
            if sock.name() != Addr::Unnamed {
                return Err(Errno::EINVAL);
            }
            k.unix_names.insert(Key::Abstract(n.clone()), &sock)?
        }
        Addr::Path(p) => {
            // As Linux's unix_bind_bsd: the file first (so a path that
            // exists is EADDRINUSE even for a socket named already), then
            // the socket's own check, which takes the file away again.
            let start = k.cwd(s);
            let (dir, last) = k.vfs.resolve_parent(&start, p)?;
            let last = last.ok_or(Errno::EADDRINUSE)?;
            let umask = k.procs.procs[s].umask;
            let node = dir
                .create(last, Kind::Socket, 0o777 & !umask, 0)
                .map_err(|e| {
                    if e == Errno::EEXIST {
                        Errno::EADDRINUSE
                    } else {
                        e
                    }
                })?;
            if sock.name() != Addr::Unnamed {
                let _ = dir.unlink(last, false);
                return Err(Errno::EINVAL);
            }
            let m = node.meta();
            k.unix_names.insert(Key::Inode(m.dev, m.ino), &sock)?;
        }
        Addr::Unnamed | Addr::Inet(_) => return Err(Errno::EINVAL),
    }
    sock.set_name(name)?;
    Ok(0)
}

/// listen(fd, backlog): a negative or larger backlog is `SOMAXCONN`.
pub fn sys_listen(k: &mut Kernel, s: usize, fd: u64, backlog: u64) -> Result<i64, Errno> {
    let (_, sock) = socket_rc(k, s, fd)?;
    // An unbound TCP socket listens on an ephemeral port of every
    // address (Linux's inet_autobind).
    if sock.tcp() && sock.name() == Addr::Unnamed && sock.state() == State::Unconnected {
        let any = InetAddr {
            v6: sock.family == Family::Inet6,
            ..InetAddr::default()
        };
        bind_inet(k, &sock, any)?;
    }
    let b = backlog as i32;
    let b = if b < 0 || b as u64 > SOMAXCONN {
        SOMAXCONN
    } else {
        b as u64
    };
    sock.listen(b as usize, peer_cred_of(k, s))?;
    Ok(0)
}

/// connect(fd, addr, len): a stream or seqpacket socket connects to the
/// listener bound at the name (waiting while its backlog is full, or
/// `EAGAIN` non-blocking); a datagram socket takes it as its peer
/// (`AF_UNSPEC`: none again).
pub fn sys_connect(k: &mut Kernel, s: usize, fd: u64, addr: u64, len: u64) -> Outcome {
    let r = (|| {
        let (f, sock) = socket_rc(k, s, fd)?;
        let target = if sock.inet() {
            SockAddr::Family(AF_INET as u16)
        } else {
            read_sockaddr(&k.space(s), addr, len)?
        };
        Ok::<_, Errno>((f, sock, target))
    })();
    let (f, sock, target) = match r {
        Ok(v) => v,
        Err(e) => return Ret(err(e)),
    };
    if sock.udp() {
        let r = read_inet(&k.space(s), sock.family, addr, len).and_then(|to| sock.connect_udp(to));
        return Ret(r.map_or_else(err, |()| 0));
    }
    if sock.inet() {
        return connect_inet(k, s, &f, &sock, addr, len);
    }
    if sock.kind == SockType::Dgram {
        let r = match target {
            SockAddr::Family(f) if f == AF_UNSPEC as u16 => sock.connect_dgram(None),
            SockAddr::Family(_) => Err(Errno::EINVAL),
            SockAddr::Name(n) => find_bound(k, s, &n).and_then(|t| {
                autobind_for_passcred(k, &sock)?;
                sock.connect_dgram(Some(&t))
            }),
        };
        return Ret(r.map_or_else(err, |()| 0));
    }
    let name = match target {
        SockAddr::Name(n) => n,
        SockAddr::Family(_) => return Ret(err(Errno::EINVAL)),
    };
    let listener = match find_bound(k, s, &name) {
        Ok(l) => l,
        Err(e) => return Ret(err(e)),
    };
    if let Err(e) = autobind_for_passcred(k, &sock) {
        return Ret(err(e));
    }
    match sock.connect_to(&listener, peer_cred_of(k, s)) {
        Ok(()) => {
            k.procs.wakeup(listener.chan());
            Ret(0)
        }
        Err(IoError::WouldBlock(_)) if f.nonblocking() => Ret(err(Errno::EAGAIN)),
        Err(IoError::WouldBlock(chan)) => block(k, s, chan, sock.sndtimeo_ns.get()),
        Err(IoError::Fail(e)) => Ret(err(e)),
        Err(IoError::BrokenPipe) => Ret(err(Errno::ECONNREFUSED)),
    }
}

/// connect of a TCP socket: to the listener on the loopback port named
/// (`ECONNREFUSED` if none listens there, `ENETUNREACH` for an address
/// that is not this machine's), from an ephemeral port when unbound.
/// Over loopback the connection is made at once; a non-blocking socket
/// still says `EINPROGRESS`, as Linux's TCP does, and polls writable.
fn connect_inet(
    k: &mut Kernel,
    s: usize,
    f: &OpenFile,
    sock: &Rc<UnixSocket>,
    addr: u64,
    len: u64,
) -> Outcome {
    let r = (|| {
        let target = match read_inet(&k.space(s), sock.family, addr, len)? {
            Some(t) => t,
            // AF_UNSPEC: disconnect. An unconnected socket has nothing
            // to undo; a connection is not taken apart here.
            None if sock.state() == State::Unconnected => return Ok(None),
            None => {
                log_refused(
                    k,
                    s,
                    "connect",
                    format_args!("AF_UNSPEC on a connected TCP socket"),
                );
                return Err(Errno::EOPNOTSUPP);
            }
        };
        match sock.state() {
            State::Connected | State::Listening => return Err(Errno::EISCONN),
            State::Unconnected => {}
        }
        if !target.is_local() {
            return Err(Errno::ENETUNREACH);
        }
        let to_v4 = target.v4().is_some();
        if to_v4 && sock.family == Family::Inet6 && sock.v6only() {
            return Err(Errno::ENETUNREACH);
        }
        let listener = k
            .unix_names
            .find(&Key::Port(target.port, !to_v4))
            .ok_or(Errno::ECONNREFUSED)?;
        if sock.name() == Addr::Unnamed {
            let me = InetAddr::loopback(!to_v4, 0);
            bind_inet(k, sock, me)?;
        } else if let Addr::Inet(a) = sock.name() {
            // Bound to the unspecified address: it is the loopback one now.
            if a.is_any() {
                sock.set_local_name(Addr::Inet(InetAddr::loopback(!to_v4, a.port)));
            }
        }
        Ok(Some(listener))
    })();
    let listener = match r {
        Ok(Some(l)) => l,
        Ok(None) => return Ret(0),
        Err(e) => return Ret(err(e)),
    };
    match sock.connect_to(&listener, peer_cred_of(k, s)) {
        Ok(()) => {
            k.procs.wakeup(listener.chan());
            if f.nonblocking() {
                Ret(err(Errno::EINPROGRESS))
            } else {
                Ret(0)
            }
        }
        Err(IoError::WouldBlock(_)) if f.nonblocking() => Ret(err(Errno::EAGAIN)),
        Err(IoError::WouldBlock(chan)) => block(k, s, chan, sock.sndtimeo_ns.get()),
        Err(IoError::Fail(e)) => Ret(err(e)),
        Err(IoError::BrokenPipe) => Ret(err(Errno::ECONNREFUSED)),
    }
}

/// Writes the address `name` to the process's `addr` and `*addrlen`, as
/// Linux's move_addr_to_user: as much as `*addrlen` holds, and the full
/// length (`EINVAL` for a negative `*addrlen`).
fn put_sockaddr(space: &SpaceRef, name: &Addr, addr: u64, addrlen: u64) -> Result<(), Errno> {
    let mut lb = [0u8; 4];
    copy_in(space, addrlen, &mut lb)?;
    let room = i32::from_le_bytes(lb);
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let b = name.sockaddr();
    let n = (room as usize).min(b.len());
    if n > 0 {
        copy_out(space, addr, &b[..n])?;
    }
    copy_out(space, addrlen, &(b.len() as u32).to_le_bytes())
}

/// accept4(fd, addr, addrlen, flags): the next connection queued on the
/// listener (waiting for one, or `EAGAIN` non-blocking), as a new
/// descriptor; `addr` gets the connecting socket's name.
pub fn sys_accept4(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [fd, addr, addrlen, flags, ..] = a;
    let flags = flags as u32;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Ret(err(Errno::EINVAL));
    }
    let (f, sock) = match socket_rc(k, s, fd) {
        Ok(v) => v,
        Err(e) => return Ret(err(e)),
    };
    let conn = match sock.accept() {
        Ok(c) => c,
        Err(IoError::WouldBlock(_)) if f.nonblocking() => return Ret(err(Errno::EAGAIN)),
        Err(IoError::WouldBlock(chan)) => return block(k, s, chan, sock.rcvtimeo_ns.get()),
        Err(IoError::Fail(e)) => return Ret(err(e)),
        Err(IoError::BrokenPipe) => return Ret(err(Errno::EINVAL)),
    };
    // A connect waiting for room in the backlog looks again.
    k.procs.wakeup(sock.chan());
    let peer = shown(&conn, conn.peer_name().unwrap_or_default(), false);
    let file = socket_file(conn, flags);
    // As Linux: the address first; if it cannot be written the
    // connection is closed and no descriptor made.
    if addr != 0 {
        if let Err(e) = put_sockaddr(&k.space(s), &peer, addr, addrlen) {
            return Ret(err(e));
        }
    }
    let newfd = match install(k, s, file, flags & SOCK_CLOEXEC != 0) {
        Ok(fd) => fd,
        Err(e) => return Ret(err(e)),
    };
    Ret(newfd)
}

/// The type and the flags (`SOCK_NONBLOCK`, `SOCK_CLOEXEC`; others
/// `EINVAL`) of a `type` argument.
fn type_and_flags(kind: u64) -> Result<(u32, u32), Errno> {
    let flags = (kind as u32) & !0xf;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 || kind >> 32 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((kind as u32 & 0xf, flags))
}

/// The type and flags of socketpair's `type` argument, as Linux checks
/// them.
fn sock_type(kind: u64, protocol: u64) -> Result<(SockType, u32), Errno> {
    let (t, flags) = type_and_flags(kind)?;
    let t = match t {
        x if x == SOCK_STREAM => SockType::Stream,
        // SOCK_RAW is a datagram socket to af_unix.
        x if x == SOCK_DGRAM || x == SOCK_RAW => SockType::Dgram,
        x if x == SOCK_SEQPACKET => SockType::Seqpacket,
        x if x >= SOCK_MAX => return Err(Errno::EINVAL),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    if protocol != 0 && protocol != AF_UNIX as u64 {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok((t, flags))
}

/// socketpair(domain, type, protocol, sv): two connected Unix sockets.
pub fn sys_socketpair(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    let [domain, kind, protocol, sv, ..] = a;
    if domain != AF_UNIX as u64 {
        log_refused(k, s, "socketpair", format_args!("family {domain}"));
        return Err(Errno::EOPNOTSUPP);
    }
    let (t, flags) = sock_type(kind, protocol)?;
    let (x, y) = UnixSocket::pair(t, peer_cred_of(k, s));
    let cloexec = flags & SOCK_CLOEXEC != 0;
    let open = |d: Rc<UnixSocket>| socket_file(d, flags);
    let fx = install(k, s, open(x), cloexec)?;
    let fy = match install(k, s, open(y), cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = k.files(s).borrow_mut().close(fx as i32);
            return Err(e);
        }
    };
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&(fx as i32).to_le_bytes());
    b[4..].copy_from_slice(&(fy as i32).to_le_bytes());
    if let Err(e) = copy_out(&k.space(s), sv, &b) {
        let table = k.files(s);
        let mut files = table.borrow_mut();
        let _ = files.close(fx as i32);
        let _ = files.close(fy as i32);
        return Err(e);
    }
    Ok(0)
}

/// The socket behind `fd` (`ENOTSOCK` for another kind of file).
fn socket(k: &Kernel, s: usize, fd: u64) -> Result<Rc<OpenFile>, Errno> {
    let f = file(k, s, fd)?;
    if f.device().and_then(|d| d.unix_socket()).is_none() {
        return Err(Errno::ENOTSOCK);
    }
    Ok(f)
}

fn unix(f: &OpenFile) -> Result<&UnixSocket, Errno> {
    f.device()
        .and_then(|d| d.unix_socket())
        .ok_or(Errno::ENOTSOCK)
}

/// Reads the process's bytes at the iovecs `iov` into `buf`, in turn.
fn gather(space: &SpaceRef, iov: &[(u64, u64)], buf: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0;
    for &(base, len) in iov {
        if done == buf.len() {
            break;
        }
        let n = (len as usize).min(buf.len() - done);
        copy_in(space, base, &mut buf[done..done + n])?;
        done += n;
    }
    Ok(done)
}

/// Writes `pieces` to the process's iovecs, from byte `at` of them on.
fn scatter(
    space: &SpaceRef,
    iov: &[(u64, u64)],
    at: usize,
    pieces: &[&[u8]],
) -> Result<usize, Errno> {
    let mut done = 0;
    for piece in pieces {
        let mut rest: &[u8] = piece;
        // Find the iovec holding byte `at + done`, then fill on from it.
        let mut skip = at + done;
        for &(base, len) in iov {
            let len = len as usize;
            if skip >= len {
                skip -= len;
                continue;
            }
            let n = (len - skip).min(rest.len());
            copy_out(space, base.wrapping_add(skip as u64), &rest[..n])?;
            done += n;
            rest = &rest[n..];
            skip = 0;
            if rest.is_empty() {
                break;
            }
        }
        if !rest.is_empty() {
            break;
        }
    }
    Ok(done)
}

/// What a message's control data passes: open files (`SCM_RIGHTS`) and
/// the credentials it claims (`SCM_CREDENTIALS`), as Linux's __scm_send
/// checks them.
struct Control {
    files: Vec<Rc<OpenFile>>,
    creds: Option<Creds>,
}

fn control_data(k: &Kernel, s: usize, control: u64, len: u64) -> Result<Control, Errno> {
    let mut files = Vec::new();
    let mut creds = None;
    if control == 0 || len == 0 {
        return Ok(Control { files, creds });
    }
    let len = usize::try_from(len).map_err(|_| Errno::EINVAL)?;
    if len > 64 * 1024 {
        return Err(Errno::ENOBUFS);
    }
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    buf.resize(len, 0);
    copy_in(&k.space(s), control, &mut buf)?;
    let mut off = 0;
    while off + 16 <= len {
        let word = |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        let cmsg_len =
            u64::from_le_bytes(buf[off..off + 8].try_into().map_err(|_| Errno::EINVAL)?) as usize;
        if cmsg_len < 16 || cmsg_len > len - off {
            return Err(Errno::EINVAL);
        }
        let (level, kind) = (word(off + 8), word(off + 12));
        if level != SOL_SOCKET {
            return Err(Errno::EINVAL);
        }
        match kind {
            SCM_RIGHTS => {
                let n = (cmsg_len - 16) / 4;
                if files.len() + n > SCM_MAX_FD {
                    return Err(Errno::EINVAL);
                }
                for i in 0..n {
                    let fd = word(off + 16 + 4 * i) as i32;
                    files.push(file(k, s, fd as u32 as u64)?);
                }
            }
            // The sender's credentials (scm_check_creds): its own pid
            // and ids (real, effective or saved), any of them with the
            // capabilities (CAP_SYS_ADMIN for another process's pid,
            // which must exist: ESRCH otherwise; CAP_SETUID, CAP_SETGID).
            SCM_CREDENTIALS => {
                if cmsg_len != 16 + 12 {
                    return Err(Errno::EINVAL);
                }
                let c = [word(off + 16), word(off + 20), word(off + 24)];
                let me = &k.procs.procs[s];
                let id = &me.creds;
                let admin = id.capable(creds::CAP_SYS_ADMIN);
                let pid_ok = c[0] == me.tgid || admin;
                let uid_ok =
                    [id.ruid, id.euid, id.suid].contains(&c[1]) || id.capable(creds::CAP_SETUID);
                let gid_ok =
                    [id.rgid, id.egid, id.sgid].contains(&c[2]) || id.capable(creds::CAP_SETGID);
                if !(pid_ok && uid_ok && gid_ok) {
                    return Err(Errno::EPERM);
                }
                if k.procs.find(c[0]).is_none() {
                    return Err(Errno::ESRCH);
                }
                creds = Some(c);
            }
            _ => return Err(Errno::EINVAL),
        }
        off += cmsg_len.next_multiple_of(8);
    }
    Ok(Control { files, creds })
}

/// A send that could not go on, as Linux reports it.
fn send_stalled(k: &mut Kernel, s: usize, f: &OpenFile, e: IoError, flags: u32) -> Outcome {
    match e {
        IoError::Fail(e) => Ret(err(e)),
        IoError::WouldBlock(_) if f.nonblocking() || flags & MSG_DONTWAIT != 0 => {
            Ret(err(Errno::EAGAIN))
        }
        IoError::WouldBlock(chan) => {
            let timeout = unix(f).map_or(0, |u| u.sndtimeo_ns.get());
            block(k, s, chan, timeout)
        }
        IoError::BrokenPipe => {
            if flags & MSG_NOSIGNAL == 0 {
                let pid = k.procs.procs[s].tgid;
                let _ = k.procs.send(
                    s,
                    SigInfo::from_process(signal::SIGPIPE, signal::SI_USER, pid),
                );
            }
            Ret(err(Errno::EPIPE))
        }
    }
}

/// A blocking socket call waits on `chan`; with a timeout (SO_RCVTIMEO,
/// SO_SNDTIMEO) it gives up with `EAGAIN` once that has passed.
fn block(k: &mut Kernel, s: usize, chan: crate::chan::Chan, timeout_ns: u64) -> Outcome {
    match k.procs.sleep_timed(s, chan, timeout_ns, err(Errno::EAGAIN)) {
        Some(v) => Ret(v),
        None => NoReturn,
    }
}

/// Linux autobinds a socket with SO_PASSCRED that connects or sends
/// unnamed, so that its peer can name it.
fn autobind_for_passcred(k: &Kernel, sock: &Rc<UnixSocket>) -> Result<(), Errno> {
    if sock.passcred.get() && sock.name() == Addr::Unnamed {
        let n = k.unix_names.autobind(sock)?;
        sock.set_name(Addr::Abstract(n))?;
    }
    Ok(())
}

fn wake_both(k: &mut Kernel, f: &OpenFile) {
    if let Some(chans) = f.device().and_then(|d| d.wake_on_close()) {
        for c in chans {
            k.procs.wakeup(c);
        }
    }
}

/// sendto/sendmsg: `iov` from the process, with `files`, to the peer or
/// (`to`: an address of `to_len` bytes) to the socket bound there.
#[allow(clippy::too_many_arguments)]
fn send(
    k: &mut Kernel,
    s: usize,
    fd: u64,
    iov: &[(u64, u64)],
    control: Control,
    flags: u32,
    to: u64,
    to_len: u64,
) -> Outcome {
    let (f, sock) = match socket_rc(k, s, fd) {
        Ok(v) => v,
        Err(e) => return Ret(err(e)),
    };
    if flags & MSG_OOB != 0 {
        return Ret(err(Errno::EOPNOTSUPP));
    }
    // TCP and UDP carry no descriptors or credentials.
    if sock.inet() && (!control.files.is_empty() || control.creds.is_some()) {
        return Ret(err(Errno::EINVAL));
    }
    if sock.udp() {
        return send_udp(k, s, &f, &sock, iov, to, to_len);
    }
    // Linux looks at the address only with a nonzero length (TCP not at
    // all).
    let target = if to != 0 && to_len as u32 != 0 && !sock.inet() {
        if sock.kind != SockType::Dgram {
            return Ret(err(if sock.state() == State::Connected {
                Errno::EISCONN
            } else {
                Errno::EOPNOTSUPP
            }));
        }
        let found = read_sockaddr(&k.space(s), to, to_len).and_then(|a| match a {
            SockAddr::Name(n) => find_bound(k, s, &n),
            SockAddr::Family(_) => Err(Errno::EINVAL),
        });
        match found {
            Ok(t) => Some(t),
            Err(e) => return Ret(err(e)),
        }
    } else {
        None
    };
    if sock.kind == SockType::Dgram {
        if let Err(e) = autobind_for_passcred(k, &sock) {
            return Ret(err(e));
        }
    }
    let creds = control.creds.unwrap_or_else(caller_creds);
    let total: u64 = iov.iter().map(|&(_, l)| l).sum();
    let total = total.min(i32::MAX as u64) as usize;
    let space = k.space(s);
    let r = sock.send(
        target.as_ref(),
        total,
        &mut |b| match b.first_mut() {
            Some(buf) => gather(&space, iov, buf),
            None => Ok(0),
        },
        control.files,
        creds,
    );
    match r {
        Ok(n) => {
            wake_both(k, &f);
            if let Some(t) = target {
                k.procs.wakeup(t.chan());
            }
            Ret(n as i64)
        }
        Err(e) => send_stalled(k, s, &f, e, flags),
    }
}

/// A UDP send: to the address given (read only with a nonzero length,
/// as Linux's), else to the connected peer; never waits.
fn send_udp(
    k: &mut Kernel,
    s: usize,
    f: &OpenFile,
    sock: &UnixSocket,
    iov: &[(u64, u64)],
    to: u64,
    to_len: u64,
) -> Outcome {
    let space = k.space(s);
    let dest = if to != 0 && to_len as u32 != 0 {
        match read_udp_dest(&space, sock, to, to_len) {
            Ok(d) => d,
            Err(e) => return Ret(err(e)),
        }
    } else {
        None
    };
    let total: u64 = iov.iter().map(|&(_, l)| l).sum();
    let total = total.min(i32::MAX as u64) as usize;
    let r = sock.send_datagram(dest, total, &mut |b| match b.first_mut() {
        Some(buf) => gather(&space, iov, buf),
        None => Ok(0),
    });
    drop(space);
    match r {
        Ok(n) => {
            // The receiver too: the socket names it (wake_on_close).
            wake_both(k, f);
            Ret(n as i64)
        }
        Err(IoError::BrokenPipe) => Ret(err(Errno::EPIPE)),
        Err(IoError::Fail(e)) => Ret(err(e)),
        Err(IoError::WouldBlock(_)) => Ret(err(Errno::EAGAIN)),
    }
}

/// A UDP destination as Linux's udp_sendmsg and udpv6_sendmsg read it:
/// an IPv6 socket takes a `sockaddr_in` too (unless IPV6_V6ONLY);
/// `AF_UNSPEC` on an IPv4 socket is no address.
fn read_udp_dest(
    space: &SpaceRef,
    sock: &UnixSocket,
    to: u64,
    len: u64,
) -> Result<Option<InetAddr>, Errno> {
    let mut fam = [0u8; 2];
    if (len as u32 as i32) >= 2 {
        copy_in(space, to, &mut fam)?;
    }
    let family = if sock.family == Family::Inet6 && u16::from_le_bytes(fam) == AF_INET as u16 {
        if sock.v6only() {
            return Err(Errno::ENETUNREACH);
        }
        Family::Inet
    } else {
        sock.family
    };
    match read_inet(space, family, to, len)? {
        Some(a) => Ok(Some(a)),
        None if sock.family == Family::Inet => Ok(None),
        None => Err(Errno::EAFNOSUPPORT),
    }
}

/// What recvfrom/recvmsg took.
struct Got {
    moved: usize,
    full: usize,
    files: Vec<Rc<OpenFile>>,
    from: Addr,
    creds: Creds,
    /// The receiver has SO_PASSCRED.
    passcred: bool,
}

fn receive(
    k: &mut Kernel,
    s: usize,
    fd: u64,
    iov: &[(u64, u64)],
    flags: u32,
) -> Result<Got, Outcome> {
    let f = socket(k, s, fd).map_err(|e| Ret(err(e)))?;
    let sock = unix(&f).map_err(|e| Ret(err(e)))?;
    if flags & MSG_OOB != 0 {
        return Err(Ret(err(Errno::EOPNOTSUPP)));
    }
    if flags & MSG_WAITALL != 0 && sock.kind == SockType::Stream {
        log_refused(
            k,
            s,
            "recv",
            format_args!("MSG_WAITALL (returns what is there)"),
        );
    }
    let total: u64 = iov.iter().map(|&(_, l)| l).sum();
    let total = total.min(i32::MAX as u64) as usize;
    let space = k.space(s);
    let mut at = 0;
    let r = sock.receive(
        total,
        &mut |pieces| {
            let n = scatter(&space, iov, at, pieces)?;
            at += n;
            Ok(n)
        },
        flags & MSG_PEEK != 0,
    );
    match r {
        Ok(r) => {
            wake_both(k, &f);
            Ok(Got {
                moved: r.moved,
                full: r.full,
                files: r.files,
                // TCP gives no sender's address (a length of 0).
                from: if sock.tcp() { Addr::Unnamed } else { r.from },
                creds: r.creds,
                passcred: sock.passcred.get(),
            })
        }
        Err(IoError::WouldBlock(_)) if f.nonblocking() || flags & MSG_DONTWAIT != 0 => {
            Err(Ret(err(Errno::EAGAIN)))
        }
        Err(IoError::WouldBlock(chan)) => Err(block(k, s, chan, sock.rcvtimeo_ns.get())),
        Err(IoError::Fail(e)) => Err(Ret(err(e))),
        Err(IoError::BrokenPipe) => Err(Ret(err(Errno::EPIPE))),
    }
}

/// sendto(fd, buf, len, flags, addr, addrlen).
pub fn sys_sendto(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [fd, buf, len, flags, addr, addrlen] = a;
    if !uaccess::user_range(buf, len) {
        return Ret(err(Errno::EFAULT));
    }
    send(
        k,
        s,
        fd,
        &[(buf, len)],
        Control {
            files: Vec::new(),
            creds: None,
        },
        flags as u32,
        addr,
        addrlen,
    )
}

/// recvfrom(fd, buf, len, flags, addr, addrlen): `addr` gets the
/// sender's name (`*addrlen` 0 for an unnamed one, as Linux's
/// unix_copy_addr leaves it).
pub fn sys_recvfrom(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [fd, buf, len, flags, addr, addrlen] = a;
    if !uaccess::user_range(buf, len) {
        return Ret(err(Errno::EFAULT));
    }
    let got = match receive(k, s, fd, &[(buf, len)], flags as u32) {
        Ok(g) => g,
        Err(o) => return o,
    };
    if addr != 0 && addrlen != 0 {
        let r = if got.from == Addr::Unnamed {
            copy_out(&k.space(s), addrlen, &0u32.to_le_bytes())
        } else {
            put_sockaddr(&k.space(s), &got.from, addr, addrlen)
        };
        if let Err(e) = r {
            return Ret(err(e));
        }
    }
    let truncated_len = flags as u32 & MSG_TRUNC != 0;
    Ret(if truncated_len { got.full } else { got.moved } as i64)
}

/// The fields of a `struct msghdr` sendmsg and recvmsg use.
struct MsgHdr {
    name: u64,
    namelen: u64,
    iov: Vec<(u64, u64)>,
    control: u64,
    controllen: u64,
}

fn read_msghdr(space: &SpaceRef, msg: u64) -> Result<MsgHdr, Errno> {
    let w = |i: u64| read_u64(space, msg.wrapping_add(8 * i));
    let (name, iov, iovlen, control, controllen) = (w(0)?, w(2)?, w(3)?, w(4)?, w(5)?);
    // msg_namelen is an int.
    let namelen = w(1)? as u32 as u64;
    Ok(MsgHdr {
        name,
        namelen,
        iov: iovecs(space, iov, iovlen)?,
        control,
        controllen,
    })
}

/// sendmsg(fd, msg, flags).
pub fn sys_sendmsg(k: &mut Kernel, s: usize, fd: u64, msg: u64, flags: u64) -> Outcome {
    let space = k.space(s);
    let h = match read_msghdr(&space, msg) {
        Ok(h) => h,
        Err(e) => return Ret(err(e)),
    };
    let control = match control_data(k, s, h.control, h.controllen) {
        Ok(c) => c,
        Err(e) => return Ret(err(e)),
    };
    send(k, s, fd, &h.iov, control, flags as u32, h.name, h.namelen)
}

/// recvmsg(fd, msg, flags): the data into the iovecs, passed files
/// installed as new descriptors (`SCM_RIGHTS` in the control buffer, as
/// many as fit: else `MSG_CTRUNC`), `msg_flags` with `MSG_TRUNC` for a
/// message cut short.
pub fn sys_recvmsg(k: &mut Kernel, s: usize, fd: u64, msg: u64, flags: u64) -> Outcome {
    let flags = flags as u32;
    let space = k.space(s);
    let h = match read_msghdr(&space, msg) {
        Ok(h) => h,
        Err(e) => return Ret(err(e)),
    };
    let got = match receive(k, s, fd, &h.iov, flags) {
        Ok(g) => g,
        Err(o) => return o,
    };
    let mut msg_flags = 0u32;
    if got.full > got.moved {
        msg_flags |= MSG_TRUNC;
    }
    // The control buffer: the sender's credentials first (SO_PASSCRED),
    // then the files, each as Linux's put_cmsg puts it (cut short, with
    // MSG_CTRUNC, where the buffer ends).
    let mut control = h.control;
    let mut controllen = if h.control == 0 { 0 } else { h.controllen };
    let mut used = 0u64;
    if got.passcred {
        let mut c = Vec::with_capacity(28);
        c.extend_from_slice(&28u64.to_le_bytes());
        c.extend_from_slice(&SOL_SOCKET.to_le_bytes());
        c.extend_from_slice(&SCM_CREDENTIALS.to_le_bytes());
        for w in got.creds {
            c.extend_from_slice(&w.to_le_bytes());
        }
        if controllen < 16 {
            msg_flags |= MSG_CTRUNC;
        } else {
            let n = (controllen as usize).min(c.len());
            if n < c.len() {
                msg_flags |= MSG_CTRUNC;
            }
            if let Err(e) = copy_out(&space, control, &c[..n]) {
                return Ret(err(e));
            }
            let step = 32u64.min(controllen);
            control = control.wrapping_add(step);
            controllen -= step;
            used += step;
        }
    }
    // Install what fits in the control buffer; the rest are dropped.
    let room = (controllen as usize).saturating_sub(16) / 4;
    let fit = if controllen < 16 {
        0
    } else {
        room.min(got.files.len())
    };
    if fit < got.files.len() {
        msg_flags |= MSG_CTRUNC;
    }
    let mut fds: Vec<u8> = Vec::new();
    let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
    for f in got.files.into_iter().take(fit) {
        match install(k, s, f, cloexec) {
            Ok(fd) => fds.extend_from_slice(&(fd as i32).to_le_bytes()),
            Err(_) => {
                msg_flags |= MSG_CTRUNC;
                break;
            }
        }
    }
    if !fds.is_empty() {
        let len = 16 + fds.len();
        let mut c = Vec::with_capacity(len);
        c.extend_from_slice(&(len as u64).to_le_bytes());
        c.extend_from_slice(&SOL_SOCKET.to_le_bytes());
        c.extend_from_slice(&SCM_RIGHTS.to_le_bytes());
        c.extend_from_slice(&fds);
        if let Err(e) = copy_out(&space, control, &c) {
            return Ret(err(e));
        }
        used += (len.next_multiple_of(8) as u64).min(controllen);
    }
    // The sender's name, as much as msg_namelen holds; msg_namelen its
    // length (0 for an unnamed sender), as Linux's move_addr_to_user.
    if h.name != 0 {
        let b = if got.from == Addr::Unnamed {
            Vec::new()
        } else {
            got.from.sockaddr()
        };
        let n = (h.namelen as usize).min(b.len());
        if n > 0 {
            if let Err(e) = copy_out(&space, h.name, &b[..n]) {
                return Ret(err(e));
            }
        }
        if let Err(e) = copy_out(&space, msg.wrapping_add(8), &(b.len() as u32).to_le_bytes()) {
            return Ret(err(e));
        }
    }
    let header = [
        (msg.wrapping_add(40), used.to_le_bytes().to_vec()),
        (msg.wrapping_add(48), msg_flags.to_le_bytes().to_vec()),
    ];
    for (at, bytes) in header {
        if let Err(e) = copy_out(&space, at, &bytes) {
            return Ret(err(e));
        }
    }
    let truncated_len = flags & MSG_TRUNC != 0;
    Ret(if truncated_len { got.full } else { got.moved } as i64)
}

/// shutdown(fd, how).
pub fn sys_shutdown(k: &mut Kernel, s: usize, fd: u64, how: u64) -> Result<i64, Errno> {
    let f = socket(k, s, fd)?;
    let (read, write) = match how {
        0 => (true, false),
        1 => (false, true),
        2 => (true, true),
        _ => return Err(Errno::EINVAL),
    };
    // A pair is born connected and stays so (Linux keeps the peer
    // reference after it closes): never ENOTCONN.
    let sock = unix(&f)?;
    sock.shutdown(read, write);
    wake_both(k, &f);
    // An unconnected UDP socket is shut all the same (a blocked receive
    // returns), and says ENOTCONN (Linux's inet_shutdown).
    if sock.udp() && sock.state() != State::Connected {
        return Err(Errno::ENOTCONN);
    }
    Ok(0)
}

/// getsockname / getpeername (`peer`): the socket's own name, or its
/// peer's when they connected (`ENOTCONN` if it has none).
pub fn sys_getname(
    k: &mut Kernel,
    s: usize,
    fd: u64,
    addr: u64,
    addrlen: u64,
    peer: bool,
) -> Result<i64, Errno> {
    let f = socket(k, s, fd)?;
    let sock = unix(&f)?;
    let name = if peer { sock.peer_name()? } else { sock.name() };
    // An unbound TCP socket's name is the unspecified address, port 0.
    let name = match name {
        Addr::Unnamed if sock.inet() => Addr::Inet(InetAddr {
            v6: sock.family == Family::Inet6,
            ..InetAddr::default()
        }),
        n => shown(sock, n, !peer),
    };
    put_sockaddr(&k.space(s), &name, addr, addrlen)?;
    Ok(0)
}

/// getsockopt(fd, level, name, value, len): the SOL_SOCKET options a
/// Unix socket answers.
pub fn sys_getsockopt(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    let [fd, level, name, value, lenp, _] = a;
    let f = socket(k, s, fd)?;
    let sock = unix(&f)?;
    // Unix sockets have no option level of their own (Linux: EOPNOTSUPP);
    // a TCP socket answers the IP, IPv6 and TCP options it was given.
    if level != SOL_SOCKET as u64 {
        if !sock.inet() {
            return Err(Errno::EOPNOTSUPP);
        }
        // A UDP socket has no TCP level: IPv4's ip_getsockopt says
        // EOPNOTSUPP, IPv6's ENOPROTOOPT.
        if sock.udp() && level as u32 == LEVEL_TCP {
            return Err(if sock.family == Family::Inet {
                Errno::EOPNOTSUPP
            } else {
                Errno::ENOPROTOOPT
            });
        }
        let v = inet_option(sock, level as u32, name as u32).ok_or_else(|| {
            // An IPv4 socket has no IPv6 options on Linux either.
            if !(level as u32 == LEVEL_IPV6 && sock.family == Family::Inet) {
                log_refused(
                    k,
                    s,
                    "getsockopt",
                    format_args!("level {level} option {name} of a TCP socket"),
                );
            }
            Errno::ENOPROTOOPT
        })?;
        return put_option(k, s, value, lenp, &v);
    }
    let kind = match sock.kind {
        SockType::Stream => SOCK_STREAM,
        SockType::Dgram => SOCK_DGRAM,
        SockType::Seqpacket => SOCK_SEQPACKET,
    };
    let v: Vec<u8> = match name as u32 {
        SO_TYPE => kind.to_le_bytes().to_vec(),
        SO_DOMAIN => match sock.family {
            Family::Unix => AF_UNIX,
            Family::Inet => AF_INET,
            Family::Inet6 => AF_INET6,
        }
        .to_le_bytes()
        .to_vec(),
        SO_PROTOCOL => if sock.udp() {
            IPPROTO_UDP as u32
        } else if sock.inet() {
            IPPROTO_TCP as u32
        } else {
            0
        }
        .to_le_bytes()
        .to_vec(),
        SO_REUSEADDR | SO_REUSEPORT | SO_KEEPALIVE | SO_BROADCAST | SO_DONTROUTE | SO_OOBINLINE => {
            stored(sock, SOL_SOCKET, name as u32)
        }
        SO_PASSCRED => u32::from(sock.passcred.get()).to_le_bytes().to_vec(),
        SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW => timeval_bytes(sock.rcvtimeo_ns.get()),
        SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW => timeval_bytes(sock.sndtimeo_ns.get()),
        SO_ACCEPTCONN => u32::from(sock.state() == State::Listening)
            .to_le_bytes()
            .to_vec(),
        SO_ERROR => (sock.take_error().map_or(0, |e| e.0) as u32)
            .to_le_bytes()
            .to_vec(),
        SO_SNDBUF | SO_RCVBUF => (RCVBUF as u32).to_le_bytes().to_vec(),
        // The peer's process and effective ids when they connected; with
        // no peer, pid 0 and ids of -1, as Linux's cred_to_ucred without
        // a cred.
        SO_PEERCRED => match sock.peer_cred() {
            // TCP keeps no peer credentials.
            _ if sock.inet() => [0, NO_ID, NO_ID],
            None => [0, NO_ID, NO_ID],
            Some(c) => c,
        }
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect(),
        _ => {
            log_refused(k, s, "getsockopt", format_args!("SOL_SOCKET option {name}"));
            return Err(Errno::ENOPROTOOPT);
        }
    };
    put_option(k, s, value, lenp, &v)
}

/// Writes option value `v` to `value`, as much as `*lenp` holds, and the
/// length written to `*lenp` (`EINVAL` for a negative one).
fn put_option(k: &Kernel, s: usize, value: u64, lenp: u64, v: &[u8]) -> Result<i64, Errno> {
    let space = k.space(s);
    let mut lb = [0u8; 4];
    copy_in(&space, lenp, &mut lb)?;
    let len = i32::from_le_bytes(lb);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (len as usize).min(v.len());
    copy_out(&space, value, &v[..n])?;
    copy_out(&space, lenp, &(n as u32).to_le_bytes())?;
    Ok(0)
}

/// The value kept for option `(level, name)`, else 0 (an int).
fn stored(sock: &UnixSocket, level: u32, name: u32) -> Vec<u8> {
    sock.options
        .borrow()
        .get(&(level, name))
        .cloned()
        .unwrap_or_else(|| 0u32.to_le_bytes().to_vec())
}

/// The TCP, IP and IPv6 int options a TCP socket over loopback keeps
/// (set by setsockopt, with Linux's defaults otherwise); `None` for the
/// rest.
fn inet_option(sock: &UnixSocket, level: u32, name: u32) -> Option<Vec<u8>> {
    if level == LEVEL_TCP && !sock.tcp() {
        return None;
    }
    let default: u32 = match (level, name) {
        (LEVEL_TCP, TCP_NODELAY | TCP_CORK | TCP_QUICKACK | TCP_DEFER_ACCEPT) => 0,
        (LEVEL_TCP, TCP_MAXSEG) => 536,
        (LEVEL_TCP, TCP_KEEPIDLE) => 7200,
        (LEVEL_TCP, TCP_KEEPINTVL) => 75,
        (LEVEL_TCP, TCP_KEEPCNT) => 9,
        (LEVEL_TCP, TCP_USER_TIMEOUT | TCP_FASTOPEN | TCP_NOTSENT_LOWAT) => 0,
        (LEVEL_IP, IP_TOS) => 0,
        (LEVEL_IP, IP_TTL) => 64,
        (LEVEL_IPV6, IPV6_V6ONLY) if sock.family == Family::Inet6 => 0,
        (LEVEL_IPV6, IPV6_UNICAST_HOPS) if sock.family == Family::Inet6 => 64,
        (LEVEL_IPV6, IPV6_TCLASS) if sock.family == Family::Inet6 => 0,
        _ => return None,
    };
    Some(
        sock.options
            .borrow()
            .get(&(level, name))
            .cloned()
            .unwrap_or_else(|| default.to_le_bytes().to_vec()),
    )
}

/// A timeout as the `struct timeval` getsockopt gives (0: none).
fn timeval_bytes(ns: u64) -> Vec<u8> {
    let us = ns.div_ceil(1000);
    [us / 1_000_000, us % 1_000_000]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

/// A timeout from a `struct timeval` as Linux's sock_set_timeout takes
/// it: `EDOM` for microseconds out of range; 0 is none (wait for ever);
/// a negative one gives up at once.
fn timeout_from(tv: &[u8; 16]) -> Result<u64, Errno> {
    let sec = i64::from_le_bytes(tv[..8].try_into().map_err(|_| Errno::EINVAL)?);
    let usec = i64::from_le_bytes(tv[8..].try_into().map_err(|_| Errno::EINVAL)?);
    if !(0..1_000_000).contains(&usec) {
        return Err(Errno::EDOM);
    }
    if sec < 0 {
        return Ok(1);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(usec as u64 * 1000))
}

/// setsockopt(fd, level, name, value, len): `SO_PASSCRED` (receives carry
/// the sender's credentials, `SCM_CREDENTIALS`), `SO_RCVTIMEO` and
/// `SO_SNDTIMEO` (blocking calls give up with `EAGAIN`), the SOL_SOCKET
/// options that change nothing for a Unix socket on Linux either
/// (`SO_REUSEADDR`, `SO_REUSEPORT`, `SO_KEEPALIVE`, `SO_BROADCAST`,
/// `SO_DONTROUTE`, `SO_OOBINLINE`), and the buffer sizes, which are taken
/// but stay [`RCVBUF`] (logged). Other levels are `EOPNOTSUPP`, as Unix
/// sockets have none; other options are refused with a log line.
pub fn sys_setsockopt(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    let [fd, level, name, value, len, _] = a;
    let f = socket(k, s, fd)?;
    let sock = unix(&f)?;
    let name = name as u32;
    let len = len as u32 as i32;
    if level != SOL_SOCKET as u64 {
        if !sock.inet() {
            return Err(Errno::EOPNOTSUPP);
        }
        let level = level as u32;
        if inet_option(sock, level, name).is_none() {
            // An IPv4 socket has no IPv6 options on Linux either.
            if !(level == LEVEL_IPV6 && sock.family == Family::Inet) {
                log_refused(
                    k,
                    s,
                    "setsockopt",
                    format_args!("level {level} option {name} of a TCP socket"),
                );
            }
            return Err(Errno::ENOPROTOOPT);
        }
        if len < 4 {
            return Err(Errno::EINVAL);
        }
        let mut v = [0u8; 4];
        copy_in(&k.space(s), value, &mut v)?;
        // IPV6_V6ONLY is fixed once the socket is bound.
        if (level, name) == (LEVEL_IPV6, IPV6_V6ONLY) && sock.name() != Addr::Unnamed {
            return Err(Errno::EINVAL);
        }
        sock.options.borrow_mut().insert((level, name), v.to_vec());
        return Ok(0);
    }
    if matches!(
        name,
        SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW | SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW
    ) {
        if len < 16 {
            return Err(Errno::EINVAL);
        }
        let mut tv = [0u8; 16];
        copy_in(&k.space(s), value, &mut tv)?;
        let ns = timeout_from(&tv)?;
        if matches!(name, SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW) {
            sock.rcvtimeo_ns.set(ns);
        } else {
            sock.sndtimeo_ns.set(ns);
        }
        return Ok(0);
    }
    // The rest are ints: Linux checks the length, then reads it.
    if len < 4 {
        return Err(Errno::EINVAL);
    }
    let mut v = [0u8; 4];
    copy_in(&k.space(s), value, &mut v)?;
    let on = u32::from_le_bytes(v) != 0;
    match name {
        SO_PASSCRED => {
            sock.passcred.set(on);
            Ok(0)
        }
        SO_REUSEADDR | SO_REUSEPORT | SO_KEEPALIVE | SO_BROADCAST | SO_DONTROUTE | SO_OOBINLINE => {
            // Kept for getsockopt (a closed socket's port is free at once
            // here: there is no TIME_WAIT for SO_REUSEADDR to skip).
            sock.options
                .borrow_mut()
                .insert((SOL_SOCKET, name), u32::from(on).to_le_bytes().to_vec());
            Ok(0)
        }
        SO_SNDBUF | SO_RCVBUF | SO_SNDBUFFORCE | SO_RCVBUFFORCE => {
            log_refused(
                k,
                s,
                "setsockopt",
                format_args!("a buffer size for a Unix socket (it stays {RCVBUF} bytes)"),
            );
            Ok(0)
        }
        _ => {
            log_refused(k, s, "setsockopt", format_args!("SOL_SOCKET option {name}"));
            Err(Errno::ENOPROTOOPT)
        }
    }
}

/// The credentials a connection or pair records for SO_PEERCRED: the
/// process and its effective ids (Linux's `cred_to_ucred`).
fn peer_cred_of(k: &Kernel, s: usize) -> crate::fs::unix::Creds {
    let p = &k.procs.procs[s];
    [p.tgid, p.creds.euid, p.creds.egid]
}
