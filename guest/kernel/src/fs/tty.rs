//! Terminals: Linux's n_tty line discipline ([`Tty`]), used by the console
//! over the host terminal and by each pseudo-terminal's slave
//! (`fs/pty.rs`); [`Term`] names either. The console is a terminal only
//! when the host's stdin is one (the host then puts it in raw mode and
//! passes every byte here); otherwise console input stays a plain byte
//! stream and the console's instance is idle.
//!
//! Input bytes from the host go through [`receive`]: input modes (ICRNL,
//! INLCR, IGNCR, ISTRIP, IXON), signal characters (ISIG: INTR, QUIT,
//! SUSP raise a signal for the foreground group, which the process layer
//! sends: see [`Tty::take_signals`]), canonical editing (ERASE, KILL, WERASE,
//! EOF, EOL, EOL2, REPRINT, LNEXT) and echo (ECHO, ECHOE, ECHOK, ECHOKE,
//! ECHONL, ECHOCTL). Output from processes goes through [`output`]
//! (OPOST: ONLCR, OCRNL, ONOCR, ONLRET). The terminal's job-control state
//! (session and foreground group) is kept here; the rules that use it are
//! in `syscall/tty.rs`.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::pty::Pty;
use crate::chan::Chan;

use guestlib::hypercall;
use linux_raw_sys::general as linux;

/// Linux's `struct termios` (the kernel's, as TCGETS copies it): four
/// flag words, the line discipline, `NCCS` (19) control characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}

pub const NCCS: usize = linux::NCCS as usize;
/// Bytes of `struct termios` as the kernel copies it.
pub const TERMIOS_SIZE: usize = 17 + NCCS;

impl Termios {
    /// Linux's defaults for a new terminal (tty_std_termios): ICRNL |
    /// IXON, OPOST | ONLCR, B38400 | CS8 | CREAD | HUPCL, ISIG | ICANON |
    /// ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN, and INIT_C_CC.
    pub const fn linux_default() -> Termios {
        Termios {
            iflag: 0o2400,
            oflag: 0o5,
            cflag: 0o2277,
            lflag: 0o105073,
            line: 0,
            cc: [
                3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0,
            ],
        }
    }

    pub fn to_bytes(self) -> [u8; TERMIOS_SIZE] {
        let mut t = [0u8; TERMIOS_SIZE];
        t[0..4].copy_from_slice(&self.iflag.to_le_bytes());
        t[4..8].copy_from_slice(&self.oflag.to_le_bytes());
        t[8..12].copy_from_slice(&self.cflag.to_le_bytes());
        t[12..16].copy_from_slice(&self.lflag.to_le_bytes());
        t[16] = self.line;
        t[17..].copy_from_slice(&self.cc);
        t
    }

    pub fn from_bytes(t: &[u8; TERMIOS_SIZE]) -> Termios {
        let word = |i: usize| u32::from_le_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&t[17..]);
        Termios {
            iflag: word(0),
            oflag: word(4),
            cflag: word(8),
            lflag: word(12),
            line: t[16],
            cc,
        }
    }

    fn i(&self, f: u32) -> bool {
        self.iflag & f != 0
    }
    fn o(&self, f: u32) -> bool {
        self.oflag & f != 0
    }
    fn l(&self, f: u32) -> bool {
        self.lflag & f != 0
    }
    /// Whether control character `v` is `c` (0 disables one:
    /// `_POSIX_VDISABLE`).
    fn is(&self, v: u32, c: u8) -> bool {
        let x = self.cc[v as usize];
        x != 0 && x == c
    }
    pub fn canonical(&self) -> bool {
        self.l(linux::ICANON)
    }
    pub fn vmin(&self) -> u8 {
        self.cc[linux::VMIN as usize]
    }
    pub fn vtime(&self) -> u8 {
        self.cc[linux::VTIME as usize]
    }
    pub fn tostop(&self) -> bool {
        self.l(linux::TOSTOP)
    }
}

/// `/dev/tty`'s device number (5, 0): the opener's controlling terminal.
pub const DEV_TTY: u64 = 5 << 8;

/// Most bytes the terminal holds unread (Linux's N_TTY_BUF_SIZE); input
/// past it is dropped, as n_tty drops it when its buffer is full.
pub const INPUT_MAX: usize = 4096;

/// The terminal's state.
pub struct Tty {
    /// The host's stdin is a terminal: everything below is in use.
    pub active: bool,
    /// The host stream echo and terminal output go to (1 stdout, 2
    /// stderr: the first that is the terminal), 0 for none.
    pub out_stream: u64,
    pub termios: Termios,
    /// rows, cols, xpixel, ypixel.
    pub winsize: [u16; 4],
    /// The session it is the controlling terminal of (0: none) and its
    /// foreground process group.
    pub session: u32,
    pub pgrp: u32,
    /// A process made it its controlling terminal (TIOCSCTTY) or chose
    /// its foreground (TIOCSPGRP). Until then init's session holds it
    /// only as the boot left it, and another session leader may take it.
    pub claimed: bool,
    /// Readable input: in canonical mode only complete lines are, in
    /// `lines` (an empty one is an end of file); in raw mode `raw`.
    lines: VecDeque<Vec<u8>>,
    raw: VecDeque<u8>,
    /// The line being edited (canonical mode).
    edit: Vec<u8>,
    /// The next byte is literal (LNEXT).
    lnext: bool,
    /// Output column (for erasing tabs and ONOCR), and where the edited
    /// line's echo began.
    column: usize,
    edit_column: usize,
    /// Output stopped by STOP (IXON) or TCOOFF.
    pub stopped: bool,
    /// Signals for the foreground group the input raised (bit `sig`).
    signals: u64,
    /// The host said its input ended (the terminal hung up).
    pub hangup: bool,
    /// Input arrivals, for edge-triggered epoll.
    pub seq: u64,
}

impl Tty {
    /// A terminal as Linux makes one: default settings, 24x80, no
    /// session.
    pub const fn new() -> Tty {
        Tty {
            active: false,
            out_stream: 0,
            termios: Termios::linux_default(),
            winsize: [24, 80, 0, 0],
            session: 0,
            pgrp: 0,
            claimed: false,
            lines: VecDeque::new(),
            raw: VecDeque::new(),
            edit: Vec::new(),
            lnext: false,
            column: 0,
            edit_column: 0,
            stopped: false,
            signals: 0,
            hangup: false,
            seq: 0,
        }
    }

    /// Bytes a read could take now (FIONREAD): complete lines in
    /// canonical mode, everything in raw mode.
    pub fn available(&self) -> usize {
        if self.termios.canonical() {
            self.lines.iter().map(Vec::len).sum()
        } else {
            self.raw.len()
        }
    }

    /// Whether a read would not block (data, an end of file, a hangup).
    pub fn readable(&self) -> bool {
        self.hangup
            || if self.termios.canonical() {
                !self.lines.is_empty()
            } else {
                !self.raw.is_empty()
            }
    }

    fn held(&self) -> usize {
        self.lines.iter().map(Vec::len).sum::<usize>() + self.raw.len() + self.edit.len()
    }

    /// Whether input would now be held back rather than taken: in raw
    /// mode the buffer is full (n_tty throttles its sender; a canonical
    /// line past the limit loses bytes instead, as n_tty's overflow).
    pub fn throttled(&self) -> bool {
        !self.termios.canonical() && self.held() >= INPUT_MAX
    }

    /// The signals input raised for the foreground group since the last
    /// call (bit `sig`).
    pub fn take_signals(&mut self) -> u64 {
        core::mem::take(&mut self.signals)
    }

    /// Drops unread input (TCFLSH, TCSETSF, a signal character).
    pub fn flush_input(&mut self) {
        self.lines.clear();
        self.raw.clear();
        self.edit.clear();
        self.lnext = false;
    }

    /// New settings: switching canonical mode off makes what was typed
    /// readable; switching it on makes what was unread one line (n_tty
    /// does both).
    pub fn set_termios(&mut self, t: Termios) {
        let was = self.termios.canonical();
        self.termios = t;
        if was && !t.canonical() {
            for l in self.lines.drain(..) {
                self.raw.extend(l);
            }
            self.raw.extend(self.edit.drain(..));
        } else if !was && t.canonical() && !self.raw.is_empty() {
            let l: Vec<u8> = self.raw.drain(..).collect();
            self.lines.push_back(l);
        }
        if !t.i(linux::IXON) && self.stopped {
            self.stopped = false;
        }
    }

    /// Takes up to `max` bytes a read returns now: in canonical mode at
    /// most one line (`Some(empty)` at an end of file), in raw mode what
    /// is there. `None`: nothing.
    pub fn take(&mut self, max: usize) -> Option<Vec<u8>> {
        if self.termios.canonical() {
            let line = self.lines.front_mut()?;
            if line.is_empty() {
                self.lines.pop_front();
                return Some(Vec::new());
            }
            let n = max.min(line.len());
            let out: Vec<u8> = line.drain(..n).collect();
            if line.is_empty() {
                self.lines.pop_front();
            }
            Some(out)
        } else {
            if self.raw.is_empty() {
                return None;
            }
            let n = max.min(self.raw.len());
            Some(self.raw.drain(..n).collect())
        }
    }

    /// Raw-mode bytes waiting (for VMIN).
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// One input byte from the host, as n_tty_receive_char.
    pub fn receive_byte(&mut self, mut c: u8, out: &mut Vec<u8>) {
        let t = self.termios;
        if t.i(linux::ISTRIP) {
            c &= 0x7f;
        }
        if self.lnext {
            self.lnext = false;
            self.put_literal(c, out);
            return;
        }
        if t.i(linux::IXON) {
            if t.is(linux::VSTOP, c) {
                self.stopped = true;
                return;
            }
            if t.is(linux::VSTART, c) {
                self.stopped = false;
                return;
            }
            if self.stopped && t.i(linux::IXANY) {
                self.stopped = false;
            }
        }
        if t.l(linux::ISIG) {
            let sig = if t.is(linux::VINTR, c) {
                Some(linux::SIGINT)
            } else if t.is(linux::VQUIT, c) {
                Some(linux::SIGQUIT)
            } else if t.is(linux::VSUSP, c) {
                Some(linux::SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                // n_tty's isig: flush unless NOFLSH, then echo the
                // character. The flush takes the output not yet sent to
                // the device too (tty_driver_flush_buffer): the echo of
                // what came in the same batch.
                if !t.l(linux::NOFLSH) {
                    self.flush_input();
                    out.clear();
                }
                self.signals |= 1 << sig;
                self.stopped = false;
                if t.l(linux::ECHO) {
                    self.echo_char(c, out);
                }
                return;
            }
        }
        if c == b'\r' {
            if t.i(linux::IGNCR) {
                return;
            }
            if t.i(linux::ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.i(linux::INLCR) {
            c = b'\r';
        }
        if !t.canonical() {
            if self.held() < INPUT_MAX {
                self.raw.push_back(c);
            }
            if t.l(linux::ECHO) {
                self.echo_char(c, out);
            }
            return;
        }
        let iexten = t.l(linux::IEXTEN);
        if t.is(linux::VERASE, c) || t.is(linux::VKILL, c) || (iexten && t.is(linux::VWERASE, c)) {
            self.erase(c, out);
            return;
        }
        if iexten && t.is(linux::VLNEXT, c) {
            self.lnext = true;
            if t.l(linux::ECHO) && t.l(linux::ECHOCTL) {
                // n_tty shows "^" and backs over it until the next byte.
                out.extend_from_slice(b"^\x08");
            }
            return;
        }
        if iexten && t.is(linux::VREPRINT, c) {
            if t.l(linux::ECHO) {
                self.echo_char(c, out);
                self.opost(b'\n', out);
                self.edit_column = self.column;
                let line = self.edit.clone();
                for b in line {
                    self.echo_char(b, out);
                }
            }
            return;
        }
        if t.is(linux::VEOF, c) {
            // The line so far becomes readable, without the EOF byte: an
            // empty one is an end of file for its read.
            let line = core::mem::take(&mut self.edit);
            self.lines.push_back(line);
            self.edit_column = self.column;
            return;
        }
        let eol = c == b'\n' || t.is(linux::VEOL, c) || (iexten && t.is(linux::VEOL2, c));
        if eol {
            if t.l(linux::ECHO) || (c == b'\n' && t.l(linux::ECHONL)) {
                self.echo_char(c, out);
            }
            let mut line = core::mem::take(&mut self.edit);
            line.push(c);
            self.lines.push_back(line);
            self.edit_column = self.column;
            return;
        }
        self.put_literal(c, out);
    }

    /// A byte that is just data in the edited line (or raw input).
    fn put_literal(&mut self, c: u8, out: &mut Vec<u8>) {
        let t = self.termios;
        if !t.canonical() {
            if self.held() < INPUT_MAX {
                self.raw.push_back(c);
            }
        } else {
            if self.edit.is_empty() {
                self.edit_column = self.column;
            }
            // One byte is kept for the newline that ends the line.
            if self.held() >= INPUT_MAX - 1 {
                return;
            }
            self.edit.push(c);
        }
        if t.l(linux::ECHO) {
            self.echo_char(c, out);
        }
    }

    /// Echoes one input byte: control characters as `^X` with ECHOCTL
    /// (but tab and newline as themselves), through output processing.
    fn echo_char(&mut self, c: u8, out: &mut Vec<u8>) {
        let t = self.termios;
        if t.l(linux::ECHOCTL) && is_ctl(c) {
            out.push(b'^');
            out.push(c ^ 0o100);
            self.column += 2;
        } else {
            self.opost(c, out);
        }
    }

    /// ERASE, WERASE and KILL, as n_tty's eraser.
    fn erase(&mut self, c: u8, out: &mut Vec<u8>) {
        let t = self.termios;
        if self.edit.is_empty() {
            return;
        }
        let kill = t.is(linux::VKILL, c);
        let werase = !kill && t.l(linux::IEXTEN) && t.is(linux::VWERASE, c);
        if kill && (!t.l(linux::ECHO) || !t.l(linux::ECHOK) && !t.l(linux::ECHOKE)) {
            self.edit.clear();
            return;
        }
        if kill && t.l(linux::ECHO) && !t.l(linux::ECHOKE) {
            // ECHOK without ECHOKE: show the kill character, start a
            // fresh line.
            self.edit.clear();
            self.echo_char(c, out);
            if t.l(linux::ECHOK) {
                self.opost(b'\n', out);
            }
            self.edit_column = self.column;
            return;
        }
        let mut seen_word = false;
        while let Some(&last) = self.edit.last() {
            if werase {
                let space = last == b' ' || last == b'\t';
                if space && seen_word {
                    break;
                }
                seen_word |= !space;
            }
            self.edit.pop();
            if t.l(linux::ECHO) {
                if t.l(linux::ECHOE) || kill {
                    self.rub_out(last, out);
                } else {
                    self.echo_char(t.cc[linux::VERASE as usize], out);
                }
            }
            if !kill && !werase {
                break;
            }
        }
    }

    /// Takes `c`'s echo off the screen: backspace, space, backspace per
    /// column it took (a tab: back to where it started).
    fn rub_out(&mut self, c: u8, out: &mut Vec<u8>) {
        let t = self.termios;
        let cols = if c == b'\t' {
            // Where the tab started: the line's echo up to here.
            let mut col = self.edit_column;
            for &b in &self.edit {
                col = match b {
                    b'\t' => (col | 7) + 1,
                    b if is_ctl(b) && t.l(linux::ECHOCTL) => col + 2,
                    b if is_ctl(b) => col,
                    _ => col + 1,
                };
            }
            let n = self.column.saturating_sub(col);
            for _ in 0..n {
                out.push(8);
            }
            self.column -= n;
            return;
        } else if is_ctl(c) && t.l(linux::ECHOCTL) {
            2
        } else if is_ctl(c) || (c & 0xc0 == 0x80 && t.i(linux::IUTF8)) {
            // Nothing shown, or a UTF-8 continuation byte (no column of
            // its own).
            0
        } else {
            1
        };
        for _ in 0..cols {
            out.extend_from_slice(b"\x08 \x08");
        }
        self.column = self.column.saturating_sub(cols);
    }

    /// One output byte through OPOST, keeping the column.
    pub fn opost(&mut self, c: u8, out: &mut Vec<u8>) {
        let t = self.termios;
        if !t.o(linux::OPOST) {
            out.push(c);
            self.track(c);
            return;
        }
        match c {
            b'\n' => {
                if t.o(linux::ONLRET) {
                    self.column = 0;
                }
                if t.o(linux::ONLCR) {
                    out.extend_from_slice(b"\r\n");
                    self.column = 0;
                    return;
                }
                out.push(c);
            }
            b'\r' => {
                if t.o(linux::ONOCR) && self.column == 0 {
                    return;
                }
                if t.o(linux::OCRNL) {
                    out.push(b'\n');
                    if t.o(linux::ONLRET) {
                        self.column = 0;
                    }
                    return;
                }
                out.push(c);
                self.column = 0;
            }
            _ => {
                out.push(c);
                self.track(c);
            }
        }
    }

    fn track(&mut self, c: u8) {
        match c {
            b'\r' => self.column = 0,
            b'\t' => self.column = (self.column | 7) + 1,
            8 => self.column = self.column.saturating_sub(1),
            c if is_ctl(c) => {}
            c if c & 0xc0 == 0x80 && self.termios.i(linux::IUTF8) => {}
            _ => self.column += 1,
        }
    }
}

fn is_ctl(c: u8) -> bool {
    (c < 0x20 && c != b'\t' && c != b'\n') || c == 0x7f
}

struct TtyCell(RefCell<Tty>);
// SAFETY: the guest kernel runs on one vCPU with no threads or interrupts;
// nothing else can touch the cell.
unsafe impl Sync for TtyCell {}

static TTY: TtyCell = TtyCell(RefCell::new(Tty::new()));

/// The terminal. Callers do not hold it across a call that could take it
/// again (the kernel is single-threaded; a nested borrow would panic).
pub fn with<R>(f: impl FnOnce(&mut Tty) -> R) -> R {
    f(&mut TTY.0.borrow_mut())
}

/// Whether the console is a terminal (the host's stdin is one).
pub fn active() -> bool {
    TTY.0.try_borrow().is_ok_and(|t| t.active)
}

/// Makes the console a terminal at boot: the controlling terminal of
/// init's session with init's group in the foreground (as if a getty had
/// made it so), with the host terminal's size.
pub fn activate(out_stream: u64) {
    let mut ws = [0u16; 4];
    let size = hypercall::console_winsize(&mut ws).is_ok();
    with(|t| {
        t.active = true;
        t.out_stream = out_stream;
        t.session = 1;
        t.pgrp = 1;
        if size {
            t.winsize = ws;
        }
    });
}

/// Writes terminal output to the host.
fn emit(stream: u64, bytes: &[u8]) {
    if stream != 0 && !bytes.is_empty() {
        let _ = hypercall::console_write(stream, bytes);
    }
}

/// Feeds host input through the line discipline, echoing. Returns
/// whether anything arrived (or the input ended).
pub fn receive(bytes: &[u8]) {
    let mut echo = Vec::new();
    let stream = with(|t| {
        if bytes.is_empty() {
            t.hangup = true;
        }
        for &b in bytes {
            t.receive_byte(b, &mut echo);
        }
        t.seq += 1;
        t.out_stream
    });
    emit(stream, &echo);
}

/// Reads what the host has into the line discipline (one console read).
/// True if anything came (or the input ended).
pub fn pump() -> bool {
    if with(|t| t.hangup) {
        return false;
    }
    let mut buf = [0u8; 1024];
    match hypercall::console_read(&mut buf) {
        Ok(n) => {
            receive(&buf[..n]);
            true
        }
        Err(_) => false,
    }
}

/// A terminal: the console (when it is one) or a pseudo-terminal's
/// slave side. Job control and the tty ioctls work on either.
#[derive(Clone)]
pub enum Term {
    Console,
    Pty(Rc<Pty>),
}

impl Term {
    /// Its line discipline and job-control state.
    pub fn with<R>(&self, f: impl FnOnce(&mut Tty) -> R) -> R {
        match self {
            Term::Console => with(f),
            Term::Pty(p) => f(&mut p.tty.borrow_mut()),
        }
    }

    /// Takes what its source has for the line discipline now (the host's
    /// input for the console; a pty's master writes straight in). True if
    /// anything came.
    pub fn pump(&self) -> bool {
        matches!(self, Term::Console) && pump()
    }

    /// Whom new input wakes: readers, and VMIN/VTIME sleepers.
    pub fn input_chan(&self) -> Chan {
        match self {
            Term::Console => Chan::ConsoleInput,
            Term::Pty(p) => p.chan(),
        }
    }

    /// Whom output starting again (START, TCOON) wakes.
    pub fn output_chan(&self) -> Chan {
        match self {
            Term::Console => Chan::TtyOutput,
            Term::Pty(p) => p.chan(),
        }
    }

    pub fn is_console(&self) -> bool {
        matches!(self, Term::Console)
    }

    /// A pseudo-terminal: settings changed or input flushed, so its
    /// held-back input may fit now.
    pub fn settled(&self) {
        if let Term::Pty(p) = self {
            p.feed();
        }
    }
}

/// Every terminal in use: the console (when it is one) and the ptys.
pub fn terminals() -> Vec<Term> {
    let mut all = Vec::new();
    if active() {
        all.push(Term::Console);
    }
    all.extend(super::pty::all().into_iter().map(Term::Pty));
    all
}

/// The controlling terminal of session `sid`, if it has one.
pub fn ctty(sid: u32) -> Option<Term> {
    if sid == 0 {
        return None;
    }
    terminals()
        .into_iter()
        .find(|t| t.with(|t| t.session) == sid)
}

/// Output processing of `bytes` a process writes to the terminal, then
/// to host stream `stream`.
pub fn write(stream: u64, bytes: &[u8]) -> Result<(), vkernel_abi::Errno> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8);
    with(|t| {
        for &b in bytes {
            t.opost(b, &mut out);
        }
    });
    hypercall::console_write(stream, &out).map(|_| ())
}
