//! Process system calls (xv6's sysproc.c): fork, clone (fork-like),
//! execve, wait4, kill. The work is in [`crate::proc`].

use alloc::rc::Rc;
use alloc::vec::Vec;

use crate::fs::file::OpenFile;
use crate::fs::vfs::Follow;
use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in, copy_out, copy_out_posted, UserPages};
use crate::proc::exec::{ArgBuf, ExecAt, ExecError, MAX_ARG_STRLEN};
use crate::proc::pidfd::PidFd;
use crate::proc::posted::Tag;
use crate::proc::signal::{self, SigInfo, StopReport};
use crate::proc::thread::{
    CloneArgs, CLONE_CLEAR_SIGHAND, CLONE_FILES, CLONE_FS, CLONE_PARENT, CLONE_SETTLS,
    CLONE_SIGHAND, CLONE_THREAD, CLONE_VFORK, CLONE_VM,
};
use crate::proc::{Chan, CpuTimes, Proc, ProcTable, State};
use crate::syscall::{err, log_refused, Outcome, Outcome::*};
use guestlib::eprintln;
use linux_raw_sys::general::{
    AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID,
    CLONE_DETACHED, CLONE_IO, CLONE_PARENT_SETTID, CLONE_PIDFD, CLONE_PTRACE, CLONE_SYSVSEM,
    CLONE_UNTRACED, CSIGNAL, O_EXCL, O_NONBLOCK, O_RDWR, WCONTINUED, WNOHANG, WUNTRACED,
};
use vkernel_abi::Errno;

/// Every flag clone may be given that this kernel knows (the namespace
/// and cgroup ones are refused).
const KNOWN_FLAGS: u64 = CSIGNAL as u64
    | CLONE_PIDFD as u64
    | CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_PTRACE as u64
    | CLONE_VFORK
    | CLONE_PARENT
    | CLONE_THREAD
    | CLONE_SYSVSEM as u64
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID as u64
    | CLONE_CHILD_CLEARTID as u64
    | CLONE_DETACHED as u64
    | CLONE_UNTRACED as u64
    | CLONE_CHILD_SETTID as u64
    | CLONE_IO as u64
    | CLONE_CLEAR_SIGHAND;

/// What clone and clone3 both take.
struct Clone {
    flags: u64,
    stack: u64,
    tls: u64,
    ptid: u64,
    ctid: u64,
    exit_signal: i32,
    /// Where CLONE_PIDFD stores the child's pidfd.
    pidfd: u64,
}

/// fork: a clone with SIGCHLD; vfork: CLONE_VM | CLONE_VFORK too.
pub fn sys_fork(k: &mut Kernel, s: usize, vfork: bool) -> Outcome {
    let flags = if vfork { CLONE_VM | CLONE_VFORK } else { 0 };
    do_clone(
        k,
        s,
        Clone {
            flags,
            stack: 0,
            tls: 0,
            ptid: 0,
            ctid: 0,
            exit_signal: signal::SIGCHLD,
            pidfd: 0,
        },
    )
}

/// clone(flags, newsp, parent_tid, child_tid, tls) (x86-64's order).
pub fn sys_clone(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [flags, newsp, ptid, ctid, tls, _] = a;
    // The low byte is the exit signal; clone3's flags are not clone's.
    let flags = flags & 0xffff_ffff;
    // clone's CLONE_PIDFD stores the pidfd where CLONE_PARENT_SETTID
    // would store the tid: not both.
    let pidfd_flag = flags & CLONE_PIDFD as u64 != 0;
    if pidfd_flag && flags & CLONE_PARENT_SETTID as u64 != 0 {
        return Ret(err(Errno::EINVAL));
    }
    do_clone(
        k,
        s,
        Clone {
            flags: flags & !(CSIGNAL as u64) & !CLONE_CLEAR_SIGHAND,
            stack: newsp,
            tls,
            ptid,
            ctid,
            exit_signal: (flags & CSIGNAL as u64) as i32,
            pidfd: if pidfd_flag { ptid } else { 0 },
        },
    )
}

/// clone3(args, size): `struct clone_args` of at least its first version
/// (64 bytes); bytes past the fields known must be zero (else E2BIG).
pub fn sys_clone3(k: &mut Kernel, s: usize, uargs: u64, size: u64) -> Outcome {
    const VER0: u64 = 64;
    const KNOWN: usize = 88;
    let r = (|| -> Result<Clone, Errno> {
        if size < VER0 {
            return Err(Errno::EINVAL);
        }
        if size > 4096 {
            return Err(Errno::E2BIG);
        }
        let space = k.space(s);
        let mut b = [0u8; KNOWN];
        let n = (size as usize).min(KNOWN);
        copy_in(&space, uargs, &mut b[..n])?;
        let mut rest = [0u8; 256];
        let mut at = KNOWN as u64;
        while at < size {
            let m = ((size - at) as usize).min(rest.len());
            copy_in(&space, uargs + at, &mut rest[..m])?;
            if rest[..m].iter().any(|&x| x != 0) {
                return Err(Errno::E2BIG);
            }
            at += m as u64;
        }
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let (flags, pidfd, ctid, ptid, exit_signal) = (w(0), w(1), w(2), w(3), w(4));
        let (stack, stack_size, tls, set_tid, set_tid_size) = (w(5), w(6), w(7), w(8), w(9));
        let cgroup = w(10);
        if flags & CSIGNAL as u64 != 0 || exit_signal > signal::NSIG as u64 {
            return Err(Errno::EINVAL);
        }
        if (stack == 0) != (stack_size == 0) {
            return Err(Errno::EINVAL);
        }
        if set_tid != 0 || set_tid_size != 0 || cgroup != 0 {
            log_refused(k, s, "clone3", format_args!("set_tid or cgroup"));
            return Err(Errno::EINVAL);
        }
        Ok(Clone {
            flags,
            stack: stack.wrapping_add(stack_size),
            tls,
            ptid,
            ctid,
            exit_signal: exit_signal as i32,
            // Looked at only with CLONE_PIDFD.
            pidfd,
        })
    })();
    match r {
        Ok(c) => do_clone(k, s, c),
        Err(e) => Ret(err(e)),
    }
}

/// Linux's flag checks (copy_process), then the new task; the tid
/// stores; a vfork parent sleeps until its child execs or exits.
fn do_clone(k: &mut Kernel, s: usize, c: Clone) -> Outcome {
    let f = c.flags;
    if f & !KNOWN_FLAGS != 0 {
        log_refused(k, s, "clone", format_args!("flags {:#x}", f & !KNOWN_FLAGS));
        return Ret(err(Errno::EINVAL));
    }
    let has = |x: u64| f & x != 0;
    let invalid = (has(CLONE_THREAD) && !has(CLONE_SIGHAND))
        || (has(CLONE_SIGHAND) && !has(CLONE_VM))
        || (has(CLONE_CLEAR_SIGHAND) && has(CLONE_SIGHAND))
        // Init's siblings would have no parent.
        || ((has(CLONE_PARENT) || has(CLONE_THREAD)) && k.procs.procs[s].tgid == 1 && has(CLONE_PARENT))
        || (has(CLONE_PIDFD as u64) && has(CLONE_DETACHED as u64));
    if invalid {
        return Ret(err(Errno::EINVAL));
    }
    // The pidfd's slot must be writable before the child is made (Linux
    // fails the clone when it cannot store it).
    if has(CLONE_PIDFD as u64) {
        if let Err(e) = copy_out(&k.space(s), c.pidfd, &0u32.to_le_bytes()) {
            return Ret(err(e));
        }
    }
    if has(CLONE_SETTLS) {
        if let Err(e) = ProcTable::check_tls(c.tls) {
            return Ret(err(e));
        }
    }
    let args = CloneArgs {
        flags: f,
        stack: c.stack,
        tls: c.tls,
        exit_signal: c.exit_signal,
    };
    let child = match k.procs.clone_task(&mut k.mm, s, &args) {
        Ok(c) => c,
        Err(e) => return Ret(err(e)),
    };
    let tid = k.procs.procs[child].pid;
    if has(CLONE_PIDFD as u64) {
        // Installed after the copy: a child without CLONE_FILES has no
        // descriptor of itself.
        if let Some(task) = k.procs.procs[child].task.clone() {
            let dev = Rc::new(PidFd::new(task, has(CLONE_THREAD)));
            let f = OpenFile::anon(dev, O_RDWR, "anon_inode:[pidfd]");
            let limit = super::fd::nofile(k, s);
            let installed = k.files(s).borrow_mut().install(f, true, 0, limit);
            if let Ok(fd) = installed {
                let _ = copy_out(&k.space(s), c.pidfd, &fd.to_le_bytes());
            }
        }
    }
    // A new thread runs before its creator (the caller's run ends): run
    // on, the creator reached its join before the thread ran and waited
    // on the futex, a system call more per thread, an exit pair here
    // (thread create+join 4.6 -> 8 F). A fork's parent runs on, as
    // Linux's does by default (`sched_child_runs_first` 0): a shell is
    // in wait4 by the time its child runs (`ps` shows it sleeping).
    // Either order is one Linux may take; programs cannot rely on one.
    if has(CLONE_THREAD) {
        k.procs.yielded = true;
    }
    let bytes = tid.to_le_bytes();
    // Posted: they go with the next RUN (before either task runs); Linux
    // ignores a failed store of either.
    let ignore = Tag::Ignore.encode();
    if has(CLONE_PARENT_SETTID as u64) {
        let _ = copy_out_posted(&k.space(s), c.ptid, &bytes, ignore);
    }
    if has(CLONE_CHILD_SETTID as u64) {
        let _ = copy_out_posted(&k.space(child), c.ctid, &bytes, ignore);
    }
    if has(CLONE_CHILD_CLEARTID as u64) {
        k.procs.procs[child].clear_child_tid = c.ctid;
    }
    if has(CLONE_VFORK) {
        // The call is over when the child lets go of the memory: it
        // returns the child's tid then, without restarting.
        k.procs.procs[s].tf.rax = tid as u64;
        k.procs.sleep(s, Chan::Vfork(tid), 0, 0);
        k.procs.procs[s].restart = false;
        return NoReturn;
    }
    Ret(tid as i64)
}

/// The number of strings in the NULL-terminated array `arr` and their
/// bytes, NULs included, read without copying them: `E2BIG` as soon as one
/// is [`MAX_ARG_STRLEN`] long or they (with a pointer each, and
/// `before_bytes`/`before_strings` already counted) pass `limit`, so the
/// walk is bounded by the limit whatever the caller passes.
fn measure_strings(
    mem: &mut UserPages,
    mut arr: u64,
    before_bytes: usize,
    before_strings: usize,
    limit: usize,
) -> Result<(usize, usize), Errno> {
    let (mut bytes, mut strings) = (0usize, 0usize);
    if arr == 0 {
        return Ok((0, 0));
    }
    loop {
        let ptr = mem.read_u64(arr)?;
        if ptr == 0 {
            return Ok((bytes, strings));
        }
        let len = match mem.str_len(ptr, MAX_ARG_STRLEN) {
            Err(Errno::ENAMETOOLONG) => return Err(Errno::E2BIG),
            r => r?,
        };
        bytes += len + 1;
        strings += 1;
        if ArgBuf::cost(before_bytes + bytes, before_strings + strings) > limit {
            return Err(Errno::E2BIG);
        }
        arr = arr.checked_add(8).ok_or(Errno::EFAULT)?;
    }
}

/// Copies a NULL-terminated array of string pointers into `args`, whose
/// room was reserved after [`measure_strings`]: `E2BIG` for a string
/// longer than [`MAX_ARG_STRLEN`], past the limit, or grown since.
fn copy_strings(
    mem: &mut UserPages,
    mut arr: u64,
    args: &mut ArgBuf,
    env: bool,
) -> Result<(), Errno> {
    if arr == 0 {
        return Ok(());
    }
    loop {
        let ptr = mem.read_u64(arr)?;
        if ptr == 0 {
            return Ok(());
        }
        args.push_with(env, |room| {
            mem.read_str(ptr, room).map_err(|e| {
                if e == Errno::ENAMETOOLONG {
                    Errno::E2BIG
                } else {
                    e
                }
            })
        })?;
        arr = arr.checked_add(8).ok_or(Errno::EFAULT)?;
    }
}

pub fn sys_execve(k: &mut Kernel, s: usize, path: u64, argv: u64, envp: u64) -> Outcome {
    sys_execveat(k, s, AT_FDCWD as u64, path, argv, envp, 0)
}

/// execveat: as execve, with the path from directory `dirfd`, or (empty,
/// `AT_EMPTY_PATH`) the open file `dirfd` itself; `AT_SYMLINK_NOFOLLOW`:
/// a symbolic link at the end is `ELOOP`. The program runs as
/// `/dev/fd/N` or `/dev/fd/N/PATH` where the path is not absolute (its
/// `comm`, `AT_EXECFN`, and the path a `#!` interpreter is given), as
/// Linux names it.
pub fn sys_execveat(
    k: &mut Kernel,
    s: usize,
    dirfd: u64,
    path: u64,
    argv: u64,
    envp: u64,
    flags: u64,
) -> Outcome {
    let space = k.space(s);
    let mut pbuf = [0u8; 1024];
    // The strings may take a quarter of the caller's stack limit (Linux's
    // rule), in a buffer sized as they need and freed after the exec.
    let stack_limit = k.procs.procs[s].rlimits[linux_raw_sys::general::RLIMIT_STACK as usize][0];
    let mut args = ArgBuf::new(stack_limit);
    let r = (|| -> Result<usize, Errno> {
        // The path, the arrays and the strings through kept pages: they
        // are read twice, and lie on a few pages.
        let mut mem = UserPages::new(&space);
        let n = mem.read_str(path, &mut pbuf)?;
        // Measured first, so the buffer is allocated once at its size.
        let limit = args.limit();
        let (abytes, argc) = measure_strings(&mut mem, argv, n + 1, 0, limit)?;
        let (ebytes, envc) = measure_strings(&mut mem, envp, n + 1 + abytes, argc, limit)?;
        args.reserve(abytes + ebytes, argc + envc)?;
        copy_strings(&mut mem, argv, &mut args, false)?;
        copy_strings(&mut mem, envp, &mut args, true)?;
        Ok(n)
    })();
    drop(space);
    let n = match r {
        Ok(n) => n,
        Err(e) => return Ret(err(e)),
    };
    let name = &pbuf[..n];
    let (shown, at) = match exec_at(k, s, dirfd, name, flags) {
        Ok(found) => found,
        Err(e) => return Ret(err(e)),
    };
    let shown = shown.as_deref().unwrap_or(name);
    match k.procs.exec(&mut k.mm, &k.vfs, s, shown, at, &mut args) {
        Ok(()) => NoReturn,
        Err(e) => {
            // ENOENT for a file that exists puzzles: say it is the loader.
            if let ExecError::Interp(_) = e {
                let p = &k.procs.procs[s];
                eprintln!(
                    "kernel: pid {} ({}): exec {}: {}",
                    p.pid,
                    p.name(),
                    core::str::from_utf8(shown).unwrap_or("?"),
                    e.message()
                );
            }
            Ret(err(e.errno()))
        }
    }
}

/// Where execveat's program is: `None` (with the name as given) for a
/// path from the working directory that follows links (execve's case);
/// else the name it runs as (`/dev/fd/N[/PATH]`) and where to find it.
fn exec_at(
    k: &Kernel,
    s: usize,
    dirfd: u64,
    name: &[u8],
    flags: u64,
) -> Result<(Option<Vec<u8>>, Option<ExecAt>), Errno> {
    if flags & !((AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let follow = if flags & AT_SYMLINK_NOFOLLOW as u64 != 0 {
        Follow::No
    } else {
        Follow::Yes
    };
    if name.is_empty() {
        if flags & AT_EMPTY_PATH as u64 == 0 {
            return Err(Errno::ENOENT);
        }
        let f = crate::syscall::fd::file(k, s, dirfd)?;
        let node = f.inode().ok_or(Errno::EACCES)?.clone();
        let shown = alloc::format!("/dev/fd/{}", dirfd as i32).into_bytes();
        let real = f.path.clone();
        return Ok((Some(shown), Some(ExecAt::File { node, real })));
    }
    let relative = name.first() != Some(&b'/') && dirfd as i32 != AT_FDCWD;
    if !relative && follow == Follow::Yes {
        return Ok((None, None));
    }
    let start = super::path::start_dir(k, s, dirfd, name)?;
    let base = super::path::path_of(k, s, dirfd, b"");
    let shown = relative.then(|| {
        let mut p = alloc::format!("/dev/fd/{}/", dirfd as i32).into_bytes();
        p.extend_from_slice(name);
        p
    });
    let at = ExecAt::Path {
        start,
        base,
        name: name.to_vec(),
        follow,
    };
    Ok((shown, Some(at)))
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
    /// The CPU time of a reaped child and its reaped children.
    cpu: CpuTimes,
}

/// Finds a child of `s` to report per `w`, taking it (reaping a zombie,
/// clearing a stop/continue report) unless `w.keep`. `Err(ECHILD)` when
/// no child matches at all; `Ok(None)` when none is ready.
fn find_waitable(k: &mut Kernel, s: usize, w: &WaitFor) -> Result<Option<Found>, Errno> {
    use linux_raw_sys::general::{CLD_CONTINUED, CLD_EXITED, CLD_KILLED, CLD_STOPPED};
    let me = k.procs.procs[s].tgid;
    let my_pgid = k.procs.procs[s].pgid;
    // __WALL (0x40000000) or __WCLONE (0x80000000) see clone children
    // (exit signal other than SIGCHLD); plain waits see only the others.
    let all = w.options & 0x4000_0000 != 0;
    let clone_only = w.options & 0x8000_0000 != 0;
    let matches = |p: &Proc| {
        // Processes only: a group's leader stands for it (threads are
        // never waited for).
        p.state != State::Free
            && p.parent == me
            && p.pid == p.tgid
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
        // A leader that ended before its threads is not a zombie yet.
        let done = p.state == State::Zombie && !k.procs.group_alive(pid, None);
        if done && w.exited {
            let st = p.wait_status;
            let mut cpu = p.cpu;
            cpu.add(p.exited_threads_cpu);
            cpu.add(p.children_cpu);
            let (code, value) = if st & 0x7f != 0 {
                (CLD_KILLED, st & 0x7f)
            } else {
                (CLD_EXITED, (st >> 8) & 0xff)
            };
            let found = Found {
                pid,
                status: st,
                code,
                value,
                cpu,
            };
            if !w.keep {
                k.procs.reap(c);
            }
            return Ok(Some(found));
        }
        let found = match p.stop_report {
            StopReport::Stopped(sig) if w.stopped && p.state == State::Stopped => Found {
                pid,
                status: (sig << 8) | 0x7f,
                code: CLD_STOPPED,
                value: sig,
                cpu: CpuTimes::default(),
            },
            StopReport::Continued if w.continued => Found {
                pid,
                status: 0xffff,
                code: CLD_CONTINUED,
                value: signal::SIGCONT,
                cpu: CpuTimes::default(),
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
                // Posted (it goes with the next RUN) where it lands in
                // the process's anonymous memory; should the host fail it
                // all the same, this call returns EFAULT before the
                // process runs, as Linux's (the child is reaped either
                // way, as there).
                let pid = k.procs.procs[s].pid;
                let tag = Tag::SyscallFault { slot: s, pid }.encode();
                if let Err(e) = copy_out_posted(&space, wstatus, &f.status.to_le_bytes(), tag) {
                    return Ret(err(e));
                }
            }
            if rusage != 0 {
                if let Err(e) = copy_out(&space, rusage, &rusage_bytes(f.cpu)) {
                    return Ret(err(e));
                }
            }
            Ret(f.pid as i64)
        }
        Ok(None) if options & WNOHANG as u64 != 0 => Ret(0),
        Ok(None) => {
            let me = k.procs.procs[s].tgid;
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
    const P_PIDFD: u32 = 3;
    let pid = match idtype as u32 {
        P_ALL => -1,
        P_PID if id as i32 > 0 => id as i32,
        P_PGID if id as i32 > 0 => -(id as i32),
        P_PGID if id == 0 => 0,
        // The process a pidfd names (gone: no child of the caller).
        P_PIDFD => match pidfd_target(k, s, id) {
            Ok((_, Some(t))) => k.procs.procs[t].pid as i32,
            Ok((_, None)) => return Ret(err(Errno::ECHILD)),
            Err(e) => return Ret(err(e)),
        },
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
            let me = k.procs.procs[s].tgid;
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
        let cpu = found.as_ref().map_or(CpuTimes::default(), |f| f.cpu);
        if let Err(e) = copy_out(&space, rusage, &rusage_bytes(cpu)) {
            return Ret(err(e));
        }
    }
    Ret(0)
}

/// A `struct rusage` (144 bytes) with the CPU times; the counters this
/// kernel does not keep (max RSS, faults, context switches) are 0.
pub fn rusage_bytes(cpu: CpuTimes) -> [u8; 144] {
    let mut b = [0u8; 144];
    let tv = |ns: u64| [ns / 1_000_000_000, ns % 1_000_000_000 / 1000];
    let words = [tv(cpu.user_ns), tv(cpu.system_ns)].concat();
    for (i, w) in words.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    b
}

/// getrusage(who, usage): RUSAGE_SELF (every thread of the process, the
/// ended ones too), RUSAGE_THREAD, RUSAGE_CHILDREN (the reaped ones).
pub fn sys_getrusage(k: &mut Kernel, s: usize, who: u64, usage: u64) -> Result<i64, Errno> {
    let p = &k.procs.procs[s];
    let cpu = match who as i32 {
        0 => k.procs.group_cpu(p.tgid),
        1 => p.cpu,
        -1 => k.procs.procs[k.procs.timer_slot(s)].children_cpu,
        _ => return Err(Errno::EINVAL),
    };
    copy_out(&k.space(s), usage, &rusage_bytes(cpu))?;
    Ok(0)
}

/// times(buf): the CPU times in clock ticks (USER_HZ 100); the ticks
/// since boot.
pub fn sys_times(k: &mut Kernel, s: usize, buf: u64) -> Result<i64, Errno> {
    let cpu = k.procs.group_cpu(k.procs.procs[s].tgid);
    let children = k.procs.procs[k.procs.timer_slot(s)].children_cpu;
    let tick = |ns: u64| ns / 10_000_000;
    if buf != 0 {
        let t = [
            tick(cpu.user_ns),
            tick(cpu.system_ns),
            tick(children.user_ns),
            tick(children.system_ns),
        ];
        crate::mm::uaccess::write_words(&k.space(s), buf, &t)?;
    }
    Ok(tick(guestlib::hypercall::clock_ns()) as i64)
}

/// setpgid(pid, pgid): the caller or a child of it (not yet exec'd: else
/// EACCES) joins group `pgid` (0: its own pid) of the same session.
pub fn sys_setpgid(k: &mut Kernel, s: usize, pid: i32, pgid: i32) -> Result<i64, Errno> {
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let me = k.procs.procs[s].tgid;
    // A process is its leader's slot (the caller may be another thread).
    let s = k.procs.find(me).unwrap_or(s);
    let t = if pid == 0 {
        s
    } else {
        k.procs.find(pid as u32).ok_or(Errno::ESRCH)?
    };
    if k.procs.procs[t].pid != k.procs.procs[t].tgid {
        return Err(Errno::ESRCH);
    }
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
    for x in k.procs.group(k.procs.procs[t].tgid) {
        k.procs.procs[x].pgid = pgid;
        if let Some(task) = &k.procs.procs[x].task {
            task.pgid.set(pgid);
        }
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
    let pid = k.procs.procs[s].tgid;
    if k.procs
        .procs
        .iter()
        .any(|p| p.state != State::Free && p.pgid == pid)
    {
        return Err(Errno::EPERM);
    }
    for x in k.procs.group(pid) {
        let p = &mut k.procs.procs[x];
        p.sid = pid;
        p.pgid = pid;
        if let Some(task) = &p.task {
            task.pgid.set(pid);
            task.sid.set(pid);
        }
    }
    Ok(pid as i64)
}

/// `PIDFD_NONBLOCK` and `PIDFD_THREAD` (O_NONBLOCK, O_EXCL).
const PIDFD_NONBLOCK: u64 = O_NONBLOCK as u64;
const PIDFD_THREAD: u64 = O_EXCL as u64;

/// pidfd_open(pid, flags): a descriptor naming process `pid` (a thread
/// group's leader; any thread with `PIDFD_THREAD`), close-on-exec, as
/// Linux's: `EINVAL` for other flags or a pid not above 0, `ESRCH` for
/// no such process (a zombie is one), `ENOENT` for a thread that leads
/// no group without `PIDFD_THREAD`.
pub fn sys_pidfd_open(k: &mut Kernel, s: usize, pid: u64, flags: u64) -> Result<i64, Errno> {
    if flags & !(PIDFD_NONBLOCK | PIDFD_THREAD) != 0 || pid as i32 <= 0 || pid > i32::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let t = k.procs.find(pid as u32).ok_or(Errno::ESRCH)?;
    let p = &k.procs.procs[t];
    let thread = flags & PIDFD_THREAD != 0;
    if !thread && p.pid != p.tgid {
        return Err(Errno::ENOENT);
    }
    let task = p.task.clone().ok_or(Errno::ESRCH)?;
    let dev = Rc::new(PidFd::new(task, thread));
    let file_flags = O_RDWR | (flags & PIDFD_NONBLOCK) as u32;
    let f = OpenFile::anon(dev, file_flags, "anon_inode:[pidfd]");
    let limit = super::fd::nofile(k, s);
    k.files(s)
        .borrow_mut()
        .install(f, true, 0, limit)
        .map(i64::from)
}

/// The pidfd at descriptor `fd` (`EBADF` for a descriptor that is none),
/// and the slot of the process it names while that has not been reaped.
fn pidfd_target(k: &Kernel, s: usize, fd: u64) -> Result<(bool, Option<usize>), Errno> {
    let f = super::fd::file(k, s, fd)?;
    let p = f.device().and_then(|d| d.pidfd()).ok_or(Errno::EBADF)?;
    if p.reaped() {
        return Ok((p.thread, None));
    }
    let slot = k
        .procs
        .procs
        .iter()
        .position(|q| q.state != State::Free && q.task.as_ref().is_some_and(|t| p.names(t)));
    Ok((p.thread, slot))
}

/// pidfd_send_signal(pidfd, sig, info, flags): kill (or, with `info`,
/// rt_sigqueueinfo) to the process the pidfd names, never to a later one
/// with its pid: `ESRCH` once it is reaped. The scope flags
/// (`PIDFD_SIGNAL_THREAD`, `_THREAD_GROUP`, `_PROCESS_GROUP`) pick the
/// thread, its group or its process group; more than one is `EINVAL`.
pub fn sys_pidfd_send_signal(k: &mut Kernel, s: usize, a: [u64; 4]) -> Result<i64, Errno> {
    const THREAD: u64 = 1;
    const THREAD_GROUP: u64 = 2;
    const PROCESS_GROUP: u64 = 4;
    let [fd, sig, uinfo, flags] = a;
    if flags & !(THREAD | THREAD_GROUP | PROCESS_GROUP) != 0 || flags.count_ones() > 1 {
        return Err(Errno::EINVAL);
    }
    let (thread_fd, target) = pidfd_target(k, s, fd)?;
    let sig = i32::try_from(sig).map_err(|_| Errno::EINVAL)?;
    if sig != 0 && !signal::valid(sig) {
        return Err(Errno::EINVAL);
    }
    let t = target.ok_or(Errno::ESRCH)?;
    // The scope: the flag's, else the pidfd's own (a thread's or its
    // group's).
    let to_thread = flags & THREAD != 0 || (flags == 0 && thread_fd);
    let to_pgrp = flags & PROCESS_GROUP != 0;
    let me = k.procs.procs[s].tgid;
    let info = if uinfo != 0 {
        let mut info = SigInfo([0; 128]);
        copy_in(&k.space(s), uinfo, &mut info.0)?;
        if info.signo() != sig {
            return Err(Errno::EINVAL);
        }
        // Only to itself may a process claim a kernel's or tkill's code.
        let own = k.procs.procs[t].tgid == me && !to_pgrp;
        if !own && (info.code() >= 0 || info.code() == signal::SI_TKILL) {
            return Err(Errno::EPERM);
        }
        info
    } else {
        SigInfo::from_process(sig, signal::SI_USER, me)
    };
    if sig == 0 || k.procs.procs[t].state == State::Zombie {
        // A zombie still exists: nothing to deliver, no error.
        return Ok(0);
    }
    if to_pgrp {
        let pgid = k.procs.procs[t].pgid;
        let members: Vec<usize> = (0..k.procs.procs.len())
            .filter(|&i| {
                let q = &k.procs.procs[i];
                q.alive() && q.pgid == pgid && q.pid == q.tgid
            })
            .collect();
        for m in members {
            k.procs.send_group(m, info)?;
        }
    } else if to_thread {
        k.procs.send(t, info)?;
    } else {
        k.procs.send_group(t, info)?;
    }
    Ok(0)
}

/// pidfd_getfd(pidfd, targetfd, flags): a new descriptor (close-on-exec)
/// of the open file at `targetfd` in the process the pidfd names, as
/// Linux's (every process is root, so ptrace's access check passes):
/// `EINVAL` for flags, `ESRCH` once the process has exited, `EBADF` for
/// a `targetfd` it does not have.
pub fn sys_pidfd_getfd(
    k: &mut Kernel,
    s: usize,
    fd: u64,
    target_fd: u64,
    flags: u64,
) -> Result<i64, Errno> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let (_, target) = pidfd_target(k, s, fd)?;
    let t = target.ok_or(Errno::ESRCH)?;
    if !k.procs.procs[t].alive() {
        return Err(Errno::ESRCH);
    }
    let file = super::fd::file(k, t, target_fd)?;
    let limit = super::fd::nofile(k, s);
    k.files(s)
        .borrow_mut()
        .install(file, true, 0, limit)
        .map(i64::from)
}
