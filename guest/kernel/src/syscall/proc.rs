//! Process system calls (xv6's sysproc.c): fork, clone (fork-like),
//! execve, wait4, kill. The work is in [`crate::proc`].

use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in_str, copy_out, read_u64};
use crate::mm::SpaceRef;
use crate::proc::exec::{ArgBuf, ExecError};
use crate::proc::signal::{self, SigInfo, StopReport};
use crate::proc::{Chan, Proc, State};
use crate::syscall::{err, log_refused, Outcome, Outcome::*};
use guestlib::eprintln;
use linux_raw_sys::general::{
    CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_PARENT_SETTID, CSIGNAL, WCONTINUED, WNOHANG,
    WUNTRACED,
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
            // ENOENT for a file that exists puzzles: say it is the loader.
            if let ExecError::Interp(_) = e {
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

/// What a wait call looks for and how it reports.
struct WaitFor {
    /// pid > 0: that child; 0: the caller's group; -1: any; < -1: group.
    pid: i32,
    options: u64,
    /// waitid reports exits only with WEXITED.
    exited: bool,
    stopped: bool,
    continued: bool,
    /// Leave the child waitable (WNOWAIT).
    keep: bool,
}

/// What a wait found: the child's pid, its wait status, and the siginfo
/// fields (CLD_* code, status or signal).
struct Found {
    pid: u32,
    status: i32,
    code: u32,
    value: i32,
}

/// Finds a child of `s` to report per `w`, taking it (reaping a zombie,
/// clearing a stop/continue report) unless `w.keep`. `Err(ECHILD)` when
/// no child matches at all; `Ok(None)` when none is ready.
fn find_waitable(k: &mut Kernel, s: usize, w: &WaitFor) -> Result<Option<Found>, Errno> {
    use linux_raw_sys::general::{CLD_CONTINUED, CLD_EXITED, CLD_KILLED, CLD_STOPPED};
    let me = k.procs.procs[s].pid;
    let my_pgid = k.procs.procs[s].pgid;
    // __WALL (0x40000000) or __WCLONE (0x80000000) see clone children
    // (exit signal other than SIGCHLD); plain waits see only the others.
    let all = w.options & 0x4000_0000 != 0;
    let clone_only = w.options & 0x8000_0000 != 0;
    let matches = |p: &Proc| {
        p.state != State::Free
            && p.parent == me
            && match w.pid {
                -1 => true,
                0 => p.pgid == my_pgid,
                x if x < -1 => p.pgid == x.unsigned_abs(),
                x => p.pid == x as u32,
            }
            && (all || (p.exit_signal != signal::SIGCHLD) == clone_only)
    };
    if !k.procs.procs.iter().any(matches) {
        return Err(Errno::ECHILD);
    }
    for c in 0..k.procs.procs.len() {
        let p = &k.procs.procs[c];
        if !matches(p) {
            continue;
        }
        let pid = p.pid;
        if p.state == State::Zombie && w.exited {
            let st = p.wait_status;
            let found = if st & 0x7f != 0 {
                Found {
                    pid,
                    status: st,
                    code: CLD_KILLED,
                    value: st & 0x7f,
                }
            } else {
                Found {
                    pid,
                    status: st,
                    code: CLD_EXITED,
                    value: (st >> 8) & 0xff,
                }
            };
            if !w.keep {
                k.procs.free(c);
            }
            return Ok(Some(found));
        }
        let found = match p.stop_report {
            StopReport::Stopped(sig) if w.stopped && p.state == State::Stopped => Found {
                pid,
                status: (sig << 8) | 0x7f,
                code: CLD_STOPPED,
                value: sig,
            },
            StopReport::Continued if w.continued => Found {
                pid,
                status: 0xffff,
                code: CLD_CONTINUED,
                value: signal::SIGCONT,
            },
            _ => continue,
        };
        if !w.keep {
            k.procs.procs[c].stop_report = StopReport::None;
        }
        return Ok(Some(found));
    }
    Ok(None)
}

pub fn sys_wait4(
    k: &mut Kernel,
    s: usize,
    pid: i32,
    wstatus: u64,
    options: u64,
    rusage: u64,
) -> Outcome {
    // WNOHANG, WUNTRACED, WCONTINUED, __WNOTHREAD, __WALL, __WCLONE.
    const KNOWN: u64 = 1 | 2 | 8 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000;
    if options & !KNOWN != 0 || pid == i32::MIN {
        return Ret(err(Errno::EINVAL));
    }
    let w = WaitFor {
        pid,
        options,
        exited: true,
        stopped: options & WUNTRACED as u64 != 0,
        continued: options & WCONTINUED as u64 != 0,
        keep: false,
    };
    match find_waitable(k, s, &w) {
        Err(e) => Ret(err(e)),
        Ok(Some(f)) => {
            let space = k.space(s);
            if wstatus != 0 {
                if let Err(e) = copy_out(&space, wstatus, &f.status.to_le_bytes()) {
                    return Ret(err(e));
                }
            }
            if rusage != 0 {
                // CPU time is not accounted yet: all zero.
                if let Err(e) = copy_out(&space, rusage, &[0u8; 144]) {
                    return Ret(err(e));
                }
            }
            Ret(f.pid as i64)
        }
        Ok(None) if options & WNOHANG as u64 != 0 => Ret(0),
        Ok(None) => {
            let me = k.procs.procs[s].pid;
            k.procs.sleep(s, Chan::Child(me), 0, 0);
            NoReturn
        }
    }
}

/// waitid(idtype, id, infop, options, rusage).
pub fn sys_waitid(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    use linux_raw_sys::general::{P_ALL, P_PGID, P_PID, WEXITED, WNOWAIT, WSTOPPED};
    let [idtype, id, infop, options, rusage, _] = a;
    const KNOWN: u64 = 1 | 2 | 4 | 8 | 0x0100_0000 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000;
    let what = (WEXITED | WSTOPPED | WCONTINUED) as u64;
    if options & !KNOWN != 0 || options & what == 0 {
        return Ret(err(Errno::EINVAL));
    }
    let pid = match idtype as u32 {
        P_ALL => -1,
        P_PID if id as i32 > 0 => id as i32,
        P_PGID if id as i32 > 0 => -(id as i32),
        P_PGID if id == 0 => 0,
        _ => return Ret(err(Errno::EINVAL)),
    };
    let w = WaitFor {
        pid,
        options,
        exited: options & WEXITED as u64 != 0,
        stopped: options & WSTOPPED as u64 != 0,
        continued: options & WCONTINUED as u64 != 0,
        keep: options & WNOWAIT as u64 != 0,
    };
    let found = match find_waitable(k, s, &w) {
        Err(e) => return Ret(err(e)),
        Ok(None) if options & WNOHANG as u64 == 0 => {
            let me = k.procs.procs[s].pid;
            k.procs.sleep(s, Chan::Child(me), 0, 0);
            return NoReturn;
        }
        Ok(f) => f,
    };
    let space = k.space(s);
    if infop != 0 {
        // Nothing ready (WNOHANG): a zeroed siginfo, as Linux.
        let info = match &found {
            Some(f) => {
                let mut i = SigInfo::child(f.code, f.pid, f.value);
                i.0[0..4].copy_from_slice(&signal::SIGCHLD.to_le_bytes());
                i
            }
            None => SigInfo([0; 128]),
        };
        if let Err(e) = copy_out(&space, infop, &info.0) {
            return Ret(err(e));
        }
    }
    if rusage != 0 {
        if let Err(e) = copy_out(&space, rusage, &[0u8; 144]) {
            return Ret(err(e));
        }
    }
    Ret(0)
}

/// setpgid(pid, pgid): the caller or a child of it (not yet exec'd: else
/// EACCES) joins group `pgid` (0: its own pid) of the same session.
pub fn sys_setpgid(k: &mut Kernel, s: usize, pid: i32, pgid: i32) -> Result<i64, Errno> {
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let me = k.procs.procs[s].pid;
    let t = if pid == 0 {
        s
    } else {
        k.procs.find(pid as u32).ok_or(Errno::ESRCH)?
    };
    let target = &k.procs.procs[t];
    if t != s && (target.parent != me || !target.alive()) {
        return Err(Errno::ESRCH);
    }
    let sid = k.procs.procs[s].sid;
    if t != s && target.did_exec {
        return Err(Errno::EACCES);
    }
    if target.sid != sid || target.sid == target.pid {
        // Another session's, or a session leader.
        return Err(Errno::EPERM);
    }
    let pgid = if pgid == 0 { target.pid } else { pgid as u32 };
    if pgid != target.pid
        && !k
            .procs
            .procs
            .iter()
            .any(|p| p.state != State::Free && p.pgid == pgid && p.sid == sid)
    {
        return Err(Errno::EPERM);
    }
    k.procs.procs[t].pgid = pgid;
    if let Some(task) = &k.procs.procs[t].task {
        task.pgid.set(pgid);
    }
    Ok(0)
}

/// The slot of `pid` (0: the caller), or ESRCH.
fn slot_of(k: &Kernel, s: usize, pid: i32) -> Result<usize, Errno> {
    match pid {
        0 => Ok(s),
        p if p < 0 => Err(Errno::ESRCH),
        p => k.procs.find(p as u32).ok_or(Errno::ESRCH),
    }
}

pub fn sys_getpgid(k: &mut Kernel, s: usize, pid: i32) -> Result<i64, Errno> {
    Ok(k.procs.procs[slot_of(k, s, pid)?].pgid as i64)
}

pub fn sys_getsid(k: &mut Kernel, s: usize, pid: i32) -> Result<i64, Errno> {
    Ok(k.procs.procs[slot_of(k, s, pid)?].sid as i64)
}

/// setsid: a new session and group led by the caller (EPERM if it
/// already leads a group).
pub fn sys_setsid(k: &mut Kernel, s: usize) -> Result<i64, Errno> {
    let pid = k.procs.procs[s].pid;
    if k.procs
        .procs
        .iter()
        .any(|p| p.state != State::Free && p.pgid == pid)
    {
        return Err(Errno::EPERM);
    }
    let p = &mut k.procs.procs[s];
    p.sid = pid;
    p.pgid = pid;
    if let Some(task) = &p.task {
        task.pgid.set(pid);
        task.sid.set(pid);
    }
    Ok(pid as i64)
}
