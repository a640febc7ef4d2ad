//! Timers: the interval timers (setitimer, getitimer, alarm) and POSIX
//! timers (timer_create and friends). ITIMER_REAL is kept with the sleeps
//! (`Proc::real_timer`); the others in [`crate::proc::timer`]. All of them
//! are the process's: kept in its leader's slot.

use alloc::rc::Rc;

use crate::fs::file::OpenFile;
use crate::fs::timerfd::TimerFd;
use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in, write_words};
use crate::mm::SpaceRef;
use crate::proc::signal;
use crate::proc::timer::{Arming, Notify, TimerClock};
use crate::syscall::fd::file;
use crate::syscall::log_refused;
use crate::syscall::poll::install;
use crate::syscall::time::{cpu_clock_target, timespec};
use guestlib::hypercall;
use linux_raw_sys::general::*;
use vkernel_abi::Errno;

const NS_PER_SEC: u64 = 1_000_000_000;

/// The time left on ITIMER_REAL of `s`, and its interval (ns).
fn real_timer_left(k: &Kernel, s: usize) -> (u64, u64) {
    let t = k.procs.procs[k.procs.timer_slot(s)].real_timer;
    if t.deadline_ns == 0 {
        return (0, t.interval_ns);
    }
    let now = hypercall::clock_ns();
    // An expired timer still armed reports a tiny remainder, as Linux.
    (t.deadline_ns.saturating_sub(now).max(1000), t.interval_ns)
}

/// The value and interval of interval timer `which` of `s` (ns).
fn itimer_left(k: &Kernel, s: usize, which: u32) -> (u64, u64) {
    let owner = k.procs.timer_slot(s);
    let cpu = k.procs.group_cpu(k.procs.procs[owner].tgid);
    let (arming, now) = match which {
        ITIMER_VIRTUAL => (k.procs.procs[owner].timers.virt, cpu.user_ns),
        ITIMER_PROF => (
            k.procs.procs[owner].timers.prof,
            cpu.user_ns.saturating_add(cpu.system_ns),
        ),
        _ => return real_timer_left(k, s),
    };
    // In microseconds, a due timer must not read as disarmed.
    let left = if arming.deadline == 0 {
        0
    } else {
        arming.left(now).max(1000)
    };
    (left, arming.interval)
}

fn to_timeval(ns: u64) -> [u64; 2] {
    [ns / NS_PER_SEC, ns % NS_PER_SEC / 1000]
}

fn check_which(which: u64) -> Result<u32, Errno> {
    match u32::try_from(which) {
        Ok(w @ (ITIMER_REAL | ITIMER_VIRTUAL | ITIMER_PROF)) => Ok(w),
        _ => Err(Errno::EINVAL),
    }
}

fn write_itimerval(space: &SpaceRef, addr: u64, (left, interval): (u64, u64)) -> Result<(), Errno> {
    let [a, b] = to_timeval(interval);
    let [c, d] = to_timeval(left);
    write_words(space, addr, &[a, b, c, d])
}

/// getitimer(which, value).
pub fn sys_getitimer(k: &mut Kernel, s: usize, which: u64, value: u64) -> Result<i64, Errno> {
    let which = check_which(which)?;
    write_itimerval(&k.space(s), value, itimer_left(k, s, which))?;
    Ok(0)
}

/// setitimer(which, new, old): ITIMER_REAL (SIGALRM on the host clock),
/// ITIMER_VIRTUAL (SIGVTALRM on the process's user time), ITIMER_PROF
/// (SIGPROF on its user and system time). A null `new` disarms, as Linux
/// still allows.
pub fn sys_setitimer(
    k: &mut Kernel,
    s: usize,
    which: u64,
    new: u64,
    old: u64,
) -> Result<i64, Errno> {
    let which = check_which(which)?;
    let space = k.space(s);
    let (interval, value) = if new != 0 {
        let mut b = [0u8; 32];
        copy_in(&space, new, &mut b)?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let tv = |sec: u64, usec: u64| -> Result<u64, Errno> {
            if (sec as i64) < 0 || usec >= 1_000_000 {
                return Err(Errno::EINVAL);
            }
            Ok(sec.saturating_mul(NS_PER_SEC).saturating_add(usec * 1000))
        };
        (tv(w(0), w(1))?, tv(w(2), w(3))?)
    } else {
        (0, 0)
    };
    if old != 0 {
        write_itimerval(&space, old, itimer_left(k, s, which))?;
    }
    if which == ITIMER_REAL {
        arm_real_timer(k, s, value, interval);
        return Ok(0);
    }
    let owner = k.procs.timer_slot(s);
    let cpu = k.procs.group_cpu(k.procs.procs[owner].tgid);
    let timers = &mut k.procs.procs[owner].timers;
    let (arming, now) = if which == ITIMER_VIRTUAL {
        (&mut timers.virt, cpu.user_ns)
    } else {
        (&mut timers.prof, cpu.user_ns.saturating_add(cpu.system_ns))
    };
    *arming = Arming::after(now, value, interval);
    k.procs.recount_cpu_timers();
    Ok(0)
}

fn arm_real_timer(k: &mut Kernel, s: usize, value: u64, interval: u64) {
    let l = k.procs.timer_slot(s);
    let t = &mut k.procs.procs[l].real_timer;
    t.interval_ns = interval;
    t.deadline_ns = if value == 0 {
        0
    } else {
        hypercall::clock_ns().saturating_add(value).max(1)
    };
}

/// alarm(seconds): SIGALRM after `seconds` (0 cancels); the seconds
/// that were left, rounded as Linux rounds them.
pub fn sys_alarm(k: &mut Kernel, s: usize, seconds: u64) -> i64 {
    let (left, _) = real_timer_left(k, s);
    let secs = seconds as u32 as u64;
    arm_real_timer(k, s, secs * NS_PER_SEC, 0);
    let (sec, usec) = (left / NS_PER_SEC, left % NS_PER_SEC / 1000);
    (if (sec == 0 && usec != 0) || usec >= 500_000 {
        sec + 1
    } else {
        sec
    }) as i64
}

/// The clock a POSIX timer may run on.
fn timer_clock(k: &Kernel, s: usize, clock: u64) -> Result<TimerClock, Errno> {
    if let Some(target) = cpu_clock_target(k, s, clock) {
        return target;
    }
    match u32::try_from(clock).map_err(|_| Errno::EINVAL)? {
        CLOCK_REALTIME | CLOCK_TAI => Ok(TimerClock::Wall { realtime: true }),
        CLOCK_MONOTONIC | CLOCK_BOOTTIME => Ok(TimerClock::Wall { realtime: false }),
        // Alarm clocks need an RTC to wake a suspended machine (Linux:
        // EOPNOTSUPP without one); the raw and coarse clocks have no
        // timers in Linux either.
        CLOCK_REALTIME_ALARM
        | CLOCK_BOOTTIME_ALARM
        | CLOCK_MONOTONIC_RAW
        | CLOCK_REALTIME_COARSE
        | CLOCK_MONOTONIC_COARSE => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EINVAL),
    }
}

/// SIGEV_THREAD_ID, which Linux's uapi headers spell only in comments.
const SIGEV_THREAD_ID: i32 = 4;

/// Reads a `struct sigevent` (Linux's good_sigevent checks).
fn read_sigevent(k: &Kernel, s: usize, addr: u64) -> Result<(Notify, u64), Errno> {
    let mut b = [0u8; 20];
    copy_in(&k.space(s), addr, &mut b)?;
    let word = |at: usize| i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let value = u64::from_le_bytes(b[0..8].try_into().map_err(|_| Errno::EFAULT)?);
    let (signo, notify, tid) = (word(8), word(12), word(16));
    let signal_ok = signal::valid(signo);
    let n = match notify {
        x if x == SIGEV_NONE as i32 => Notify::Nothing,
        // SIGEV_THREAD is the C library's: to the kernel, a signal.
        x if (x == SIGEV_SIGNAL as i32 || x == SIGEV_THREAD as i32) && signal_ok => {
            Notify::Signal {
                signo,
                thread: None,
            }
        }
        SIGEV_THREAD_ID if signal_ok => {
            let tid = u32::try_from(tid).map_err(|_| Errno::EINVAL)?;
            let t = k.procs.find(tid).ok_or(Errno::EINVAL)?;
            if k.procs.procs[t].tgid != k.procs.procs[s].tgid {
                return Err(Errno::EINVAL);
            }
            Notify::Signal {
                signo,
                thread: Some(tid),
            }
        }
        _ => return Err(Errno::EINVAL),
    };
    Ok((n, value))
}

/// timer_create(clock, sevp, timerid).
pub fn sys_timer_create(
    k: &mut Kernel,
    s: usize,
    clock: u64,
    sevp: u64,
    id_out: u64,
) -> Result<i64, Errno> {
    let timer_clock = timer_clock(k, s, clock).inspect_err(|&e| {
        if e == Errno::EOPNOTSUPP {
            log_refused(k, s, "timer_create", format_args!("clock {clock}"));
        }
    })?;
    let (notify, value) = if sevp == 0 {
        // SIGALRM, with the timer's id as si_value.
        let notify = Notify::Signal {
            signo: signal::SIGALRM,
            thread: None,
        };
        (notify, None)
    } else {
        let (n, v) = read_sigevent(k, s, sevp)?;
        (n, Some(v))
    };
    let owner = k.procs.timer_slot(s);
    let timers = &mut k.procs.procs[owner].timers;
    let id = timers.create(timer_clock, notify, value)?;
    if let Err(e) = write_u32(&k.space(s), id_out, id as u32) {
        let _ = k.procs.procs[owner].timers.delete(id);
        return Err(e);
    }
    Ok(0)
}

fn write_u32(space: &SpaceRef, addr: u64, v: u32) -> Result<(), Errno> {
    crate::mm::uaccess::copy_out(space, addr, &v.to_le_bytes())
}

fn timer_id(id: u64) -> Result<i32, Errno> {
    i32::try_from(id as i64).map_err(|_| Errno::EINVAL)
}

/// The value (time left) and interval of POSIX timer `id`, ns.
fn posix_left(k: &mut Kernel, s: usize, id: i32) -> Result<(u64, u64), Errno> {
    let owner = k.procs.timer_slot(s);
    let t = *k.procs.procs[owner].timers.get(id)?;
    let now = k.procs.timer_clock_now(t.clock);
    Ok((t.arming.left(now), t.arming.interval))
}

fn write_itimerspec(
    space: &SpaceRef,
    addr: u64,
    (left, interval): (u64, u64),
) -> Result<(), Errno> {
    write_words(
        space,
        addr,
        &[
            interval / NS_PER_SEC,
            interval % NS_PER_SEC,
            left / NS_PER_SEC,
            left % NS_PER_SEC,
        ],
    )
}

/// timer_settime(id, flags, new, old): arms (value ≠ 0, relative or
/// TIMER_ABSTIME) or disarms the timer.
pub fn sys_timer_settime(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    let (id, flags, new, old) = (timer_id(a[0])?, a[1], a[2], a[3]);
    let space = k.space(s);
    let current = posix_left(k, s, id)?;
    if new == 0 {
        return Err(Errno::EINVAL);
    }
    let interval = timespec(&space, new)?;
    let value = timespec(&space, new.wrapping_add(16))?;
    if old != 0 {
        write_itimerspec(&space, old, current)?;
    }
    let owner = k.procs.timer_slot(s);
    let clock = k.procs.procs[owner].timers.get(id)?.clock;
    let now = k.procs.timer_clock_now(clock);
    let deadline = if value == 0 {
        0
    } else if flags & TIMER_ABSTIME as u64 != 0 {
        match clock {
            // A realtime deadline becomes a monotonic one now (the guest's
            // realtime clock only moves with the host's).
            TimerClock::Wall { realtime: true } => {
                now.saturating_add(value.saturating_sub(hypercall::realtime_ns()))
            }
            _ => value,
        }
    } else {
        now.saturating_add(value)
    };
    let t = k.procs.procs[owner].timers.get(id)?;
    t.arming = Arming {
        deadline: if value == 0 { 0 } else { deadline.max(1) },
        interval,
    };
    t.overrun = 0;
    // One already due fires when the scheduler next looks (wall) or when
    // this call's CPU time is charged (CPU clocks): before it returns.
    k.procs.recount_cpu_timers();
    Ok(0)
}

/// timer_gettime(id, curr).
pub fn sys_timer_gettime(k: &mut Kernel, s: usize, id: u64, curr: u64) -> Result<i64, Errno> {
    let left = posix_left(k, s, timer_id(id)?)?;
    write_itimerspec(&k.space(s), curr, left)?;
    Ok(0)
}

/// timer_getoverrun(id): the overruns its last signal carried.
pub fn sys_timer_getoverrun(k: &mut Kernel, s: usize, id: u64) -> Result<i64, Errno> {
    let owner = k.procs.timer_slot(s);
    Ok(k.procs.procs[owner].timers.get(timer_id(id)?)?.last_overrun as i64)
}

/// timer_delete(id). A signal of it still pending stays pending.
pub fn sys_timer_delete(k: &mut Kernel, s: usize, id: u64) -> Result<i64, Errno> {
    let owner = k.procs.timer_slot(s);
    k.procs.procs[owner].timers.delete(timer_id(id)?)?;
    k.procs.recount_cpu_timers();
    Ok(0)
}

/// timerfd_create(clock, flags): CLOCK_REALTIME, CLOCK_MONOTONIC,
/// CLOCK_BOOTTIME (and their _ALARM forms, the same here: the guest never
/// suspends), with TFD_NONBLOCK and TFD_CLOEXEC.
pub fn sys_timerfd_create(k: &mut Kernel, s: usize, clock: u64, flags: u64) -> Result<i64, Errno> {
    if flags & !((TFD_NONBLOCK | TFD_CLOEXEC) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let realtime = match u32::try_from(clock).map_err(|_| Errno::EINVAL)? {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM => true,
        CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => false,
        _ => return Err(Errno::EINVAL),
    };
    let t = TimerFd::new(realtime);
    k.procs.register_timerfd(&t);
    let flags = flags as u32;
    let f = OpenFile::anon(t, O_RDWR | (flags & O_NONBLOCK), "anon_inode:[timerfd]");
    install(k, s, f, flags & TFD_CLOEXEC != 0)
}

/// The timerfd behind `fd`: `EBADF` for no descriptor, `EINVAL` for
/// another kind of file.
fn timerfd_of(k: &Kernel, s: usize, fd: u64) -> Result<Rc<OpenFile>, Errno> {
    let f = file(k, s, fd)?;
    if f.device().and_then(|d| d.timerfd()).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(f)
}

/// timerfd_settime(fd, flags, new, old): TFD_TIMER_ABSTIME, and
/// TFD_TIMER_CANCEL_ON_SET (accepted: the guest's realtime clock is never
/// set, so nothing cancels).
pub fn sys_timerfd_settime(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    let (fd, flags, new, old) = (a[0], a[1], a[2], a[3]);
    if flags & !((TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = timerfd_of(k, s, fd)?;
    let t = f.device().and_then(|d| d.timerfd()).ok_or(Errno::EINVAL)?;
    let space = k.space(s);
    let interval = timespec(&space, new)?;
    let value = timespec(&space, new.wrapping_add(16))?;
    let now = hypercall::clock_ns();
    if old != 0 {
        write_itimerspec(&space, old, t.get(now))?;
    }
    let arming = if flags & TFD_TIMER_ABSTIME as u64 != 0 && value != 0 {
        let at = if t.realtime() {
            now.saturating_add(value.saturating_sub(hypercall::realtime_ns()))
        } else {
            value
        };
        Arming {
            deadline: at.max(1),
            interval,
        }
    } else {
        Arming::after(now, value, interval)
    };
    t.set(arming);
    Ok(0)
}

/// timerfd_gettime(fd, curr).
pub fn sys_timerfd_gettime(k: &mut Kernel, s: usize, fd: u64, curr: u64) -> Result<i64, Errno> {
    let f = timerfd_of(k, s, fd)?;
    let t = f.device().and_then(|d| d.timerfd()).ok_or(Errno::EINVAL)?;
    write_itimerspec(&k.space(s), curr, t.get(hypercall::clock_ns()))?;
    Ok(0)
}
