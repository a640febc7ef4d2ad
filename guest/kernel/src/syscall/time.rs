//! Time: clock_gettime and friends from the host clock hypercall, and
//! the sleeps (the scheduler wakes a sleeper at its deadline).

use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_out, read_u64, write_u64, write_words};
use crate::mm::SpaceRef;
use crate::proc::Chan;
use crate::syscall::{err, Outcome, Outcome::*};
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

/// The CPU time of `clock` if it names a CPU-time clock: the caller's
/// (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID) or another
/// process's (glibc's clock_getcpuclockid encoding: `~pid << 3 | kind`,
/// bit 2 for a thread). `Err(EINVAL)` for no such process.
fn cpu_clock(k: &Kernel, s: usize, clock: u64) -> Option<Result<u64, Errno>> {
    let id = clock as i32;
    let slot = match id {
        2 | 3 => Ok(s),
        _ if id < 0 => {
            let pid = !(id >> 3) as u32;
            let kind = id & 3;
            if kind == 3 {
                return Some(Err(Errno::EINVAL));
            }
            k.procs.find(pid).ok_or(Errno::EINVAL)
        }
        _ => return None,
    };
    Some(slot.map(|t| {
        let c = k.procs.procs[t].cpu;
        c.user_ns.saturating_add(c.system_ns)
    }))
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
