//! Identity, limits and the rest of what a static libc asks at startup:
//! uname, getrandom, prlimit64, arch_prctl, futex.

use super::time::{clock_now, timespec};
use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in, copy_out, read_u64, write_u64, write_words};
use crate::param::NRLIMIT;
use crate::proc::Chan;
use crate::random;
use crate::syscall::{err, log_refused, Outcome, Outcome::*};
use guestlib::hypercall;
use linux_raw_sys::general::{
    FUTEX_CLOCK_REALTIME, FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAKE, FUTEX_WAKE_BITSET,
};
use vkernel_abi::layout::VM_MAX_USER_ADDRESS;
use vkernel_abi::Errno;

pub fn sys_uname(k: &Kernel, s: usize, buf: u64) -> Result<i64, Errno> {
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
    copy_out(&k.space(s), buf, &u)?;
    Ok(0)
}

pub fn sys_getrandom(k: &Kernel, s: usize, buf: u64, len: u64, flags: u64) -> Result<i64, Errno> {
    if flags & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let space = k.space(s);
    let len = len.min(32 << 20);
    let mut chunk = [0u8; 256];
    let mut done = 0u64;
    while done < len {
        let n = ((len - done) as usize).min(chunk.len());
        random::fill(&mut chunk[..n]);
        if let Err(e) = copy_out(&space, buf + done, &chunk[..n]) {
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
pub fn sys_prlimit(
    k: &mut Kernel,
    s: usize,
    pid: u32,
    res: u64,
    new: u64,
    old: u64,
) -> Result<i64, Errno> {
    let t = &mut k.procs;
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
    let caller = &t.procs[s].space();
    let mut want = None;
    if new != 0 {
        let soft = read_u64(caller, new)?;
        let hard = read_u64(caller, new + 8)?;
        if soft > hard {
            return Err(Errno::EINVAL);
        }
        if res == linux_raw_sys::general::RLIMIT_NOFILE as u64
            && hard > crate::fs::file::NR_OPEN as u64
        {
            return Err(Errno::EPERM);
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

pub fn sys_arch_prctl(k: &mut Kernel, s: usize, code: u64, addr: u64) -> Result<i64, Errno> {
    // asm/prctl.h (linux-raw-sys has only ARCH_SET_FS of these).
    const ARCH_SET_GS: u32 = 0x1001;
    const ARCH_SET_FS: u32 = 0x1002;
    const ARCH_GET_FS: u32 = 0x1003;
    const ARCH_GET_GS: u32 = 0x1004;
    let p = &mut k.procs.procs[s];
    let code = u32::try_from(code).map_err(|_| Errno::EINVAL)?;
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
            write_u64(&p.space(), addr, base)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// set_robust_list: the head is kept (walked at thread exit once threads
/// exist); its length must be the size of `struct robust_list_head`.
pub fn sys_set_robust_list(k: &mut Kernel, s: usize, head: u64, len: u64) -> Result<i64, Errno> {
    if len != 24 {
        return Err(Errno::EINVAL);
    }
    k.procs.procs[s].robust_list = head;
    Ok(0)
}

/// futex for single-threaded processes: no other thread can wake a
/// waiter, so WAKE finds nobody and WAIT sleeps on the futex's channel
/// until its timeout (or forever, as Linux would).
pub fn sys_futex(k: &mut Kernel, s: usize, a: [u64; 6]) -> Outcome {
    let [uaddr, op, val, timeout, _, val3] = a;
    let cmd = (op & 0x7f) as u32;
    if uaddr % 4 != 0 {
        return Ret(err(Errno::EINVAL));
    }
    if matches!(cmd, FUTEX_WAIT_BITSET | FUTEX_WAKE_BITSET) && val3 as u32 == 0 {
        return Ret(err(Errno::EINVAL));
    }
    match cmd {
        FUTEX_WAKE | FUTEX_WAKE_BITSET => Ret(0),
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let space = k.space(s);
            let mut w = [0u8; 4];
            if let Err(e) = copy_in(&space, uaddr, &mut w) {
                return Ret(err(e));
            }
            if u32::from_le_bytes(w) != val as u32 {
                return Ret(err(Errno::EAGAIN));
            }
            let until_ns = if timeout == 0 {
                0
            } else {
                let ns = match timespec(&space, timeout) {
                    Ok(ns) => ns,
                    Err(e) => return Ret(err(e)),
                };
                let now = hypercall::clock_ns();
                if cmd == FUTEX_WAIT {
                    // Relative, on CLOCK_MONOTONIC.
                    now.saturating_add(ns)
                } else {
                    // Absolute, on the clock the op names.
                    let clock = if op & FUTEX_CLOCK_REALTIME as u64 != 0 {
                        0
                    } else {
                        1
                    };
                    let c = clock_now(clock).unwrap_or(now);
                    now.saturating_add(ns.saturating_sub(c)).max(1)
                }
            };
            k.procs
                .sleep(s, Chan::Futex(uaddr), until_ns, err(Errno::ETIMEDOUT));
            NoReturn
        }
        _ => {
            log_refused(k, s, "futex", format_args!("operation {cmd}"));
            Ret(err(Errno::ENOSYS))
        }
    }
}

/// sysinfo: uptime, memory (the figures of `/proc/meminfo`, in bytes)
/// and the number of processes. Load averages are not kept: 0.
pub fn sys_sysinfo(k: &Kernel, s: usize, buf: u64) -> Result<i64, Errno> {
    let shmem = k
        .vfs
        .mount_table()
        .upgrade()
        .and_then(|t| {
            t.try_borrow()
                .ok()
                .map(|t| crate::proc::procfs::shmem_bytes(&t))
        })
        .unwrap_or(0);
    let m = k.mm.stats(shmem);
    let (procs, _) = k.procs.tasks.counts();
    // struct sysinfo: uptime, loads[3], totalram, freeram, sharedram,
    // bufferram, totalswap, freeswap (longs), procs (u16), padding,
    // totalhigh, freehigh, mem_unit (u32), padding: 112 bytes.
    let mut b = [0u8; 112];
    let put = |b: &mut [u8], at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut b, 0, hypercall::clock_ns() / 1_000_000_000);
    put(&mut b, 32, m.total);
    put(&mut b, 40, m.free);
    put(&mut b, 48, m.shmem);
    b[80..82].copy_from_slice(&(procs.min(u16::MAX as usize) as u16).to_le_bytes());
    b[104..108].copy_from_slice(&1u32.to_le_bytes());
    copy_out(&k.space(s), buf, &b)?;
    Ok(0)
}

/// prctl(option, arg2, ...): the options ordinary programs use — the
/// thread name, the parent-death signal, the dumpable and no-new-privs
/// flags, the capability bounding set (every capability: the guest runs
/// as root) and the seccomp mode (none). Others are refused with a log
/// line (EINVAL, as a kernel without them).
pub fn sys_prctl(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    use linux_raw_sys::prctl::*;
    let [option, arg2, arg3, arg4, arg5, _] = a;
    let Ok(option) = u32::try_from(option) else {
        return Err(Errno::EINVAL);
    };
    let space = k.space(s);
    let p = &mut k.procs.procs[s];
    match option {
        PR_SET_NAME => {
            let mut name = [0u8; 16];
            let n = crate::mm::uaccess::copy_in_partial(&space, arg2, &mut name[..15]);
            if n == 0 {
                return Err(Errno::EFAULT);
            }
            let len = name[..n].iter().position(|&b| b == 0).unwrap_or(n);
            p.name = [0; 16];
            p.name[..len].copy_from_slice(&name[..len]);
            p.name_len = len;
            if let Some(t) = &p.task {
                let mut c = t.comm.borrow_mut();
                c.clear();
                c.extend_from_slice(&name[..len]);
            }
            Ok(0)
        }
        PR_GET_NAME => {
            let mut name = [0u8; 16];
            name[..p.name_len].copy_from_slice(&p.name[..p.name_len]);
            copy_out(&space, arg2, &name)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG => {
            let sig = i32::try_from(arg2).map_err(|_| Errno::EINVAL)?;
            if sig != 0 && !crate::proc::signal::valid(sig) {
                return Err(Errno::EINVAL);
            }
            p.pdeath_signal = sig;
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            copy_out(&space, arg2, &p.pdeath_signal.to_le_bytes())?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(p.dumpable as i64),
        PR_SET_DUMPABLE if arg2 <= 1 => {
            p.dumpable = arg2 == 1;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS if arg2 == 1 && arg3 == 0 && arg4 == 0 && arg5 == 0 => {
            p.no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS if arg2 == 0 && arg3 == 0 && arg4 == 0 && arg5 == 0 => {
            Ok(p.no_new_privs as i64)
        }
        // CAP_LAST_CAP is 40 on Linux 6.1.
        PR_CAPBSET_READ if arg2 <= 40 => Ok(1),
        PR_GET_SECCOMP => Ok(0),
        PR_SET_DUMPABLE | PR_SET_NO_NEW_PRIVS | PR_GET_NO_NEW_PRIVS | PR_CAPBSET_READ => {
            Err(Errno::EINVAL)
        }
        _ => {
            log_refused(k, s, "prctl", format_args!("option {option}"));
            Err(Errno::EINVAL)
        }
    }
}
