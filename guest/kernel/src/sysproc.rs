//! Process system calls (xv6's sysproc.c): fork, clone (fork-like),
//! execve, wait4, kill.

use crate::eprintln;
use crate::exec::{self, ArgBuf, ExecError};
use crate::proc::{self, ProcTable, State};
use crate::syscall::{Outcome, Outcome::*};
use crate::uaccess::{copy_in_str, copy_out, read_u64};
use crate::vm;
use vkernel_abi::{rflags, selector, Errno, TrapFrame, VextFrame};

/// fork: the child is a copy of the parent's address space (see
/// [`vm::fork`]) and returns 0.
pub fn fork(t: &mut ProcTable, s: usize) -> Result<i64, Errno> {
    let parent = t.procs[s];
    let c = t.alloc(parent.pid).ok_or(Errno::EAGAIN)?;
    let child_vmid = t.procs[c].vmid;
    if let Err(e) = vm::fork(parent.vmid, child_vmid) {
        t.free(c);
        return Err(if e == Errno::ENOMEM { e } else { Errno::EAGAIN });
    }
    let child = &mut t.procs[c];
    child.tf = parent.tf;
    child.tf.rax = 0;
    child.vf = parent.vf;
    child.brk_start = parent.brk_start;
    child.brk = parent.brk;
    child.mmap_floor = parent.mmap_floor;
    child.rlimits = parent.rlimits;
    child.name = parent.name;
    child.name_len = parent.name_len;
    Ok(child.pid as i64)
}

/// clone, for what glibc's fork() asks: a new process (no CLONE_VM, no
/// new stack), optionally storing the child's tid.
pub fn sys_clone(
    t: &mut ProcTable,
    s: usize,
    flags: u64,
    newsp: u64,
    ptid: u64,
    ctid: u64,
) -> Result<i64, Errno> {
    const CSIGNAL: u64 = 0xff;
    const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
    const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
    const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
    if flags & !(CSIGNAL | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID) != 0
        || newsp != 0
    {
        return Err(Errno::ENOSYS); // threads and shared address spaces: not yet
    }
    let pid = fork(t, s)?;
    let c = t.find(pid as u32).ok_or(Errno::EAGAIN)?;
    let child_vmid = t.procs[c].vmid;
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = copy_out(t.procs[s].vmid, ptid, &(pid as u32).to_le_bytes());
        let _ = copy_out(child_vmid, ptid, &(pid as u32).to_le_bytes());
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        let _ = copy_out(child_vmid, ctid, &(pid as u32).to_le_bytes());
    }
    if flags & CLONE_CHILD_CLEARTID != 0 {
        t.procs[c].clear_child_tid = ctid;
    }
    Ok(pid)
}

/// Copies a NULL-terminated array of string pointers into `args`.
pub fn copy_strings(vmid: u64, mut arr: u64, args: &mut ArgBuf, env: bool) -> Result<(), Errno> {
    if arr == 0 {
        return Ok(());
    }
    loop {
        let ptr = read_u64(vmid, arr)?;
        if ptr == 0 {
            return Ok(());
        }
        let n = copy_in_str(vmid, ptr, args.spare()).map_err(|e| {
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

/// A fresh user frame entering `entry` with stack `sp`.
pub fn start_frame(entry: u64, sp: u64) -> TrapFrame {
    TrapFrame {
        rip: entry,
        rsp: sp,
        cs: selector::USER_CS as u64,
        ss: selector::USER_SS as u64,
        rflags: rflags::IF | rflags::FIXED,
        ..Default::default()
    }
}

/// Loads `path` into a fresh vmspace for process `s` and, on success,
/// switches the process to it (the old image is destroyed).
pub fn exec_into(t: &mut ProcTable, s: usize, path: &[u8], args: &ArgBuf) -> Result<(), ExecError> {
    let old = t.procs[s].vmid;
    let new = proc::vmid_for(t.procs[s].pid, proc::generation_of(old) + 1);
    let loaded = exec::load(t.image, path, args, new)?;
    if t.procs[s].alive() {
        let _ = vm::destroy(old);
    }
    let p = &mut t.procs[s];
    p.vmid = new;
    p.tf = start_frame(loaded.entry, loaded.sp);
    p.vf = VextFrame::default();
    p.brk_start = loaded.brk;
    p.brk = loaded.brk;
    p.mmap_floor = loaded.brk.saturating_add(exec::BRK_ROOM);
    p.clear_child_tid = 0;
    p.robust_list = 0;
    p.set_name(path);
    Ok(())
}

pub fn sys_execve(
    t: &mut ProcTable,
    s: usize,
    path: u64,
    argv: u64,
    envp: u64,
    args: &mut ArgBuf,
) -> Outcome {
    let vmid = t.procs[s].vmid;
    let mut pbuf = [0u8; 1024];
    let r = (|| -> Result<usize, Errno> {
        let n = copy_in_str(vmid, path, &mut pbuf)?;
        args.clear();
        copy_strings(vmid, argv, args, false)?;
        copy_strings(vmid, envp, args, true)?;
        Ok(n)
    })();
    let n = match r {
        Ok(n) => n,
        Err(e) => return Ret(-(e.0 as i64)),
    };
    match exec_into(t, s, &pbuf[..n], args) {
        Ok(()) => NoReturn,
        Err(e) => {
            if e == ExecError::Dynamic {
                let p = &t.procs[s];
                eprintln!(
                    "kernel: pid {} ({}): exec {}: {}",
                    p.pid,
                    p.name(),
                    core::str::from_utf8(&pbuf[..n]).unwrap_or("?"),
                    e.message()
                );
            }
            Ret(-(e.errno().0 as i64))
        }
    }
}

pub fn sys_wait4(
    t: &mut ProcTable,
    s: usize,
    pid: i32,
    wstatus: u64,
    options: u64,
    rusage: u64,
) -> Outcome {
    const WNOHANG: u64 = 1;
    const KNOWN: u64 = 1 | 2 | 8 | 0x4000_0000 | 0x8000_0000;
    if options & !KNOWN != 0 {
        return Ret(-(Errno::EINVAL.0 as i64));
    }
    let me = t.procs[s].pid;
    let vmid = t.procs[s].vmid;
    // pid > 0: that child; anything else: any child (one process group).
    let matches = |p: &proc::Proc| {
        p.state != State::Free && p.parent == me && (pid <= 0 || p.pid == pid as u32)
    };
    let Some(_) = t.procs.iter().position(matches) else {
        return Ret(-(Errno::ECHILD.0 as i64));
    };
    if let Some(z) = t
        .procs
        .iter()
        .position(|p| matches(p) && p.state == State::Zombie)
    {
        let (zpid, status) = (t.procs[z].pid, t.procs[z].wait_status);
        if wstatus != 0 {
            if let Err(e) = copy_out(vmid, wstatus, &status.to_le_bytes()) {
                return Ret(-(e.0 as i64));
            }
        }
        if rusage != 0 {
            // Resource use is not accounted yet: all zero.
            if let Err(e) = copy_out(vmid, rusage, &[0u8; 144]) {
                return Ret(-(e.0 as i64));
            }
        }
        t.free(z);
        return Ret(zpid as i64);
    }
    if options & WNOHANG != 0 {
        return Ret(0);
    }
    let p = &mut t.procs[s];
    p.state = State::ChildWait;
    p.restart = true;
    NoReturn
}

/// kill: without signal handlers, a signal does its default action:
/// ignored for SIGCHLD, SIGCONT, SIGURG and SIGWINCH; stop signals are
/// refused (EINVAL: stopping is not supported yet); every other signal
/// terminates the target. Only pid > 0 is supported (no process groups:
/// pid 0 and negative pids are EINVAL).
pub fn sys_kill(t: &mut ProcTable, s: usize, pid: i32, sig: i32) -> Outcome {
    if !(0..=64).contains(&sig) || pid <= 0 {
        return Ret(-(Errno::EINVAL.0 as i64));
    }
    let Some(target) = t.find(pid as u32) else {
        return Ret(-(Errno::ESRCH.0 as i64));
    };
    if sig == 0 || !t.procs[target].alive() || matches!(sig, 17 | 18 | 23 | 28) {
        return Ret(0);
    }
    if pid == 1 && target != s {
        // As in a Linux pid namespace: init has no handlers, so signals
        // from other processes are ignored (init can still kill itself).
        return Ret(0);
    }
    if matches!(sig, 19..=22) {
        return Ret(-(Errno::EINVAL.0 as i64));
    }
    t.exit(target, sig);
    if target == s {
        NoReturn
    } else {
        Ret(0)
    }
}
