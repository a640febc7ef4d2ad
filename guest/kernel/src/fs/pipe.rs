//! Pipes (xv6's pipe.c, with Linux's rules): a 64 KiB ring; a reader with
//! nothing to read sleeps on the pipe's readable channel, a writer with no
//! room on its writable channel; a read with no writer left is end of file,
//! a write with no reader left is `EPIPE` (and `SIGPIPE`). Writes of at
//! most `PIPE_BUF` bytes are atomic: they wait for room for all of it.
//! A fifo is a pipe reached through a name; opening one for reading
//! waits for a writer to open it, and for writing waits for a reader
//! (`O_NONBLOCK`: a reader goes on, a writer gets `ENXIO`), as Linux's
//! fifo_open; `O_RDWR` is both ends and never waits.
//!
//! A write to an empty pipe while a reader sleeps in `read` skips the
//! ring: its bytes go straight into the reader's buffer, and the read
//! returns them (`syscall::fd::hand_to_reader`; under `pmap=host` one
//! `vmspace_copy` instead of a pread into the ring and a pwrite out); a
//! read that empties the ring with room left takes more straight from a
//! writer asleep in `write` (`syscall::fd::take_from_writer`).

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::device::{Device, IoError, Ready};
use super::vfs::{Sink, Source};
use crate::chan::Chan;

/// Capacity (Linux's default pipe size).
pub const PIPE_SIZE: usize = 64 * 1024;
/// The smallest capacity (F_SETPIPE_SZ rounds up to it).
const PAGE_SIZE: usize = 4096;
/// Writes up to this size are atomic (Linux's `PIPE_BUF`).
pub const PIPE_BUF: usize = 4096;

/// The pipe itself, shared by its ends.
pub struct Pipe {
    id: u64,
    ring: RefCell<Ring>,
    readers: Cell<u32>,
    writers: Cell<u32>,
    /// Opens of a fifo for reading and for writing so far: a blocking
    /// open waits for the other side's count to move (Linux's r_counter,
    /// w_counter).
    read_opens: Cell<u64>,
    write_opens: Cell<u64>,
    /// A fifo's (its opens wait for their partner); an anonymous pipe's
    /// ends reopened through /proc/PID/fd never wait, as in Linux.
    named: bool,
    /// Events for edge-triggered epoll (`Ready::seq`): data written or a
    /// writer gone (the read end's), room made or a reader gone (the
    /// write end's).
    in_seq: Cell<u64>,
    out_seq: Cell<u64>,
}

struct Ring {
    buf: Vec<u8>,
    head: usize,
    len: usize,
}

/// One end of a pipe, as an open file's device: the read end, the write
/// end, or both (a fifo opened `O_RDWR`).
pub struct PipeEnd {
    pipe: Rc<Pipe>,
    read: bool,
    write: bool,
}

/// Pipe ids for channels: never reused.
static NEXT_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

impl Pipe {
    fn new(named: bool) -> Rc<Pipe> {
        Rc::new(Pipe {
            id: NEXT_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
            ring: RefCell::new(Ring {
                buf: vec![0; PIPE_SIZE],
                head: 0,
                len: 0,
            }),
            readers: Cell::new(0),
            writers: Cell::new(0),
            read_opens: Cell::new(0),
            write_opens: Cell::new(0),
            named,
            in_seq: Cell::new(0),
            out_seq: Cell::new(0),
        })
    }

    /// A new pipe's read and write ends. Each end counts once however many
    /// descriptors share its open file (as Linux counts `struct file`s):
    /// the count drops when the open file is released.
    pub fn new_pair() -> (Rc<PipeEnd>, Rc<PipeEnd>) {
        let p = Pipe::new(false);
        p.readers.set(1);
        p.writers.set(1);
        (
            Rc::new(PipeEnd {
                pipe: p.clone(),
                read: true,
                write: false,
            }),
            Rc::new(PipeEnd {
                pipe: p,
                read: false,
                write: true,
            }),
        )
    }

    /// The device behind a fifo's name: each open makes an end of one pipe.
    pub fn new_fifo() -> Rc<dyn Device> {
        Rc::new(Fifo {
            pipe: Pipe::new(true),
        })
    }

    /// Its id (also the inode number fstat reports).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The channels woken when the pipe changes.
    pub fn readable_chan(&self) -> Chan {
        Chan::PipeReadable(self.id)
    }
    pub fn writable_chan(&self) -> Chan {
        Chan::PipeWritable(self.id)
    }
}

impl PipeEnd {
    /// The pipe this end belongs to.
    pub fn pipe(&self) -> &Pipe {
        &self.pipe
    }

    /// F_GETPIPE_SZ: the pipe's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.pipe.ring.borrow().buf.len()
    }

    /// F_SETPIPE_SZ, as Linux's pipe_set_size: the size rounded up to a
    /// power of two pages (at least one); `EBUSY` if what the pipe holds
    /// would not fit; `EINVAL` past 2^31. Returns the new capacity.
    /// (Past `/proc/sys/fs/pipe-max-size`, 1 MiB, Linux wants
    /// CAP_SYS_RESOURCE: every process here is root.)
    pub fn set_capacity(&self, size: u64) -> Result<usize, vkernel_abi::Errno> {
        use vkernel_abi::Errno;
        let size = size.max(PAGE_SIZE as u64);
        if size > 1 << 31 {
            return Err(Errno::EINVAL);
        }
        let size = size.next_power_of_two() as usize;
        let mut r = self.pipe.ring.borrow_mut();
        if r.len > size {
            return Err(Errno::EBUSY);
        }
        let mut buf = Vec::new();
        buf.try_reserve_exact(size).map_err(|_| Errno::ENOMEM)?;
        buf.resize(size, 0);
        // The bytes held, from the head on, to the new ring's start.
        let (head, cap, len) = (r.head, r.buf.len(), r.len);
        let first = len.min(cap - head);
        buf[..first].copy_from_slice(&r.buf[head..head + first]);
        buf[first..len].copy_from_slice(&r.buf[..len - first]);
        r.buf = buf;
        r.head = 0;
        Ok(size)
    }

    /// Whether it is a read end (or both).
    pub fn reads(&self) -> bool {
        self.read
    }

    /// Whether a write through this end may hand its bytes straight to a
    /// reader sleeping in `read` (see `syscall::fd`): it is a write end,
    /// a reader is left, and the ring is empty, so nothing written before
    /// would be overtaken.
    pub fn may_hand_over(&self) -> bool {
        self.write && self.pipe.readers.get() > 0 && self.pipe.ring.borrow().len == 0
    }

    /// Whether a read through this end that emptied the ring may take
    /// more straight from a writer sleeping in `write` (see `syscall::fd`):
    /// it is a read end and the ring is empty, so those bytes come next.
    pub fn may_take_over(&self) -> bool {
        self.read && self.pipe.ring.borrow().len == 0
    }

    /// Whether it is a write end (or both).
    pub fn writes(&self) -> bool {
        self.write
    }

    /// Counts `n` bytes a writer handed straight to a reader: they came
    /// in and went out at once (edge-triggered epoll sees both events).
    /// Copies up to `max` bytes a read would take, leaving them in the
    /// pipe (splice moves them on only once their destination took
    /// them: [`PipeEnd::consume`]).
    pub fn peek(&self, max: usize) -> Vec<u8> {
        let r = self.pipe.ring.borrow();
        let n = max.min(r.len);
        let cap = r.buf.len();
        let mut out = Vec::new();
        if out.try_reserve_exact(n).is_err() {
            return out;
        }
        for i in 0..n {
            out.push(r.buf[(r.head + i) % cap]);
        }
        out
    }

    /// Drops `n` bytes from the front of the pipe, as a read of them.
    pub fn consume(&self, n: usize) {
        let p = &self.pipe;
        let mut r = p.ring.borrow_mut();
        let n = n.min(r.len);
        let cap = r.buf.len();
        r.head = (r.head + n) % cap;
        r.len -= n;
        if n > 0 {
            p.out_seq.set(p.out_seq.get() + 1);
        }
    }

    /// Bytes the pipe can take now.
    pub fn room(&self) -> usize {
        let r = self.pipe.ring.borrow();
        r.buf.len() - r.len
    }

    /// Whether no writer is left (a read of an empty pipe ends).
    pub fn no_writers(&self) -> bool {
        self.pipe.writers.get() == 0
    }

    /// Whether no reader is left (a write is EPIPE).
    pub fn no_readers(&self) -> bool {
        self.pipe.readers.get() == 0
    }

    pub fn handed_over(&self, n: usize) {
        if n > 0 {
            let p = &self.pipe;
            p.in_seq.set(p.in_seq.get() + 1);
            p.out_seq.set(p.out_seq.get() + 1);
        }
    }
}

impl Device for PipeEnd {
    fn pipe_end(&self) -> Option<&PipeEnd> {
        Some(self)
    }

    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        if !self.read {
            return Err(IoError::Fail(vkernel_abi::Errno::EBADF));
        }
        let p = &self.pipe;
        let mut r = p.ring.borrow_mut();
        if r.len == 0 {
            if p.writers.get() == 0 {
                return Ok(0);
            }
            return Err(IoError::WouldBlock(p.readable_chan()));
        }
        // The data is at most two runs of the ring: one copy for both.
        let n = len.min(r.len);
        let (head, cap) = (r.head, r.buf.len());
        let first = n.min(cap - head);
        let (wrapped, tail) = r.buf.split_at(head);
        let pieces = [&tail[..first], &wrapped[..n - first]];
        let done = out(&pieces).map_err(IoError::Fail)?;
        r.head = (head + done) % cap;
        r.len -= done;
        if done > 0 {
            p.out_seq.set(p.out_seq.get() + 1);
        }
        Ok(done)
    }

    fn write(&self, len: usize, src: Source) -> Result<usize, IoError> {
        if !self.write {
            return Err(IoError::Fail(vkernel_abi::Errno::EBADF));
        }
        let p = &self.pipe;
        if p.readers.get() == 0 {
            return Err(IoError::BrokenPipe);
        }
        let mut r = p.ring.borrow_mut();
        let cap = r.buf.len();
        let room = cap - r.len;
        // Small writes wait for room for all of it (atomic); large ones
        // take what fits and the caller comes back for the rest.
        if room == 0 || (len <= PIPE_BUF && room < len) {
            return Err(IoError::WouldBlock(p.writable_chan()));
        }
        // The room is at most two runs of the ring: one copy for both.
        let n = len.min(room);
        let at = (r.head + r.len) % cap;
        let first = n.min(cap - at);
        let (wrapped, tail) = r.buf.split_at_mut(at);
        let mut pieces = [&mut tail[..first], &mut wrapped[..n - first]];
        let done = src(&mut pieces).map_err(IoError::Fail)?;
        r.len += done;
        if done > 0 {
            p.in_seq.set(p.in_seq.get() + 1);
        }
        Ok(done)
    }

    /// As Linux's pipe_poll: the read end is readable with data, and
    /// hung up (POLLHUP) with no writer left; the write end is writable
    /// with room, and in error (POLLERR) with no reader left (an end
    /// that is both is both).
    fn ready(&self) -> Ready {
        let p = &self.pipe;
        let r = p.ring.borrow();
        let mut ready = Ready::default();
        if self.write {
            ready.write = r.len < r.buf.len();
            ready.error = p.readers.get() == 0;
            ready.out_seq = p.out_seq.get();
        }
        if self.read {
            ready.read = r.len > 0;
            ready.hangup = p.writers.get() == 0;
            ready.in_seq = p.in_seq.get();
        }
        ready
    }

    fn pollable(&self) -> bool {
        true
    }

    fn pending_bytes(&self) -> Option<usize> {
        Some(if self.read {
            self.pipe.ring.borrow().len
        } else {
            0
        })
    }

    fn poll_chans(&self, out: &mut Vec<Chan>) {
        if self.write {
            out.push(self.pipe.writable_chan());
        }
        if self.read {
            out.push(self.pipe.readable_chan());
        }
    }

    fn kind(&self) -> super::vfs::Kind {
        super::vfs::Kind::Fifo
    }

    fn wake_on_close(&self) -> Option<[Chan; 2]> {
        Some([self.pipe.readable_chan(), self.pipe.writable_chan()])
    }

    fn release(&self) {
        let p = &self.pipe;
        if self.write {
            p.writers.set(p.writers.get().saturating_sub(1));
            p.in_seq.set(p.in_seq.get() + 1);
        }
        if self.read {
            p.readers.set(p.readers.get().saturating_sub(1));
            p.out_seq.set(p.out_seq.get() + 1);
        }
    }

    /// A fifo's end opened by a process (not yet sure of its partner):
    /// whether the other side has an end open, how many opens it has had
    /// (a blocking open waits for that to move), and the channel its
    /// opens wake.
    fn fifo_partner(&self) -> Option<(bool, u64, Chan)> {
        let p = &self.pipe;
        if !p.named {
            return None;
        }
        match (self.read, self.write) {
            (true, false) => Some((p.writers.get() > 0, p.write_opens.get(), p.readable_chan())),
            (false, true) => Some((p.readers.get() > 0, p.read_opens.get(), p.writable_chan())),
            _ => None,
        }
    }

    /// Opened again through `/proc/PID/fd/N`: an end of the same pipe, as
    /// a fifo's open gives.
    fn open(&self, read: bool, write: bool) -> Result<Option<Rc<dyn Device>>, vkernel_abi::Errno> {
        Ok(Some(Fifo::end(&self.pipe, read, write)))
    }
}

/// A named pipe: opening it gives an end of its one pipe.
struct Fifo {
    pipe: Rc<Pipe>,
}

impl Fifo {
    /// A new counted end of `pipe`: opening it wakes whoever waits for
    /// this side to appear.
    fn end(pipe: &Rc<Pipe>, read: bool, write: bool) -> Rc<dyn Device> {
        if read {
            pipe.readers.set(pipe.readers.get() + 1);
            pipe.read_opens.set(pipe.read_opens.get() + 1);
        }
        if write {
            pipe.writers.set(pipe.writers.get() + 1);
            pipe.write_opens.set(pipe.write_opens.get() + 1);
        }
        Rc::new(PipeEnd {
            pipe: pipe.clone(),
            read,
            write,
        })
    }
}

impl Device for Fifo {
    /// Each open is an end of the fifo's one pipe (`O_RDWR`: both).
    fn open(&self, read: bool, write: bool) -> Result<Option<Rc<dyn Device>>, vkernel_abi::Errno> {
        Ok(Some(Fifo::end(&self.pipe, read, write)))
    }

    // The fifo's own node is never read or written (`open` gives an end);
    // these refuse, should one slip by.
    fn read(&self, _: usize, _: Sink) -> Result<usize, IoError> {
        Err(IoError::Fail(vkernel_abi::Errno::EINVAL))
    }
    fn write(&self, _: usize, _: Source) -> Result<usize, IoError> {
        Err(IoError::Fail(vkernel_abi::Errno::EINVAL))
    }
}
