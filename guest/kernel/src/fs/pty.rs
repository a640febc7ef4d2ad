//! Pseudo-terminals, as Linux's Unix98 ptys (drivers/tty/pty.c) and
//! devpts. Each open of `/dev/ptmx` makes a pair: the master, which the
//! opener holds, and the slave `/dev/pts/N`, a terminal with the same
//! line discipline as the console ([`super::tty::Tty`]). What the master
//! writes is the slave's input (edited, echoed, turned into signals);
//! what the slave writes goes through output processing to the master.
//!
//! A new slave is locked until the master unlocks it (`TIOCSPTLCK`, what
//! glibc's `unlockpt` does); opening it before is `EIO`. When the master
//! closes, the slave hangs up: its name goes, its reads end, its writes
//! are `EIO`, and the session it controlled gets `SIGHUP` (queued here,
//! sent by the process layer: [`take_hangups`]). When the last slave
//! closes, the master's reads are `EIO` and it polls `POLLHUP`.
//!
//! Bytes wait in two places, as in Linux: slave output the master has
//! not read ([`OUT_MAX`], then slave writers wait), and master input the
//! slave's line discipline has no room for yet ([`FLIP_MAX`], Linux's
//! flip buffer; then master writers wait).

use alloc::collections::VecDeque;
use alloc::format;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use vkernel_abi::Errno;

use super::device::{Device, IoError, Ready};
use super::tmpfs::{self, Node, Tmpfs};
use super::tty::{Term, Tty};
use super::vfs::{Inode, InodeRef, Sink, Source};
use crate::chan::Chan;
use crate::mm::physmem::Frames;

/// Most ptys at once (Linux's default `kernel.pty.max`).
pub const PTY_MAX: usize = 4096;
/// Slave output the master has not read before slave writers wait.
const OUT_MAX: usize = 64 * 1024;
/// Master input held back from a full line discipline before master
/// writers wait (Linux's flip-buffer limit).
const FLIP_MAX: usize = 64 * 1024;
/// The device number of the devpts file system (`st_dev`).
pub const DEV_DEVPTS: u64 = 0x08;
/// The slaves' major number (Linux's UNIX98_PTY_SLAVE_MAJOR).
const SLAVE_MAJOR: u64 = 136;

/// Packet-mode status bytes (`TIOCPKT_*`).
pub const PKT_FLUSHREAD: u8 = 1;
pub const PKT_FLUSHWRITE: u8 = 2;
pub const PKT_STOP: u8 = 4;
pub const PKT_START: u8 = 8;

/// `st_rdev` of a device: Linux's `new_encode_dev`.
pub const fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12)
}

/// One master/slave pair.
pub struct Pty {
    /// N of `/dev/pts/N`.
    pub index: u32,
    /// Unique over the kernel's life (an index is reused): its channel.
    id: u64,
    /// The slave: line discipline, settings, session and foreground.
    pub tty: RefCell<Tty>,
    /// Slave output (and input echo) for the master to read.
    to_master: RefCell<VecDeque<u8>>,
    /// Master input the line discipline has no room for yet.
    held: RefCell<VecDeque<u8>>,
    master_open: Cell<bool>,
    /// Open files of the slave, and whether there ever was one (until
    /// then a master read waits rather than fail).
    slaves: Cell<u32>,
    slave_opened: Cell<bool>,
    /// `TIOCSPTLCK`: the slave cannot be opened.
    pub locked: Cell<bool>,
    /// The master's own output stopped (`TCXONC` `TCOOFF` on it).
    pub master_stopped: Cell<bool>,
    /// Packet mode (`TIOCPKT`) and its pending status bits.
    pub packet: Cell<bool>,
    pub packet_status: Cell<u8>,
    /// Its `/dev/pts` entry.
    node: RefCell<Option<InodeRef>>,
    /// Event counts for edge-triggered epoll: bytes for the master, bytes
    /// for the slave, room made.
    master_seq: Cell<u64>,
    slave_seq: Cell<u64>,
    room_seq: Cell<u64>,
}

impl Pty {
    /// The channel both sides sleep on.
    pub fn chan(&self) -> Chan {
        Chan::Pty(self.id)
    }

    /// The slave's `/dev/pts` entry.
    pub fn node(&self) -> Option<InodeRef> {
        self.node.borrow().clone()
    }

    /// The master is gone: the slave is hung up.
    pub fn hung_up(&self) -> bool {
        !self.master_open.get()
    }

    /// Every slave that was opened has closed again.
    fn slave_gone(&self) -> bool {
        self.slave_opened.get() && self.slaves.get() == 0
    }

    /// Bytes the master can read now.
    pub fn master_pending(&self) -> usize {
        self.to_master.borrow().len()
    }

    /// Moves held-back master input into the line discipline while it
    /// has room; the echo goes to the master.
    pub fn feed(&self) {
        let mut echo = Vec::new();
        let (was, now) = {
            let mut t = self.tty.borrow_mut();
            let mut held = self.held.borrow_mut();
            let was = t.stopped;
            let mut moved = false;
            while let Some(&c) = held.front() {
                // An echo is at most a few bytes (`^C`, a tab's rub-out
                // is at most 8); without the heap for it, the byte waits.
                if t.throttled() || echo.try_reserve(16).is_err() {
                    break;
                }
                held.pop_front();
                t.receive_byte(c, &mut echo);
                moved = true;
            }
            if moved {
                t.seq += 1;
                self.slave_seq.set(self.slave_seq.get() + 1);
            }
            (was, t.stopped)
        };
        if was != now {
            self.add_status(if now { PKT_STOP } else { PKT_START });
        }
        // Echo the master has no room for is lost, as n_tty's when its
        // echo buffer is full.
        let _ = self.to_master_extend(&echo);
    }

    /// Output for the master to read. False if the kernel heap has no
    /// room for it (nothing is added).
    pub fn to_master_extend(&self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        let mut q = self.to_master.borrow_mut();
        if q.try_reserve(bytes.len()).is_err() {
            return false;
        }
        q.extend(bytes);
        self.master_seq.set(self.master_seq.get() + 1);
        true
    }

    /// A packet-mode event for the master's next read.
    pub fn add_status(&self, bits: u8) {
        if self.packet.get() {
            self.packet_status.set(self.packet_status.get() | bits);
            self.master_seq.set(self.master_seq.get() + 1);
        }
    }

    /// Drops slave output the master has not read (TCOFLUSH on the
    /// slave, TCIFLUSH on the master).
    pub fn flush_to_master(&self) {
        self.to_master.borrow_mut().clear();
        self.room_seq.set(self.room_seq.get() + 1);
    }

    /// Drops master input not yet in the line discipline.
    pub fn flush_held(&self) {
        self.held.borrow_mut().clear();
        self.room_seq.set(self.room_seq.get() + 1);
    }

    /// Puts `bytes` in the slave's input, as if the master wrote them
    /// (TCIOFF/TCION on the master send STOP/START this way). False if
    /// the kernel heap has no room for them (nothing is taken).
    pub fn input(&self, bytes: &[u8]) -> bool {
        {
            let mut held = self.held.borrow_mut();
            if held.try_reserve(bytes.len()).is_err() {
                return false;
            }
            held.extend(bytes);
        }
        self.feed();
        true
    }

    /// The master's last file closed: the slave hangs up (Linux's
    /// `pty_close` then `tty_vhangup` of the slave).
    fn master_closed(&self) {
        self.master_open.set(false);
        let (sid, pgrp) = {
            let mut t = self.tty.borrow_mut();
            t.hangup = true;
            (
                core::mem::take(&mut t.session),
                core::mem::take(&mut t.pgrp),
            )
        };
        let name = format!("{}", self.index);
        let mut d = DEVPTS.0.borrow_mut();
        if sid != 0 {
            d.hangups.push((sid, pgrp));
        }
        if let Some(slot) = d.ptys.get_mut(self.index as usize) {
            *slot = None;
        }
        let root = d.root.clone();
        drop(d);
        if let Some(root) = root {
            let _ = root.unlink(name.as_bytes(), false);
        }
        self.node.borrow_mut().take();
    }
}

/// The devpts instance: its root, the live pairs by index, and the
/// hangups not yet delivered.
struct Devpts {
    root: Option<Rc<Node>>,
    ptys: Vec<Option<Rc<Pty>>>,
    next_id: u64,
    hangups: Vec<(u32, u32)>,
}

struct DevptsCell(RefCell<Devpts>);
// SAFETY: the guest kernel runs on one vCPU with no threads or interrupts;
// nothing else can touch the cell.
unsafe impl Sync for DevptsCell {}

static DEVPTS: DevptsCell = DevptsCell(RefCell::new(Devpts {
    root: None,
    ptys: Vec::new(),
    next_id: 0,
    hangups: Vec::new(),
}));

/// Makes the devpts file system (mounted on `/dev/pts`): a directory
/// that holds `ptmx` (mode 0, as Linux's default) and a node per slave.
pub fn new_root(frames: Frames) -> Rc<Node> {
    let root = Tmpfs::new_root(DEV_DEVPTS, frames, 0);
    if let Ok(n) = tmpfs::add_device(&root, b"ptmx", makedev(5, 2), Rc::new(Ptmx)) {
        let _ = n.set_perm(0);
    }
    DEVPTS.0.borrow_mut().root = Some(root.clone());
    root
}

/// The live pairs.
pub fn all() -> Vec<Rc<Pty>> {
    DEVPTS.0.borrow().ptys.iter().flatten().cloned().collect()
}

/// Whether the process layer has pty work each round (signals the
/// input raised, hangups to deliver).
pub fn busy() -> bool {
    let d = DEVPTS.0.borrow();
    !d.hangups.is_empty() || d.ptys.iter().any(Option::is_some)
}

/// The signals the ptys' input raised since the last call (bit `sig`),
/// with each slave's foreground group; only the ptys that raised any.
pub fn take_signals() -> Vec<(u64, u32)> {
    let d = DEVPTS.0.borrow();
    let mut raised = Vec::new();
    for p in d.ptys.iter().flatten() {
        let mut t = p.tty.borrow_mut();
        let sigs = t.take_signals();
        if sigs != 0 {
            raised.push((sigs, t.pgrp));
        }
    }
    raised
}

/// The sessions whose terminal hung up since the last call, with the
/// terminal's foreground group then.
pub fn take_hangups() -> Vec<(u32, u32)> {
    core::mem::take(&mut DEVPTS.0.borrow_mut().hangups)
}

/// A new pair: the lowest free index, its slave node made, locked.
fn allocate() -> Result<Rc<Pty>, Errno> {
    let mut d = DEVPTS.0.borrow_mut();
    let root = d.root.clone().ok_or(Errno::ENODEV)?;
    let index = match d.ptys.iter().position(Option::is_none) {
        Some(i) => i,
        None if d.ptys.len() < PTY_MAX => {
            d.ptys.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
            d.ptys.push(None);
            d.ptys.len() - 1
        }
        None => return Err(Errno::ENOSPC),
    };
    d.next_id += 1;
    let mut tty = Tty::new();
    tty.active = true;
    // Linux's new pty has no size until someone sets one.
    tty.winsize = [0; 4];
    let pty = Rc::new(Pty {
        index: index as u32,
        id: d.next_id,
        tty: RefCell::new(tty),
        to_master: RefCell::new(VecDeque::new()),
        held: RefCell::new(VecDeque::new()),
        master_open: Cell::new(true),
        slaves: Cell::new(0),
        slave_opened: Cell::new(false),
        locked: Cell::new(true),
        master_stopped: Cell::new(false),
        packet: Cell::new(false),
        packet_status: Cell::new(0),
        node: RefCell::new(None),
        master_seq: Cell::new(0),
        slave_seq: Cell::new(0),
        room_seq: Cell::new(0),
    });
    d.ptys[index] = Some(pty.clone());
    drop(d);
    let name = format!("{index}");
    let slave_node = PtsNode {
        pty: Rc::downgrade(&pty),
    };
    let made = tmpfs::add_device(
        &root,
        name.as_bytes(),
        makedev(SLAVE_MAJOR, index as u64),
        Rc::new(slave_node),
    );
    match made {
        Ok(node) => {
            // devpts mounted without options: 0600, the opener's ids
            // (every process is root).
            let _ = node.set_perm(0o600);
            *pty.node.borrow_mut() = Some(node as InodeRef);
            Ok(pty)
        }
        Err(e) => {
            DEVPTS.0.borrow_mut().ptys[index] = None;
            Err(e)
        }
    }
}

/// Copies what `q` holds, up to `max`, to `out` (after `prefix`), and
/// drops what `out` took.
fn take_into(q: &mut VecDeque<u8>, max: usize, prefix: &[u8], out: Sink) -> Result<usize, Errno> {
    let n = max.min(q.len());
    let (a, b) = q.as_slices();
    let a_n = n.min(a.len());
    let took = out(&[prefix, &a[..a_n], &b[..n - a_n]])?;
    q.drain(..took.saturating_sub(prefix.len()).min(n));
    Ok(took)
}

/// Moves up to `len` bytes from `src`, a chunk at a time: `room` says how
/// much the next chunk may hold (0: full), `reserve(n)` makes room in the
/// kernel heap for `n` bytes of it (false: none), `put` delivers it. With
/// nothing moved: a wait on `chan` when full, `ENOMEM` when the heap had
/// no room.
fn chunked(
    len: usize,
    src: Source,
    chan: Chan,
    room: impl Fn() -> usize,
    reserve: impl Fn(usize) -> bool,
    put: impl Fn(&[u8]),
) -> Result<usize, IoError> {
    let mut buf = [0u8; 1024];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len()).min(room());
        if n == 0 {
            break;
        }
        if !reserve(n) {
            if done == 0 {
                return Err(IoError::Fail(Errno::ENOMEM));
            }
            break;
        }
        let got = src(&mut [&mut buf[..n]])?;
        put(&buf[..got]);
        done += got;
        if got < n {
            break;
        }
    }
    if done == 0 && len > 0 {
        return Err(IoError::WouldBlock(chan));
    }
    Ok(done)
}

/// `/dev/ptmx`: each open is a new master.
pub struct Ptmx;

impl Device for Ptmx {
    fn open(&self, _read: bool, _write: bool) -> Result<Option<Rc<dyn Device>>, Errno> {
        Ok(Some(Rc::new(PtyMaster(allocate()?))))
    }
    // The node itself is never read or written (`open` gives a master).
    fn read(&self, _: usize, _: Sink) -> Result<usize, IoError> {
        Err(IoError::Fail(Errno::EIO))
    }
    fn write(&self, _: usize, _: Source) -> Result<usize, IoError> {
        Err(IoError::Fail(Errno::EIO))
    }
}

/// `/dev/pts/N`: opening it gives the slave, once unlocked.
struct PtsNode {
    pty: Weak<Pty>,
}

impl Device for PtsNode {
    fn open(&self, _read: bool, _write: bool) -> Result<Option<Rc<dyn Device>>, Errno> {
        let pty = self.pty.upgrade().ok_or(Errno::EIO)?;
        if pty.locked.get() || pty.hung_up() {
            return Err(Errno::EIO);
        }
        Ok(Some(PtySlave::open(&pty)))
    }
    fn read(&self, _: usize, _: Sink) -> Result<usize, IoError> {
        Err(IoError::Fail(Errno::EIO))
    }
    fn write(&self, _: usize, _: Source) -> Result<usize, IoError> {
        Err(IoError::Fail(Errno::EIO))
    }
}

/// The master side of an open pair.
pub struct PtyMaster(pub Rc<Pty>);

impl Device for PtyMaster {
    /// The slave's output; in packet mode a status byte first (a pending
    /// event alone, or 0 before data). Nothing: wait, or `EIO` once the
    /// slave has closed.
    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        let p = &self.0;
        if len == 0 {
            return Ok(0);
        }
        let mut q = p.to_master.borrow_mut();
        let took = if p.packet.get() {
            let status = p.packet_status.take();
            if status != 0 {
                return Ok(out(&[&[status]])?);
            }
            if q.is_empty() {
                None
            } else {
                Some(take_into(&mut q, len - 1, &[0], out)?)
            }
        } else if q.is_empty() {
            None
        } else {
            Some(take_into(&mut q, len, &[], out)?)
        };
        drop(q);
        match took {
            Some(n) => {
                p.room_seq.set(p.room_seq.get() + 1);
                Ok(n)
            }
            None if p.slave_gone() => Err(IoError::Fail(Errno::EIO)),
            None => Err(IoError::WouldBlock(p.chan())),
        }
    }

    /// Input for the slave; waits while [`FLIP_MAX`] bytes are held back.
    fn write(&self, len: usize, src: Source) -> Result<usize, IoError> {
        let p = &self.0;
        if p.master_stopped.get() {
            return Err(IoError::WouldBlock(p.chan()));
        }
        chunked(
            len,
            src,
            p.chan(),
            || FLIP_MAX.saturating_sub(p.held.borrow().len()),
            |n| p.held.borrow_mut().try_reserve(n).is_ok(),
            |bytes| {
                // Room was reserved: this cannot fail.
                p.input(bytes);
            },
        )
    }

    fn ready(&self) -> Ready {
        let p = &self.0;
        Ready {
            read: !p.to_master.borrow().is_empty() || p.packet_status.get() != 0,
            write: !p.master_stopped.get() && p.held.borrow().len() < FLIP_MAX,
            hangup: p.slave_gone(),
            error: false,
            in_seq: p.master_seq.get(),
            out_seq: p.room_seq.get(),
        }
    }

    fn pollable(&self) -> bool {
        true
    }

    fn poll_chans(&self, out: &mut Vec<Chan>) {
        out.push(self.0.chan());
    }

    fn wake_on_close(&self) -> Option<[Chan; 2]> {
        Some([self.0.chan(), self.0.chan()])
    }

    fn pending_bytes(&self) -> Option<usize> {
        Some(self.0.master_pending())
    }

    fn is_tty(&self) -> bool {
        true
    }

    fn pty_master(&self) -> Option<&Rc<Pty>> {
        Some(&self.0)
    }

    fn release(&self) {
        self.0.master_closed();
    }
}

/// An open file of the slave side.
pub struct PtySlave(Rc<Pty>);

impl PtySlave {
    /// A new open file of `pty`'s slave (counted: the master sees the
    /// last one close).
    pub fn open(pty: &Rc<Pty>) -> Rc<dyn Device> {
        pty.slaves.set(pty.slaves.get() + 1);
        pty.slave_opened.set(true);
        Rc::new(PtySlave(pty.clone()))
    }
}

impl Device for PtySlave {
    /// What the line discipline has (one line in canonical mode);
    /// VMIN/VTIME and job control are the system call's
    /// (`syscall/tty.rs`). Hung up: end of file.
    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        let p = &self.0;
        if p.hung_up() || len == 0 {
            return Ok(0);
        }
        let data = p.tty.borrow_mut().take(len);
        match data {
            Some(d) => {
                let took = out(&[&d])?;
                // Room made: held-back input moves in.
                p.feed();
                p.room_seq.set(p.room_seq.get() + 1);
                Ok(took)
            }
            None => Err(IoError::WouldBlock(p.chan())),
        }
    }

    /// Through output processing to the master; waits while output is
    /// stopped or the master has [`OUT_MAX`] bytes unread. Hung up: `EIO`.
    fn write(&self, len: usize, src: Source) -> Result<usize, IoError> {
        let p = &self.0;
        if p.hung_up() {
            return Err(IoError::Fail(Errno::EIO));
        }
        if p.tty.borrow().stopped {
            return Err(IoError::WouldBlock(p.chan()));
        }
        let out = RefCell::new(Vec::new());
        chunked(
            len,
            src,
            p.chan(),
            // A byte may become two (ONLCR).
            || OUT_MAX.saturating_sub(p.to_master.borrow().len()) / 2,
            |n| {
                out.borrow_mut().try_reserve(2 * n).is_ok()
                    && p.to_master.borrow_mut().try_reserve(2 * n).is_ok()
            },
            |bytes| {
                let mut out = out.borrow_mut();
                out.clear();
                let mut t = p.tty.borrow_mut();
                for &b in bytes {
                    t.opost(b, &mut out);
                }
                drop(t);
                // Room was reserved: this cannot fail.
                p.to_master_extend(&out);
            },
        )
    }

    /// Hung up: everything (Linux's `hung_up_tty_poll`).
    fn ready(&self) -> Ready {
        let p = &self.0;
        let (seq_in, seq_out) = (p.slave_seq.get(), p.room_seq.get());
        if p.hung_up() {
            return Ready {
                read: true,
                write: true,
                hangup: true,
                error: true,
                in_seq: seq_in,
                out_seq: seq_out,
            };
        }
        let t = p.tty.borrow();
        Ready {
            read: t.readable(),
            write: !t.stopped && p.to_master.borrow().len() < OUT_MAX,
            in_seq: seq_in,
            out_seq: seq_out,
            ..Ready::default()
        }
    }

    fn pollable(&self) -> bool {
        true
    }

    fn poll_chans(&self, out: &mut Vec<Chan>) {
        out.push(self.0.chan());
    }

    fn wake_on_close(&self) -> Option<[Chan; 2]> {
        Some([self.0.chan(), self.0.chan()])
    }

    fn is_tty(&self) -> bool {
        true
    }

    fn terminal(&self) -> Option<Term> {
        Some(Term::Pty(self.0.clone()))
    }

    fn release(&self) {
        let p = &self.0;
        p.slaves.set(p.slaves.get().saturating_sub(1));
        if p.slaves.get() == 0 {
            p.master_seq.set(p.master_seq.get() + 1);
        }
    }
}
