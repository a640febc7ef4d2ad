//! Blocking, as xv6's `sleep`/`wakeup`: a process that must wait sleeps on
//! a channel — a value naming what it waits for — and whoever makes that
//! thing happen wakes the channel. One mechanism for every blocking call:
//! wait4, console reads, sleeps, futexes, and (next) pipes and poll.
//!
//! A woken process restarts its system call from the top (DragonFly's
//! ERESTART): the call finds what it waited for, or sleeps again. A sleep
//! may also have a deadline on the host's monotonic clock; if that passes
//! first, the call returns the value it chose when it slept (0 for
//! nanosleep, `-ETIMEDOUT` for a futex wait) instead of restarting.

pub use crate::chan::Chan;

use super::{ProcTable, State};

impl ProcTable {
    /// Puts process `s` to sleep on `chan` until a [`ProcTable::wakeup`]
    /// of it (the call then restarts) or until the host clock reaches
    /// `until_ns` (0: never; the call then returns `timeout_result`).
    pub fn sleep(&mut self, s: usize, chan: Chan, until_ns: u64, timeout_result: i64) {
        let p = &mut self.procs[s];
        p.state = State::Blocked { chan, until_ns };
        p.restart = true;
        p.timeout_result = timeout_result;
    }

    /// Wakes every process sleeping on `chan`: each restarts its call.
    pub fn wakeup(&mut self, chan: Chan) {
        for p in self.procs.iter_mut() {
            if matches!(p.state, State::Blocked { chan: c, .. } if c == chan) {
                p.state = State::Runnable;
            }
        }
    }

    /// Whether anyone sleeps on `chan`.
    pub fn sleeping_on(&self, chan: Chan) -> bool {
        self.procs
            .iter()
            .any(|p| matches!(p.state, State::Blocked { chan: c, .. } if c == chan))
    }

    /// The earliest deadline of any sleep, if one has a deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.procs
            .iter()
            .filter_map(|p| match p.state {
                State::Blocked { until_ns, .. } if until_ns != 0 => Some(until_ns),
                _ => None,
            })
            .min()
    }

    /// Ends the sleeps whose deadline is at or before `now_ns`: their
    /// calls return the value each chose.
    pub fn expire(&mut self, now_ns: u64) {
        for p in self.procs.iter_mut() {
            if let State::Blocked { until_ns, .. } = p.state {
                if until_ns != 0 && until_ns <= now_ns {
                    p.state = State::Runnable;
                    p.restart = false;
                    p.tf.rax = p.timeout_result as u64;
                }
            }
        }
    }
}
