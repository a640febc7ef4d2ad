//! The kernel's main loop (xv6's scheduler() with usertrap()): give each
//! runnable process a turn, then handle why it came back — a system call,
//! a page fault for the guest pmap, a fault that kills it, or the end of
//! its slice.

use crate::kernel::Kernel;
use crate::mm::Fault;
use crate::proc::{sched, signal, State};
use crate::syscall;
use guestlib::eprintln;
use vkernel_abi::frame::*;

/// Runs processes until init exits (which ends the run).
pub fn run(k: &mut Kernel) -> ! {
    loop {
        k.procs.start_round();
        let mut ran = false;
        for s in 0..k.procs.procs.len() {
            if k.procs.procs[s].state != State::Runnable {
                continue;
            }
            ran = true;
            if k.procs.procs[s].restart {
                k.procs.procs[s].restart = false;
                syscall::dispatch(k, s);
            } else {
                turn(k, s);
            }
        }
        if !ran {
            k.procs.idle();
        }
    }
}

/// Gives process `s` one turn on the vCPU and handles why it came back.
fn turn(k: &mut Kernel, s: usize) {
    let p = &mut k.procs.procs[s];
    if let Err(e) = sched::enter(p, k.slice_us, &mut k.boot_trace) {
        // The host refused the frame (EINVAL): the process left itself an
        // rip, rsp or TLS base outside the user half (say, by jumping to
        // the syscall stub with a wild rcx). Linux would fault it: SIGSEGV.
        let (pid, rip) = (p.pid, p.tf.rip);
        eprintln!(
            "pid {pid} ({}): SIGSEGV at {rip:#x}, rip {rip:#x} (frame refused: {})",
            p.name(),
            e.name()
        );
        k.procs.exit(s, signal::SIGSEGV);
        return;
    }
    let tf = p.tf;
    match tf.trapno {
        T_FAST_SYSCALL => syscall::dispatch(k, s),
        T_TIMEOUT => {} // slice over: next process
        T_PAGEFLT => {
            let fault = k.space(s).borrow_mut().fault(tf.addr, tf.err);
            match fault {
                // Demand paging and copy-on-write of the guest pmap: run on.
                Fault::Resolved => {}
                Fault::Segv => fault_kill(k, s, T_PAGEFLT),
                Fault::Bus => bus_error(k, s),
                Fault::OutOfMemory => out_of_memory(k, s),
            }
        }
        trap => fault_kill(k, s, trap),
    }
}

/// A process needs a page and none is left: it is killed with SIGKILL, as
/// Linux's OOM killer would (the guest pmap has no swap).
fn out_of_memory(k: &mut Kernel, s: usize) {
    let p = &k.procs.procs[s];
    let (pid, addr) = (p.pid, p.tf.addr);
    eprintln!(
        "pid {pid} ({}): out of memory at {addr:#x}: killed (SIGKILL)",
        p.name()
    );
    k.procs.exit(s, signal::SIGKILL);
}

/// A process touched a file mapping past the end of its file (or a page
/// a full tmpfs could not give): SIGBUS, as Linux sends.
fn bus_error(k: &mut Kernel, s: usize) {
    let p = &k.procs.procs[s];
    let (pid, rip, addr) = (p.pid, p.tf.rip, p.tf.addr);
    eprintln!(
        "pid {pid} ({}): SIGBUS at {addr:#x}, rip {rip:#x} (past the end of a mapped file, or its tmpfs is full)",
        p.name()
    );
    k.procs.exit(s, signal::SIGBUS);
}

/// A process faulted: it dies of the signal Linux would send, with a
/// one-line report; its parent's wait4 sees the signal.
fn fault_kill(k: &mut Kernel, s: usize, trap: u64) {
    let p = &k.procs.procs[s];
    let (sig, name) = signal::for_trap(trap);
    let (pid, rip, addr) = (p.pid, p.tf.rip, p.tf.addr);
    let at = if trap == T_PAGEFLT { addr } else { rip };
    eprintln!("pid {pid} ({}): {name} at {at:#x}, rip {rip:#x}", p.name());
    k.procs.exit(s, sig);
}
