//! The console terminal's system-call rules (`fs/tty.rs` is the line
//! discipline): its ioctls, job control for reads, writes and settings
//! (Linux's n_tty job_control and __tty_check_change), and VMIN/VTIME for
//! reads in non-canonical mode.

use super::{err, log_refused, Outcome, Outcome::*};
use crate::fs::file::OpenFile;
use crate::fs::tty::{self, Termios, TERMIOS_SIZE};
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
fn job_control(k: &mut Kernel, s: usize, sig: i32) -> Option<Outcome> {
    let (session, pgrp) = tty::with(|t| (t.session, t.pgrp));
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
pub fn read_gate(k: &mut Kernel, s: usize, f: &OpenFile, count: u64) -> Option<Outcome> {
    if let Some(o) = job_control(k, s, SIGTTIN) {
        return Some(o);
    }
    let (t, mut avail, hangup) = tty::with(|t| (t.termios, t.raw_len(), t.hangup));
    if t.canonical() || hangup || count == 0 {
        return None;
    }
    if avail == 0 && tty::pump() {
        avail = tty::with(|t| t.raw_len());
    }
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
            k.procs.sleep(s, Chan::ConsoleInput, until, RESTART);
            Some(NoReturn)
        }
        // VMIN bytes (or what is there for a non-blocking descriptor).
        _ if f.nonblocking() => (avail == 0).then_some(Ret(err(Errno::EAGAIN))),
        (_, 0) => {
            k.procs.sleep(s, Chan::ConsoleInput, 0, 0);
            Some(NoReturn)
        }
        // VMIN with an inter-byte timer, started by the first byte and
        // restarted by each: when it runs out, what is there.
        _ if avail == 0 => {
            k.procs.sleep(s, Chan::ConsoleInput, 0, 0);
            Some(NoReturn)
        }
        _ if expired => None,
        _ => {
            k.procs.sleep(s, Chan::ConsoleInput, now + time_ns, RESTART);
            Some(NoReturn)
        }
    }
}

/// Before a write to the terminal: with TOSTOP, a background group's
/// write is SIGTTOU (unless it ignores or blocks it).
pub fn write_gate(k: &mut Kernel, s: usize) -> Option<Outcome> {
    if !tty::with(|t| t.termios.tostop()) {
        return None;
    }
    job_control(k, s, SIGTTOU)
}

/// Whether the console terminal is process `s`'s controlling terminal.
pub fn is_ctty(k: &Kernel, s: usize) -> bool {
    let session = tty::with(|t| t.session);
    session != 0 && session == k.procs.procs[s].sid
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

/// ioctl on the terminal (requests it does not know are ENOTTY, as
/// Linux's).
pub fn ioctl(k: &mut Kernel, s: usize, f: &OpenFile, req: u64, arg: u64) -> Outcome {
    // Requests that change the terminal need its foreground.
    let changes = matches!(
        req,
        TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 | TIOCSPGRP | TCFLSH | TCXONC
    );
    if changes {
        // TIOCSPGRP first needs it to be the caller's terminal.
        let (session, sid) = (tty::with(|t| t.session), k.procs.procs[s].sid);
        if req == TIOCSPGRP && (session == 0 || session != sid) {
            return Ret(err(Errno::ENOTTY));
        }
        if let Some(o) = job_control(k, s, SIGTTOU) {
            return o;
        }
    }
    let r = match req {
        TCGETS => {
            let t = tty::with(|t| t.termios);
            copy_out(&k.space(s), arg, &t.to_bytes()).map(|()| 0)
        }
        TCGETS2 => {
            let t = tty::with(|t| t.termios);
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
                    tty::with(|t| {
                        if req == TCSETSF || req == TCSETSF2 {
                            t.flush_input();
                        }
                        t.set_termios(Termios::from_bytes(&b));
                    });
                    // Input may have become readable (canonical mode off).
                    k.procs.wakeup(Chan::ConsoleInput);
                    k.procs.wakeup(Chan::TtyOutput);
                    Ok(0)
                }
            }
        }
        TIOCGWINSZ => {
            let ws = tty::with(|t| t.winsize);
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
                    k.procs.set_winsize([w(0), w(1), w(2), w(3)]);
                    Ok(0)
                }
            }
        }
        FIONREAD => {
            if !tty::with(|t| t.readable()) {
                tty::pump();
            }
            let n = tty::with(|t| t.available());
            write_i32(k, s, arg, n as i32)
        }
        // Output is written to the host as it comes: nothing waits.
        TIOCOUTQ => write_i32(k, s, arg, 0),
        TCSBRK | TCSBRKP => Ok(0),
        TCFLSH => match arg as u32 {
            linux::TCIFLUSH | linux::TCIOFLUSH => {
                tty::with(|t| t.flush_input());
                Ok(0)
            }
            linux::TCOFLUSH => Ok(0),
            _ => Err(Errno::EINVAL),
        },
        TCXONC => match arg as u32 {
            linux::TCOOFF => {
                tty::with(|t| t.stopped = true);
                Ok(0)
            }
            linux::TCOON => {
                tty::with(|t| t.stopped = false);
                k.procs.wakeup(Chan::TtyOutput);
                Ok(0)
            }
            // Linux sends the STOP or START character to the terminal,
            // which a terminal emulator does not show: nothing to do.
            linux::TCIOFF | linux::TCION => Ok(0),
            _ => Err(Errno::EINVAL),
        },
        TIOCGPGRP => {
            let (session, pgrp) = tty::with(|t| (t.session, t.pgrp));
            if session == 0 || session != k.procs.procs[s].sid {
                Err(Errno::ENOTTY)
            } else {
                write_i32(k, s, arg, pgrp as i32)
            }
        }
        TIOCSPGRP => set_pgrp(k, s, arg),
        TIOCGSID => {
            let session = tty::with(|t| t.session);
            if session == 0 || session != k.procs.procs[s].sid {
                Err(Errno::ENOTTY)
            } else {
                write_i32(k, s, arg, session as i32)
            }
        }
        TIOCSCTTY => set_ctty(k, s, arg),
        TIOCNOTTY => no_ctty(k, s),
        FIONBIO => super::fd::fionbio(k, s, f, arg),
        _ => Err(Errno::ENOTTY),
    };
    Ret(r.unwrap_or_else(err))
}

/// TIOCSPGRP: the foreground group must be one of the caller's session.
fn set_pgrp(k: &mut Kernel, s: usize, arg: u64) -> Result<i64, Errno> {
    let pgrp = read_i32(k, s, arg)?;
    if pgrp < 0 {
        return Err(Errno::EINVAL);
    }
    let sid = k.procs.procs[s].sid;
    match k.procs.group_session(pgrp as u32) {
        None => Err(Errno::ESRCH),
        Some(other) if other != sid => Err(Errno::EPERM),
        Some(_) => {
            tty::with(|t| {
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
fn set_ctty(k: &mut Kernel, s: usize, arg: u64) -> Result<i64, Errno> {
    let p = &k.procs.procs[s];
    let (pid, sid, pgid) = (p.pid, p.sid, p.pgid);
    let session = tty::with(|t| t.session);
    if session == sid {
        tty::with(|t| t.claimed = true);
        return Ok(0);
    }
    if pid != sid {
        return Err(Errno::EPERM);
    }
    let boot_held = session == 1 && !tty::with(|t| t.claimed);
    if session != 0 && !boot_held && arg != 1 {
        return Err(Errno::EPERM);
    }
    tty::with(|t| {
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
fn no_ctty(k: &mut Kernel, s: usize) -> Result<i64, Errno> {
    let p = &k.procs.procs[s];
    let (pid, sid) = (p.pid, p.sid);
    if tty::with(|t| t.session) != sid || sid == 0 {
        return Err(Errno::ENOTTY);
    }
    if pid == sid {
        k.procs.tty_leader_exit(sid);
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
