//! Identity, limits and the rest of what a static libc asks at startup:
//! uname, getrandom, prlimit64, arch_prctl, futex.

use crate::exec::{self};
use crate::hypercall;
use crate::proc::{self, ProcTable, State, NRLIMIT, RLIM_INFINITY};
use crate::random;
use crate::syscall::{Outcome, Outcome::*, ETIMEDOUT};
use crate::systime::*;
use crate::uaccess::{copy_in, copy_out, read_u64, write_u64, write_words};
use vkernel_abi::layout::VM_MAX_USER_ADDRESS;
use vkernel_abi::Errno;

pub fn sys_uname(vmid: u64, buf: u64) -> Result<i64, Errno> {
    let mut u = [0u8; 65 * 6];
    let fields: [&[u8]; 6] = [
        b"Linux",
        b"vkernel",
        b"6.1.0-vkernel",
        b"#1 vkernel guest kernel",
        b"x86_64",
        b"(none)",
    ];
    for (i, f) in fields.iter().enumerate() {
        u[i * 65..i * 65 + f.len()].copy_from_slice(f);
    }
    copy_out(vmid, buf, &u)?;
    Ok(0)
}

pub fn sys_getrandom(vmid: u64, buf: u64, len: u64, flags: u64) -> Result<i64, Errno> {
    if flags & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let len = len.min(32 << 20);
    let mut chunk = [0u8; 256];
    let mut done = 0u64;
    while done < len {
        let n = ((len - done) as usize).min(chunk.len());
        random::fill(&mut chunk[..n]);
        if let Err(e) = copy_out(vmid, buf + done, &chunk[..n]) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        done += n as u64;
    }
    Ok(done as i64)
}

/// prlimit64 (and getrlimit/setrlimit): limits are stored per process and
/// inherited; the kernel enforces RLIMIT_NPROC only through its table size.
pub fn prlimit(
    t: &mut ProcTable,
    s: usize,
    pid: u32,
    res: u64,
    new: u64,
    old: u64,
) -> Result<i64, Errno> {
    let target = if pid == 0 || pid == t.procs[s].pid {
        s
    } else {
        match t.find(pid) {
            Some(x) if t.procs[x].alive() => x,
            _ => return Err(Errno::ESRCH),
        }
    };
    if res as usize >= NRLIMIT {
        return Err(Errno::EINVAL);
    }
    let caller = t.procs[s].vmid;
    let mut want = None;
    if new != 0 {
        let soft = read_u64(caller, new)?;
        let hard = read_u64(caller, new + 8)?;
        if soft > hard {
            return Err(Errno::EINVAL);
        }
        want = Some([soft, hard]);
    }
    if old != 0 {
        let cur = t.procs[target].rlimits[res as usize];
        write_words(caller, old, &cur)?;
    }
    if let Some(w) = want {
        t.procs[target].rlimits[res as usize] = w;
    }
    Ok(0)
}

/// Linux's default limits for a new process.
pub fn default_rlimits() -> [[u64; 2]; NRLIMIT] {
    let mut r = [[RLIM_INFINITY; 2]; NRLIMIT];
    r[3] = [exec::STACK_BYTES, RLIM_INFINITY]; // STACK
    r[4] = [0, RLIM_INFINITY]; // CORE
    r[6] = [proc::NPROC as u64, proc::NPROC as u64]; // NPROC
    r[7] = [1024, 4096]; // NOFILE
    r[8] = [8 << 20, 8 << 20]; // MEMLOCK
    r[13] = [0, 0]; // NICE
    r[14] = [0, 0]; // RTPRIO
    r
}

pub fn sys_arch_prctl(t: &mut ProcTable, s: usize, code: u64, addr: u64) -> Result<i64, Errno> {
    const ARCH_SET_GS: u64 = 0x1001;
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    const ARCH_GET_GS: u64 = 0x1004;
    let p = &mut t.procs[s];
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            if addr >= VM_MAX_USER_ADDRESS {
                return Err(Errno::EPERM);
            }
            p.vf.tls[(code == ARCH_SET_GS) as usize].base = addr;
            Ok(0)
        }
        ARCH_GET_FS | ARCH_GET_GS => {
            let base = p.vf.tls[(code == ARCH_GET_GS) as usize].base;
            write_u64(p.vmid, addr, base)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// futex for single-threaded processes: no other thread can wake a
/// waiter, so WAKE finds nobody and WAIT blocks until its timeout (or
/// forever, as Linux would).
pub fn sys_futex(t: &mut ProcTable, s: usize, a: [u64; 6]) -> Outcome {
    const FUTEX_WAIT: u64 = 0;
    const FUTEX_WAKE: u64 = 1;
    const FUTEX_WAIT_BITSET: u64 = 9;
    const FUTEX_WAKE_BITSET: u64 = 10;
    let [uaddr, op, val, timeout, _, _] = a;
    let vmid = t.procs[s].vmid;
    match op & 0x7f {
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            if uaddr % 4 != 0 {
                return Ret(-(Errno::EINVAL.0 as i64));
            }
            Ret(0)
        }
        cmd @ (FUTEX_WAIT | FUTEX_WAIT_BITSET) => {
            let mut w = [0u8; 4];
            if uaddr % 4 != 0 {
                return Ret(-(Errno::EINVAL.0 as i64));
            }
            if let Err(e) = copy_in(vmid, uaddr, &mut w) {
                return Ret(-(e.0 as i64));
            }
            if u32::from_le_bytes(w) != val as u32 {
                return Ret(-(Errno::EAGAIN.0 as i64));
            }
            let p = &mut t.procs[s];
            if timeout == 0 {
                p.state = State::Stuck;
                return NoReturn;
            }
            let ns = match timespec(vmid, timeout) {
                Ok(ns) => ns,
                Err(e) => return Ret(-(e.0 as i64)),
            };
            let now = hypercall::clock_ns();
            let until_ns = if cmd == FUTEX_WAIT {
                now.saturating_add(ns)
            } else {
                let clock = if op & 256 != 0 { 0 } else { 1 };
                let c = clock_now(clock).unwrap_or(now);
                now.saturating_add(ns.saturating_sub(c))
            };
            p.state = State::Sleeping { until_ns };
            p.wake_result = -ETIMEDOUT;
            NoReturn
        }
        _ => Ret(-(Errno::ENOSYS.0 as i64)),
    }
}
