//! Scheduling policy (xv6's scheduler()): round-robin over runnable
//! processes, one turn each per round (the rounds themselves are the main
//! loop, in `trap.rs`). A turn is one `vmspace_ctl(RUN)` with the time
//! slice as its timeout; it ends when the process makes a system call,
//! faults, or uses up the slice (the host's RUN timeout, so a process that
//! loops forever cannot starve the others).
//!
//! When no process can run, the kernel blocks in the idle hypercall until
//! the earliest sleep's deadline or console input: the host spends no CPU
//! while the guest is idle.

use super::{Chan, Proc, ProcTable, State};
use guestlib::vmspace as vms;
use guestlib::{eprintln, hypercall};
use vkernel_abi::rflags;
use vkernel_abi::Errno;

impl ProcTable {
    /// Readies a round: ends the sleeps whose deadline passed, and wakes
    /// console readers (and pollers of the console) when others are
    /// runnable (they retry their read: input may have come while the CPU
    /// was busy; the retry costs one hypercall).
    pub fn start_round(&mut self) {
        if let Some(deadline) = self.next_deadline() {
            let now = hypercall::clock_ns();
            if deadline <= now {
                self.expire(now);
            }
        }
        let tty = crate::fs::tty::active();
        if tty {
            // A read or poll may have taken a Ctrl-C from the host since.
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
