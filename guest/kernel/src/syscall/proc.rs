//! Process system calls (xv6's sysproc.c): fork, clone (fork-like),
//! execve, wait4, kill. The work is in [`crate::proc`].

use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in_str, copy_out, read_u64};
use crate::mm::SpaceRef;
use crate::proc::exec::{ArgBuf, ExecError};
use crate::proc::{signal, Chan, Proc, State};
use crate::syscall::{err, log_refused, Outcome, Outcome::*};
use guestlib::eprintln;
use linux_raw_sys::general::{
    CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_PARENT_SETTID, CSIGNAL, WNOHANG,
};
use vkernel_abi::Errno;

/// fork: the child is a copy of the parent's address space and returns 0.
pub fn sys_fork(k: &mut Kernel, s: usize) -> Result<i64, Errno> {
    k.procs.fork(&mut k.mm, s).map(|pid| pid as i64)
}

/// clone, for what glibc's fork() asks: a new process (no CLONE_VM, no
/// new stack), optionally storing the child's tid.
pub fn sys_clone(
    k: &mut Kernel,
    s: usize,
    flags: u64,
    newsp: u64,
    ptid: u64,
    ctid: u64,
) -> Result<i64, Errno> {
    let known = (CSIGNAL | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID) as u64;
    if flags & !known != 0 || newsp != 0 {
        // Threads and shared address spaces: not yet.
        log_refused(
            k,
            s,
            "clone",
            format_args!("flags {:#x} with stack {newsp:#x}", flags & !known),
        );
        return Err(Errno::ENOSYS);
    }
    let pid = k.procs.fork(&mut k.mm, s)?;
    let c = k.procs.find(pid).ok_or(Errno::EAGAIN)?;
    let child = k.space(c);
    let tid = pid.to_le_bytes();
    if flags & CLONE_PARENT_SETTID as u64 != 0 {
        let _ = copy_out(&k.space(s), ptid, &tid);
        let _ = copy_out(&child, ptid, &tid);
    }
    if flags & CLONE_CHILD_SETTID as u64 != 0 {
        let _ = copy_out(&child, ctid, &tid);
    }
    if flags & CLONE_CHILD_CLEARTID as u64 != 0 {
        k.procs.procs[c].clear_child_tid = ctid;
    }
    Ok(pid as i64)
}

/// Copies a NULL-terminated array of string pointers into `args`.
fn copy_strings(space: &SpaceRef, mut arr: u64, args: &mut ArgBuf, env: bool) -> Result<(), Errno> {
    if arr == 0 {
        return Ok(());
    }
    loop {
        let ptr = read_u64(space, arr)?;
        if ptr == 0 {
            return Ok(());
        }
        let n = copy_in_str(space, ptr, args.spare()).map_err(|e| {
            if e == Errno::ENAMETOOLONG {
                Errno::E2BIG
            } else {
                e
            }
        })?;
        args.commit(n, env)?;
        arr += 8;
    }
}

pub fn sys_execve(k: &mut Kernel, s: usize, path: u64, argv: u64, envp: u64) -> Outcome {
    let space = k.space(s);
    let mut pbuf = [0u8; 1024];
    let args = &mut k.args;
    let r = (|| -> Result<usize, Errno> {
        let n = copy_in_str(&space, path, &mut pbuf)?;
        args.clear();
        copy_strings(&space, argv, args, false)?;
        copy_strings(&space, envp, args, true)?;
        Ok(n)
    })();
    drop(space);
    let n = match r {
        Ok(n) => n,
        Err(e) => return Ret(err(e)),
    };
    match k.procs.exec(&mut k.mm, &k.vfs, s, &pbuf[..n], &mut k.args) {
        Ok(()) => NoReturn,
        Err(e) => {
            if e == ExecError::Dynamic {
                let p = &k.procs.procs[s];
                eprintln!(
                    "kernel: pid {} ({}): exec {}: {}",
                    p.pid,
                    p.name(),
                    core::str::from_utf8(&pbuf[..n]).unwrap_or("?"),
                    e.message()
                );
            }
            Ret(err(e.errno()))
        }
    }
}

pub fn sys_wait4(
    k: &mut Kernel,
    s: usize,
    pid: i32,
    wstatus: u64,
    options: u64,
    rusage: u64,
) -> Outcome {
    // WNOHANG, WUNTRACED, WCONTINUED, __WNOTHREAD... as Linux accepts.
    const KNOWN: u64 = 1 | 2 | 8 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000;
    if options & !KNOWN != 0 {
        return Ret(err(Errno::EINVAL));
    }
    let me = k.procs.procs[s].pid;
    // pid > 0: that child; anything else: any child (one process group).
    let matches =
        |p: &Proc| p.state != State::Free && p.parent == me && (pid <= 0 || p.pid == pid as u32);
    if !k.procs.procs.iter().any(matches) {
        return Ret(err(Errno::ECHILD));
    }
    if let Some(z) = k
        .procs
        .procs
        .iter()
        .position(|p| matches(p) && p.state == State::Zombie)
    {
        let (zpid, status) = (k.procs.procs[z].pid, k.procs.procs[z].wait_status);
        let space = k.space(s);
        if wstatus != 0 {
            if let Err(e) = copy_out(&space, wstatus, &status.to_le_bytes()) {
                return Ret(err(e));
            }
        }
        if rusage != 0 {
            // Resource use is not accounted yet: all zero.
            if let Err(e) = copy_out(&space, rusage, &[0u8; 144]) {
                return Ret(err(e));
            }
        }
        k.procs.free(z);
        return Ret(zpid as i64);
    }
    if options & WNOHANG as u64 != 0 {
        return Ret(0);
    }
    k.procs.sleep(s, Chan::Child(me), 0, 0);
    NoReturn
}

/// kill: without signal handlers, a signal does its default action:
/// ignored for SIGCHLD, SIGCONT, SIGURG and SIGWINCH; stop signals are
/// refused (EINVAL: stopping is not supported yet); every other signal
/// terminates the target. Only pid > 0 is supported (no process groups:
/// pid 0 and negative pids are EINVAL).
pub fn sys_kill(k: &mut Kernel, s: usize, pid: i32, sig: i32) -> Outcome {
    if !(0..=64).contains(&sig) || pid <= 0 {
        return Ret(err(Errno::EINVAL));
    }
    let Some(target) = k.procs.find(pid as u32) else {
        return Ret(err(Errno::ESRCH));
    };
    if sig == 0 || !k.procs.procs[target].alive() || signal::ignored_by_default(sig) {
        return Ret(0);
    }
    if pid == 1 && target != s {
        // As in a Linux pid namespace: init has no handlers, so signals
        // from other processes are ignored (init can still kill itself).
        return Ret(0);
    }
    if signal::stops_by_default(sig) {
        log_refused(
            k,
            s,
            "kill",
            format_args!("stopping a process (signal {sig})"),
        );
        return Ret(err(Errno::EINVAL));
    }
    k.procs.exit(target, sig);
    if target == s {
        NoReturn
    } else {
        Ret(0)
    }
}
