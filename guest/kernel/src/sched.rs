//! The scheduler (xv6's scheduler()): round-robin over runnable
//! processes, one turn each per round. A turn is one `vmspace_ctl(RUN)`
//! with the time slice as its timeout; it ends when the process makes a
//! system call, faults, or uses up the slice (the host's RUN timeout, so a
//! process that loops forever cannot starve the others).
//!
//! When no process can run, the kernel blocks in the idle hypercall until
//! the earliest sleeper's deadline or console input: the host spends no
//! CPU while the guest is idle.

use crate::exec::ArgBuf;
use crate::proc::{self, ProcTable, State, NPROC};
use crate::syscall;
use crate::vm;
use crate::vmspace as vms;
use crate::{eprintln, hypercall};
use vkernel_abi::frame::*;
use vkernel_abi::rflags;

/// Runs processes until init exits (which ends the run).
pub fn run(t: &mut ProcTable, scratch: &mut ArgBuf) -> ! {
    loop {
        wake(t);
        let mut ran = false;
        for s in 0..NPROC {
            if t.procs[s].state != State::Runnable {
                continue;
            }
            ran = true;
            if t.procs[s].restart {
                t.procs[s].restart = false;
                syscall::dispatch(t, s, scratch);
            } else {
                turn(t, s, scratch);
            }
        }
        if !ran {
            idle(t);
        }
    }
}

/// Wakes sleepers whose deadline passed, and readers when others are
/// runnable (they retry their read: console input may have come while
/// the CPU was busy; the retry costs one hypercall).
fn wake(t: &mut ProcTable) {
    let any_sleeper = t
        .procs
        .iter()
        .any(|p| matches!(p.state, State::Sleeping { .. }));
    let now = if any_sleeper {
        hypercall::clock_ns()
    } else {
        0
    };
    let any_runnable = t.procs.iter().any(|p| p.state == State::Runnable);
    for p in t.procs.iter_mut() {
        match p.state {
            State::Sleeping { until_ns } if until_ns <= now => {
                p.state = State::Runnable;
                p.tf.rax = p.wake_result as u64;
            }
            State::ReadWait if any_runnable => {
                p.state = State::Runnable;
                p.restart = true;
            }
            _ => {}
        }
    }
}

/// Nothing is runnable: block in the host until the next deadline or input.
fn idle(t: &mut ProcTable) {
    let deadline = t
        .procs
        .iter()
        .filter_map(|p| match p.state {
            State::Sleeping { until_ns } => Some(until_ns.max(1)),
            _ => None,
        })
        .min();
    let readers = t.procs.iter().any(|p| p.state == State::ReadWait);
    // With neither a deadline nor a reader nothing can wake the guest but
    // input that nobody reads: look again once a second rather than spin.
    let deadline = match deadline {
        Some(d) => d,
        None if readers => 0,
        None => hypercall::clock_ns() + 1_000_000_000,
    };
    if hypercall::idle(deadline) {
        for p in t.procs.iter_mut() {
            if p.state == State::ReadWait {
                p.state = State::Runnable;
                p.restart = true;
            }
        }
    }
}

/// Gives process `s` one turn on the vCPU and handles why it came back.
fn turn(t: &mut ProcTable, s: usize, scratch: &mut ArgBuf) {
    let p = &mut t.procs[s];
    // Only the flags a process may change; IF on (the host refuses others).
    p.tf.rflags = (p.tf.rflags & rflags::USER_CHANGEABLE) | rflags::IF | rflags::FIXED;
    let (vmid, slice) = (p.vmid, t.slice_us);
    let mut tf = p.tf;
    let mut vf = p.vf;
    if t.boot_trace && p.pid == 1 {
        t.boot_trace = false;
        eprintln!(
            "boot: /init first instruction at {} ns",
            hypercall::clock_ns()
        );
    }
    let r = vms::run(vmid, &mut tf, &mut vf, slice);
    let p = &mut t.procs[s];
    if let Err(e) = r {
        // The host refused the frame (EINVAL): the process left itself an
        // rip, rsp or TLS base outside the user half (say, by jumping to
        // the syscall stub with a wild rcx). Linux would fault it: SIGSEGV.
        let (pid, rip) = (p.pid, p.tf.rip);
        eprintln!(
            "pid {pid} ({}): SIGSEGV at {rip:#x}, rip {rip:#x} (frame refused: {})",
            p.name(),
            e.name()
        );
        t.exit(s, proc::SIGSEGV);
        return;
    }
    p.tf = tf;
    p.vf = vf;
    match tf.trapno {
        T_FAST_SYSCALL => syscall::dispatch(t, s, scratch),
        T_TIMEOUT => {} // slice over: next process
        T_PAGEFLT => match vm::fault(vmid, tf.addr, tf.err) {
            // Demand paging and copy-on-write of the guest pmap: run on.
            vm::Fault::Resolved => {}
            vm::Fault::Segv => fault(t, s, T_PAGEFLT),
            vm::Fault::OutOfMemory => out_of_memory(t, s),
        },
        trap => fault(t, s, trap),
    }
}

/// A process needs a page and none is left: it is killed with SIGKILL, as
/// Linux's OOM killer would (the guest pmap has no swap).
fn out_of_memory(t: &mut ProcTable, s: usize) {
    let p = &t.procs[s];
    let (pid, addr) = (p.pid, p.tf.addr);
    eprintln!(
        "pid {pid} ({}): out of memory at {addr:#x}: killed (SIGKILL)",
        p.name()
    );
    t.exit(s, proc::SIGKILL);
}

/// A process faulted: it dies of the signal Linux would send, with a
/// one-line report; its parent's wait4 sees the signal.
fn fault(t: &mut ProcTable, s: usize, trap: u64) {
    let p = &t.procs[s];
    let (sig, name) = match trap {
        T_PAGEFLT | T_PROTFLT | T_SEGNPFLT | T_STKFLT => (proc::SIGSEGV, "SIGSEGV"),
        T_PRIVINFLT => (proc::SIGILL, "SIGILL"),
        T_DIVIDE | T_ARITHTRAP | T_XMMFLT | T_OFLOW => (proc::SIGFPE, "SIGFPE"),
        T_BPTFLT | T_TRCTRAP => (proc::SIGTRAP, "SIGTRAP"),
        T_ALIGNFLT | T_BOUND => (proc::SIGBUS, "SIGBUS"),
        _ => (proc::SIGSEGV, "SIGSEGV"),
    };
    let (pid, rip, addr) = (p.pid, p.tf.rip, p.tf.addr);
    let at = if trap == T_PAGEFLT { addr } else { rip };
    eprintln!("pid {pid} ({}): {name} at {at:#x}, rip {rip:#x}", p.name());
    t.exit(s, sig);
}
