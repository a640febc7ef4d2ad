//! Terminals' system-call rules (`fs/tty.rs` is the line discipline,
//! `fs/pty.rs` the pseudo-terminals): the tty ioctls, job control for
//! reads, writes and settings (Linux's n_tty job_control and
//! __tty_check_change), VMIN/VTIME for reads in non-canonical mode, and
//! the controlling terminal a session takes on open.

use super::{err, log_refused, Outcome, Outcome::*};
use alloc::rc::Rc;

use crate::fs::file::{Object, OpenFile};
use crate::fs::pty::{self, Pty, PtySlave};
use crate::fs::tty::{self, Term, Termios, TERMIOS_SIZE};
use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in, copy_out};
use crate::proc::signal::{SIGTTIN, SIGTTOU, SIG_IGN};
use crate::proc::wait::RESTART;
use crate::proc::Chan;
use guestlib::hypercall;
use linux_raw_sys::general as linux;
use vkernel_abi::Errno;

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCSCTTY: u64 = 0x540e;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCOUTQ: u64 = 0x5411;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;
const FIONBIO: u64 = 0x5421;
const TIOCNOTTY: u64 = 0x5422;
const TCSBRKP: u64 = 0x5425;
const TIOCGSID: u64 = 0x5429;
/// The pty master's requests.
const TIOCPKT: u64 = 0x5420;
const TIOCGPTN: u64 = 0x8004_5430;
const TIOCSPTLCK: u64 = 0x4004_5431;
const TIOCGPKT: u64 = 0x8004_5438;
const TIOCGPTLCK: u64 = 0x8004_5439;
const TIOCGPTPEER: u64 = 0x5441;
/// The termios2 forms (`struct termios2`: termios and two speeds).
const TCGETS2: u64 = 0x802c_542a;
const TCSETS2: u64 = 0x402c_542b;
const TCSETSW2: u64 = 0x402c_542c;
const TCSETSF2: u64 = 0x402c_542d;

/// The speed both termios2 speeds report: B38400's.
const SPEED: u32 = 38400;

/// What a call that needs the terminal in the foreground does when the
/// caller's group is in the background (Linux's __tty_check_change for
/// `sig` SIGTTOU, n_tty's job_control for SIGTTIN). `None`: go on.
/// Otherwise the signal goes to the caller's group and the call sleeps
/// until it is acted on, then restarts (or is EINTR, as the handler's
/// SA_RESTART says: Linux's -ERESTARTSYS); EIO for an orphaned group, or
/// for a read when SIGTTIN is ignored or blocked.
fn job_control(k: &mut Kernel, s: usize, term: &Term, sig: i32) -> Option<Outcome> {
    let (session, pgrp) = term.with(|t| (t.session, t.pgrp));
    let p = &k.procs.procs[s];
    // Only a process whose controlling terminal it is can be in the
    // background of it.
    if session == 0 || p.sid != session || pgrp == 0 || p.pgid == pgrp {
        return None;
    }
    let (me, group) = (p.sig.mask.has(sig), p.pgid);
    if me || k.procs.action(s, sig).handler == SIG_IGN {
        return (sig == SIGTTIN).then_some(Ret(err(Errno::EIO)));
    }
    if k.procs.orphaned(group) {
        return Some(Ret(err(Errno::EIO)));
    }
    // Asleep first: the signal then wakes it for delivery.
    k.procs.sleep(s, Chan::Signal, 0, 0);
    k.procs.signal_group(group, sig);
    Some(NoReturn)
}

/// Before a read of the terminal: job control, then VMIN/VTIME in
/// non-canonical mode (`None`: read what is there now).
pub fn read_gate(
    k: &mut Kernel,
    s: usize,
    term: &Term,
    f: &OpenFile,
    count: u64,
) -> Option<Outcome> {
    if let Some(o) = job_control(k, s, term, SIGTTIN) {
        return Some(o);
    }
    let (t, mut avail, hangup) = term.with(|t| (t.termios, t.raw_len(), t.hangup));
    if t.canonical() || hangup || count == 0 {
        return None;
    }
    if avail == 0 && term.pump() {
        avail = term.with(|t| t.raw_len());
    }
    let chan = term.input_chan();
    let need = (t.vmin() as usize).min(count as usize);
    if avail >= need.max(1) {
        return None;
    }
    let now = hypercall::clock_ns();
    let time_ns = u64::from(t.vtime()) * 100_000_000;
    let before = k.procs.resumed_deadline(s);
    let expired = before != 0 && now >= before;
    match (need, time_ns) {
        // A poll: what is there, maybe nothing.
        (0, 0) => Some(Ret(0)),
        // A read with a timeout for the first byte.
        (0, _) if expired => Some(Ret(0)),
        (0, _) if f.nonblocking() => Some(Ret(err(Errno::EAGAIN))),
        (0, _) => {
            let until = if before != 0 { before } else { now + time_ns };
            k.procs.sleep(s, chan, until, RESTART);
            Some(NoReturn)
        }
        // VMIN bytes (or what is there for a non-blocking descriptor).
        _ if f.nonblocking() => (avail == 0).then_some(Ret(err(Errno::EAGAIN))),
        (_, 0) => {
            k.procs.sleep(s, chan, 0, 0);
            Some(NoReturn)
        }
        // VMIN with an inter-byte timer, started by the first byte and
        // restarted by each: when it runs out, what is there.
        _ if avail == 0 => {
            k.procs.sleep(s, chan, 0, 0);
            Some(NoReturn)
        }
        _ if expired => None,
        _ => {
            k.procs.sleep(s, chan, now + time_ns, RESTART);
            Some(NoReturn)
        }
    }
}

/// Before a write to the terminal: with TOSTOP, a background group's
/// write is SIGTTOU (unless it ignores or blocks it).
pub fn write_gate(k: &mut Kernel, s: usize, term: &Term) -> Option<Outcome> {
    if !term.with(|t| t.termios.tostop()) {
        return None;
    }
    job_control(k, s, term, SIGTTOU)
}

/// Process `s`'s controlling terminal, if it has one.
pub fn ctty(k: &Kernel, s: usize) -> Option<Term> {
    tty::ctty(k.procs.procs[s].sid)
}

/// A pty slave opened without `O_NOCTTY` becomes the controlling terminal
/// of a session leader that has none, if no session holds it (Linux's
/// tty_open_proc_set_tty).
pub fn open_sets_ctty(k: &Kernel, s: usize, term: &Term) {
    let p = &k.procs.procs[s];
    if p.pid != p.sid || tty::ctty(p.sid).is_some() {
        return;
    }
    let (sid, pgid) = (p.sid, p.pgid);
    term.with(|t| {
        if t.session == 0 {
            t.session = sid;
            t.pgrp = pgid;
        }
    });
}

fn read_i32(k: &Kernel, s: usize, arg: u64) -> Result<i32, Errno> {
    let mut b = [0u8; 4];
    copy_in(&k.space(s), arg, &mut b)?;
    Ok(i32::from_le_bytes(b))
}

fn write_i32(k: &Kernel, s: usize, arg: u64, v: i32) -> Result<i64, Errno> {
    copy_out(&k.space(s), arg, &v.to_le_bytes())?;
    Ok(0)
}

/// ioctl on a terminal. `term` is the console or a pty's slave; `master`
/// is the pty when the file is its master side, whose settings, size and
/// foreground are the slave's (Linux's tty_pair_get_tty). Requests it
/// does not know are ENOTTY, as Linux's.
pub fn ioctl(
    k: &mut Kernel,
    s: usize,
    f: &OpenFile,
    term: &Term,
    master: Option<&Rc<Pty>>,
    req: u64,
    arg: u64,
) -> Outcome {
    match (master, term) {
        (Some(p), _) => {
            if let Some(r) = master_ioctl(k, s, p, req, arg) {
                return Ret(r.unwrap_or_else(err));
            }
        }
        // A hung-up slave (Linux's hung_up_tty_ioctl).
        (None, Term::Pty(p)) if p.hung_up() => {
            return Ret(err(if req == TIOCSPGRP {
                Errno::ENOTTY
            } else {
                Errno::EIO
            }));
        }
        _ => {}
    }
    // Requests that change the terminal need its foreground.
    let changes = matches!(
        req,
        TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 | TIOCSPGRP | TCFLSH | TCXONC
    );
    if changes {
        // TIOCSPGRP first needs it to be the caller's terminal.
        let (session, sid) = (term.with(|t| t.session), k.procs.procs[s].sid);
        if req == TIOCSPGRP && (session == 0 || session != sid) {
            return Ret(err(Errno::ENOTTY));
        }
        if let Some(o) = job_control(k, s, term, SIGTTOU) {
            return o;
        }
    }
    // Whether the caller may ask about the terminal's session: its own
    // terminal, or through the pty's master.
    let own =
        || master.is_some() || term.with(|t| t.session != 0 && t.session == k.procs.procs[s].sid);
    let r = match req {
        TCGETS => {
            let t = term.with(|t| t.termios);
            copy_out(&k.space(s), arg, &t.to_bytes()).map(|()| 0)
        }
        TCGETS2 => {
            let t = term.with(|t| t.termios);
            let mut b = [0u8; TERMIOS_SIZE + 8];
            b[..TERMIOS_SIZE].copy_from_slice(&t.to_bytes());
            b[TERMIOS_SIZE..TERMIOS_SIZE + 4].copy_from_slice(&SPEED.to_le_bytes());
            b[TERMIOS_SIZE + 4..].copy_from_slice(&SPEED.to_le_bytes());
            copy_out(&k.space(s), arg, &b).map(|()| 0)
        }
        TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
            let mut b = [0u8; TERMIOS_SIZE];
            match copy_in(&k.space(s), arg, &mut b) {
                Err(e) => Err(e),
                Ok(()) => {
                    // Output is written as it comes: the W forms' drain
                    // has nothing to wait for.
                    term.with(|t| {
                        if req == TCSETSF || req == TCSETSF2 {
                            t.flush_input();
                        }
                        t.set_termios(Termios::from_bytes(&b));
                    });
                    term.settled();
                    // Input may have become readable (canonical mode off).
                    k.procs.wakeup(term.input_chan());
                    k.procs.wakeup(term.output_chan());
                    Ok(0)
                }
            }
        }
        TIOCGWINSZ => {
            let ws = term.with(|t| t.winsize);
            let mut b = [0u8; 8];
            for (i, v) in ws.iter().enumerate() {
                b[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
            }
            copy_out(&k.space(s), arg, &b).map(|()| 0)
        }
        TIOCSWINSZ => {
            let mut b = [0u8; 8];
            match copy_in(&k.space(s), arg, &mut b) {
                Err(e) => Err(e),
                Ok(()) => {
                    let w = |i: usize| u16::from_le_bytes([b[2 * i], b[2 * i + 1]]);
                    k.procs.set_winsize(term, [w(0), w(1), w(2), w(3)]);
                    Ok(0)
                }
            }
        }
        FIONREAD => {
            let n = match master {
                Some(p) => p.master_pending(),
                None => {
                    if !term.with(|t| t.readable()) {
                        term.pump();
                    }
                    term.with(|t| t.available())
                }
            };
            write_i32(k, s, arg, n as i32)
        }
        // Output is written to the host (or the master) as it comes:
        // nothing waits in a driver.
        TIOCOUTQ => write_i32(k, s, arg, 0),
        TCSBRK | TCSBRKP => Ok(0),
        TCFLSH => flush(term, master, arg as u32),
        TCXONC => flow(k, term, master, arg as u32),
        TIOCGPGRP => {
            let pgrp = term.with(|t| t.pgrp);
            if !own() {
                Err(Errno::ENOTTY)
            } else {
                write_i32(k, s, arg, pgrp as i32)
            }
        }
        TIOCSPGRP => set_pgrp(k, s, term, arg),
        TIOCGSID => {
            let session = term.with(|t| t.session);
            if !own() || session == 0 {
                Err(Errno::ENOTTY)
            } else {
                write_i32(k, s, arg, session as i32)
            }
        }
        TIOCSCTTY => set_ctty(k, s, term, arg),
        // A master is never anyone's controlling terminal.
        TIOCNOTTY if master.is_some() => Err(Errno::ENOTTY),
        TIOCNOTTY => no_ctty(k, s, term),
        FIONBIO => super::fd::fionbio(k, s, f, arg),
        _ => Err(Errno::ENOTTY),
    };
    Ret(r.unwrap_or_else(err))
}

/// TCFLSH. The console's and a slave's input is the line discipline's
/// (and a slave's held-back input); a master's input is what the slave
/// wrote, its output the held-back input. A slave's flushes are
/// packet-mode events for the master.
fn flush(term: &Term, master: Option<&Rc<Pty>>, how: u32) -> Result<i64, Errno> {
    let (input, output) = match how {
        linux::TCIFLUSH => (true, false),
        linux::TCOFLUSH => (false, true),
        linux::TCIOFLUSH => (true, true),
        _ => return Err(Errno::EINVAL),
    };
    match (master, term) {
        (Some(p), _) => {
            if input {
                p.flush_to_master();
            }
            if output {
                p.flush_held();
            }
        }
        (None, Term::Pty(p)) => {
            if input {
                p.tty.borrow_mut().flush_input();
                p.flush_held();
                p.add_status(pty::PKT_FLUSHREAD);
            }
            // Linux drops only what is on its way to the master's input
            // (moved there within a moment); here it is there at once.
            if output {
                p.add_status(pty::PKT_FLUSHWRITE);
            }
        }
        (None, Term::Console) => {
            if input {
                tty::with(|t| t.flush_input());
            }
        }
    }
    Ok(0)
}

/// TCXONC: TCOOFF/TCOON stop and start the file's output (a master's
/// is the slave's input); TCIOFF/TCION send the STOP or START character
/// the other way (to the console's terminal emulator, which shows
/// nothing: nothing to do there).
fn flow(k: &mut Kernel, term: &Term, master: Option<&Rc<Pty>>, how: u32) -> Result<i64, Errno> {
    // The master's own settings are Linux's raw pty-master defaults,
    // with the default control characters.
    const STOP: u8 = 0x13;
    const START: u8 = 0x11;
    match (how, master) {
        (linux::TCOOFF, Some(p)) => p.master_stopped.set(true),
        (linux::TCOON, Some(p)) => {
            p.master_stopped.set(false);
            k.procs.wakeup(p.chan());
        }
        (linux::TCIOFF | linux::TCION, Some(p)) => {
            let c = if how == linux::TCIOFF { STOP } else { START };
            if !p.input(&[c]) {
                return Err(Errno::ENOMEM);
            }
        }
        (linux::TCOOFF, None) => {
            term.with(|t| t.stopped = true);
            if let Term::Pty(p) = term {
                p.add_status(pty::PKT_STOP);
            }
        }
        (linux::TCOON, None) => {
            term.with(|t| t.stopped = false);
            if let Term::Pty(p) = term {
                p.add_status(pty::PKT_START);
            }
            k.procs.wakeup(term.output_chan());
        }
        (linux::TCIOFF | linux::TCION, None) => {
            if let Term::Pty(p) = term {
                let v = if how == linux::TCIOFF {
                    linux::VSTOP
                } else {
                    linux::VSTART
                };
                let c = p.tty.borrow().termios.cc[v as usize];
                if !p.to_master_extend(&[c]) {
                    return Err(Errno::ENOMEM);
                }
            }
        }
        _ => return Err(Errno::EINVAL),
    }
    if let Some(p) = master.or(match term {
        Term::Pty(p) => Some(p),
        Term::Console => None,
    }) {
        k.procs.wakeup(p.chan());
    }
    Ok(0)
}

/// The requests only a pty master answers (`None`: a terminal request,
/// answered for its slave).
fn master_ioctl(
    k: &mut Kernel,
    s: usize,
    p: &Rc<Pty>,
    req: u64,
    arg: u64,
) -> Option<Result<i64, Errno>> {
    Some(match req {
        TIOCGPTN => write_i32(k, s, arg, p.index as i32),
        TIOCSPTLCK => read_i32(k, s, arg).map(|v| {
            p.locked.set(v != 0);
            0
        }),
        TIOCGPTLCK => write_i32(k, s, arg, i32::from(p.locked.get())),
        TIOCPKT => read_i32(k, s, arg).map(|v| {
            if v != 0 && !p.packet.get() {
                p.packet_status.set(0);
            }
            p.packet.set(v != 0);
            0
        }),
        TIOCGPKT => write_i32(k, s, arg, i32::from(p.packet.get())),
        TIOCGPTPEER => open_peer(k, s, p, arg),
        _ => return None,
    })
}

/// TIOCGPTPEER: a new descriptor of the slave, opened with `flags`, as
/// an open of `/dev/pts/N` (without having to find it by name: glibc's
/// openpty asks this first).
fn open_peer(k: &mut Kernel, s: usize, p: &Rc<Pty>, flags: u64) -> Result<i64, Errno> {
    use linux::{O_ACCMODE, O_CLOEXEC, O_NOCTTY, O_NONBLOCK};
    // Linux passes the flags to the open as they are, unchecked.
    let flags = flags as u32;
    if p.locked.get() || p.hung_up() {
        return Err(Errno::EIO);
    }
    let node = p.node().ok_or(Errno::EIO)?;
    let dev = PtySlave::open(p);
    let term = Term::Pty(p.clone());
    let file = OpenFile::new(
        Object::Device {
            dev,
            node: Some(node),
        },
        flags & (O_ACCMODE | O_NONBLOCK),
        alloc::format!("/dev/pts/{}", p.index).into_bytes(),
    );
    let limit = super::fd::nofile(k, s);
    let fd = k
        .files(s)
        .borrow_mut()
        .install(file, flags & O_CLOEXEC != 0, 0, limit)?;
    if flags & O_NOCTTY == 0 {
        open_sets_ctty(k, s, &term);
    }
    Ok(i64::from(fd))
}

/// TIOCSPGRP: the foreground group must be one of the caller's session.
fn set_pgrp(k: &mut Kernel, s: usize, term: &Term, arg: u64) -> Result<i64, Errno> {
    let pgrp = read_i32(k, s, arg)?;
    if pgrp < 0 {
        return Err(Errno::EINVAL);
    }
    let sid = k.procs.procs[s].sid;
    match k.procs.group_session(pgrp as u32) {
        None => Err(Errno::ESRCH),
        Some(other) if other != sid => Err(Errno::EPERM),
        Some(_) => {
            term.with(|t| {
                t.pgrp = pgrp as u32;
                t.claimed = true;
            });
            Ok(0)
        }
    }
}

/// TIOCSCTTY: a session leader without a terminal takes it (one another
/// session holds only with `arg` 1, the caller being root, as Linux
/// lets CAP_SYS_ADMIN steal it). Init's session holds the console from
/// boot so that a shell run as init has job control; but on Linux init
/// never holds the console, so until init's session claims it
/// (TIOCSCTTY, TIOCSPGRP) any session leader may take it from there
/// (busybox init's children do, for their shell).
fn set_ctty(k: &mut Kernel, s: usize, term: &Term, arg: u64) -> Result<i64, Errno> {
    let p = &k.procs.procs[s];
    let (pid, sid, pgid) = (p.pid, p.sid, p.pgid);
    let session = term.with(|t| t.session);
    if session == sid {
        term.with(|t| t.claimed = true);
        return Ok(0);
    }
    // A leader, without a terminal already.
    if pid != sid || tty::ctty(sid).is_some() {
        return Err(Errno::EPERM);
    }
    let boot_held = term.is_console() && session == 1 && !term.with(|t| t.claimed);
    if session != 0 && !boot_held && arg != 1 {
        return Err(Errno::EPERM);
    }
    term.with(|t| {
        t.session = sid;
        t.pgrp = pgid;
        t.claimed = true;
    });
    Ok(0)
}

/// TIOCNOTTY: a session leader gives its terminal up (its foreground
/// group gets SIGHUP and SIGCONT). Another member only loses its own
/// tie to it on Linux; the guest keeps the terminal a session's, so
/// that is refused in the log and succeeds as a no-op.
fn no_ctty(k: &mut Kernel, s: usize, term: &Term) -> Result<i64, Errno> {
    let p = &k.procs.procs[s];
    let (pid, sid) = (p.pid, p.sid);
    if term.with(|t| t.session) != sid || sid == 0 {
        return Err(Errno::ENOTTY);
    }
    if pid == sid {
        k.procs.tty_leader_exit(sid, false);
    } else {
        log_refused(
            k,
            s,
            "ioctl",
            format_args!("TIOCNOTTY by a session member (the session keeps the terminal)"),
        );
    }
    Ok(0)
}
