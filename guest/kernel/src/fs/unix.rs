//! Unix domain sockets (Linux's net/unix/af_unix.c): connected pairs
//! (`socketpair`), and sockets made by `socket` that are named (`bind`:
//! a path, which becomes a socket file, or a name in Linux's abstract
//! namespace), listen for connections (`listen`, `accept`) or connect
//! to a listener (`connect`); datagram sockets send to a name
//! (`sendto`) and learn the sender's (`recvfrom`).
//! Each socket holds what its peer sent, as messages: a stream reads
//! across them (stopping before one that carries descriptors, as Linux
//! does), a datagram or seqpacket socket reads one message per call and
//! drops what does not fit. Messages may carry open files
//! (`SCM_RIGHTS`), which the receiver's `recvmsg` installs.
//!
//! A connection is made as Linux makes it: `connect` creates the
//! listener's end at once, already paired with the connecting socket,
//! and queues it for `accept` (the backlog); the connecting side may
//! write before it is accepted.
//!
//! Flow control as Linux's: a socket takes at most [`RCVBUF`] bytes from
//! its peer; a stream write takes what fits and comes back for the rest,
//! a datagram waits until the whole message fits. A stream whose peer is
//! gone reads end of file and writes `EPIPE`; a datagram socket whose
//! peer is gone writes `ECONNREFUSED`.
//!
//! A socket whose own queue holds a descriptor of itself is kept alive
//! by it (Linux collects such cycles; here they live until the run ends).
//!
//! TCP over loopback is this same stream machinery with another
//! [`Family`]: Internet addresses ([`InetAddr`]), ports in [`Names`]
//! ([`Key::Port`]), and the few answers where TCP and af_unix differ
//! (a write before connecting is `EPIPE`, a read `ENOTCONN`). The socket
//! calls (`syscall/socket.rs`) do the addressing.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::device::{Device, IoError, Ready};
use super::file::OpenFile;
use super::vfs::{Kind, Sink, Source};
use crate::chan::Chan;
use linux_raw_sys::net::{IPPROTO_IPV6, IPV6_V6ONLY};
use vkernel_abi::Errno;

/// Bytes a socket holds from its peer (Linux's default `SO_RCVBUF`/
/// `SO_SNDBUF` value, `net.core.wmem_default`).
pub const RCVBUF: usize = 212_992;
/// Most descriptors one message carries (Linux's `SCM_MAX_FD`).
pub const SCM_MAX_FD: usize = 253;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockType {
    Stream,
    Dgram,
    Seqpacket,
}

/// Where a socket stands (Linux's `sk_state`, as af_unix uses it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Made by `socket`, not (or no longer) connected.
    Unconnected,
    /// `listen` was called: connections queue for `accept`.
    Listening,
    /// Has (or had: a stream keeps its peer's name once it is gone) a
    /// peer.
    Connected,
}

/// A socket's address family: a Unix socket, or a TCP socket over the
/// loopback interface (the only network there is), whose connections
/// are the same machinery with Internet addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Unix,
    Inet,
    Inet6,
}

/// An Internet address and port: IPv4 in the first four bytes of `ip`,
/// or IPv6 (`v6`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InetAddr {
    pub v6: bool,
    pub ip: [u8; 16],
    pub port: u16,
}

/// `sizeof(struct sockaddr_in)` and `sizeof(struct sockaddr_in6)`.
pub const SOCKADDR_IN_LEN: usize = 16;
pub const SOCKADDR_IN6_LEN: usize = 28;

impl InetAddr {
    /// The IPv4 address in it, if it holds one (v4-mapped included).
    pub fn v4(&self) -> Option<[u8; 4]> {
        let mapped =
            self.ip[..10].iter().all(|&b| b == 0) && self.ip[10] == 0xff && self.ip[11] == 0xff;
        if !self.v6 {
            Some([self.ip[0], self.ip[1], self.ip[2], self.ip[3]])
        } else if mapped {
            Some([self.ip[12], self.ip[13], self.ip[14], self.ip[15]])
        } else {
            None
        }
    }

    /// The same address as IPv6 (an IPv4 one v4-mapped).
    pub fn to_v6(self) -> InetAddr {
        match (self.v6, self.v4()) {
            (false, Some(a)) => {
                let mut ip = [0u8; 16];
                ip[10] = 0xff;
                ip[11] = 0xff;
                ip[12..].copy_from_slice(&a);
                InetAddr {
                    v6: true,
                    ip,
                    port: self.port,
                }
            }
            _ => self,
        }
    }

    /// The unspecified address (INADDR_ANY, `::`).
    pub fn is_any(&self) -> bool {
        match self.v4() {
            Some(a) => a == [0; 4],
            None => self.ip == [0; 16],
        }
    }

    /// An address of this machine's one interface, loopback: 127.0.0.0/8
    /// or `::1` (v4-mapped too), or the unspecified one.
    pub fn is_local(&self) -> bool {
        match self.v4() {
            Some(a) => a[0] == 127 || a == [0; 4],
            None => self.ip == [0; 16] || self.ip == LOOPBACK6,
        }
    }

    /// The loopback address of its family, with `port`.
    pub fn loopback(v6: bool, port: u16) -> InetAddr {
        let mut ip = [0u8; 16];
        if v6 {
            ip = LOOPBACK6;
        } else {
            ip[..4].copy_from_slice(&[127, 0, 0, 1]);
        }
        InetAddr { v6, ip, port }
    }
}

const LOOPBACK6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// A socket's name, as a `sockaddr_un` (or `sockaddr_in`, `sockaddr_in6`)
/// gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Addr {
    /// No name (never bound).
    #[default]
    Unnamed,
    /// A path: the socket file made by `bind` (the bytes before the NUL).
    Path(Vec<u8>),
    /// A name in the abstract namespace (`sun_path[0]` is 0; the bytes
    /// after it, NULs included).
    Abstract(Vec<u8>),
    /// An Internet address and port.
    Inet(InetAddr),
}

/// The uid and gid Linux reports where there are none (`(uid_t)-1`).
pub const NO_ID: u32 = u32::MAX;

/// `offsetof(struct sockaddr_un, sun_path)`.
pub const SUN_PATH_OFFSET: usize = 2;
/// `sizeof(struct sockaddr_un)`.
pub const SOCKADDR_UN_LEN: usize = 110;

impl Addr {
    /// The `sockaddr_un` Linux reports for it (getsockname, getpeername,
    /// accept, recvfrom): the family, then the path with its NUL, or the
    /// abstract name after its 0.
    pub fn sockaddr(&self) -> Vec<u8> {
        if let Addr::Inet(a) = self {
            let mut b = Vec::with_capacity(SOCKADDR_IN6_LEN);
            let family = if a.v6 {
                linux_raw_sys::net::AF_INET6
            } else {
                linux_raw_sys::net::AF_INET
            };
            b.extend_from_slice(&(family as u16).to_le_bytes());
            b.extend_from_slice(&a.port.to_be_bytes());
            if a.v6 {
                b.extend_from_slice(&[0; 4]); // sin6_flowinfo
                b.extend_from_slice(&a.ip);
                b.extend_from_slice(&[0; 4]); // sin6_scope_id
            } else {
                b.extend_from_slice(&a.ip[..4]);
                b.extend_from_slice(&[0; 8]);
            }
            return b;
        }
        let mut b = Vec::with_capacity(SOCKADDR_UN_LEN);
        b.extend_from_slice(&(linux_raw_sys::net::AF_UNIX as u16).to_le_bytes());
        match self {
            Addr::Unnamed => {}
            Addr::Path(p) => {
                b.extend_from_slice(p);
                b.push(0);
            }
            Addr::Abstract(n) => {
                b.push(0);
                b.extend_from_slice(n);
            }
            Addr::Inet(_) => {}
        }
        b
    }
}

/// Where a bound socket is found by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// The socket file `bind` made: its file system and inode numbers.
    Inode(u64, u64),
    /// An abstract name.
    Abstract(Vec<u8>),
    /// A TCP port, of IPv6 (true) or IPv4: a dual-stack IPv6 socket
    /// holds both.
    Port(u16, bool),
    /// A UDP port, likewise (a port space of its own).
    UdpPort(u16, bool),
}

impl Key {
    /// The key of TCP or UDP (`udp`) port `port` in the IPv6 (`v6`) or
    /// IPv4 space.
    pub fn port(port: u16, v6: bool, udp: bool) -> Key {
        if udp {
            Key::UdpPort(port, v6)
        } else {
            Key::Port(port, v6)
        }
    }
}

/// The bound sockets (Linux's unix_socket_table): a name is taken while
/// its socket is open.
#[derive(Default)]
pub struct Names {
    map: RefCell<BTreeMap<Key, Weak<UnixSocket>>>,
    /// The next autobind name to try.
    next_auto: Cell<u32>,
}

impl Names {
    pub fn new() -> Names {
        Names::default()
    }

    /// The open socket bound at `key`.
    pub fn find(&self, key: &Key) -> Option<Rc<UnixSocket>> {
        self.map
            .borrow()
            .get(key)
            .and_then(Weak::upgrade)
            .filter(|s| !s.released.get())
    }

    /// Binds `sock` at `key`; `EADDRINUSE` while an open socket holds it.
    /// Names of closed sockets go on the way.
    pub fn insert(&self, key: Key, sock: &Rc<UnixSocket>) -> Result<(), Errno> {
        if self.find(&key).is_some() {
            return Err(Errno::EADDRINUSE);
        }
        let mut map = self.map.borrow_mut();
        map.retain(|_, w| w.upgrade().is_some_and(|s| !s.released.get()));
        map.insert(key, Rc::downgrade(sock));
        Ok(())
    }

    /// A free ephemeral port (Linux's `ip_local_port_range`, 32768 to
    /// 60999) bound to `sock`, in the IPv4 space and, for a dual-stack
    /// socket, the IPv6 one too (`v6`: IPv6 only; `dual`: both).
    pub fn autobind_port(&self, sock: &Rc<UnixSocket>, v6: bool, dual: bool) -> Result<u16, Errno> {
        let udp = sock.udp();
        const FIRST: u32 = 32768;
        const COUNT: u32 = 60999 - 32768 + 1;
        for _ in 0..COUNT {
            let n = self.next_auto.get();
            self.next_auto.set(n.wrapping_add(1));
            let port = (FIRST + n % COUNT) as u16;
            if self.bind_port(sock, port, v6, dual, udp).is_ok() {
                return Ok(port);
            }
        }
        Err(Errno::EADDRINUSE)
    }

    /// Binds TCP or UDP (`udp`) port `port` to `sock`: in the IPv6 space
    /// (`v6`), the IPv4 one, or both (`dual`); `EADDRINUSE` if an open
    /// socket holds it in either.
    pub fn bind_port(
        &self,
        sock: &Rc<UnixSocket>,
        port: u16,
        v6: bool,
        dual: bool,
        udp: bool,
    ) -> Result<(), Errno> {
        let keys: &[Key] = &[Key::port(port, v6, udp), Key::port(port, !v6, udp)];
        let keys = if dual { keys } else { &keys[..1] };
        if keys.iter().any(|k| self.find(k).is_some()) {
            return Err(Errno::EADDRINUSE);
        }
        for k in keys {
            self.insert(k.clone(), sock)?;
        }
        Ok(())
    }

    /// Takes every name and port `sock` holds away.
    pub fn unbind(&self, sock: &UnixSocket) {
        self.map
            .borrow_mut()
            .retain(|_, w| !core::ptr::eq(w.as_ptr(), sock));
    }

    /// A free autobind name, as Linux's unix_autobind picks one: five hex
    /// digits in the abstract namespace (`EAGAIN` when all 2^20 are taken).
    pub fn autobind(&self, sock: &Rc<UnixSocket>) -> Result<Vec<u8>, Errno> {
        for _ in 0..(1u32 << 20) {
            let n = self.next_auto.get() & 0xfffff;
            self.next_auto.set(n + 1);
            let name = alloc::format!("{n:05x}").into_bytes();
            if self.insert(Key::Abstract(name.clone()), sock).is_ok() {
                return Ok(name);
            }
        }
        Err(Errno::EAGAIN)
    }
}

/// One message in a socket's queue.
struct Message {
    data: Vec<u8>,
    /// Bytes of it a stream read already took.
    taken: usize,
    /// Open files it carries (SCM_RIGHTS); they go with its first byte.
    files: Vec<Rc<OpenFile>>,
    /// The sender's name (recvfrom's address).
    from: Addr,
    /// The sender's credentials (pid, uid, gid): what `SCM_CREDENTIALS`
    /// reports to a receiver with `SO_PASSCRED`.
    creds: Creds,
}

/// A process's credentials as `struct ucred` gives them: pid, uid, gid.
pub type Creds = [u32; 3];

/// The process making the current system call (Linux's `current`) and
/// its real uid and gid, for the credentials a plain `write` sends with
/// its bytes (Linux's `scm_send` sends the real ids); set by the
/// system-call layer, as signalfd's caller state.
static CALLER: [AtomicU32; 3] = [const { AtomicU32::new(0) }; 3];

/// Records the process making the system call about to run.
pub fn set_caller(c: Creds) {
    for (slot, v) in CALLER.iter().zip(c) {
        slot.store(v, Ordering::Relaxed);
    }
}

/// The caller's credentials.
pub fn caller_creds() -> Creds {
    CALLER.each_ref().map(|v| v.load(Ordering::Relaxed))
}

/// A Unix socket: one end of a connection, a listener, or a datagram
/// socket.
pub struct UnixSocket {
    /// Itself, for the names and connections that hold it by `Rc`.
    me: Weak<UnixSocket>,
    id: u64,
    pub kind: SockType,
    pub family: Family,
    /// Socket options kept for getsockopt (SO_REUSEADDR, SO_KEEPALIVE,
    /// TCP_NODELAY, IPV6_V6ONLY, ...), by (level, name).
    pub options: RefCell<BTreeMap<(u32, u32), Vec<u8>>>,
    state: Cell<State>,
    queue: RefCell<VecDeque<Message>>,
    /// Bytes in `queue` not taken yet.
    queued: Cell<usize>,
    peer: RefCell<Weak<UnixSocket>>,
    /// Its own name (bound, or its listener's for an accepted socket).
    name: RefCell<Addr>,
    /// Its peer's name when they connected (getpeername).
    peer_name: RefCell<Addr>,
    /// shutdown(SHUT_RD) here, or the peer shut its writing down (or is
    /// gone, for a stream): reads end once the queue is empty.
    read_shut: Cell<bool>,
    /// shutdown(SHUT_WR) here, or the peer shut its writing down.
    write_shut: Cell<bool>,
    /// shutdown(SHUT_WR) here (TCP: writes end at once, not after one
    /// more, see [`UnixSocket::peer_gone`]).
    own_write_shut: Cell<bool>,
    /// TCP: a write reached a peer that had closed; the next is `EPIPE`.
    reset: Cell<bool>,
    /// The peer went away leaving data unread here... or here unread
    /// data was lost with the peer: `ECONNRESET` once.
    error: Cell<Option<Errno>>,
    /// SO_PEERCRED's process and its effective ids then: a pair's maker;
    /// for an accepted socket the one that connected; for a connecting
    /// socket the listener's.
    peer_cred: Cell<Creds>,
    /// The process that called `listen` (what connecting sockets see).
    listen_cred: Cell<Creds>,
    /// A listener's connections not accepted yet, and how many it keeps.
    pending: RefCell<VecDeque<Rc<UnixSocket>>>,
    backlog: Cell<usize>,
    /// Its last open file is gone.
    released: Cell<bool>,
    /// SO_PASSCRED: receives carry the sender's credentials.
    pub passcred: Cell<bool>,
    /// SO_RCVTIMEO and SO_SNDTIMEO: how long a blocking receive (or
    /// accept) and send (or connect) wait, in ns; 0 is for ever.
    pub rcvtimeo_ns: Cell<u64>,
    pub sndtimeo_ns: Cell<u64>,
    /// For edge-triggered epoll: data in, room made.
    in_seq: Cell<u64>,
    out_seq: Cell<u64>,
    /// A UDP socket's way to the bound ports its datagrams go to.
    ports: Option<Rc<Names>>,
    /// What `bind` fixed (Linux's SOCK_BINDADDR_LOCK and
    /// SOCK_BINDPORT_LOCK): a UDP socket's disconnect keeps them, and
    /// gives back an address or port that connect or a send chose.
    bind_locks: Cell<(bool, bool)>,
    /// A UDP socket's last receiver: whom a send has to wake (it has no
    /// peer socket), by `send` or `write` alike.
    sent_to: Cell<Option<Chan>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a receive took: the bytes moved, the message's full length
/// (datagrams: for MSG_TRUNC), the files it carried and who sent it.
pub struct Received {
    pub moved: usize,
    pub full: usize,
    pub files: Vec<Rc<OpenFile>>,
    pub from: Addr,
    pub creds: Creds,
}

impl UnixSocket {
    fn new(kind: SockType, state: State) -> Rc<UnixSocket> {
        UnixSocket::new_in(kind, state, Family::Unix)
    }

    fn new_in(kind: SockType, state: State, family: Family) -> Rc<UnixSocket> {
        UnixSocket::new_with(kind, state, family, None)
    }

    fn new_with(
        kind: SockType,
        state: State,
        family: Family,
        ports: Option<Rc<Names>>,
    ) -> Rc<UnixSocket> {
        Rc::new_cyclic(|me| UnixSocket {
            me: me.clone(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            kind,
            family,
            options: RefCell::new(BTreeMap::new()),
            state: Cell::new(state),
            queue: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            peer: RefCell::new(Weak::new()),
            name: RefCell::new(Addr::Unnamed),
            peer_name: RefCell::new(Addr::Unnamed),
            read_shut: Cell::new(false),
            write_shut: Cell::new(false),
            own_write_shut: Cell::new(false),
            reset: Cell::new(false),
            error: Cell::new(None),
            peer_cred: Cell::new([0; 3]),
            listen_cred: Cell::new([0; 3]),
            pending: RefCell::new(VecDeque::new()),
            backlog: Cell::new(0),
            released: Cell::new(false),
            passcred: Cell::new(false),
            rcvtimeo_ns: Cell::new(0),
            sndtimeo_ns: Cell::new(0),
            in_seq: Cell::new(0),
            out_seq: Cell::new(0),
            ports,
            bind_locks: Cell::new((false, false)),
            sent_to: Cell::new(None),
        })
    }

    /// A socket as `socket` makes it: unnamed, unconnected.
    pub fn unconnected(kind: SockType) -> Rc<UnixSocket> {
        UnixSocket::new(kind, State::Unconnected)
    }

    /// A TCP socket as `socket` makes it.
    pub fn unconnected_in(family: Family) -> Rc<UnixSocket> {
        UnixSocket::new_in(SockType::Stream, State::Unconnected, family)
    }

    /// A UDP socket as `socket` makes it, sending to the ports of `names`.
    pub fn unconnected_udp(family: Family, names: &Rc<Names>) -> Rc<UnixSocket> {
        UnixSocket::new_with(
            SockType::Dgram,
            State::Unconnected,
            family,
            Some(names.clone()),
        )
    }

    /// Whether it is an Internet socket: TCP or UDP over loopback.
    pub fn inet(&self) -> bool {
        self.family != Family::Unix
    }

    /// Whether it is a TCP socket.
    pub fn tcp(&self) -> bool {
        self.inet() && self.kind == SockType::Stream
    }

    /// Whether it is a UDP socket.
    pub fn udp(&self) -> bool {
        self.inet() && self.kind == SockType::Dgram
    }

    /// bind fixed its address (`addr`: not the unspecified one) and its
    /// port (`port`: not 0).
    pub fn set_bind_locks(&self, addr: bool, port: bool) {
        self.bind_locks.set((addr, port));
    }

    /// Whether IPV6_V6ONLY is set: an IPv6 socket that neither sends to
    /// nor receives from IPv4 addresses.
    pub fn v6only(&self) -> bool {
        self.options
            .borrow()
            .get(&(IPPROTO_IPV6 as u32, IPV6_V6ONLY))
            .is_some_and(|v| v.iter().any(|&b| b != 0))
    }

    /// A connected pair (socketpair), made by process `creator`.
    pub fn pair(kind: SockType, creator: Creds) -> (Rc<UnixSocket>, Rc<UnixSocket>) {
        let (a, b) = (
            UnixSocket::new(kind, State::Connected),
            UnixSocket::new(kind, State::Connected),
        );
        link(&a, &b);
        a.peer_cred.set(creator);
        b.peer_cred.set(creator);
        (a, b)
    }

    /// Woken when its queue, its backlog or its peer changes.
    pub fn chan(&self) -> Chan {
        Chan::Socket(self.id)
    }

    /// The `Rc` it lives in.
    pub fn rc(&self) -> Option<Rc<UnixSocket>> {
        self.me.upgrade()
    }

    pub fn state(&self) -> State {
        self.state.get()
    }

    fn peer(&self) -> Option<Rc<UnixSocket>> {
        self.peer.borrow().upgrade()
    }

    fn stream(&self) -> bool {
        self.kind == SockType::Stream
    }

    /// Whether it is connection-based (stream or seqpacket).
    fn connection(&self) -> bool {
        self.kind != SockType::Dgram
    }

    pub fn name(&self) -> Addr {
        self.name.borrow().clone()
    }

    /// getpeername's answer: `ENOTCONN` unless connected.
    pub fn peer_name(&self) -> Result<Addr, Errno> {
        match self.state.get() {
            State::Connected => Ok(self.peer_name.borrow().clone()),
            _ => Err(Errno::ENOTCONN),
        }
    }

    /// Replaces its name (a TCP socket bound to the unspecified address
    /// is reached at a loopback one once it connects).
    pub fn set_local_name(&self, name: Addr) {
        *self.name.borrow_mut() = name;
    }

    /// Takes `name` (bind); `EINVAL` if it has one already.
    pub fn set_name(&self, name: Addr) -> Result<(), Errno> {
        if *self.name.borrow() != Addr::Unnamed {
            return Err(Errno::EINVAL);
        }
        *self.name.borrow_mut() = name;
        Ok(())
    }

    /// listen(backlog) by process `pid`: a bound stream or seqpacket
    /// socket that is not connected (a listener takes a new backlog).
    pub fn listen(&self, backlog: usize, cred: Creds) -> Result<(), Errno> {
        if !self.connection() {
            return Err(Errno::EOPNOTSUPP);
        }
        if self.state.get() == State::Connected || *self.name.borrow() == Addr::Unnamed {
            return Err(Errno::EINVAL);
        }
        self.backlog.set(backlog);
        if self.state.get() == State::Unconnected {
            self.listen_cred.set(cred);
            self.state.set(State::Listening);
        }
        Ok(())
    }

    /// connect of this stream or seqpacket socket to `listener`, by
    /// process `pid`: the listener's end is made, paired with this one
    /// and queued for accept. Waits (on the listener) while the backlog
    /// is full, as Linux's unix_wait_for_peer.
    pub fn connect_to(
        self: &Rc<Self>,
        listener: &Rc<UnixSocket>,
        cred: Creds,
    ) -> Result<(), IoError> {
        match self.state.get() {
            State::Connected => return Err(Errno::EISCONN.into()),
            State::Listening => return Err(Errno::EINVAL.into()),
            State::Unconnected => {}
        }
        if listener.kind != self.kind {
            return Err(Errno::EPROTOTYPE.into());
        }
        if listener.state.get() != State::Listening || listener.read_shut.get() {
            return Err(Errno::ECONNREFUSED.into());
        }
        // Linux refuses past `backlog` queued, not at it.
        if listener.pending.borrow().len() > listener.backlog.get() {
            return Err(IoError::WouldBlock(listener.chan()));
        }
        let theirs = UnixSocket::new_in(self.kind, State::Connected, listener.family);
        *theirs.name.borrow_mut() = listener.name();
        *theirs.peer_name.borrow_mut() = self.name();
        theirs.peer_cred.set(cred);
        link(self, &theirs);
        self.state.set(State::Connected);
        *self.peer_name.borrow_mut() = listener.name();
        self.peer_cred.set(listener.listen_cred.get());
        listener.pending.borrow_mut().push_back(theirs);
        listener.in_seq.set(listener.in_seq.get() + 1);
        Ok(())
    }

    /// The next connection queued on this listener (it waits on its own
    /// channel while there is none).
    pub fn accept(&self) -> Result<Rc<UnixSocket>, IoError> {
        if !self.connection() {
            return Err(Errno::EOPNOTSUPP.into());
        }
        if self.state.get() != State::Listening {
            return Err(Errno::EINVAL.into());
        }
        let next = self.pending.borrow_mut().pop_front();
        next.ok_or(IoError::WouldBlock(self.chan()))
    }

    /// A datagram socket's connect: `to` becomes the peer its sends go to
    /// and the only sender it receives from; `None` (AF_UNSPEC) undoes it.
    pub fn connect_dgram(&self, to: Option<&Rc<UnixSocket>>) -> Result<(), Errno> {
        match to {
            Some(t) => {
                if t.kind != self.kind {
                    return Err(Errno::EPROTOTYPE);
                }
                if !may_send(self, t) {
                    return Err(Errno::EPERM);
                }
                *self.peer.borrow_mut() = Rc::downgrade(t);
                *self.peer_name.borrow_mut() = t.name();
                self.state.set(State::Connected);
            }
            None => {
                *self.peer.borrow_mut() = Weak::new();
                *self.peer_name.borrow_mut() = Addr::Unnamed;
                self.state.set(State::Unconnected);
            }
        }
        Ok(())
    }

    /// Sends `len` bytes from `src` with `files` and `creds` to the peer
    /// (`to`: a datagram's addressee instead). A stream takes what fits
    /// (at least one byte, or it waits); a message waits until all of it
    /// fits (`EMSGSIZE` if it never can).
    pub fn send(
        &self,
        to: Option<&Rc<UnixSocket>>,
        len: usize,
        src: Source,
        files: Vec<Rc<OpenFile>>,
        creds: Creds,
    ) -> Result<usize, IoError> {
        if self.write_shut.get() {
            return self.peer_gone(len);
        }
        if self.connection() && self.state.get() != State::Connected {
            // TCP says EPIPE (and SIGPIPE) where af_unix says ENOTCONN.
            return Err(if self.inet() {
                IoError::BrokenPipe
            } else {
                Errno::ENOTCONN.into()
            });
        }
        let target = match to {
            Some(t) => {
                if t.kind != self.kind {
                    return Err(Errno::EPROTOTYPE.into());
                }
                if !may_send(self, t) {
                    return Err(Errno::EPERM.into());
                }
                t.clone()
            }
            None => match self.peer() {
                Some(p) if !self.connection() && !may_send(self, &p) => {
                    return Err(Errno::EPERM.into())
                }
                Some(p) => p,
                None if self.connection() => return self.peer_gone(len),
                None if self.state.get() == State::Connected => {
                    return Err(Errno::ECONNREFUSED.into())
                }
                None => return Err(Errno::ENOTCONN.into()),
            },
        };
        if target.read_shut.get() {
            return if self.connection() {
                self.peer_gone(len)
            } else {
                Err(Errno::EPERM.into())
            };
        }
        if !self.stream() && len > RCVBUF {
            return Err(Errno::EMSGSIZE.into());
        }
        let room = RCVBUF.saturating_sub(target.queued.get());
        let n = if self.stream() { len.min(room) } else { len };
        if (self.stream() && n == 0 && len > 0) || (!self.stream() && room < len) {
            return Err(IoError::WouldBlock(target.chan()));
        }
        let mut data = Vec::new();
        data.try_reserve_exact(n).map_err(|_| Errno::ENOBUFS)?;
        data.resize(n, 0);
        let got = src(&mut [&mut data[..]])?;
        data.truncate(got);
        if got == 0 && n > 0 {
            return Err(Errno::EFAULT.into());
        }
        target.queued.set(target.queued.get() + got);
        target.queue.borrow_mut().push_back(Message {
            data,
            taken: 0,
            files,
            from: self.name(),
            creds,
        });
        target.in_seq.set(target.in_seq.get() + 1);
        Ok(got)
    }

    /// A write with no one to read it: `EPIPE` (and SIGPIPE). A TCP
    /// socket whose peer closed takes one more write first, as Linux's:
    /// the bytes go out, the peer's reset comes back, and only the next
    /// write is `EPIPE` (its own shutdown(SHUT_WR) is at once).
    fn peer_gone(&self, len: usize) -> Result<usize, IoError> {
        if self.inet() && !self.own_write_shut.get() && !self.reset.replace(true) {
            return Ok(len);
        }
        Err(IoError::BrokenPipe)
    }

    /// Receives up to `len` bytes into `out` (`peek`: leaving them
    /// queued). End of file (0) for a stream whose writer is gone.
    pub fn receive(&self, len: usize, out: Sink, peek: bool) -> Result<Received, IoError> {
        if self.connection() && self.state.get() != State::Connected {
            // Linux: a Unix stream read is EINVAL there, a seqpacket's
            // and TCP's ENOTCONN.
            return Err(if self.stream() && !self.inet() {
                Errno::EINVAL
            } else {
                Errno::ENOTCONN
            }
            .into());
        }
        if let Some(e) = self.error.take() {
            return Err(e.into());
        }
        let mut q = self.queue.borrow_mut();
        let mut r = Received {
            moved: 0,
            full: 0,
            files: Vec::new(),
            from: Addr::Unnamed,
            creds: [0, NO_ID, NO_ID],
        };
        if q.is_empty() {
            let ended = self.read_shut.get() || (self.connection() && self.peer().is_none());
            if ended {
                return Ok(r);
            }
            return Err(IoError::WouldBlock(self.chan()));
        }
        r.from = q[0].from.clone();
        r.creds = q[0].creds;
        if !self.stream() {
            let m = &q[0];
            let n = len.min(m.data.len());
            r.moved = out(&[&m.data[..n]])?;
            r.full = m.data.len();
            if !peek {
                if let Some(m) = q.pop_front() {
                    self.queued.set(self.queued.get() - m.data.len());
                    r.files = m.files;
                }
            } else {
                r.files = m.files.clone();
            }
        } else {
            // Across messages, but not into one with files once some
            // bytes came (they go with the read that starts there).
            let mut i = 0;
            while r.moved < len && i < q.len() {
                if i > 0 && !q[i].files.is_empty() {
                    break;
                }
                let m = &q[i];
                let avail = &m.data[m.taken..];
                let n = (len - r.moved).min(avail.len());
                let put = out(&[&avail[..n]])?;
                r.moved += put;
                if i == 0 {
                    r.files = if peek {
                        m.files.clone()
                    } else {
                        core::mem::take(&mut q[0].files)
                    };
                }
                if !peek {
                    q[i].taken += put;
                }
                if put < n || q[i].taken + if peek { n } else { 0 } < q[i].data.len() {
                    break;
                }
                i += 1;
            }
            if !peek {
                while q.front().is_some_and(|m| m.taken == m.data.len()) {
                    q.pop_front();
                }
                self.queued.set(self.queued.get() - r.moved);
            }
            r.full = r.moved;
        }
        if !peek {
            self.out_seq.set(self.out_seq.get() + 1);
        }
        Ok(r)
    }

    /// shutdown(how): SHUT_RD (0), SHUT_WR (1), SHUT_RDWR (2); the peer
    /// sees the other side of it (for a stream or seqpacket socket).
    pub fn shutdown(&self, read: bool, write: bool) {
        if read {
            self.read_shut.set(true);
        }
        if write {
            self.write_shut.set(true);
            self.own_write_shut.set(true);
        }
        if self.connection() {
            if let Some(p) = self.peer() {
                if write {
                    p.read_shut.set(true);
                }
                // TCP tells the peer nothing of a read shutdown.
                if read && !self.inet() {
                    p.write_shut.set(true);
                }
                p.in_seq.set(p.in_seq.get() + 1);
            }
        }
        self.in_seq.set(self.in_seq.get() + 1);
    }

    /// The pending error, taken (SO_ERROR).
    pub fn take_error(&self) -> Option<Errno> {
        self.error.take()
    }

    /// SO_PEERCRED's process and ids (`None`: not connected).
    pub fn peer_cred(&self) -> Option<Creds> {
        match self.state.get() {
            State::Connected if self.peer_cred.get()[0] != 0 => Some(self.peer_cred.get()),
            _ => None,
        }
    }

    /// The channels a send to it or from it waits on, woken together.
    pub fn peer_chan(&self) -> Option<Chan> {
        self.peer().map(|p| p.chan())
    }
}

/// What a UDP datagram is charged against its receiver's buffer beyond
/// its bytes (Linux charges a buffer's whole size, some 700 bytes for a
/// small one): a flood of empty datagrams fills it too.
const DATAGRAM_OVERHEAD: usize = 512;

/// The largest UDP payload over IPv4 and over IPv6 (65535 less the
/// headers).
const UDP_MAX_V4: usize = 65_507;
const UDP_MAX_V6: usize = 65_527;

/// UDP over loopback: datagrams are delivered at once or dropped, never
/// waited for.
impl UnixSocket {
    /// Sends a UDP datagram of `len` bytes from `src` to `dest` (`None`:
    /// the connected peer, else `EDESTADDRREQ`), binding an ephemeral
    /// port first if unbound. Delivered to the socket bound at the port
    /// unless none matches or its buffer is full (dropped: the send
    /// succeeds all the same, as Linux's); with no socket there, a
    /// connected sender's next call is `ECONNREFUSED` (the ICMP port
    /// unreachable that loopback returns at once). A pending error is
    /// reported first.
    pub fn send_datagram(
        &self,
        dest: Option<InetAddr>,
        len: usize,
        src: Source,
    ) -> Result<usize, IoError> {
        let names = self.ports.clone().ok_or(Errno::EOPNOTSUPP)?;
        let me = self.me.upgrade().ok_or(Errno::EBADF)?;
        if let Some(e) = self.error.take() {
            return Err(e.into());
        }
        if self.write_shut.get() {
            return Err(IoError::BrokenPipe);
        }
        let connected = self.state.get() == State::Connected;
        let dest = match (dest, self.peer_name.borrow().clone()) {
            (Some(d), _) => d,
            (None, Addr::Inet(p)) if connected => p,
            _ => return Err(Errno::EDESTADDRREQ.into()),
        };
        if dest.port == 0 {
            return Err(Errno::EINVAL.into());
        }
        let to_v4 = dest.v4().is_some();
        if !dest.is_local() || (to_v4 && self.family == Family::Inet6 && self.v6only()) {
            return Err(Errno::ENETUNREACH.into());
        }
        if len > if to_v4 { UDP_MAX_V4 } else { UDP_MAX_V6 } {
            return Err(Errno::EMSGSIZE.into());
        }
        self.autobind_udp(&names, &me)?;
        let mut data = Vec::new();
        data.try_reserve_exact(len).map_err(|_| Errno::ENOBUFS)?;
        data.resize(len, 0);
        let got = src(&mut [&mut data[..]])?;
        if got < len {
            return Err(Errno::EFAULT.into());
        }
        // The source the receiver sees: the bound address, or the
        // loopback one of the destination's family for an unspecified one.
        let Addr::Inet(mine) = self.name() else {
            return Err(Errno::EINVAL.into());
        };
        let from = if mine.is_any() {
            InetAddr::loopback(!to_v4, mine.port)
        } else {
            mine
        };
        match names
            .find(&Key::UdpPort(dest.port, !to_v4))
            .filter(|t| t.receives(&dest, &from))
        {
            Some(t) => {
                t.deliver(data, from);
                self.sent_to.set(Some(t.chan()));
            }
            None if connected => self.error.set(Some(Errno::ECONNREFUSED)),
            None => {}
        }
        Ok(got)
    }

    /// Binds an ephemeral port if the socket has none (unbound, or its
    /// port given back by a disconnect), keeping a bound address; the
    /// port.
    fn autobind_udp(&self, names: &Names, me: &Rc<UnixSocket>) -> Result<u16, Errno> {
        let kept = match self.name() {
            Addr::Inet(a) if a.port != 0 => return Ok(a.port),
            Addr::Inet(a) => Some(a),
            _ => None,
        };
        let v6 = self.family == Family::Inet6;
        let any = kept.is_none_or(|a| a.is_any());
        let mapped = kept.is_some_and(|a| a.v6 && a.v4().is_some());
        let port = names.autobind_port(me, v6 && !mapped, v6 && any && !self.v6only())?;
        let a = kept.unwrap_or(InetAddr {
            v6,
            ..InetAddr::default()
        });
        *self.name.borrow_mut() = Addr::Inet(InetAddr { port, ..a });
        Ok(port)
    }

    /// Whether a datagram to `dest` from `from` is this socket's: it is
    /// bound to `dest`'s address or the unspecified one, and connected to
    /// `from` or to no one (Linux's UDP socket lookup).
    fn receives(&self, dest: &InetAddr, from: &InetAddr) -> bool {
        let bound = match self.name() {
            Addr::Inet(a) => a.is_any() || a.to_v6().ip == dest.to_v6().ip,
            _ => false,
        };
        let peer_ok = match (self.state.get(), self.peer_name.borrow().clone()) {
            (State::Connected, Addr::Inet(p)) => {
                p.port == from.port && (p.is_any() || p.to_v6().ip == from.to_v6().ip)
            }
            _ => true,
        };
        bound && peer_ok
    }

    /// Queues datagram `data` from `from` (shown in this socket's family),
    /// unless its buffer is full or its reading is shut: then it is
    /// dropped.
    fn deliver(&self, data: Vec<u8>, from: InetAddr) {
        if self.read_shut.get() {
            return;
        }
        let mut q = self.queue.borrow_mut();
        let used = self.queued.get() + q.len() * DATAGRAM_OVERHEAD;
        if used + data.len() + DATAGRAM_OVERHEAD > RCVBUF {
            return;
        }
        let from = if self.family == Family::Inet6 {
            from.to_v6()
        } else {
            from
        };
        self.queued.set(self.queued.get() + data.len());
        q.push_back(Message {
            data,
            taken: 0,
            files: Vec::new(),
            from: Addr::Inet(from),
            creds: caller_creds(),
        });
        self.in_seq.set(self.in_seq.get() + 1);
    }

    /// A UDP socket's connect (`None`: AF_UNSPEC, dissolving it): sends
    /// without an address go to `to`, and only datagrams from it are
    /// received. Binds an ephemeral port first if unbound; the socket's
    /// unspecified address becomes the loopback one it sends from.
    pub fn connect_udp(&self, to: Option<InetAddr>) -> Result<(), Errno> {
        let names = self.ports.clone().ok_or(Errno::EOPNOTSUPP)?;
        let me = self.me.upgrade().ok_or(Errno::EBADF)?;
        let Some(to) = to else {
            *self.peer_name.borrow_mut() = Addr::Unnamed;
            self.state.set(State::Unconnected);
            // What bind did not fix goes back (Linux's udp_disconnect).
            let (addr_fixed, port_fixed) = self.bind_locks.get();
            if let Addr::Inet(mut a) = self.name() {
                if !port_fixed {
                    names.unbind(self);
                    a.port = 0;
                }
                if !addr_fixed {
                    a = InetAddr {
                        v6: self.family == Family::Inet6,
                        port: a.port,
                        ..InetAddr::default()
                    };
                }
                *self.name.borrow_mut() = if a.port == 0 && !addr_fixed {
                    Addr::Unnamed
                } else {
                    Addr::Inet(a)
                };
            }
            return Ok(());
        };
        let to_v4 = to.v4().is_some();
        if !to.is_local() || (to_v4 && self.family == Family::Inet6 && self.v6only()) {
            return Err(Errno::ENETUNREACH);
        }
        let port = self.autobind_udp(&names, &me)?;
        let local = match self.name() {
            Addr::Inet(a) if !a.is_any() => a,
            _ => InetAddr::loopback(!to_v4, port),
        };
        *self.name.borrow_mut() = Addr::Inet(local);
        *self.peer_name.borrow_mut() = Addr::Inet(to);
        self.state.set(State::Connected);
        Ok(())
    }
}

/// Makes `a` and `b` each other's peer.
fn link(a: &Rc<UnixSocket>, b: &Rc<UnixSocket>) {
    *a.peer.borrow_mut() = Rc::downgrade(b);
    *b.peer.borrow_mut() = Rc::downgrade(a);
}

/// Whether datagram socket `from` may send to `to`: `to` is connected to
/// no one, or to `from` (Linux's unix_may_send).
fn may_send(from: &UnixSocket, to: &UnixSocket) -> bool {
    match to.peer() {
        None => true,
        Some(p) => core::ptr::eq(Rc::as_ptr(&p), from),
    }
}

impl Device for UnixSocket {
    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        // Files sent with the bytes are dropped by a plain read.
        self.receive(len, out, false).map(|r| r.moved)
    }

    fn write(&self, len: usize, src: Source) -> Result<usize, IoError> {
        if self.udp() {
            return self.send_datagram(None, len, src);
        }
        self.send(None, len, src, Vec::new(), caller_creds())
    }

    /// As Linux's unix_poll: a listener is readable with a connection
    /// queued; a connected socket readable with data or once reading
    /// ended, writable while the peer has room, hung up when both ways
    /// are shut; a stream or seqpacket socket never connected is hung up
    /// (and writable).
    fn ready(&self) -> Ready {
        let state = self.state.get();
        if state == State::Listening {
            return Ready {
                read: !self.pending.borrow().is_empty(),
                in_seq: self.in_seq.get(),
                ..Ready::default()
            };
        }
        let peer = self.peer();
        // A stream or seqpacket socket never connected is hung up, as one
        // whose peer is gone, but has nothing to read.
        let unconnected = self.connection() && state == State::Unconnected;
        let gone = self.connection() && peer.is_none();
        let ended = self.read_shut.get() || (gone && !unconnected);
        let room = match &peer {
            Some(p) => p.queued.get() < RCVBUF,
            // A datagram socket with no peer sends anywhere; a stream
            // with none fails at once.
            None => true,
        };
        Ready {
            read: !self.queue.borrow().is_empty() || ended,
            write: room && !self.write_shut.get(),
            hangup: self.read_shut.get() && self.write_shut.get() || gone,
            error: self.error.get().is_some(),
            in_seq: self.in_seq.get(),
            out_seq: peer.map_or(0, |p| p.out_seq.get()),
        }
    }

    fn pollable(&self) -> bool {
        true
    }

    fn timeout_ns(&self, write: bool) -> u64 {
        if write {
            self.sndtimeo_ns.get()
        } else {
            self.rcvtimeo_ns.get()
        }
    }

    /// A stream's bytes queued; a datagram socket's next message (as
    /// Linux's SIOCINQ).
    fn pending_bytes(&self) -> Option<usize> {
        Some(if self.stream() {
            self.queued.get()
        } else {
            self.queue
                .borrow()
                .front()
                .map_or(0, |m| m.data.len() - m.taken)
        })
    }

    fn poll_chans(&self, out: &mut Vec<Chan>) {
        out.push(self.chan());
        if let Some(p) = self.peer() {
            out.push(p.chan());
        }
    }

    fn kind(&self) -> Kind {
        Kind::Socket
    }

    fn wake_on_close(&self) -> Option<[Chan; 2]> {
        let peer = match self.peer() {
            Some(p) => p.chan(),
            None => self.sent_to.take().unwrap_or(self.chan()),
        };
        Some([self.chan(), peer])
    }

    fn more_to_wake_on_close(&self, out: &mut Vec<Chan>) {
        out.extend(self.pending.borrow().iter().filter_map(|c| c.peer_chan()));
    }

    /// The last open file of it is gone: its name is free again; the
    /// peer of a stream or seqpacket socket sees both ways shut, and
    /// `ECONNRESET` if this one had data it never read; a listener's
    /// connections not accepted yet go with it (their connecting ends
    /// see the same).
    fn release(&self) {
        self.released.set(true);
        let unread = !self.queue.borrow().is_empty();
        self.queue.borrow_mut().clear();
        self.queued.set(0);
        if let Some(p) = self.peer() {
            if self.connection() {
                p.read_shut.set(true);
                p.write_shut.set(true);
                if unread {
                    p.error.set(Some(Errno::ECONNRESET));
                }
                *p.peer.borrow_mut() = Weak::new();
            }
            p.in_seq.set(p.in_seq.get() + 1);
        }
        *self.peer.borrow_mut() = Weak::new();
        // Connections never accepted: their connecting ends also get
        // ECONNRESET, as Linux resets an embryo's peer.
        let pending: Vec<_> = self.pending.borrow_mut().drain(..).collect();
        for c in pending {
            let peer = c.peer();
            c.release();
            if let Some(p) = peer {
                p.error.set(Some(Errno::ECONNRESET));
            }
        }
    }

    fn unix_socket(&self) -> Option<&UnixSocket> {
        Some(self)
    }
}
