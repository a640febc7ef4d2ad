//! Blocking, as xv6's `sleep`/`wakeup`: a process that must wait sleeps on
//! a channel — a value naming what it waits for — and whoever makes that
//! thing happen wakes the channel. One mechanism for every blocking call:
//! wait4, console reads, sleeps, futexes, pipes, eventfd, and poll.
//!
//! A woken process restarts its system call from the top (DragonFly's
//! ERESTART): the call finds what it waited for, or sleeps again. A sleep
//! may also have a deadline on the host's monotonic clock; if that passes
//! first, the call returns the value it chose when it slept (0 for
//! nanosleep, `-ETIMEDOUT` for a futex wait) instead of restarting, or,
//! for a sleep with [`RESTART`], restarts too and finds its deadline gone
//! (poll and select must still scan once more and write their results).
//!
//! Waiting on many (poll, select, epoll_wait): the process sleeps on
//! [`Chan::Poll`] with a set of channels, and a wakeup of any of them
//! wakes it. It scans again when restarted; a spurious wake costs a scan.
//! The deadline survives restarts in `Proc::deadline_ns`.

use alloc::vec::Vec;

pub use crate::chan::Chan;

use super::{Proc, ProcTable, State};

/// `timeout_result` of a sleep whose call restarts at its deadline too.
pub const RESTART: i64 = i64::MIN;

/// Whether `p` sleeps on `chan`, directly or in its poll set.
fn asleep_on(p: &Proc, chan: Chan) -> bool {
    match p.state {
        State::Blocked {
            chan: Chan::Poll, ..
        } => p.poll_chans.contains(&chan),
        State::Blocked { chan: c, .. } => c == chan,
        _ => false,
    }
}

impl ProcTable {
    /// Puts process `s` to sleep on `chan` until a [`ProcTable::wakeup`]
    /// of it (the call then restarts) or until the host clock reaches
    /// `until_ns` (0: never; the call then returns `timeout_result`).
    pub fn sleep(&mut self, s: usize, chan: Chan, until_ns: u64, timeout_result: i64) {
        let p = &mut self.procs[s];
        p.set_state(State::Blocked { chan, until_ns });
        p.restart = true;
        p.timeout_result = timeout_result;
        p.deadline_ns = until_ns;
        // A signal it can take is already pending (sigsuspend's mask let
        // one in, say): the sleep ends before it starts, as Linux's
        // signal_pending check before schedule(); delivery decides.
        let ready = p.sig.deliverable() != super::signal::SigSet::EMPTY
            || p.sig.pending.0 & p.sig.waiting.0 != 0;
        if ready && !matches!(chan, Chan::Vfork(_)) {
            p.set_state(State::Runnable);
        }
    }

    /// Puts process `s` to sleep on `chan` for a call that gives up after
    /// `timeout_ns` (0: never) with `on_timeout`, the deadline kept across
    /// the call's restarts (a socket's SO_RCVTIMEO and SO_SNDTIMEO).
    /// `Some(on_timeout)`: the deadline has passed already, no sleep.
    pub fn sleep_timed(
        &mut self,
        s: usize,
        chan: Chan,
        timeout_ns: u64,
        on_timeout: i64,
    ) -> Option<i64> {
        if timeout_ns == 0 {
            self.sleep(s, chan, 0, 0);
            return None;
        }
        let before = self.resumed_deadline(s);
        let now = guestlib::hypercall::clock_ns();
        if before != 0 && now >= before {
            return Some(on_timeout);
        }
        let until = if before != 0 {
            before
        } else {
            now.saturating_add(timeout_ns)
        };
        self.sleep(s, chan, until, on_timeout);
        None
    }

    /// Puts process `s` to sleep until a wakeup of any channel in `chans`
    /// or the host clock reaches `until_ns` (0: never); either way the
    /// call restarts (and sees its deadline in `Proc::deadline_ns`).
    pub fn sleep_many(&mut self, s: usize, chans: Vec<Chan>, until_ns: u64) {
        self.sleep(s, Chan::Poll, until_ns, RESTART);
        self.procs[s].poll_chans = chans;
    }

    /// The deadline the current call of `s` slept with before (0: none),
    /// for a restarted poll.
    pub fn resumed_deadline(&self, s: usize) -> u64 {
        self.procs[s].deadline_ns
    }

    /// Wakes every process sleeping on `chan`: each restarts its call.
    pub fn wakeup(&mut self, chan: Chan) {
        for p in self.procs.iter_mut() {
            if asleep_on(p, chan) {
                p.set_state(State::Runnable);
            }
        }
    }

    /// Whether anyone sleeps on `chan`.
    pub fn sleeping_on(&self, chan: Chan) -> bool {
        self.procs.iter().any(|p| asleep_on(p, chan))
    }

    /// The earliest deadline of any sleep or ITIMER_REAL, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        let sleeps = self.procs.iter().filter_map(|p| match p.state {
            State::Blocked { until_ns, .. } if until_ns != 0 => Some(until_ns),
            _ => None,
        });
        let timers = self
            .procs
            .iter()
            .filter(|p| p.state != State::Free && p.real_timer.deadline_ns != 0)
            .map(|p| p.real_timer.deadline_ns);
        sleeps
            .chain(timers)
            .chain(self.next_posix_deadline())
            .chain(self.next_timerfd_deadline())
            .min()
    }

    /// Ends the sleeps whose deadline is at or before `now_ns`: their
    /// calls return the value each chose.
    pub fn expire(&mut self, now_ns: u64) {
        for p in self.procs.iter_mut() {
            if let State::Blocked { until_ns, .. } = p.state {
                if until_ns != 0 && until_ns <= now_ns {
                    p.set_state(State::Runnable);
                    if p.timeout_result != RESTART {
                        p.restart = false;
                        p.sig.waiting = super::signal::SigSet::EMPTY;
                        p.tf.rax = p.timeout_result as u64;
                        p.deadline_ns = 0;
                    }
                }
            }
        }
        self.fire_real_timers(now_ns);
        self.fire_wall_timers();
        self.fire_timerfds(now_ns);
    }

    /// SIGALRM for each ITIMER_REAL due by `now_ns`; a periodic one is
    /// re-armed one interval on (past intervals missed are not queued,
    /// as Linux counts them as overruns).
    fn fire_real_timers(&mut self, now_ns: u64) {
        use super::signal::{SigInfo, SIGALRM, SI_KERNEL};
        for t in 0..self.procs.len() {
            // A leader that ended before its threads keeps the process's
            // timer; a dead process has none (exit clears it).
            let p = &self.procs[t];
            let due = p.real_timer.deadline_ns;
            if p.state == State::Free || due == 0 || due > now_ns {
                continue;
            }
            let p = &mut self.procs[t];
            let interval = p.real_timer.interval_ns;
            p.real_timer.deadline_ns = match (now_ns - due).checked_div(interval) {
                None => 0,
                Some(missed) => due.saturating_add((missed + 1).saturating_mul(interval)),
            };
            let _ = self.send_group(t, SigInfo::new(SIGALRM, SI_KERNEL));
        }
    }
}
