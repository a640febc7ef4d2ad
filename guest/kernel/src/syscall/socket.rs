//! Socket system calls over [`crate::fs::unix`]: connected Unix domain
//! pairs (socketpair), their sends and receives (with `SCM_RIGHTS`
//! descriptor passing), shutdown, names and options. There is no network
//! and no socket address here: `socket` refuses every family with a log
//! line (`EAFNOSUPPORT`), as a kernel built without them would.

use alloc::rc::Rc;
use alloc::vec::Vec;

use super::fd::file;
use super::poll::install;
use super::uio::iovecs;
use super::{err, log_refused, Outcome, Outcome::*};
use crate::fs::device::IoError;
use crate::fs::file::OpenFile;
use crate::fs::unix::{SockType, UnixSocket, RCVBUF, SCM_MAX_FD};
use crate::kernel::Kernel;
use crate::mm::uaccess::{self, copy_in, copy_out, read_u64};
use crate::mm::SpaceRef;
use crate::proc::signal::{self, SigInfo};
use linux_raw_sys::general::*;
use linux_raw_sys::net::*;
use vkernel_abi::Errno;

/// socket's type flags (the uapi headers spell them as O_ flags).
const SOCK_NONBLOCK: u32 = O_NONBLOCK;
const SOCK_CLOEXEC: u32 = O_CLOEXEC;
/// The first socket type Linux does not know (`EINVAL` from there on).
const SOCK_MAX: u32 = 11;

/// socket(domain, type, protocol).
pub fn sys_socket(k: &Kernel, s: usize, domain: u64, kind: u64) -> Result<i64, Errno> {
    log_refused(
        k,
        s,
        "socket",
        format_args!("family {domain} type {kind:#x} (only socketpair(AF_UNIX) is)"),
    );
    Err(Errno::EAFNOSUPPORT)
}

/// The type and flags of socketpair's `type` argument, as Linux checks
/// them.
fn sock_type(kind: u64, protocol: u64) -> Result<(SockType, u32), Errno> {
    let flags = (kind as u32) & !0xf;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 || kind >> 32 != 0 {
        return Err(Errno::EINVAL);
    }
    let t = match kind as u32 & 0xf {
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
    let (x, y) = UnixSocket::pair(t, k.procs.procs[s].tgid);
    let cloexec = flags & SOCK_CLOEXEC != 0;
    let open =
        |d: Rc<UnixSocket>| OpenFile::anon(d, O_RDWR | (flags & O_NONBLOCK), "socket:[unix]");
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

/// The open files a message's control data passes (`SCM_RIGHTS`), as
/// Linux's __scm_send checks them.
fn control_files(k: &Kernel, s: usize, control: u64, len: u64) -> Result<Vec<Rc<OpenFile>>, Errno> {
    let mut files = Vec::new();
    if control == 0 || len == 0 {
        return Ok(files);
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
            // The sender's credentials: a root process may claim any.
            SCM_CREDENTIALS => {}
            _ => return Err(Errno::EINVAL),
        }
        off += cmsg_len.next_multiple_of(8);
    }
    Ok(files)
}

/// A send that could not go on, as Linux reports it.
fn send_stalled(k: &mut Kernel, s: usize, f: &OpenFile, e: IoError, flags: u32) -> Outcome {
    match e {
        IoError::Fail(e) => Ret(err(e)),
        IoError::WouldBlock(_) if f.nonblocking() || flags & MSG_DONTWAIT != 0 => {
            Ret(err(Errno::EAGAIN))
        }
        IoError::WouldBlock(chan) => {
            k.procs.sleep(s, chan, 0, 0);
            NoReturn
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

fn wake_both(k: &mut Kernel, f: &OpenFile) {
    if let Some(chans) = f.device().and_then(|d| d.wake_on_close()) {
        for c in chans {
            k.procs.wakeup(c);
        }
    }
}

/// sendto/sendmsg: `iov` from the process, with `files`; no address (the
/// pair is connected).
fn send(
    k: &mut Kernel,
    s: usize,
    fd: u64,
    iov: &[(u64, u64)],
    files: Vec<Rc<OpenFile>>,
    flags: u32,
    named: bool,
) -> Outcome {
    let f = match socket(k, s, fd) {
        Ok(f) => f,
        Err(e) => return Ret(err(e)),
    };
    let Ok(sock) = unix(&f) else {
        return Ret(err(Errno::ENOTSOCK));
    };
    if flags & MSG_OOB != 0 {
        return Ret(err(Errno::EOPNOTSUPP));
    }
    if named {
        if sock.kind != SockType::Dgram {
            return Ret(err(Errno::EISCONN));
        }
        log_refused(
            k,
            s,
            "sendto",
            format_args!("a Unix datagram to an address"),
        );
        return Ret(err(Errno::EOPNOTSUPP));
    }
    let total: u64 = iov.iter().map(|&(_, l)| l).sum();
    let total = total.min(i32::MAX as u64) as usize;
    let space = k.space(s);
    let r = sock.send(
        total,
        &mut |b| match b.first_mut() {
            Some(buf) => gather(&space, iov, buf),
            None => Ok(0),
        },
        files,
    );
    match r {
        Ok(n) => {
            wake_both(k, &f);
            Ret(n as i64)
        }
        Err(e) => send_stalled(k, s, &f, e, flags),
    }
}

/// What recvfrom/recvmsg took.
struct Got {
    moved: usize,
    full: usize,
    files: Vec<Rc<OpenFile>>,
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
            })
        }
        Err(IoError::WouldBlock(_)) if f.nonblocking() || flags & MSG_DONTWAIT != 0 => {
            Err(Ret(err(Errno::EAGAIN)))
        }
        Err(IoError::WouldBlock(chan)) => {
            k.procs.sleep(s, chan, 0, 0);
            Err(NoReturn)
        }
        Err(IoError::Fail(e)) => Err(Ret(err(e))),
        Err(IoError::BrokenPipe) => Err(Ret(err(Errno::EPIPE))),
    }
}

/// sendto(fd, buf, len, flags, addr, addrlen).
pub fn sys_sendto(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [fd, buf, len, flags, addr, _] = a;
    if !uaccess::user_range(buf, len) {
        return Ret(err(Errno::EFAULT));
    }
    send(k, s, fd, &[(buf, len)], Vec::new(), flags as u32, addr != 0)
}

/// recvfrom(fd, buf, len, flags, addr, addrlen): the peer has no name,
/// so `*addrlen` becomes 0.
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
        if let Err(e) = copy_out(&k.space(s), addrlen, &0u32.to_le_bytes()) {
            return Ret(err(e));
        }
    }
    let truncated_len = flags as u32 & MSG_TRUNC != 0;
    Ret(if truncated_len { got.full } else { got.moved } as i64)
}

/// The fields of a `struct msghdr` sendmsg and recvmsg use.
struct MsgHdr {
    name: u64,
    iov: Vec<(u64, u64)>,
    control: u64,
    controllen: u64,
}

fn read_msghdr(space: &SpaceRef, msg: u64) -> Result<MsgHdr, Errno> {
    let w = |i: u64| read_u64(space, msg.wrapping_add(8 * i));
    let (name, iov, iovlen, control, controllen) = (w(0)?, w(2)?, w(3)?, w(4)?, w(5)?);
    Ok(MsgHdr {
        name,
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
    let files = match control_files(k, s, h.control, h.controllen) {
        Ok(f) => f,
        Err(e) => return Ret(err(e)),
    };
    send(k, s, fd, &h.iov, files, flags as u32, h.name != 0)
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
    // Install what fits in the control buffer; the rest are dropped.
    let room = (h.controllen as usize).saturating_sub(16) / 4;
    let fit = if h.control == 0 || h.controllen < 16 {
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
    let mut used = 0u64;
    if !fds.is_empty() {
        let len = 16 + fds.len();
        let mut c = Vec::with_capacity(len);
        c.extend_from_slice(&(len as u64).to_le_bytes());
        c.extend_from_slice(&SOL_SOCKET.to_le_bytes());
        c.extend_from_slice(&SCM_RIGHTS.to_le_bytes());
        c.extend_from_slice(&fds);
        if let Err(e) = copy_out(&space, h.control, &c) {
            return Ret(err(e));
        }
        used = (len.next_multiple_of(8) as u64).min(h.controllen);
    }
    let header = [
        (msg.wrapping_add(8), 0u64.to_le_bytes()[..4].to_vec()),
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
    unix(&f)?.shutdown(read, write);
    wake_both(k, &f);
    Ok(0)
}

/// getsockname / getpeername: an unnamed Unix socket's address is its
/// family alone (and a pair's sockets always have a peer).
pub fn sys_getname(
    k: &mut Kernel,
    s: usize,
    fd: u64,
    addr: u64,
    addrlen: u64,
) -> Result<i64, Errno> {
    socket(k, s, fd)?;
    let space = k.space(s);
    let mut lb = [0u8; 4];
    copy_in(&space, addrlen, &mut lb)?;
    let len = i32::from_le_bytes(lb);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let family = (AF_UNIX as u16).to_le_bytes();
    copy_out(&space, addr, &family[..(len as usize).min(2)])?;
    copy_out(&space, addrlen, &2u32.to_le_bytes())?;
    Ok(0)
}

/// getsockopt(fd, level, name, value, len): the SOL_SOCKET options a
/// Unix socket answers.
pub fn sys_getsockopt(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    let [fd, level, name, value, lenp, _] = a;
    let f = socket(k, s, fd)?;
    let sock = unix(&f)?;
    if level != SOL_SOCKET as u64 {
        return Err(Errno::ENOPROTOOPT);
    }
    let kind = match sock.kind {
        SockType::Stream => SOCK_STREAM,
        SockType::Dgram => SOCK_DGRAM,
        SockType::Seqpacket => SOCK_SEQPACKET,
    };
    let v: Vec<u8> = match name as u32 {
        SO_TYPE => kind.to_le_bytes().to_vec(),
        SO_DOMAIN => AF_UNIX.to_le_bytes().to_vec(),
        SO_PROTOCOL | SO_ACCEPTCONN | SO_PASSCRED => 0u32.to_le_bytes().to_vec(),
        SO_ERROR => (sock.take_error().map_or(0, |e| e.0) as u32)
            .to_le_bytes()
            .to_vec(),
        SO_SNDBUF | SO_RCVBUF => (RCVBUF as u32).to_le_bytes().to_vec(),
        // The process that made the pair (uid and gid: every process is
        // root).
        SO_PEERCRED => [sock.creator(), 0, 0]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect(),
        _ => {
            log_refused(k, s, "getsockopt", format_args!("SOL_SOCKET option {name}"));
            return Err(Errno::ENOPROTOOPT);
        }
    };
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
