//! Unix domain sockets (Linux's net/unix/af_unix.c), as connected pairs:
//! `socketpair(AF_UNIX, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET)`.
//! Each socket holds what its peer sent, as messages: a stream reads
//! across them (stopping before one that carries descriptors, as Linux
//! does), a datagram or seqpacket socket reads one message per call and
//! drops what does not fit. Messages may carry open files
//! (`SCM_RIGHTS`), which the receiver's `recvmsg` installs.
//!
//! Flow control as Linux's: a socket takes at most [`RCVBUF`] bytes from
//! its peer; a stream write takes what fits and comes back for the rest,
//! a datagram waits until the whole message fits. A stream whose peer is
//! gone reads end of file and writes `EPIPE`; a datagram socket whose
//! peer is gone writes `ECONNREFUSED`.
//!
//! Not here: addresses (`socket`, `bind`, `connect`, `listen`,
//! `accept`), which the system call layer refuses with a log line.
//! A socket whose own queue holds a descriptor of itself is kept alive
//! by it (Linux collects such cycles; here they live until the run ends).

use alloc::collections::VecDeque;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::sync::atomic::{AtomicU64, Ordering};

use super::device::{Device, IoError, Ready};
use super::file::OpenFile;
use super::vfs::{Kind, Sink, Source};
use crate::chan::Chan;
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

/// One message in a socket's queue.
struct Message {
    data: Vec<u8>,
    /// Bytes of it a stream read already took.
    taken: usize,
    /// Open files it carries (SCM_RIGHTS); they go with its first byte.
    files: Vec<Rc<OpenFile>>,
}

/// One end of a connected pair.
pub struct UnixSocket {
    id: u64,
    pub kind: SockType,
    queue: RefCell<VecDeque<Message>>,
    /// Bytes in `queue` not taken yet.
    queued: Cell<usize>,
    peer: RefCell<Weak<UnixSocket>>,
    /// shutdown(SHUT_RD) here, or the peer shut its writing down (or is
    /// gone, for a stream): reads end once the queue is empty.
    read_shut: Cell<bool>,
    /// shutdown(SHUT_WR) here, or the peer shut its reading down.
    write_shut: Cell<bool>,
    /// The peer went away leaving data unread here... or here unread
    /// data was lost with the peer: `ECONNRESET` once.
    error: Cell<Option<Errno>>,
    /// The process that made the pair (SO_PEERCRED).
    creator: u32,
    /// For edge-triggered epoll: data in, room made.
    in_seq: Cell<u64>,
    out_seq: Cell<u64>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a receive took: the bytes moved, the message's full length
/// (datagrams: for MSG_TRUNC), and the files it carried.
pub struct Received {
    pub moved: usize,
    pub full: usize,
    pub files: Vec<Rc<OpenFile>>,
}

impl UnixSocket {
    fn new(kind: SockType, creator: u32) -> Rc<UnixSocket> {
        Rc::new(UnixSocket {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            kind,
            queue: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            peer: RefCell::new(Weak::new()),
            read_shut: Cell::new(false),
            write_shut: Cell::new(false),
            error: Cell::new(None),
            creator,
            in_seq: Cell::new(0),
            out_seq: Cell::new(0),
        })
    }

    /// A connected pair (socketpair), made by process `creator`.
    pub fn pair(kind: SockType, creator: u32) -> (Rc<UnixSocket>, Rc<UnixSocket>) {
        let (a, b) = (
            UnixSocket::new(kind, creator),
            UnixSocket::new(kind, creator),
        );
        *a.peer.borrow_mut() = Rc::downgrade(&b);
        *b.peer.borrow_mut() = Rc::downgrade(&a);
        (a, b)
    }

    /// Woken when its queue or its peer changes.
    pub fn chan(&self) -> Chan {
        Chan::Socket(self.id)
    }

    fn peer(&self) -> Option<Rc<UnixSocket>> {
        self.peer.borrow().upgrade()
    }

    fn stream(&self) -> bool {
        self.kind == SockType::Stream
    }

    /// Sends `len` bytes from `src` with `files` to the peer. A stream
    /// takes what fits (at least one byte, or it waits); a message waits
    /// until all of it fits (`EMSGSIZE` if it never can).
    pub fn send(
        &self,
        len: usize,
        src: Source,
        files: Vec<Rc<OpenFile>>,
    ) -> Result<usize, IoError> {
        if self.write_shut.get() {
            return Err(IoError::BrokenPipe);
        }
        let Some(peer) = self.peer() else {
            return Err(if self.stream() || self.kind == SockType::Seqpacket {
                IoError::BrokenPipe
            } else {
                IoError::Fail(Errno::ECONNREFUSED)
            });
        };
        if peer.read_shut.get() {
            return Err(IoError::BrokenPipe);
        }
        if !self.stream() && len > RCVBUF {
            return Err(Errno::EMSGSIZE.into());
        }
        let room = RCVBUF.saturating_sub(peer.queued.get());
        let n = if self.stream() { len.min(room) } else { len };
        if (self.stream() && n == 0 && len > 0) || (!self.stream() && room < len) {
            return Err(IoError::WouldBlock(peer.chan()));
        }
        let mut data = Vec::new();
        data.try_reserve_exact(n).map_err(|_| Errno::ENOBUFS)?;
        data.resize(n, 0);
        let got = src(&mut [&mut data[..]])?;
        data.truncate(got);
        if got == 0 && n > 0 {
            return Err(Errno::EFAULT.into());
        }
        peer.queued.set(peer.queued.get() + got);
        peer.queue.borrow_mut().push_back(Message {
            data,
            taken: 0,
            files,
        });
        peer.in_seq.set(peer.in_seq.get() + 1);
        Ok(got)
    }

    /// Receives up to `len` bytes into `out` (`peek`: leaving them
    /// queued). End of file (0) for a stream whose writer is gone.
    pub fn receive(&self, len: usize, out: Sink, peek: bool) -> Result<Received, IoError> {
        if let Some(e) = self.error.take() {
            return Err(e.into());
        }
        let mut q = self.queue.borrow_mut();
        if q.is_empty() {
            let ended =
                self.read_shut.get() || (self.kind != SockType::Dgram && self.peer().is_none());
            if ended {
                return Ok(Received {
                    moved: 0,
                    full: 0,
                    files: Vec::new(),
                });
            }
            return Err(IoError::WouldBlock(self.chan()));
        }
        let mut r = Received {
            moved: 0,
            full: 0,
            files: Vec::new(),
        };
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
        }
        if self.kind != SockType::Dgram {
            if let Some(p) = self.peer() {
                if write {
                    p.read_shut.set(true);
                }
                if read {
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

    /// Who made it (SO_PEERCRED).
    pub fn creator(&self) -> u32 {
        self.creator
    }
}

impl Device for UnixSocket {
    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        // Files sent with the bytes are dropped by a plain read.
        self.receive(len, out, false).map(|r| r.moved)
    }

    fn write(&self, len: usize, src: Source) -> Result<usize, IoError> {
        self.send(len, src, Vec::new())
    }

    /// As Linux's unix_poll: readable with data or once reading ended,
    /// writable while the peer has room, hung up when both ways are shut.
    fn ready(&self) -> Ready {
        let peer = self.peer();
        let ended = self.read_shut.get() || (self.kind != SockType::Dgram && peer.is_none());
        let room = peer.as_ref().is_some_and(|p| p.queued.get() < RCVBUF)
            || (self.kind != SockType::Dgram && peer.is_none());
        Ready {
            read: !self.queue.borrow().is_empty() || ended,
            write: room && !self.write_shut.get(),
            hangup: self.read_shut.get() && self.write_shut.get()
                || (self.kind != SockType::Dgram && peer.is_none()),
            error: self.error.get().is_some(),
            in_seq: self.in_seq.get(),
            out_seq: peer.map_or(0, |p| p.out_seq.get()),
        }
    }

    fn pollable(&self) -> bool {
        true
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
        let peer = self.peer().map_or(self.chan(), |p| p.chan());
        Some([self.chan(), peer])
    }

    /// The last open file of it is gone: the peer of a stream or
    /// seqpacket socket sees both ways shut, and `ECONNRESET` if this one
    /// had data it never read.
    fn release(&self) {
        let unread = !self.queue.borrow().is_empty();
        self.queue.borrow_mut().clear();
        self.queued.set(0);
        if let Some(p) = self.peer() {
            if self.kind != SockType::Dgram {
                p.read_shut.set(true);
                p.write_shut.set(true);
                if unread {
                    p.error.set(Some(Errno::ECONNRESET));
                }
            }
            p.in_seq.set(p.in_seq.get() + 1);
            *p.peer.borrow_mut() = Weak::new();
        }
        *self.peer.borrow_mut() = Weak::new();
    }

    fn unix_socket(&self) -> Option<&UnixSocket> {
        Some(self)
    }
}
