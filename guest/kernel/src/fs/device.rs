//! Character devices (and the other objects that are not file data:
//! pipes, the console): what `/dev` holds, behind one [`Device`] trait.
//! A read or write that cannot proceed now says which channel to sleep on;
//! the system call sleeps and restarts when woken.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::chan::Chan;
use crate::random;
use guestlib::hypercall;
use vkernel_abi::Errno;

use super::tty;
use super::vfs::{Kind, Sink, Source};
use vkernel_abi::console_kind;

/// Why a read or write did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoError {
    /// It failed with this errno.
    Fail(Errno),
    /// Nothing can be done now: sleep on the channel and try again (or
    /// `EAGAIN` for a non-blocking descriptor).
    WouldBlock(Chan),
    /// A write to a pipe (or stream) no one reads: `EPIPE`, and `SIGPIPE`
    /// for the writer.
    BrokenPipe,
}

impl From<Errno> for IoError {
    fn from(e: Errno) -> Self {
        IoError::Fail(e)
    }
}

/// Readiness, as poll reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    pub read: bool,
    pub write: bool,
    /// The other end is gone (POLLHUP).
    pub hangup: bool,
    /// An error is pending (POLLERR: a pipe's write end with no reader).
    pub error: bool,
    /// Count the events that may have made it readable (data in, the
    /// writer gone) and writable (room made, the reader gone):
    /// edge-triggered epoll reports a ready file again only after the
    /// count of what it waits for moved, as Linux reports after each
    /// wakeup.
    pub in_seq: u64,
    pub out_seq: u64,
}

/// A device (or pipe end) an open file reads and writes.
pub trait Device {
    /// Reads up to `len` bytes into `out`.
    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError>;
    /// Writes up to `len` bytes from `src`.
    fn write(&self, len: usize, src: Source) -> Result<usize, IoError>;
    /// What a read or write would do now.
    fn ready(&self) -> Ready {
        Ready {
            read: true,
            write: true,
            ..Ready::default()
        }
    }
    /// Whether readiness is its own (Linux's `poll` file operation: pipes,
    /// the console, eventfd, epoll). Others are always ready, and epoll
    /// refuses them (`EPERM`), as Linux does `/dev/null`.
    fn pollable(&self) -> bool {
        false
    }
    /// Adds the channels woken when [`Device::ready`] may change (what a
    /// poll of it sleeps on).
    fn poll_chans(&self, _out: &mut Vec<Chan>) {}
    /// The pipe end it is, if it is one (a writer hands bytes straight to
    /// a reader waiting on the same pipe).
    fn pipe_end(&self) -> Option<&super::pipe::PipeEnd> {
        None
    }
    /// Whether mmap of it is memory of zeros (`/dev/zero`: private ones
    /// are anonymous memory, shared ones shared anonymous memory); every
    /// other device is `ENODEV` to mmap.
    fn maps_zero(&self) -> bool {
        false
    }
    /// The epoll instance, if this is one.
    fn epoll(&self) -> Option<&super::epoll::Epoll> {
        None
    }
    /// Bytes a read would find now (FIONREAD), where the device counts
    /// them (pipes, sockets).
    fn pending_bytes(&self) -> Option<usize> {
        None
    }
    /// The Unix domain socket, if this is one.
    fn unix_socket(&self) -> Option<&super::unix::UnixSocket> {
        None
    }
    /// The signalfd, if this is one.
    fn signalfd(&self) -> Option<&super::signalfd::SignalFd> {
        None
    }
    /// The pidfd, if this is one.
    fn pidfd(&self) -> Option<&crate::proc::pidfd::PidFd> {
        None
    }
    /// The timerfd, if this is one.
    fn timerfd(&self) -> Option<&super::timerfd::TimerFd> {
        None
    }
    /// Whether this is a terminal (isatty, the tty ioctls).
    fn is_tty(&self) -> bool {
        false
    }
    /// The terminal with a line discipline this is ([`super::tty`]: the
    /// console when the host's stdin is a terminal, a pty's slave), whose
    /// reads, writes and ioctls the job-control rules govern.
    fn terminal(&self) -> Option<tty::Term> {
        None
    }
    /// The pseudo-terminal whose master this is.
    fn pty_master(&self) -> Option<&Rc<super::pty::Pty>> {
        None
    }
    /// What fstat says it is when it has no node of its own.
    fn kind(&self) -> Kind {
        Kind::CharDevice
    }
    /// The last descriptor of the open file is gone (a pipe end counts
    /// its open files).
    fn release(&self) {}
    /// The channels to wake when an open file of this device closes
    /// (a pipe's: the other side may see end of file or `EPIPE`).
    fn wake_on_close(&self) -> Option<[Chan; 2]> {
        None
    }
    /// How long a blocking read (`write`: a write) of it waits before it
    /// gives up with `EAGAIN`, in ns (0: for ever): a socket's
    /// SO_RCVTIMEO and SO_SNDTIMEO.
    fn timeout_ns(&self, _write: bool) -> u64 {
        0
    }
    /// More channels to wake when an open file of it closes, beyond
    /// [`Device::wake_on_close`]'s two (a listening socket's connections
    /// not accepted yet: their connecting ends see it go).
    fn more_to_wake_on_close(&self, _out: &mut Vec<Chan>) {}
    /// What an open of the node gives, if not the device itself (a fifo:
    /// an end of its pipe; `/dev/ptmx`: a new pty master), or why it
    /// cannot be opened.
    fn open(&self, _read: bool, _write: bool) -> Result<Option<Rc<dyn Device>>, Errno> {
        Ok(None)
    }
    /// A fifo end just opened: whether its other side is open, how many
    /// opens that side has had, and the channel they wake (see
    /// [`super::pipe`]).
    fn fifo_partner(&self) -> Option<(bool, u64, Chan)> {
        None
    }
}

/// Fills `out` with `len` bytes made by `fill`, a page at a time.
fn produce(len: usize, out: Sink, fill: impl Fn(&mut [u8])) -> Result<usize, IoError> {
    let mut chunk = [0u8; 4096];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        fill(&mut chunk[..n]);
        let took = out(&[&chunk[..n]])?;
        done += took;
        if took < n {
            break;
        }
    }
    Ok(done)
}

/// Takes `len` bytes from `src` and drops them.
fn consume(len: usize, src: Source) -> Result<usize, IoError> {
    let mut chunk = [0u8; 4096];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        let got = src(&mut [&mut chunk[..n]])?;
        done += got;
        if got < n {
            break;
        }
    }
    Ok(done)
}

/// `/dev/null`: reads end at once, writes vanish.
pub struct Null;
impl Device for Null {
    fn read(&self, _: usize, _: Sink) -> Result<usize, IoError> {
        Ok(0)
    }
    fn write(&self, len: usize, src: Source) -> Result<usize, IoError> {
        consume(len, src)
    }
}

/// `/dev/zero`: zeros; writes vanish.
pub struct Zero;
impl Device for Zero {
    fn maps_zero(&self) -> bool {
        true
    }
    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        produce(len, out, |b| b.fill(0))
    }
    fn write(&self, len: usize, src: Source) -> Result<usize, IoError> {
        consume(len, src)
    }
}

/// `/dev/full`: zeros; every write is `ENOSPC`.
pub struct Full;
impl Device for Full {
    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        produce(len, out, |b| b.fill(0))
    }
    fn write(&self, _: usize, _: Source) -> Result<usize, IoError> {
        Err(IoError::Fail(Errno::ENOSPC))
    }
}

/// `/dev/random` and `/dev/urandom`: the kernel's random numbers; writes
/// are accepted and dropped (Linux mixes them in).
pub struct Random;
impl Device for Random {
    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        produce(len, out, random::fill)
    }
    fn write(&self, len: usize, src: Source) -> Result<usize, IoError> {
        consume(len, src)
    }
}

/// The host console: reads from the host's stdin, writes to its stdout
/// (or stderr for the handle opened as fd 2 at boot), through the console
/// hypercalls. Each of fds 0-2 is what the host's own fd is (a terminal, a
/// pipe, a file: `kind`, from the boot info), so isatty and fstat answer
/// as they would natively and stdio buffers accordingly.
pub struct Console {
    /// 1: stdout, 2: stderr.
    pub stream: u64,
    /// A `vkernel_abi::console_kind` value.
    pub kind: u8,
}

impl Console {
    /// Whether this is the console as a terminal (the host's stdin is
    /// one), with its line discipline.
    fn is_terminal(&self) -> bool {
        self.kind == console_kind::TTY && tty::active()
    }

    /// A read of the terminal: what the line discipline has (one line in
    /// canonical mode), after one look at the host when it has nothing.
    /// VMIN/VTIME and job control are the system call's (`syscall/tty.rs`).
    fn read_terminal(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        if len == 0 {
            return Ok(0); // takes nothing, not even an end of file
        }
        let mut data = tty::with(|t| t.take(len));
        if data.is_none() && tty::pump() {
            data = tty::with(|t| t.take(len));
        }
        match data {
            Some(d) => Ok(out(&[&d])?),
            None if tty::with(|t| t.hangup) => Ok(0),
            None => Err(IoError::WouldBlock(Chan::ConsoleInput)),
        }
    }

    /// A write to the terminal: held while output is stopped (STOP,
    /// TCOOFF), then through output processing.
    fn write_terminal(&self, len: usize, src: Source) -> Result<usize, IoError> {
        if tty::with(|t| t.stopped) {
            return Err(IoError::WouldBlock(Chan::TtyOutput));
        }
        let mut buf = [0u8; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(buf.len());
            let got = src(&mut [&mut buf[..n]])?;
            if got > 0 {
                match tty::write(self.stream, &buf[..got]) {
                    Ok(()) => {}
                    Err(e) if done == 0 => return Err(IoError::Fail(e)),
                    Err(_) => break,
                }
            }
            done += got;
            if got < n {
                break;
            }
        }
        Ok(done)
    }
}

impl Device for Console {
    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        if self.is_terminal() {
            return self.read_terminal(len, out);
        }
        let mut input = CONSOLE_INPUT.0.borrow_mut();
        if input.len > 0 {
            // What a readiness check took from the host first.
            let n = len.min(input.len);
            let start = input.start;
            let took = out(&[&input.buf[start..start + n]])?;
            input.start += took;
            input.len -= took;
            return Ok(took);
        }
        if input.eof {
            input.eof = false; // the end of input a check saw, read once
            return Ok(0);
        }
        drop(input);
        let mut buf = [0u8; 4096];
        let n = len.min(buf.len());
        match hypercall::console_read(&mut buf[..n]) {
            Ok(got) => Ok(out(&[&buf[..got]])?),
            Err(Errno::EAGAIN) => Err(IoError::WouldBlock(Chan::ConsoleInput)),
            Err(e) => Err(IoError::Fail(e)),
        }
    }

    fn write(&self, len: usize, src: Source) -> Result<usize, IoError> {
        if self.is_terminal() {
            return self.write_terminal(len, src);
        }
        let mut buf = [0u8; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(buf.len());
            let got = src(&mut [&mut buf[..n]])?;
            if got > 0 {
                match hypercall::console_write(self.stream, &buf[..got]) {
                    Ok(_) => {}
                    // The host's reader is gone: EPIPE and SIGPIPE, as a
                    // native writer to that pipe gets.
                    Err(Errno::EPIPE) if done == 0 => return Err(IoError::BrokenPipe),
                    Err(e) if done == 0 => return Err(IoError::Fail(e)),
                    Err(_) => break,
                }
            }
            done += got;
            if got < n {
                break;
            }
        }
        Ok(done)
    }

    fn is_tty(&self) -> bool {
        matches!(self.kind, console_kind::TTY | console_kind::UNKNOWN)
    }

    fn terminal(&self) -> Option<tty::Term> {
        self.is_terminal().then_some(tty::Term::Console)
    }

    fn kind(&self) -> Kind {
        match self.kind {
            console_kind::PIPE => Kind::Fifo,
            console_kind::FILE => Kind::Regular,
            console_kind::SOCKET => Kind::Socket,
            _ => Kind::CharDevice,
        }
    }

    /// Readable when input is buffered or the host has some: one console
    /// read hypercall, whose bytes wait here for the next read (a
    /// terminal's input buffer). Never a spin: with nothing there a poller
    /// sleeps on [`Chan::ConsoleInput`], which the idle hypercall's return
    /// wakes, so a guest waiting on the console costs the host no CPU.
    fn ready(&self) -> Ready {
        if self.is_terminal() {
            if !tty::with(|t| t.readable()) {
                tty::pump();
            }
            return tty::with(|t| Ready {
                read: t.readable(),
                write: !t.stopped,
                in_seq: t.seq,
                ..Ready::default()
            });
        }
        let mut input = CONSOLE_INPUT.0.borrow_mut();
        if input.len == 0 && !input.eof {
            let i = &mut *input;
            match hypercall::console_read(&mut i.buf) {
                Ok(0) => i.eof = true,
                Ok(n) => (i.start, i.len) = (0, n),
                Err(_) => {}
            }
            if i.len > 0 || i.eof {
                i.seq += 1;
            }
        }
        Ready {
            read: input.len > 0 || input.eof,
            write: true,
            in_seq: input.seq,
            ..Ready::default()
        }
    }

    /// A host stream that is a regular file or `/dev/null` is always
    /// ready, and epoll refuses it (`EPERM`), as natively.
    fn pollable(&self) -> bool {
        !matches!(self.kind, console_kind::FILE | console_kind::CHAR_DEVICE)
    }

    fn poll_chans(&self, out: &mut Vec<Chan>) {
        out.push(Chan::ConsoleInput);
        if self.is_terminal() {
            out.push(Chan::TtyOutput);
        }
    }
}

/// Console input a readiness check took from the host and no read has
/// yet: one buffer, as there is one host stdin.
struct ConsoleInput {
    buf: [u8; 4096],
    start: usize,
    len: usize,
    /// The host said end of input; the next read returns 0.
    eof: bool,
    /// Input arrivals seen by readiness checks (`Ready::in_seq`).
    seq: u64,
}

/// Whether console input waits in the kernel's buffer: a readiness check
/// took it from the host, so the host's idle will not announce it; the
/// checker wakes [`Chan::ConsoleInput`]'s readers instead.
pub fn console_buffered() -> bool {
    if tty::active() {
        return tty::with(|t| t.readable());
    }
    CONSOLE_INPUT
        .0
        .try_borrow()
        .is_ok_and(|i| i.len > 0 || i.eof)
}

struct ConsoleCell(RefCell<ConsoleInput>);
// SAFETY: the guest kernel runs on one vCPU with no threads or interrupts;
// nothing else can touch the cell.
unsafe impl Sync for ConsoleCell {}

static CONSOLE_INPUT: ConsoleCell = ConsoleCell(RefCell::new(ConsoleInput {
    buf: [0; 4096],
    start: 0,
    len: 0,
    eof: false,
    seq: 0,
}));

/// The devices `/dev` holds, by name, with their device numbers.
pub fn builtin(name: &[u8]) -> Option<(Rc<dyn Device>, u64)> {
    let dev = |major: u64, minor: u64| (major << 8) | minor;
    Some(match name {
        b"null" => (Rc::new(Null) as Rc<dyn Device>, dev(1, 3)),
        b"zero" => (Rc::new(Zero), dev(1, 5)),
        b"full" => (Rc::new(Full), dev(1, 7)),
        b"random" => (Rc::new(Random), dev(1, 8)),
        b"urandom" => (Rc::new(Random), dev(1, 9)),
        b"tty" => (
            Rc::new(Console {
                stream: 1,
                kind: console_kind::TTY,
            }),
            dev(5, 0),
        ),
        b"console" => (
            Rc::new(Console {
                stream: 1,
                kind: console_kind::TTY,
            }),
            dev(5, 1),
        ),
        b"ptmx" => (Rc::new(super::pty::Ptmx), dev(5, 2)),
        _ => return None,
    })
}
