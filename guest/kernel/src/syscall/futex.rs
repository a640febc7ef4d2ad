//! futex(2): FUTEX_WAIT/WAKE and their bitset forms, REQUEUE,
//! CMP_REQUEUE and WAKE_OP, private or shared, with relative or absolute
//! timeouts on CLOCK_MONOTONIC or CLOCK_REALTIME. The waiting and waking
//! is in `proc/futex.rs`. The priority-inheritance operations are refused
//! (ENOSYS, logged): glibc uses them only for PTHREAD_PRIO_INHERIT mutexes.
//!
//! The kernel runs while no user task does (one vCPU), so reading a word
//! and sleeping, or reading and writing one for WAKE_OP, is atomic with
//! respect to every task.

use super::time::{clock_now, timespec};
use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in, copy_out};
use crate::mm::SpaceRef;
use crate::proc::futex::key;
use crate::syscall::{err, log_refused, Outcome, Outcome::*};
use guestlib::hypercall;
use linux_raw_sys::general::{
    FUTEX_CLOCK_REALTIME, FUTEX_CMP_REQUEUE, FUTEX_PRIVATE_FLAG, FUTEX_REQUEUE, FUTEX_WAIT,
    FUTEX_WAIT_BITSET, FUTEX_WAKE, FUTEX_WAKE_BITSET, FUTEX_WAKE_OP,
};
use vkernel_abi::layout::VM_MAX_USER_ADDRESS;
use vkernel_abi::Errno;

fn read_word(space: &SpaceRef, addr: u64) -> Result<u32, Errno> {
    let mut w = [0u8; 4];
    copy_in(space, addr, &mut w)?;
    Ok(u32::from_le_bytes(w))
}

/// `Ok` if the 4-byte word at `addr` lies in the user half.
fn user_word(addr: u64) -> Result<(), Errno> {
    match addr.checked_add(4) {
        Some(end) if end <= VM_MAX_USER_ADDRESS => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// futex(uaddr, op, val, timeout or val2, uaddr2, val3).
pub fn sys_futex(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let wake = matches!(
        (a[1] as u32) & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME),
        FUTEX_WAKE | FUTEX_WAKE_BITSET | FUTEX_WAKE_OP
    );
    match futex(k, s, a) {
        Ok(Some(v)) => {
            // A wake hands over: the caller's run ends (as with
            // sched_yield), and whoever it woke, or the other side it
            // meant to wake, runs first. A futex wake passes on a lock or
            // a condition (glibc makes the call only when it believes
            // someone waits), and the other side is the one to go on;
            // running on, a ping-pong's waker reached its own wait before
            // the other ran, a system call more each way (futex
            // ping-pong 133 -> 330 µs). Pipes keep run-on: there it makes
            // the other side's write find its reader asleep.
            if wake {
                k.procs.yielded = true;
            }
            Ret(v)
        }
        Ok(None) => NoReturn,
        Err(e) => Ret(err(e)),
    }
}

fn futex(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<Option<i64>, Errno> {
    let [uaddr, op, val, timeout, uaddr2, val3] = a;
    let private = op & FUTEX_PRIVATE_FLAG as u64 != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME as u64 != 0;
    let cmd = (op & !((FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME) as u64)) as u32;
    if op >> 32 != 0 {
        return Err(Errno::ENOSYS);
    }
    // Linux: FUTEX_CLOCK_REALTIME only for the waits.
    if realtime && !matches!(cmd, FUTEX_WAIT | FUTEX_WAIT_BITSET) {
        return Err(Errno::ENOSYS);
    }
    if !uaddr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    // Linux's get_futex_key: access_ok first, so a word outside the user
    // half (a kernel address) is EFAULT for every operation, the wakes
    // (which read nothing) included.
    user_word(uaddr)?;
    if matches!(cmd, FUTEX_REQUEUE | FUTEX_CMP_REQUEUE | FUTEX_WAKE_OP) && uaddr2.is_multiple_of(4)
    {
        user_word(uaddr2)?;
    }
    let space = k.space(s);
    let (val, val3) = (val as u32, val3 as u32);
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT { u32::MAX } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            // A wait a signal restarted keeps its first deadline.
            let resumed = k.procs.resumed_deadline(s);
            let until_ns = if timeout == 0 {
                0
            } else if resumed != 0 {
                resumed
            } else {
                let ns = timespec(&space, timeout)?;
                let now = hypercall::clock_ns();
                if cmd == FUTEX_WAIT {
                    // Relative (measured on CLOCK_MONOTONIC either way).
                    now.saturating_add(ns).max(1)
                } else {
                    let clock = if realtime { 0 } else { 1 };
                    let c = clock_now(clock).unwrap_or(now);
                    now.saturating_add(ns.saturating_sub(c)).max(1)
                }
            };
            if read_word(&space, uaddr)? != val {
                return Err(Errno::EAGAIN);
            }
            let key = key(&space, uaddr, private);
            k.procs.futex_sleep(s, key, bitset, until_ns);
            Ok(None)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE { u32::MAX } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let key = key(&space, uaddr, private);
            Ok(Some(k.procs.futex_wake(key, val, bitset) as i64))
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // val2 (how many to move) travels in the timeout argument.
            let nmove = timeout as u32;
            if (val as i32) < 0 || (nmove as i32) < 0 || !uaddr2.is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            if cmd == FUTEX_CMP_REQUEUE && read_word(&space, uaddr)? != val3 {
                return Err(Errno::EAGAIN);
            }
            let from = key(&space, uaddr, private);
            let to = key(&space, uaddr2, private);
            Ok(Some(k.procs.futex_requeue(from, to, val, nmove) as i64))
        }
        FUTEX_WAKE_OP => {
            if !uaddr2.is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            let old = read_word(&space, uaddr2)?;
            let (new, cond) = wake_op(val3, old)?;
            copy_out(&space, uaddr2, &new.to_le_bytes())?;
            let mut n = k
                .procs
                .futex_wake(key(&space, uaddr, private), val, u32::MAX);
            if cond {
                let key2 = key(&space, uaddr2, private);
                n += k.procs.futex_wake(key2, timeout as u32, u32::MAX);
            }
            Ok(Some(n as i64))
        }
        _ => {
            log_refused(k, s, "futex", format_args!("operation {cmd}"));
            Err(Errno::ENOSYS)
        }
    }
}

/// FUTEX_WAKE_OP's encoded operation on `old`: the new value, and whether
/// the comparison of `old` holds (Linux's futex_atomic_op_inuser).
fn wake_op(encoded: u32, old: u32) -> Result<(u32, bool), Errno> {
    let op = (encoded >> 28) & 7;
    let shift = encoded & (8 << 28) != 0;
    let cmp = (encoded >> 24) & 15;
    // 12-bit signed fields.
    let sext = |v: u32| ((v << 20) as i32 >> 20) as u32;
    let mut oparg = sext((encoded >> 12) & 0xfff);
    let cmparg = sext(encoded & 0xfff);
    if shift {
        oparg = 1u32 << (oparg & 31);
    }
    let new = match op {
        0 => oparg,
        1 => old.wrapping_add(oparg),
        2 => old | oparg,
        3 => old & !oparg,
        4 => old ^ oparg,
        _ => return Err(Errno::ENOSYS),
    };
    let (o, c) = (old as i32, cmparg as i32);
    let cond = match cmp {
        0 => o == c,
        1 => o != c,
        2 => o < c,
        3 => o <= c,
        4 => o > c,
        5 => o >= c,
        _ => return Err(Errno::ENOSYS),
    };
    Ok((new, cond))
}
