//! Job control over terminals ([`crate::fs::tty`]: the console and the
//! ptys): the console's input reaches the line discipline even when no
//! process reads (so Ctrl-C reaches a `sleep 100`), the signals input
//! raises go to the foreground process group, a change of the host
//! terminal's size is SIGWINCH for it, and a pty whose master closed
//! hangs its session up.

use super::signal::{SigInfo, SIGCONT, SI_KERNEL};
use super::{Chan, Pid, ProcTable, State};
use crate::fs::pty;
use crate::fs::tty::{self, Term};
use guestlib::hypercall;
use vkernel_abi::{IDLE_INPUT, IDLE_WINCH};

const SIGHUP: i32 = linux_raw_sys::general::SIGHUP as i32;

/// Rounds between two looks at the host terminal while processes run
/// (the end of a time slice looks at once): a compute-bound foreground
/// job still sees its Ctrl-C within a slice.
const POLL_ROUNDS: u32 = 16;

impl ProcTable {
    /// Sends `sig` to every live process of group `pgrp` (a kernel
    /// signal: the terminal's).
    pub fn signal_group(&mut self, pgrp: Pid, sig: i32) {
        if pgrp == 0 {
            return;
        }
        for t in 0..self.procs.len() {
            let p = &self.procs[t];
            if p.alive() && p.pgid == pgrp {
                let _ = self.send(t, SigInfo::new(sig, SI_KERNEL));
            }
        }
    }

    /// Whether process group `pgrp` is orphaned: no member has a parent
    /// in another group of the same session (POSIX; Linux's
    /// will_become_orphaned_pgrp). Unlike Linux, a parent that is init
    /// counts like any other: the guest's init is often the user's shell,
    /// which does job control.
    pub fn orphaned(&self, pgrp: Pid) -> bool {
        !self
            .procs
            .iter()
            .filter(|p| p.alive() && p.pgid == pgrp)
            .any(|p| {
                self.procs
                    .iter()
                    .find(|q| q.alive() && q.pid == p.parent)
                    .is_some_and(|q| q.pgid != pgrp && q.sid == p.sid)
            })
    }

    /// Whether a process of group `pgrp` exists, and its session.
    pub fn group_session(&self, pgrp: Pid) -> Option<Pid> {
        self.procs
            .iter()
            .find(|p| p.state != State::Free && p.state != State::Zombie && p.pgid == pgrp)
            .map(|p| p.sid)
    }

    /// Sends the signals terminals' input raised to their foreground
    /// groups, wakes console writers once output runs again, and delivers
    /// the hangups of ptys whose master closed. Costs no hypercall: done
    /// every round.
    pub fn tty_signals(&mut self) {
        // Output a START (or a signal character) let go while a reader
        // took the input: its writers go on.
        if tty::active() && !tty::with(|t| t.stopped) && self.sleeping_on(Chan::TtyOutput) {
            self.wakeup(Chan::TtyOutput);
        }
        // Done every round: nothing is allocated unless a terminal has
        // signals to send.
        let mut raised = pty::take_signals();
        if tty::active() {
            let console = tty::with(|t| (t.take_signals(), t.pgrp));
            if console.0 != 0 {
                raised.push(console);
            }
        }
        for (sigs, pgrp) in raised {
            for sig in 1..64 {
                if sigs & (1 << sig) != 0 {
                    self.signal_group(pgrp, sig);
                }
            }
        }
        for (sid, pgrp) in pty::take_hangups() {
            self.hangup_session(sid, pgrp);
        }
    }

    /// A session's terminal hung up (its pty master closed): the session
    /// leader gets SIGHUP and SIGCONT, and then the foreground group
    /// SIGHUP (Linux's tty_signal_session_leader).
    fn hangup_session(&mut self, sid: Pid, pgrp: Pid) {
        let leader = self
            .procs
            .iter()
            .position(|p| p.alive() && p.pid == sid && p.tgid == sid);
        let Some(l) = leader else {
            return;
        };
        let _ = self.send(l, SigInfo::new(SIGHUP, SI_KERNEL));
        let _ = self.send(l, SigInfo::new(SIGCONT, SI_KERNEL));
        self.signal_group(pgrp, SIGHUP);
    }

    /// Acts on what the idle hypercall reported (`bits`): input goes into
    /// the line discipline now (its readers and pollers wake), a new
    /// window size is SIGWINCH for the foreground group.
    pub fn tty_events(&mut self, bits: i64) {
        if bits & IDLE_INPUT != 0 {
            // Take what the host has, up to the line discipline's buffer:
            // a paste arrives whole before anyone reads.
            for _ in 0..tty::INPUT_MAX / 1024 {
                if !tty::pump() {
                    break;
                }
            }
            self.wakeup(Chan::ConsoleInput);
        }
        if bits & IDLE_WINCH != 0 {
            let mut ws = [0u16; 4];
            if hypercall::console_winsize(&mut ws).is_ok() {
                self.set_winsize(&Term::Console, ws);
            }
        }
        if !tty::with(|t| t.stopped) {
            self.wakeup(Chan::TtyOutput);
        }
        self.tty_signals();
    }

    /// A new size of terminal `term` (the host's, or TIOCSWINSZ): SIGWINCH
    /// for its foreground group when it changed, as Linux's tty_do_resize.
    pub fn set_winsize(&mut self, term: &Term, ws: [u16; 4]) {
        let (changed, pgrp) = term.with(|t| {
            let changed = t.winsize != ws;
            t.winsize = ws;
            (changed, t.pgrp)
        });
        if changed {
            self.signal_group(pgrp, linux_raw_sys::general::SIGWINCH as i32);
        }
    }

    /// Once a round while processes run: every [`POLL_ROUNDS`] rounds (or
    /// after a slice ran out: `due`) a look at the host for input and
    /// size changes.
    pub fn tty_round(&mut self, due: bool) {
        if !tty::active() {
            return;
        }
        self.tty_rounds = self.tty_rounds.wrapping_add(1);
        if due || self.tty_rounds.is_multiple_of(POLL_ROUNDS) {
            // A deadline already past: a poll, not a wait.
            let bits = hypercall::idle(1);
            if bits != 0 {
                self.tty_events(bits);
            }
        }
    }

    /// A session leader exits (`on_exit`) or gives its terminal up
    /// (TIOCNOTTY): the terminal loses its session, and the foreground
    /// group gets SIGHUP, and SIGCONT unless the leader exited from a
    /// pty (Linux's disassociate_ctty).
    pub fn tty_leader_exit(&mut self, sid: Pid, on_exit: bool) {
        let Some(term) = tty::ctty(sid) else {
            return;
        };
        let g = term.with(|t| {
            t.session = 0;
            core::mem::take(&mut t.pgrp)
        });
        self.signal_group(g, SIGHUP);
        if !on_exit || term.is_console() {
            self.signal_group(g, SIGCONT);
        }
    }
}
