//! Time: clock_gettime and friends from the host clock hypercall, and
//! the sleeps (the scheduler wakes a sleeper at its deadline).

use crate::hypercall;
use crate::proc::{ProcTable, State};
use crate::syscall::{Outcome, Outcome::*};
use crate::uaccess::{copy_out, read_u64, write_u64, write_words};
use vkernel_abi::Errno;

/// Nanoseconds on `clock` (Linux clock ids), or EINVAL.
pub fn clock_now(clock: u64) -> Result<u64, Errno> {
    match clock {
        0 | 5 | 8 | 11 => Ok(hypercall::realtime_ns()),
        1 | 4 | 6 | 7 | 9 => Ok(hypercall::clock_ns()),
        _ => Err(Errno::EINVAL),
    }
}

pub fn timespec(vmid: u64, addr: u64) -> Result<u64, Errno> {
    let sec = read_u64(vmid, addr)? as i64;
    let nsec = read_u64(vmid, addr + 8)? as i64;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64))
}

pub fn sys_clock_gettime(vmid: u64, clock: u64, tp: u64) -> Result<i64, Errno> {
    let ns = clock_now(clock)?;
    write_words(vmid, tp, &[ns / 1_000_000_000, ns % 1_000_000_000])?;
    Ok(0)
}

pub fn sys_clock_getres(vmid: u64, clock: u64, tp: u64) -> Result<i64, Errno> {
    clock_now(clock)?;
    if tp != 0 {
        write_words(vmid, tp, &[0, 1])?;
    }
    Ok(0)
}

pub fn sys_gettimeofday(vmid: u64, tv: u64, tz: u64) -> Result<i64, Errno> {
    let ns = hypercall::realtime_ns();
    if tv != 0 {
        write_words(vmid, tv, &[ns / 1_000_000_000, ns % 1_000_000_000 / 1000])?;
    }
    if tz != 0 {
        copy_out(vmid, tz, &[0u8; 8])?; // UTC, no DST
    }
    Ok(0)
}

pub fn sys_time(vmid: u64, tloc: u64) -> Result<i64, Errno> {
    let sec = hypercall::realtime_ns() / 1_000_000_000;
    if tloc != 0 {
        write_u64(vmid, tloc, sec)?;
    }
    Ok(sec as i64)
}

/// nanosleep and clock_nanosleep: the process sleeps until the deadline
/// (host monotonic ns); the scheduler wakes it with rax = 0.
pub fn sys_nanosleep(t: &mut ProcTable, s: usize, clock: u64, flags: u64, req: u64) -> Outcome {
    const TIMER_ABSTIME: u64 = 1;
    let vmid = t.procs[s].vmid;
    let r = (|| {
        if !matches!(clock, 0 | 1 | 7) {
            return Err(Errno::EINVAL);
        }
        let ns = timespec(vmid, req)?;
        let now = hypercall::clock_ns();
        Ok(if flags & TIMER_ABSTIME != 0 {
            let clock_now = clock_now(clock)?;
            now.saturating_add(ns.saturating_sub(clock_now))
        } else {
            now.saturating_add(ns)
        })
    })();
    match r {
        Ok(until_ns) => {
            let p = &mut t.procs[s];
            p.state = State::Sleeping { until_ns };
            p.wake_result = 0;
            NoReturn
        }
        Err(e) => Ret(-(e.0 as i64)),
    }
}
