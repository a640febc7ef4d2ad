//! Signal system calls: dispositions, masks, waiting for signals, sending
//! them, the alternate stack, rt_sigreturn — and what a
//! blocked call becomes when a handler interrupts it (Linux's
//! -ERESTARTSYS rules).

use crate::fs::file::OpenFile;
use crate::fs::signalfd::SignalFd;
use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in, copy_out, read_u64, write_words, write_words_posted};
use crate::proc::signal::{self, Action, SigInfo, SigSet, SI_TKILL, SI_USER};
use crate::proc::Chan;
use crate::syscall::fd::file;
use crate::syscall::poll::install;
use crate::syscall::time::timespec;
use crate::syscall::{err, ret, Outcome, Outcome::*};
use guestlib::hypercall;
use linux_raw_sys::general::*;
use vkernel_abi::Errno;

/// The only sigset size the x86-64 calls take.
const SIGSET_BYTES: u64 = 8;

fn check_sig(sig: u64) -> Result<i32, Errno> {
    let sig = i32::try_from(sig).map_err(|_| Errno::EINVAL)?;
    if signal::valid(sig) {
        Ok(sig)
    } else {
        Err(Errno::EINVAL)
    }
}

/// rt_sigaction(sig, act, oact, sigsetsize).
pub fn sys_rt_sigaction(
    k: &mut Kernel,
    s: usize,
    sig: u64,
    act: u64,
    oact: u64,
    size: u64,
) -> Result<i64, Errno> {
    if size != SIGSET_BYTES {
        return Err(Errno::EINVAL);
    }
    let sig = check_sig(sig)?;
    let space = k.space(s);
    let new = if act != 0 {
        if sig == signal::SIGKILL || sig == signal::SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let mut b = [0u8; 32];
        copy_in(&space, act, &mut b)?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Some(Action {
            handler: w(0),
            flags: w(1),
            restorer: w(2),
            mask: SigSet(w(3)).blockable(),
        })
    } else {
        None
    };
    let old = k.procs.action(s, sig);
    if oact != 0 {
        write_words_posted(
            &space,
            oact,
            &[old.handler, old.flags, old.restorer, old.mask.0],
            k.procs.result_tag(s),
        )?;
    }
    if let Some(a) = new {
        k.procs.procs[s].actions.borrow_mut().set(sig, a);
        // POSIX: setting a pending signal to be ignored discards it.
        let ignored = a.handler == signal::SIG_IGN
            || (a.handler == signal::SIG_DFL
                && signal::default_action(sig) == signal::DefaultAction::Ignore);
        if ignored {
            k.procs.discard_group(s, SigSet::of(sig));
        }
    }
    Ok(0)
}

/// rt_sigprocmask(how, set, oldset, sigsetsize).
pub fn sys_rt_sigprocmask(
    k: &mut Kernel,
    s: usize,
    how: u64,
    set: u64,
    oldset: u64,
    size: u64,
) -> Result<i64, Errno> {
    if size != SIGSET_BYTES {
        return Err(Errno::EINVAL);
    }
    let space = k.space(s);
    let old = k.procs.procs[s].sig.mask;
    let new = if set != 0 {
        let v = SigSet(read_u64(&space, set)?);
        Some(match how as u32 {
            SIG_BLOCK => SigSet(old.0 | v.0),
            SIG_UNBLOCK => SigSet(old.0 & !v.0),
            SIG_SETMASK => v,
            _ => return Err(Errno::EINVAL),
        })
    } else {
        None
    };
    if oldset != 0 {
        write_words_posted(&space, oldset, &[old.0], k.procs.result_tag(s))?;
    }
    if let Some(m) = new {
        k.procs.procs[s].sig.mask = m.blockable();
        k.procs.adopt_group_signals(s);
    }
    Ok(0)
}

/// rt_sigpending(set, sigsetsize): the pending signals that are blocked.
pub fn sys_rt_sigpending(k: &mut Kernel, s: usize, set: u64, size: u64) -> Result<i64, Errno> {
    if size > SIGSET_BYTES {
        return Err(Errno::EINVAL);
    }
    let p = &k.procs.procs[s];
    // The thread's own and what other threads hold for the process.
    let held = k
        .procs
        .group_peers(s)
        .iter()
        .map(|&t| k.procs.procs[t].sig.shared.0 & k.procs.procs[t].sig.pending.0)
        .fold(0, |a, b| a | b);
    let v = (p.sig.pending.0 | held) & p.sig.mask.0;
    copy_out(&k.space(s), set, &v.to_le_bytes()[..size as usize])?;
    Ok(0)
}

/// Runs the rest of a call under a temporary mask read from `set`
/// (sigsuspend, ppoll, pselect6, epoll_pwait): the old mask comes back
/// when the call returns, or is saved in the frame of the handler that
/// interrupts it. A restarted call keeps the mask it set first.
pub fn temporary_mask(k: &mut Kernel, s: usize, set: u64) -> Result<(), Errno> {
    if k.procs.procs[s].sig.saved_mask.is_some() {
        return Ok(());
    }
    let v = SigSet(read_u64(&k.space(s), set)?);
    let p = &mut k.procs.procs[s];
    p.sig.saved_mask = Some(p.sig.mask);
    p.sig.mask = v.blockable();
    k.procs.adopt_group_signals(s);
    Ok(())
}

/// rt_sigsuspend(mask, sigsetsize): waits under `mask` until a handler
/// runs; returns EINTR (from the delivery) then.
pub fn sys_rt_sigsuspend(k: &mut Kernel, s: usize, set: u64, size: u64) -> Outcome {
    if size != SIGSET_BYTES {
        return Ret(err(Errno::EINVAL));
    }
    if let Err(e) = temporary_mask(k, s, set) {
        return Ret(err(e));
    }
    k.procs.sleep(s, Chan::Signal, 0, 0);
    NoReturn
}

/// pause: sleeps until a signal's handler runs (EINTR) or one ends the
/// process.
pub fn sys_pause(k: &mut Kernel, s: usize) -> Outcome {
    k.procs.sleep(s, Chan::Signal, 0, 0);
    NoReturn
}

/// rt_sigtimedwait(set, info, timeout, sigsetsize): takes a pending
/// signal of `set` (without running its handler), waiting for one up to
/// `timeout` (null: forever): its number, or EAGAIN at the timeout.
pub fn sys_rt_sigtimedwait(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [set, info, timeout, size, _, _] = a;
    let r = (|| {
        if size != SIGSET_BYTES {
            return Err(Errno::EINVAL);
        }
        let space = k.space(s);
        let want = SigSet(read_u64(&space, set)?).blockable();
        let wait = if timeout != 0 {
            Some(timespec(&space, timeout)?)
        } else {
            None
        };
        Ok((want, wait))
    })();
    let (want, wait) = match r {
        Ok(v) => v,
        Err(e) => return Ret(err(e)),
    };
    // What the process holds for any thread that waits for it.
    k.procs.procs[s].sig.waiting = want;
    k.procs.adopt_group_signals(s);
    let p = &mut k.procs.procs[s];
    if let Some(mut got) = p.sig.dequeue(want) {
        p.sig.waiting = SigSet::EMPTY;
        k.procs.timer_signal_taken(s, &mut got);
        let sig = got.signo();
        if info != 0 {
            if let Err(e) = copy_out(&k.space(s), info, &got.0) {
                return Ret(err(e));
            }
        }
        return Ret(sig as i64);
    }
    let until = match wait {
        Some(0) => {
            p.sig.waiting = SigSet::EMPTY;
            return Ret(err(Errno::EAGAIN));
        }
        Some(ns) => {
            let resumed = k.procs.resumed_deadline(s);
            if resumed != 0 {
                resumed
            } else {
                hypercall::clock_ns().saturating_add(ns)
            }
        }
        None => 0,
    };
    k.procs.procs[s].sig.waiting = want;
    k.procs.sleep(s, Chan::Signal, until, err(Errno::EAGAIN));
    NoReturn
}

/// rt_sigqueueinfo(pid, sig, info): a signal with the caller's own
/// siginfo to a process; only to itself may a process claim a kernel
/// code (EPERM).
pub fn sys_rt_sigqueueinfo(k: &mut Kernel, s: usize, pid: i32, sig: u64, uinfo: u64) -> Outcome {
    let r = (|| {
        let t = k.procs.find(pid as u32).ok_or(Errno::ESRCH)?;
        match queued_info(k, s, t, sig, uinfo)? {
            Some(info) => k.procs.send_group(t, info),
            None => Ok(()),
        }
    })();
    ret(r.map(|_| 0))
}

/// rt_tgsigqueueinfo(tgid, tid, sig, info): the same to one thread.
pub fn sys_rt_tgsigqueueinfo(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let r = (|| {
        let t = k.procs.find(a[1] as u32).ok_or(Errno::ESRCH)?;
        if k.procs.procs[t].tgid != a[0] as u32 {
            return Err(Errno::ESRCH);
        }
        match queued_info(k, s, t, a[2], a[3])? {
            Some(info) => k.procs.send(t, info),
            None => Ok(()),
        }
    })();
    ret(r.map(|_| 0))
}

/// The siginfo a process queues to task `t` (see above); `None` when it
/// goes to init from another process and init leaves the signal at its
/// default action (dropped, as `kill` to init is: the siginfo's code,
/// which the sender chose, must not pass it off as the kernel's).
fn queued_info(
    k: &Kernel,
    s: usize,
    t: usize,
    sig: u64,
    uinfo: u64,
) -> Result<Option<SigInfo>, Errno> {
    let sig = check_sig(sig)?;
    let mut info = SigInfo([0; 128]);
    copy_in(&k.space(s), uinfo, &mut info.0)?;
    let own = k.procs.procs[t].tgid == k.procs.procs[s].tgid;
    if (info.code() >= 0 || info.code() == SI_TKILL) && !own {
        return Err(Errno::EPERM);
    }
    info.0[0..4].copy_from_slice(&sig.to_le_bytes());
    if !own && k.procs.procs[t].tgid == 1 && k.procs.action(t, sig).handler == signal::SIG_DFL {
        return Ok(None);
    }
    Ok(Some(info))
}

/// kill(pid, sig): to one process, the caller's group (0), every process
/// it may signal (-1), or group `-pid`; sig 0 only checks.
pub fn sys_kill(k: &mut Kernel, s: usize, pid: i32, sig: u64) -> Result<i64, Errno> {
    let sig = i32::try_from(sig).map_err(|_| Errno::EINVAL)?;
    if sig != 0 && !signal::valid(sig) {
        return Err(Errno::EINVAL);
    }
    if pid == i32::MIN {
        return Err(Errno::ESRCH);
    }
    let targets = k.procs.kill_targets(s, pid);
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    if sig != 0 {
        let me = k.procs.procs[s].tgid;
        for t in targets {
            k.procs
                .send_group(t, SigInfo::from_process(sig, SI_USER, me))?;
        }
    }
    Ok(0)
}

/// tgkill(tgid, tid, sig) and tkill(tid, sig) (`tgid` None): one thread.
pub fn sys_tgkill(
    k: &mut Kernel,
    s: usize,
    tgid: Option<i32>,
    tid: i32,
    sig: u64,
) -> Result<i64, Errno> {
    let sig = i32::try_from(sig).map_err(|_| Errno::EINVAL)?;
    if tid <= 0 || tgid.is_some_and(|g| g <= 0) || (sig != 0 && !signal::valid(sig)) {
        return Err(Errno::EINVAL);
    }
    let t = k.procs.find(tid as u32).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g as u32 != k.procs.procs[t].tgid) {
        return Err(Errno::ESRCH);
    }
    if sig != 0 {
        let me = k.procs.procs[s].tgid;
        k.procs.send(t, SigInfo::from_process(sig, SI_TKILL, me))?;
    }
    Ok(0)
}

/// sigaltstack(ss, old_ss).
pub fn sys_sigaltstack(k: &mut Kernel, s: usize, ss: u64, old: u64) -> Result<i64, Errno> {
    let space = k.space(s);
    let sp = k.procs.procs[s].tf.rsp;
    let cur = k.procs.procs[s].sig.altstack;
    let new = if ss != 0 {
        let mut b = [0u8; 24];
        copy_in(&space, ss, &mut b)?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Some((w(0), w(1) as u32, w(2)))
    } else {
        None
    };
    if old != 0 {
        let flags = if cur.on(sp) {
            SS_ONSTACK
        } else if cur.flags & SS_DISABLE != 0 {
            SS_DISABLE
        } else {
            0
        } | (cur.flags & SS_AUTODISARM);
        let (osp, osize) = if cur.flags & SS_DISABLE != 0 {
            (0, 0)
        } else {
            (cur.sp, cur.size)
        };
        write_words(&space, old, &[osp, flags as u64, osize])?;
    }
    if let Some((ss_sp, flags, size)) = new {
        k.procs.set_altstack(s, sp, ss_sp, flags, size)?;
    }
    Ok(0)
}

/// rt_sigreturn: back to where the handler interrupted; a frame that
/// cannot be read, or holds FPU state the CPU would refuse, is SIGSEGV.
pub fn sys_rt_sigreturn(k: &mut Kernel, s: usize) -> Outcome {
    match k.procs.sigreturn(s) {
        Ok(rax) => {
            // The mask it returns to may let in what the process holds.
            k.procs.adopt_group_signals(s);
            Ret(rax as i64)
        }
        Err(_) => {
            k.procs
                .force(s, SigInfo::new(signal::SIGSEGV, signal::SI_KERNEL));
            NoReturn
        }
    }
}

/// What a blocked (or restarting) system call of `s` becomes when the
/// handler `act` is about to run, as Linux's handle_signal decides from
/// the call's -ERESTART* code: a call that moved data returns what it
/// moved; a restartable call (ERESTARTSYS: reads and writes of pipes and
/// terminals, socket sends, receives, accepts and connects, wait4,
/// ioctl, lock waits, futex waits without a timeout)
/// runs again after the handler if `act` has SA_RESTART; everything else
/// (sleeps, poll/select/epoll, pause, sigsuspend, sigtimedwait, timed
/// futex waits) returns EINTR — nanosleep with the time left.
// The numbers keep the kernel headers' names (`__NR_read`).
#[allow(non_upper_case_globals)]
pub fn interrupted(k: &mut Kernel, s: usize, act: &Action) {
    // A socket call that slept with a timeout (SO_RCVTIMEO, SO_SNDTIMEO)
    // is EINTR, not restarted (Linux's sock_intr_errno).
    let timed_socket = k.procs.procs[s].deadline_ns != 0
        && k.procs.procs[s]
            .files
            .borrow()
            .get(k.procs.procs[s].tf.rdi as i32)
            .is_ok_and(|f| f.device().is_some_and(|d| d.unix_socket().is_some()));
    let p = &mut k.procs.procs[s];
    p.restart = false;
    // A fifo open gives up its end (a restart opens anew), as Linux's.
    p.fifo_wait = None;
    let deadline = core::mem::take(&mut p.deadline_ns);
    let done = core::mem::take(&mut p.io_done);
    p.sig.waiting = SigSet::EMPTY;
    let tf = p.tf;
    let nr = tf.rax as u32;
    if done > 0 {
        p.tf.rax = done;
        return;
    }
    let restartable = match nr {
        __NR_read | __NR_readv | __NR_write | __NR_writev => !timed_socket,
        __NR_ioctl | __NR_wait4 | __NR_waitid | __NR_open | __NR_openat | __NR_flock
        | __NR_fcntl | __NR_sendfile | __NR_getrandom => true,
        // Sockets without SO_RCVTIMEO/SO_SNDTIMEO (socket(7)).
        __NR_accept | __NR_accept4 | __NR_connect | __NR_sendto | __NR_recvfrom | __NR_sendmsg
        | __NR_recvmsg => !timed_socket,
        // FUTEX_WAIT without a timeout (-ERESTARTSYS); timed waits are
        // -ERESTART_RESTARTBLOCK: EINTR for a handler.
        __NR_futex => tf.r10 == 0,
        _ => false,
    };
    if restartable && act.has(SA_RESTART) {
        // Back onto the `syscall` instruction, with its number in rax.
        p.tf.rip = tf.rip.wrapping_sub(2);
        return;
    }
    p.tf.rax = err(Errno::EINTR) as u64;
    // nanosleep and relative clock_nanosleep say how much was left.
    let rem = match nr {
        __NR_nanosleep => tf.rsi,
        __NR_clock_nanosleep if tf.rsi & TIMER_ABSTIME as u64 == 0 => tf.r10,
        _ => 0,
    };
    if rem != 0 && deadline != 0 {
        let left = deadline.saturating_sub(hypercall::clock_ns());
        let _ = write_words(
            &k.space(s),
            rem,
            &[left / 1_000_000_000, left % 1_000_000_000],
        );
    }
}

/// signalfd4(fd, mask, size, flags) (and signalfd: flags 0): a new
/// signalfd for the signals of `mask` (SIGKILL and SIGSTOP left out, as
/// Linux does), or, given one's descriptor, a new mask for it.
pub fn sys_signalfd4(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    let [fd, mask, size, flags, ..] = a;
    if size != SIGSET_BYTES || flags & !((SFD_CLOEXEC | SFD_NONBLOCK) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let mask = read_u64(&k.space(s), mask)?
        & !(SigSet::of(signal::SIGKILL).0 | SigSet::of(signal::SIGSTOP).0);
    if fd as i32 != -1 {
        let f = file(k, s, fd)?;
        let sfd = f.device().and_then(|d| d.signalfd()).ok_or(Errno::EINVAL)?;
        sfd.set_mask(mask);
        return Ok(fd as i32 as i64);
    }
    let flags = flags as u32;
    let f = OpenFile::anon(
        SignalFd::new(mask),
        O_RDWR | (flags & O_NONBLOCK),
        "anon_inode:[signalfd]",
    );
    install(k, s, f, flags & SFD_CLOEXEC != 0)
}

/// signalfd's flags (the uapi headers spell them as O_ flags).
const SFD_CLOEXEC: u32 = O_CLOEXEC;
const SFD_NONBLOCK: u32 = O_NONBLOCK;

/// Bytes of one `struct signalfd_siginfo`.
const SIGNALFD_SIGINFO: usize = 128;

/// Linux's signalfd_copyinfo: the fields of `info` a `signalfd_siginfo`
/// carries, placed by the siginfo's layout (kill, timer, real-time,
/// child, fault).
fn signalfd_siginfo(info: &SigInfo) -> [u8; SIGNALFD_SIGINFO] {
    let i = &info.0;
    let mut o = [0u8; SIGNALFD_SIGINFO];
    o[0..12].copy_from_slice(&i[0..12]); // signo, errno, code
    let (sig, code) = (info.signo(), info.code());
    let from_kernel_for_sig = code > 0 && code < signal::SI_KERNEL;
    let fault = matches!(
        sig,
        signal::SIGILL | signal::SIGFPE | signal::SIGSEGV | signal::SIGBUS | signal::SIGTRAP
    );
    if from_kernel_for_sig && fault {
        o[72..80].copy_from_slice(&i[16..24]); // ssi_addr
    } else if from_kernel_for_sig && sig == signal::SIGCHLD {
        o[12..20].copy_from_slice(&i[16..24]); // pid, uid
        o[40..44].copy_from_slice(&i[24..28]); // status
        o[56..72].copy_from_slice(&i[32..48]); // utime, stime
    } else if code == crate::proc::timer::SI_TIMER {
        o[24..32].copy_from_slice(&i[16..24]); // tid (timer id), overrun
        o[44..48].copy_from_slice(&i[24..28]); // ssi_int
        o[48..56].copy_from_slice(&i[24..32]); // ssi_ptr
    } else if code < 0 {
        o[12..20].copy_from_slice(&i[16..24]); // pid, uid
        o[44..48].copy_from_slice(&i[24..28]);
        o[48..56].copy_from_slice(&i[24..32]);
    } else {
        o[12..20].copy_from_slice(&i[16..24]); // pid, uid
    }
    o
}

/// read of a signalfd: the caller's pending signals of its mask, as many
/// records as `count` holds (`EINVAL` for less than one); it waits for
/// one (or is `EAGAIN` when non-blocking).
pub fn read_signalfd(k: &mut Kernel, s: usize, f: &OpenFile, buf: u64, count: u64) -> Outcome {
    let Some(sfd) = f.device().and_then(|d| d.signalfd()) else {
        return Ret(err(Errno::EINVAL));
    };
    let want = SigSet(sfd.mask());
    let max = (count as usize) / SIGNALFD_SIGINFO;
    if max == 0 {
        return Ret(err(Errno::EINVAL));
    }
    // Signals held for the process on other threads come here too.
    let waiting = k.procs.procs[s].sig.waiting;
    k.procs.procs[s].sig.waiting = want;
    k.procs.adopt_group_signals(s);
    k.procs.procs[s].sig.waiting = waiting;
    let space = k.space(s);
    let mut done = 0;
    while done < max {
        let Some(mut info) = k.procs.procs[s].sig.dequeue(want) else {
            break;
        };
        k.procs.timer_signal_taken(s, &mut info);
        let at = buf.wrapping_add((done * SIGNALFD_SIGINFO) as u64);
        if let Err(e) = copy_out(&space, at, &signalfd_siginfo(&info)) {
            // Back onto the queue: nothing is lost to a bad buffer.
            let p = &mut k.procs.procs[s].sig;
            p.put(SigSet::of(info.signo()), alloc::vec![info]);
            if done == 0 {
                return Ret(err(e));
            }
            break;
        }
        done += 1;
    }
    k.procs.publish_signals(s);
    if done > 0 {
        return Ret((done * SIGNALFD_SIGINFO) as i64);
    }
    if f.nonblocking() {
        return Ret(err(Errno::EAGAIN));
    }
    k.procs.sleep(s, Chan::SignalFd, 0, 0);
    NoReturn
}
