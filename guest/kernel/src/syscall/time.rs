//! Time: clock_gettime and friends from the host clock hypercall, and
//! the sleeps (the scheduler wakes a sleeper at its deadline).

use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_out, read_u64, write_u64, write_words};
use crate::mm::SpaceRef;
use crate::proc::timer::TimerClock;
use crate::proc::Chan;
use crate::syscall::{err, log_refused, Outcome, Outcome::*};
use guestlib::hypercall;
use linux_raw_sys::general::*;
use vkernel_abi::Errno;

/// Nanoseconds on `clock` (Linux clock ids), or EINVAL. CPU-time clocks
/// are not kept yet.
pub fn clock_now(clock: u64) -> Result<u64, Errno> {
    match u32::try_from(clock).map_err(|_| Errno::EINVAL)? {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI => {
            Ok(hypercall::realtime_ns())
        }
        CLOCK_MONOTONIC
        | CLOCK_MONOTONIC_RAW
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_BOOTTIME
        | CLOCK_BOOTTIME_ALARM => Ok(hypercall::clock_ns()),
        _ => Err(Errno::EINVAL),
    }
}

/// Reads a `struct timespec` as nanoseconds (`EINVAL` if out of range).
pub fn timespec(space: &SpaceRef, addr: u64) -> Result<u64, Errno> {
    let sec = read_u64(space, addr)? as i64;
    let nsec = read_u64(space, addr + 8)? as i64;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64))
}

/// The task or process a CPU-time clock names, if `clock` is one: the
/// caller's (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID) or one
/// given by pid (glibc's clock_getcpuclockid encoding: `~pid << 3 |
/// kind`, bit 2 for a thread, pid 0 for the caller). A thread clock must
/// name a thread of the caller's process; a process clock a process.
/// `Err(EINVAL)` for no such task.
pub fn cpu_clock_target(k: &Kernel, s: usize, clock: u64) -> Option<Result<TimerClock, Errno>> {
    let id = clock as i64;
    let me = &k.procs.procs[s];
    let (pid, thread) = match id {
        2 => (me.tgid, false),
        3 => (me.pid, true),
        _ if id < 0 && id >= i32::MIN as i64 => {
            let id = id as i32;
            // Linux's CPUCLOCK_WHICH: 0 PROF, 1 VIRT, 2 SCHED; all but VIRT
            // are user + system time here.
            let (kind, thread) = (id & 3, id & 4 != 0);
            if kind == 3 {
                return Some(Err(Errno::EINVAL));
            }
            if kind == 1 {
                log_refused(k, s, "CPU clock", format_args!("CPUCLOCK_VIRT"));
                return Some(Err(Errno::EINVAL));
            }
            let pid = !(id >> 3) as u32;
            let pid = match (pid, thread) {
                (0, true) => me.pid,
                (0, false) => me.tgid,
                _ => pid,
            };
            (pid, thread)
        }
        _ => return None,
    };
    let Some(t) = k.procs.find(pid) else {
        return Some(Err(Errno::EINVAL));
    };
    let target = &k.procs.procs[t];
    let ok = if thread {
        target.tgid == me.tgid
    } else {
        target.pid == target.tgid
    };
    Some(if ok {
        Ok(TimerClock::Cpu { pid, thread })
    } else {
        Err(Errno::EINVAL)
    })
}

/// The CPU time of `clock` if it names a CPU-time clock.
fn cpu_clock(k: &Kernel, s: usize, clock: u64) -> Option<Result<u64, Errno>> {
    Some(cpu_clock_target(k, s, clock)?.map(|c| k.procs.timer_clock_now(c)))
}

pub fn sys_clock_gettime(k: &Kernel, s: usize, clock: u64, tp: u64) -> Result<i64, Errno> {
    let ns = match cpu_clock(k, s, clock) {
        Some(r) => r?,
        None => clock_now(clock)?,
    };
    write_words(&k.space(s), tp, &[ns / 1_000_000_000, ns % 1_000_000_000])?;
    Ok(0)
}

pub fn sys_clock_getres(k: &Kernel, s: usize, clock: u64, tp: u64) -> Result<i64, Errno> {
    match cpu_clock(k, s, clock) {
        Some(r) => r.map(|_| ())?,
        None => clock_now(clock).map(|_| ())?,
    }
    if tp != 0 {
        write_words(&k.space(s), tp, &[0, 1])?;
    }
    Ok(0)
}

pub fn sys_gettimeofday(k: &Kernel, s: usize, tv: u64, tz: u64) -> Result<i64, Errno> {
    let ns = hypercall::realtime_ns();
    let space = k.space(s);
    if tv != 0 {
        write_words(&space, tv, &[ns / 1_000_000_000, ns % 1_000_000_000 / 1000])?;
    }
    if tz != 0 {
        copy_out(&space, tz, &[0u8; 8])?; // UTC, no DST
    }
    Ok(0)
}

pub fn sys_time(k: &Kernel, s: usize, tloc: u64) -> Result<i64, Errno> {
    let sec = hypercall::realtime_ns() / 1_000_000_000;
    if tloc != 0 {
        write_u64(&k.space(s), tloc, sec)?;
    }
    Ok(sec as i64)
}

/// nanosleep and clock_nanosleep: the process sleeps until the deadline
/// (host monotonic ns); the scheduler wakes it with rax = 0.
pub fn sys_nanosleep(k: &mut Kernel, s: usize, clock: u64, flags: u64, req: u64) -> Outcome {
    let space = k.space(s);
    let r = (|| {
        // clock_nanosleep's clocks (and nanosleep's CLOCK_MONOTONIC).
        let known = [CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME];
        if !known.iter().any(|&c| c as u64 == clock) {
            return Err(Errno::EINVAL);
        }
        let ns = timespec(&space, req)?;
        let now = hypercall::clock_ns();
        Ok(if flags & TIMER_ABSTIME as u64 != 0 {
            let clock_now = clock_now(clock)?;
            now.saturating_add(ns.saturating_sub(clock_now))
        } else {
            now.saturating_add(ns)
        })
    })();
    match r {
        Ok(until_ns) => {
            // Only the deadline ends it; then the call returns 0.
            k.procs.sleep(s, Chan::Timer, until_ns.max(1), 0);
            NoReturn
        }
        Err(e) => Ret(err(e)),
    }
}
