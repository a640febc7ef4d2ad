//! The kernel's main loop (xv6's scheduler() with usertrap()): give each
//! runnable process a run (turns until it blocks or its slice ends, see
//! [`sched::RunOn`]), handling after each turn why it came back — a system call,
//! a page fault for the guest pmap, a fault that kills it, or the end of
//! its slice.

use crate::kernel::Kernel;
use crate::mm::Fault;
use crate::proc::signal::{self, DefaultAction, SigInfo, SIG_DFL, SIG_IGN};
use crate::proc::{sched, State};
use crate::syscall;
use guestlib::{eprintln, hypercall};
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
            run_on(k, s);
            // A run may have ended at a sleep's deadline.
            k.procs.expire_due(true);
        }
        if !ran {
            k.procs.idle();
        }
    }
}

/// Gives runnable process `s` its run: turns on the vCPU until it blocks,
/// ends, or [`sched::RunOn`] says it gives way.
fn run_on(k: &mut Kernel, s: usize) {
    let run = sched::RunOn::start(&mut k.procs, k.slice_us);
    loop {
        // A posted call's failure may change what this process's
        // system call returns: act on it before anything reads that.
        k.procs.settle_posted();
        if k.procs.procs[s].state != State::Runnable {
            return;
        }
        if k.procs.signal_pending(s) {
            deliver(k, s);
            if k.procs.procs[s].alive() {
                k.procs.publish_signals(s);
            }
            if k.procs.procs[s].state != State::Runnable {
                return;
            }
        }
        let wakeups = sched::wakeups();
        let timed_out = if k.procs.procs[s].restart {
            k.procs.procs[s].restart = false;
            let (pid, t0) = (k.procs.procs[s].pid, hypercall::cheap_clock_ns());
            syscall::dispatch(k, s);
            charge_since(k, s, pid, t0, false);
            false
        } else {
            turn(k, s, run.timeout_us(k.slice_us))
        };
        if !run.go_on(&mut k.procs, s, timed_out, wakeups) {
            return;
        }
    }
}

/// Gives process `s` one turn on the vCPU of at most `timeout_us` and
/// handles why it came back; whether its slice ran out.
fn turn(k: &mut Kernel, s: usize, timeout_us: u64) -> bool {
    k.procs.load_fpu(s);
    let (pid, t0) = (k.procs.procs[s].pid, hypercall::cheap_clock_ns());
    if let Err(e) = sched::enter_settled(&mut k.procs, s, timeout_us, &mut k.boot_trace) {
        if e == vkernel_abi::Errno::ECANCELED {
            // A posted call's failure ended it before it ran.
            return false;
        }
        let p = &k.procs.procs[s];
        // The host refused the frame (EINVAL): the process left itself an
        // rip, rsp or TLS base outside the user half (say, by jumping to
        // the syscall stub with a wild rcx). Linux would fault it: SIGSEGV
        // (at the refused rip, as the report says).
        guestlib::eprintln!(
            "kernel: pid {}: frame refused ({}): SIGSEGV",
            p.pid,
            e.name()
        );
        k.procs
            .force(s, SigInfo::new(signal::SIGSEGV, signal::SI_KERNEL));
        return false;
    }
    let tf = k.procs.procs[s].tf;
    // Its slice was user time; what the kernel does about the trap is
    // system time.
    let t1 = charge_since(k, s, pid, t0, true);
    match tf.trapno {
        T_FAST_SYSCALL => {
            syscall::dispatch(k, s);
            charge_since(k, s, pid, t1, false);
        }
        // Slice over: next process (and a look at the terminal: a
        // compute-bound job's Ctrl-C).
        T_TIMEOUT => {
            k.procs.tty_due = true;
            return true;
        }
        // PKRU refused it (ring 3 honours the process's protection keys
        // under PVM): no paging helps; SIGSEGV, SEGV_PKUERR.
        T_PAGEFLT if tf.err & vkernel_abi::paging::pf::PK != 0 => fault_signal(k, s, T_PAGEFLT),
        T_PAGEFLT => {
            let fault = k.space(s).borrow_mut().fault(tf.addr, tf.err);
            match fault {
                // Demand paging and copy-on-write of the guest pmap: run on.
                Fault::Resolved => {}
                Fault::Segv => fault_signal(k, s, T_PAGEFLT),
                Fault::Bus => bus_error(k, s),
                Fault::OutOfMemory => out_of_memory(k, s),
            }
        }
        trap => fault_signal(k, s, trap),
    }
    false
}

/// Charges the CPU time since `since` (if the clock is cheap enough to
/// read around every slice) to process `s` if it is still `pid`; the time
/// now.
fn charge_since(k: &mut Kernel, s: usize, pid: u32, since: Option<u64>, user: bool) -> Option<u64> {
    let (since, now) = (since?, hypercall::cheap_clock_ns()?);
    k.procs.charge(s, pid, now.saturating_sub(since), user);
    Some(now)
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
    k.procs.exit_group(s, signal::SIGKILL);
}

/// A process touched a file mapping past the end of its file (or a page
/// a full tmpfs could not give): SIGBUS (BUS_ADRERR), as Linux sends.
fn bus_error(k: &mut Kernel, s: usize) {
    let addr = k.procs.procs[s].tf.addr;
    let code = linux_raw_sys::general::BUS_ADRERR as i32;
    k.procs.force(s, SigInfo::fault(signal::SIGBUS, code, addr));
}

/// A process faulted: the signal Linux raises for the exception, which it
/// cannot block or ignore; a handler may catch it.
fn fault_signal(k: &mut Kernel, s: usize, trap: u64) {
    let tf = k.procs.procs[s].tf;
    let (mut sig, mut code) = signal::for_trap(trap, tf.err);
    if trap == T_PRIVINFLT {
        // PVM may have turned a VEX instruction's #GP into #UD.
        let mut bytes = [0u8; 15];
        let n = crate::mm::uaccess::copy_in_partial(&k.space(s), tf.rip, &mut bytes);
        let vf = k.procs.procs[s].vf;
        match crate::vexfault::real_fault(&bytes[..n], &tf, &vf) {
            Some(crate::vexfault::Real::GeneralProtection) => {
                (sig, code) = signal::for_trap(T_PROTFLT, 0)
            }
            Some(crate::vexfault::Real::StackSegment) => {
                (sig, code) = (signal::SIGBUS, signal::for_trap(T_PROTFLT, 0).1)
            }
            None => {}
        }
    }
    // Linux's si_code for a page fault says whether anything is mapped
    // there (SEGV_ACCERR: the protection refused it), whatever the P bit.
    if trap == T_PAGEFLT && tf.err & vkernel_abi::paging::pf::PK != 0 {
        code = linux_raw_sys::general::SEGV_PKUERR as i32;
    } else if trap == T_PAGEFLT {
        code = if k.space(s).borrow().is_free(tf.addr & !0xfff, 1) {
            signal::SEGV_MAPERR
        } else {
            signal::SEGV_ACCERR
        };
    }
    // si_addr: the address for a page fault or an alignment check, the
    // instruction for SIGILL and SIGFPE, 0 otherwise (as Linux).
    let addr = match sig {
        signal::SIGSEGV if trap == T_PAGEFLT => tf.addr,
        signal::SIGBUS => tf.addr,
        signal::SIGILL | signal::SIGFPE => tf.rip,
        _ => 0,
    };
    k.procs.force(s, SigInfo::fault(sig, code, addr));
}

/// Acts on process `s`'s deliverable signals before it runs again, as
/// Linux's get_signal/handle_signal on the way to user mode: ignored ones
/// vanish, a default action stops or ends the process, and a handler gets
/// a frame (the system call it interrupted returns EINTR or restarts).
fn deliver(k: &mut Kernel, s: usize) {
    loop {
        let p = &mut k.procs.procs[s];
        let set = p.sig.deliverable();
        let Some(mut info) = p.sig.dequeue(set) else {
            return;
        };
        k.procs.timer_signal_taken(s, &mut info);
        let sig = info.signo();
        let act = k.procs.action(s, sig);
        if act.handler == SIG_IGN {
            continue;
        }
        if act.handler == SIG_DFL {
            match signal::default_action(sig) {
                DefaultAction::Ignore | DefaultAction::Continue => continue,
                DefaultAction::Stop => {
                    // A system call it was in restarts when it continues.
                    k.procs.stop(s, sig);
                    return;
                }
                DefaultAction::Terminate | DefaultAction::Core => {
                    report_fatal(k, s, &info);
                    k.procs.exit_group(s, sig);
                    return;
                }
            }
        }
        if k.procs.procs[s].restart {
            syscall::signal::interrupted(k, s, &act);
        }
        // The frame records the interrupted call's result: the posted
        // calls that may change it go first.
        guestlib::batch::flush();
        k.procs.settle_posted();
        let p = &mut k.procs.procs[s];
        let mask = p.sig.saved_mask.take().unwrap_or(p.sig.mask);
        if k.procs.setup_frame(s, &info, &act, mask).is_err() {
            // No frame can be written (Linux's force_sigsegv): SIGSEGV,
            // by default if it was SIGSEGV's own handler that failed.
            if sig == signal::SIGSEGV {
                let p = &k.procs.procs[s];
                p.actions.borrow_mut().set(sig, signal::Action::default());
            }
            k.procs
                .force(s, SigInfo::new(signal::SIGSEGV, signal::SI_KERNEL));
        }
    }
}

/// The one-line report of a process killed by its own fault (a core
/// signal the kernel raised), as the crash reports before handlers.
fn report_fatal(k: &Kernel, s: usize, info: &SigInfo) {
    let sig = info.signo();
    if info.code() <= 0 || signal::default_action(sig) != DefaultAction::Core {
        return;
    }
    let p = &k.procs.procs[s];
    let (pid, rip) = (p.pid, p.tf.rip);
    let at = if p.tf.trapno == T_PAGEFLT && (sig == signal::SIGSEGV || sig == signal::SIGBUS) {
        p.tf.addr
    } else {
        rip
    };
    eprintln!(
        "pid {pid} ({}): {} at {at:#x}, rip {rip:#x}",
        p.name(),
        signal::name(sig)
    );
}
