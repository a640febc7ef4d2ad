//! Scheduling policy: round-robin over runnable processes, one run each
//! per round (the rounds themselves are the main loop, in `trap.rs`). A
//! run is a time slice: turns, each one `vmspace_ctl(RUN)` with what is
//! left of the slice as its timeout, that end when the process makes a
//! system call, faults, or uses up the slice (the host's RUN timeout, so
//! a process that loops forever cannot starve the others). After a turn
//! that left the process runnable (a system call that did not block, a
//! fault resolved) it runs on, as Linux's current task keeps its CPU
//! after a system call: a wakeup does not hand the CPU to the woken
//! process at once ([`RunOn`] says when it does). That is what lets a
//! pipe's writer find its reader asleep in `read`, in both directions of
//! a ping-pong (one `vmspace_copy` where the ring takes a pread and a
//! pwrite), and it saves the switches of a process that makes many calls
//! that do not block.
//!
//! When no process can run, the kernel blocks in the idle hypercall until
//! the earliest sleep's deadline or console input: the host spends no CPU
//! while the guest is idle.

use super::{Chan, Proc, ProcTable, State};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use guestlib::vmspace as vms;
use guestlib::{eprintln, hypercall};
use vkernel_abi::rflags;
use vkernel_abi::Errno;

/// Sleeps ended so far (a process made runnable from `Blocked` or
/// `Stopped`), for [`RunOn`] to see whether a call woke anyone. The kernel
/// is single-threaded: the atomic only makes the static safe.
static WAKEUPS: AtomicU64 = AtomicU64::new(0);

/// Counts a process made runnable from a sleep or a stop.
pub fn count_wakeup() {
    WAKEUPS.fetch_add(1, Relaxed);
}

/// One process's run: its time slice, over as many turns as it takes.
/// The process runs on after a turn that left it runnable until one of:
/// - its slice is used up (what is left is each turn's RUN timeout; the
///   host ends a turn at the slice's end with `T_TIMEOUT`);
/// - it called `sched_yield`;
/// - a sleep's or timer's deadline passed (the sleep ends then, not a
///   slice later, as Linux's timer interrupt would end the current
///   task's run);
/// - its call woke another process and what it did after its recent
///   waking calls says it will go on rather than block soon
///   (`Proc::after_wake`; Linux's "sync wakeup" and the overlap of waker
///   and wakee it once measured; Linux's time-based wakeup granularity
///   is left out: the clock here is the host's wall clock, which runs on
///   while the host deschedules the vCPU, so a loaded host would turn
///   every wakeup into a switch, and the history corrects itself within
///   two waking calls anyway). A producer feeding a pipe gives the
///   reader it woke the CPU, so its next write finds the reader asleep
///   in `read` again (one `vmspace_copy`, not the ring's pread and
///   pwrite); the two sides of a ping-pong each block right after the
///   write that woke the other, so each runs on to its `read` and the
///   other's write finds it asleep.
///
/// Fairness: each runnable process gets a run per round, a woken one
/// included, so none waits more than a slice of each of the others; one
/// that never blocks gives way at the end of its slice as before. Without
/// a clock page cheap enough to read around every turn (`--clock
/// hypercall`) a run is one turn, as round-robin was before.
pub struct RunOn {
    /// When the run started (host monotonic ns), if the clock is cheap.
    start_ns: Option<u64>,
    slice_ns: u64,
}

impl RunOn {
    /// Starts a run of `slice_us`.
    pub fn start(procs: &mut ProcTable, slice_us: u64) -> RunOn {
        procs.yielded = false;
        RunOn {
            start_ns: hypercall::cheap_clock_ns(),
            slice_ns: slice_us.saturating_mul(1000),
        }
    }

    /// The next turn's RUN timeout: the slice's rest, in µs, rounded up
    /// by a margin so that the host keeps the timer the run's first turn
    /// armed (it re-arms only for a timeout that would end later than the
    /// armed one; the host's clock read at the RUN follows ours).
    pub fn timeout_us(&self, slice_us: u64) -> u64 {
        match (self.start_ns, hypercall::cheap_clock_ns()) {
            (Some(start), Some(now)) => {
                let left = self.slice_ns.saturating_sub(now.saturating_sub(start));
                (left / 1000 + TIMER_MARGIN_US).min(slice_us)
            }
            _ => slice_us,
        }
    }

    /// Whether process `s`, back from a turn (`timed_out`: the host's
    /// timer ended it; `wakeups`: [`wakeups`] before it), runs on.
    pub fn go_on(&self, procs: &mut ProcTable, s: usize, timed_out: bool, wakeups: u64) -> bool {
        let woke = WAKEUPS.load(Relaxed) != wakeups;
        let p = &mut procs.procs[s];
        let runnable = p.state == State::Runnable;
        if p.woke {
            // What it did after a waking call: went on, or gave up the CPU.
            p.after_wake = if runnable {
                (p.after_wake + 1).min(AFTER_WAKE_MAX)
            } else {
                p.after_wake.saturating_sub(1)
            };
        }
        p.woke = woke;
        if timed_out || procs.yielded || !runnable {
            return false;
        }
        let (Some(start), Some(now)) = (self.start_ns, hypercall::cheap_clock_ns()) else {
            return false;
        };
        let ran = now.saturating_sub(start);
        // Less than the host's shortest timeout left: the slice is over
        // (and the terminal is looked at this round, as after a slice the
        // host's timer ended: a Ctrl-C for a job that makes calls).
        if ran + vkernel_abi::RUN_TIMEOUT_MIN_US * 1000 >= self.slice_ns {
            procs.tty_due = true;
            return false;
        }
        if woke && procs.procs[s].after_wake >= AFTER_WAKE_GOES_ON {
            return false;
        }
        procs.next_deadline().is_none_or(|d| d > now)
    }
}

/// [`wakeups`] now, for [`RunOn::go_on`] after a turn.
pub fn wakeups() -> u64 {
    WAKEUPS.load(Relaxed)
}

/// `Proc::after_wake`'s ceiling, and where it says the process goes on
/// after waking another: twice in a row from a fresh start (a process
/// first runs on, as Linux's waker keeps the CPU within its granularity),
/// and as many blocks to undo it.
const AFTER_WAKE_MAX: u8 = 3;
const AFTER_WAKE_GOES_ON: u8 = 2;

/// See [`RunOn::timeout_us`].
const TIMER_MARGIN_US: u64 = 100;

impl ProcTable {
    /// Readies a round: ends the sleeps whose deadline passed, and wakes
    /// console readers (and pollers of the console) when others are
    /// runnable (they retry their read: input may have come while the CPU
    /// was busy; the retry costs one hypercall).
    pub fn start_round(&mut self) {
        self.expire_due(false);
        let tty = crate::fs::tty::active();
        if tty || crate::fs::pty::busy() {
            // A read or poll may have taken a Ctrl-C from the host since
            // (or a pty master written one).
            self.tty_signals();
        }
        if self.procs.iter().any(|p| p.state == State::Runnable) {
            if tty {
                let due = core::mem::take(&mut self.tty_due);
                self.tty_round(due);
            } else {
                self.wakeup(Chan::ConsoleInput);
            }
        }
    }

    /// Ends the sleeps (and fires the timers) whose deadline passed; with
    /// `cheap_only`, only if the clock can be read without an exit (the
    /// check after every run; each round's start reads it anyway).
    pub fn expire_due(&mut self, cheap_only: bool) {
        if let Some(deadline) = self.next_deadline() {
            let now = match hypercall::cheap_clock_ns() {
                Some(now) => now,
                None if cheap_only => return,
                None => hypercall::clock_ns(),
            };
            if deadline <= now {
                self.expire(now);
            }
        }
    }

    /// Nothing is runnable: block in the host until the next deadline or
    /// console input. A process polling the console counts as a reader
    /// (its poll set holds [`Chan::ConsoleInput`]), so the wakeup below
    /// reaches it too.
    pub fn idle(&mut self) {
        // The terminal takes input whether or not anyone reads it (a
        // Ctrl-C for a sleeping job): its input always ends the wait.
        let tty = crate::fs::tty::active();
        let readers = tty || self.sleeping_on(Chan::ConsoleInput);
        // With neither a deadline nor a reader nothing can wake the guest
        // but input that nobody reads: look again once a second rather
        // than spin.
        let deadline = match self.next_deadline() {
            Some(d) => d,
            None if readers => 0,
            None => hypercall::clock_ns() + 1_000_000_000,
        };
        let bits = hypercall::idle(deadline);
        if tty {
            self.tty_events(bits);
        } else if bits & vkernel_abi::IDLE_INPUT != 0 {
            self.wakeup(Chan::ConsoleInput);
        }
    }
}

/// Runs process `p` on the vCPU for at most `slice_us`; its frame comes
/// back holding where and why it stopped (`tf.trapno`). `Err` if the host
/// refused the frame.
pub fn enter(p: &mut Proc, slice_us: u64, boot_trace: &mut bool) -> Result<(), Errno> {
    // Only the flags a process may change; IF on (the host refuses others).
    p.tf.rflags = (p.tf.rflags & rflags::USER_CHANGEABLE) | rflags::IF | rflags::FIXED;
    if *boot_trace && p.pid == 1 {
        *boot_trace = false;
        eprintln!(
            "boot: /init first instruction at {} ns",
            hypercall::clock_ns()
        );
    }
    let mut tf = p.tf;
    let mut vf = p.vf;
    let r = if super::fpu::pkeys() {
        vms::run_with_pkru(p.vmid(), &mut tf, &mut vf, slice_us, &mut p.pkru)
    } else {
        vms::run(p.vmid(), &mut tf, &mut vf, slice_us)
    };
    r?;
    p.tf = tf;
    p.vf = vf;
    Ok(())
}

/// [`enter`], after the kernel has acted on every posted call that
/// failed: a call posted with the RUN that fails stops it before the
/// process runs (ECANCELED), its failure is acted on (which may change
/// this process's frame: a `wait4` whose status could not be stored
/// returns EFAULT) and the RUN is made again with what is left.
/// ECANCELED: the process can no longer run (a failure ended it: a fork
/// child whose vmspace the host could not make).
pub fn enter_settled(
    procs: &mut ProcTable,
    s: usize,
    slice_us: u64,
    boot_trace: &mut bool,
) -> Result<(), Errno> {
    loop {
        procs.settle_posted();
        if procs.procs[s].state != State::Runnable {
            return Err(Errno::ECANCELED);
        }
        match enter(&mut procs.procs[s], slice_us, boot_trace) {
            Err(Errno::ECANCELED) if guestlib::batch::failed() => continue,
            r => return r,
        }
    }
}
