//! A process's timers beyond ITIMER_REAL (which lives in [`super::wait`]
//! with the sleeps): ITIMER_VIRTUAL and ITIMER_PROF on the process's CPU
//! time, and POSIX timers (`timer_create`) on the host clock or on a
//! CPU-time clock, as Linux's kernel/time/{itimer,posix-timers,
//! posix-cpu-timers}.c.
//!
//! Timers belong to the process (Linux's `signal_struct`): they are kept
//! in its leader's slot, not inherited by fork, and POSIX timers are
//! deleted by execve while the interval timers survive it.
//!
//! Wall-clock timers fire when the scheduler sees their deadline pass
//! (like the sleeps: at the end of a time slice at the latest). CPU-time
//! timers fire when the CPU time they measure is charged, which happens
//! at every system call and slice end: a process that computes for a
//! whole slice gets its SIGPROF up to a slice late, with one signal for
//! the slice (Linux checks at every tick).
//!
//! Overruns: a timer whose signal is still queued when it fires again
//! queues no second one; the missed expirations are counted and handed
//! to the process as `si_overrun` when the signal is taken (and kept for
//! `timer_getoverrun`), as Linux's posixtimer_rearm does.

use alloc::rc::Rc;
use alloc::vec::Vec;

pub use crate::deadline::Arming;

use super::signal::{SigInfo, SIGPROF, SIGVTALRM, SI_KERNEL};
use super::{Chan, CpuTimes, Pid, ProcTable, State};
use crate::fs::timerfd::TimerFd;
use vkernel_abi::Errno;

/// Most POSIX timers per process (Linux bounds them by
/// `RLIMIT_SIGPENDING`, whose default is about this on a small machine).
pub const MAX_POSIX_TIMERS: usize = 4096;

/// `SI_TIMER`: the si_code of a POSIX timer's signal.
pub const SI_TIMER: i32 = -2;

/// What a timer measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerClock {
    /// The host's monotonic clock: CLOCK_MONOTONIC and CLOCK_BOOTTIME, or
    /// CLOCK_REALTIME (`realtime`), whose absolute deadlines are converted
    /// when armed.
    Wall { realtime: bool },
    /// The CPU time (user + system) of process `pid`, or of thread `pid`.
    Cpu { pid: Pid, thread: bool },
}

impl TimerClock {
    pub fn is_wall(self) -> bool {
        matches!(self, TimerClock::Wall { .. })
    }
}

/// How a POSIX timer tells its process (`sigevent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// SIGEV_NONE: nothing; the timer is only read.
    Nothing,
    /// SIGEV_SIGNAL (to the process), or with SIGEV_THREAD_ID to one
    /// thread of it.
    Signal { signo: i32, thread: Option<Pid> },
}

/// One `timer_create` timer.
#[derive(Clone, Copy, Debug)]
pub struct PosixTimer {
    pub id: i32,
    pub clock: TimerClock,
    pub notify: Notify,
    /// `sigev_value`, handed back in the signal's `si_value`.
    pub value: u64,
    pub arming: Arming,
    /// Expirations missed since its signal was last taken.
    pub overrun: u64,
    /// The overrun count the last signal taken carried
    /// (`timer_getoverrun`).
    pub last_overrun: i32,
}

/// A process's timers (kept in its leader's slot).
#[derive(Clone, Debug, Default)]
pub struct ProcessTimers {
    /// ITIMER_VIRTUAL (user time) and ITIMER_PROF (user + system time).
    pub virt: Arming,
    pub prof: Arming,
    pub posix: Vec<PosixTimer>,
    next_id: i32,
}

impl ProcessTimers {
    /// Whether any of them runs on CPU time (and so must be looked at
    /// whenever CPU time is charged).
    pub fn on_cpu(&self) -> bool {
        self.virt.deadline != 0
            || self.prof.deadline != 0
            || self
                .posix
                .iter()
                .any(|t| !t.clock.is_wall() && t.arming.deadline != 0)
    }

    /// The earliest wall-clock deadline among them.
    pub fn next_wall_deadline(&self) -> Option<u64> {
        self.posix
            .iter()
            .filter(|t| t.clock.is_wall() && t.arming.deadline != 0)
            .map(|t| t.arming.deadline)
            .min()
    }

    /// A new POSIX timer; its id (Linux: the lowest free one counting up
    /// from 0, per process). `EAGAIN` when the process has too many.
    pub fn create(
        &mut self,
        clock: TimerClock,
        notify: Notify,
        value: Option<u64>,
    ) -> Result<i32, Errno> {
        if self.posix.len() >= MAX_POSIX_TIMERS {
            return Err(Errno::EAGAIN);
        }
        self.posix.try_reserve(1).map_err(|_| Errno::EAGAIN)?;
        let mut id = self.next_id;
        while self.posix.iter().any(|t| t.id == id) {
            id = id.checked_add(1).unwrap_or(0);
        }
        self.next_id = id.checked_add(1).unwrap_or(0);
        self.posix.push(PosixTimer {
            id,
            clock,
            notify,
            // Without a sigevent, si_value holds the timer id.
            value: value.unwrap_or(id as u64),
            arming: Arming::default(),
            overrun: 0,
            last_overrun: 0,
        });
        Ok(id)
    }

    pub fn get(&mut self, id: i32) -> Result<&mut PosixTimer, Errno> {
        self.posix
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or(Errno::EINVAL)
    }

    pub fn delete(&mut self, id: i32) -> Result<(), Errno> {
        let at = self
            .posix
            .iter()
            .position(|t| t.id == id)
            .ok_or(Errno::EINVAL)?;
        self.posix.remove(at);
        Ok(())
    }

    /// What execve keeps: the interval timers, not the POSIX ones.
    pub fn exec(&mut self) {
        self.posix.clear();
    }
}

impl SigInfo {
    /// A POSIX timer's signal (`SI_TIMER`: si_timerid, si_overrun,
    /// si_value).
    pub fn timer(sig: i32, id: i32, value: u64) -> SigInfo {
        let mut i = SigInfo::new(sig, SI_TIMER);
        i.0[16..20].copy_from_slice(&id.to_le_bytes());
        i.0[24..32].copy_from_slice(&value.to_le_bytes());
        i
    }

    fn timer_id(&self) -> i32 {
        i32::from_le_bytes([self.0[16], self.0[17], self.0[18], self.0[19]])
    }

    fn set_overrun(&mut self, n: i32) {
        self.0[20..24].copy_from_slice(&n.to_le_bytes());
    }
}

impl ProcTable {
    /// The slot holding process `s`'s timers: its leader's (the caller's
    /// own if the leader is gone).
    pub fn timer_slot(&self, s: usize) -> usize {
        self.find(self.procs[s].tgid).unwrap_or(s)
    }

    /// The CPU time of process `tgid`: its live and zombie tasks', and
    /// what its ended threads left with the leader.
    pub fn group_cpu(&self, tgid: Pid) -> CpuTimes {
        let mut sum = CpuTimes::default();
        for p in self.procs.iter() {
            if p.state != State::Free && p.tgid == tgid {
                sum.add(p.cpu);
                sum.add(p.exited_threads_cpu);
            }
        }
        sum
    }

    /// A CPU-time clock's reading; `None` if the task or process it
    /// measures is gone.
    fn cpu_clock_now(&self, clock: TimerClock) -> Option<u64> {
        let total = |c: CpuTimes| c.user_ns.saturating_add(c.system_ns);
        match clock {
            TimerClock::Wall { .. } => None,
            TimerClock::Cpu { pid, thread: true } => {
                self.find(pid).map(|t| total(self.procs[t].cpu))
            }
            TimerClock::Cpu { pid, thread: false } => {
                self.find(pid)?;
                Some(total(self.group_cpu(pid)))
            }
        }
    }

    /// What `clock` reads now (the host clock for wall timers; 0 for the
    /// CPU time of a task that is gone).
    pub fn timer_clock_now(&self, clock: TimerClock) -> u64 {
        match clock {
            TimerClock::Wall { .. } => guestlib::hypercall::clock_ns(),
            _ => self.cpu_clock_now(clock).unwrap_or(0),
        }
    }

    /// Recounts the processes with a CPU-time timer armed (so that
    /// charging CPU time looks for them only when there are any).
    pub fn recount_cpu_timers(&mut self) {
        self.cpu_timer_owners = self.procs.iter().filter(|p| p.timers.on_cpu()).count();
    }

    /// Fires the CPU-time timers that are due (after CPU time was
    /// charged).
    pub fn fire_cpu_timers(&mut self) {
        for owner in 0..self.procs.len() {
            if self.procs[owner].state == State::Free || !self.procs[owner].timers.on_cpu() {
                continue;
            }
            let cpu = self.group_cpu(self.procs[owner].tgid);
            let (user, prof) = (cpu.user_ns, cpu.user_ns.saturating_add(cpu.system_ns));
            let t = &mut self.procs[owner].timers;
            let virt = t.virt.advance(user).is_some();
            let profd = t.prof.advance(prof).is_some();
            if virt {
                let _ = self.send_group(owner, SigInfo::new(SIGVTALRM, SI_KERNEL));
            }
            if profd {
                let _ = self.send_group(owner, SigInfo::new(SIGPROF, SI_KERNEL));
            }
            self.fire_posix(owner, false);
        }
        self.recount_cpu_timers();
    }

    /// The earliest deadline of a wall-clock POSIX timer.
    pub fn next_posix_deadline(&self) -> Option<u64> {
        self.procs
            .iter()
            .filter(|p| p.state != State::Free)
            .filter_map(|p| p.timers.next_wall_deadline())
            .min()
    }

    /// Fires the wall-clock POSIX timers due by now.
    pub fn fire_wall_timers(&mut self) {
        for owner in 0..self.procs.len() {
            if self.procs[owner].state != State::Free
                && self.procs[owner].timers.next_wall_deadline().is_some()
            {
                self.fire_posix(owner, true);
            }
        }
    }

    /// Fires the due POSIX timers of the process in slot `owner`: the wall
    /// ones or the CPU-time ones.
    fn fire_posix(&mut self, owner: usize, wall: bool) {
        for i in 0..self.procs[owner].timers.posix.len() {
            let timer = self.procs[owner].timers.posix[i];
            if timer.clock.is_wall() != wall || timer.arming.deadline == 0 {
                continue;
            }
            let Some(now) = (if wall {
                Some(guestlib::hypercall::clock_ns())
            } else {
                self.cpu_clock_now(timer.clock)
            }) else {
                continue;
            };
            let mut arming = timer.arming;
            let Some(missed) = arming.advance(now) else {
                continue;
            };
            let queued = self.timer_signal_queued(owner, &timer);
            let t = &mut self.procs[owner].timers.posix[i];
            t.arming = arming;
            let Notify::Signal { signo, thread } = timer.notify else {
                continue;
            };
            if queued {
                t.overrun = t.overrun.saturating_add(missed + 1);
                continue;
            }
            t.overrun = t.overrun.saturating_add(missed);
            let info = SigInfo::timer(signo, timer.id, timer.value);
            let _ = match thread {
                // A thread that is gone gets nothing (Linux drops it).
                Some(tid) => match self.find(tid) {
                    Some(x) if self.procs[x].tgid == self.procs[owner].tgid => self.send(x, info),
                    _ => Ok(()),
                },
                None => self.send_group(owner, info),
            };
        }
    }

    /// Whether the signal of `timer` is still queued in its process.
    fn timer_signal_queued(&self, owner: usize, timer: &PosixTimer) -> bool {
        let tgid = self.procs[owner].tgid;
        self.procs
            .iter()
            .filter(|p| p.state != State::Free && p.tgid == tgid)
            .any(|p| {
                p.sig
                    .queue
                    .iter()
                    .any(|i| i.code() == SI_TIMER && i.timer_id() == timer.id)
            })
    }

    /// Keeps track of a new timerfd (forgetting those gone).
    pub fn register_timerfd(&mut self, t: &Rc<TimerFd>) {
        self.timerfds.retain(|w| w.strong_count() > 0);
        self.timerfds.push(Rc::downgrade(t));
    }

    /// The earliest deadline of an armed timerfd.
    pub fn next_timerfd_deadline(&self) -> Option<u64> {
        self.timerfds
            .iter()
            .filter_map(|w| w.upgrade()?.deadline())
            .min()
    }

    /// Counts the expirations of the timerfds due by `now` and wakes
    /// their readers and pollers.
    pub fn fire_timerfds(&mut self, now: u64) {
        let due: Vec<Chan> = self
            .timerfds
            .iter()
            .filter_map(|w| w.upgrade())
            .filter(|t| t.update(now))
            .map(|t| t.chan())
            .collect();
        for chan in due {
            self.wakeup(chan);
        }
    }

    /// Task `s` takes `info` off its queue: a POSIX timer's signal gets the
    /// overruns counted since (and the timer keeps them for
    /// `timer_getoverrun`).
    pub fn timer_signal_taken(&mut self, s: usize, info: &mut SigInfo) {
        if info.code() != SI_TIMER {
            return;
        }
        let owner = self.timer_slot(s);
        if let Ok(t) = self.procs[owner].timers.get(info.timer_id()) {
            let n = i32::try_from(t.overrun).unwrap_or(i32::MAX);
            t.last_overrun = n;
            t.overrun = 0;
            info.set_overrun(n);
        }
    }
}
