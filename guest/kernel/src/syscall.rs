//! The Linux x86-64 system-call ABI: `rax` = number, arguments in rdi,
//! rsi, rdx, r10, r8, r9; the result in `rax`, `-errno` on error. The
//! process trapped with `T_FAST_SYSCALL`; its frame's rip is already past
//! the `syscall`, and rcx/r11 hold rip/rflags as the instruction left them.
//!
//! Every user pointer goes through `uaccess` (host-checked copies).

use crate::eprintln;
use crate::exec::ArgBuf;
use crate::proc::ProcTable;
use crate::sysfile::*;
use crate::sysmem::*;
use crate::sysmisc::*;
use crate::sysproc::*;
use crate::systime::*;
use vkernel_abi::Errno;

/// vkernel's own system call: host pool pages in use (for tests that check
/// nothing leaks). Outside Linux's range.
pub const SYS_VKERNEL_POOL_PAGES: u64 = 0x7fff_0001;

/// What a system call did to its process.
pub enum Outcome {
    /// Finished: this goes in rax.
    Ret(i64),
    /// The process blocked (its state says on what) or is gone or has a new
    /// image: rax is not touched.
    NoReturn,
}
pub use Outcome::*;

pub fn ret(r: Result<i64, Errno>) -> Outcome {
    match r {
        Ok(v) => Ret(v),
        Err(e) => Ret(-(e.0 as i64)),
    }
}

/// Linux ETIMEDOUT (not in the ABI crate's errno list).
pub const ETIMEDOUT: i64 = 110;

/// Dispatches the system call in process `s`'s frame.
pub fn dispatch(t: &mut ProcTable, s: usize, scratch: &mut ArgBuf) {
    let tf = t.procs[s].tf;
    let a = [tf.rdi, tf.rsi, tf.rdx, tf.r10, tf.r8, tf.r9];
    let out = match tf.rax {
        0 => sys_read(t, s, a[0], a[1], a[2]),
        1 => ret(sys_write(t, s, a[0], a[1], a[2])),
        4 | 6 => ret(stat_path(t, s, a[0], a[1])),
        5 => ret(fstat(t.procs[s].vmid, a[0], a[1])),
        8 | 17 => ret(if a[0] <= 2 {
            Err(Errno::ESPIPE)
        } else {
            Err(Errno::EBADF)
        }),
        9 => ret(sys_mmap(t, s, a)),
        10 => ret(sys_mprotect(t, s, a[0], a[1], a[2])),
        11 => ret(sys_munmap(t, s, a[0], a[1])),
        12 => Ret(sys_brk(t, s, a[0]) as i64),
        16 => ret(if a[0] <= 2 {
            Err(Errno::ENOTTY)
        } else {
            Err(Errno::EBADF)
        }),
        20 => ret(sys_writev(t, s, a[0], a[1], a[2])),
        24 => Ret(0), // sched_yield: the scheduler moves on after every trap
        25 => Ret(-(Errno::ENOSYS.0 as i64)), // mremap: glibc falls back to copying
        28 => ret(sys_madvise(t, s, a[0], a[1], a[2])),
        35 => sys_nanosleep(t, s, 1, 0, a[0]),
        39 | 186 => Ret(t.procs[s].pid as i64),
        56 => ret(sys_clone(t, s, a[0], a[1], a[2], a[3])),
        57 | 58 => ret(fork(t, s)),
        59 => sys_execve(t, s, a[0], a[1], a[2], scratch),
        60 | 231 => {
            t.exit(s, ((a[0] & 0xff) << 8) as i32);
            NoReturn
        }
        61 => sys_wait4(t, s, a[0] as i32, a[1], a[2], a[3]),
        62 => sys_kill(t, s, a[0] as i32, a[1] as i32),
        63 => ret(sys_uname(t.procs[s].vmid, a[0])),
        79 => ret(sys_getcwd(t.procs[s].vmid, a[0], a[1])),
        89 => ret(readlink(t, s, a[0])),
        96 => ret(sys_gettimeofday(t.procs[s].vmid, a[0], a[1])),
        97 => ret(prlimit(t, s, 0, a[0], 0, a[1])),
        102 | 104 | 107 | 108 => Ret(0), // uid, gid, euid, egid: root
        110 => Ret(t.procs[s].parent as i64),
        158 => ret(sys_arch_prctl(t, s, a[0], a[1])),
        160 => ret(prlimit(t, s, 0, a[0], a[1], 0)),
        201 => ret(sys_time(t.procs[s].vmid, a[0])),
        202 => sys_futex(t, s, a),
        218 => {
            t.procs[s].clear_child_tid = a[0];
            Ret(t.procs[s].pid as i64)
        }
        228 => ret(sys_clock_gettime(t.procs[s].vmid, a[0], a[1])),
        229 => ret(sys_clock_getres(t.procs[s].vmid, a[0], a[1])),
        230 => sys_nanosleep(t, s, a[0], a[1], a[2]),
        234 => {
            if a[0] != a[1] {
                Ret(-(Errno::ESRCH.0 as i64))
            } else {
                sys_kill(t, s, a[0] as i32, a[2] as i32)
            }
        }
        262 => ret(sys_newfstatat(t, s, a[0] as i32, a[1], a[2], a[3])),
        267 => ret(readlink(t, s, a[1])),
        273 => {
            if a[1] != 24 {
                Ret(-(Errno::EINVAL.0 as i64))
            } else {
                t.procs[s].robust_list = a[0];
                Ret(0)
            }
        }
        302 => ret(prlimit(t, s, a[0] as u32, a[1], a[2], a[3])),
        318 => ret(sys_getrandom(t.procs[s].vmid, a[0], a[1], a[2])),
        334 => Ret(-(Errno::ENOSYS.0 as i64)), // rseq: glibc runs without it
        SYS_VKERNEL_POOL_PAGES => Ret(crate::vm::pages_in_use()),
        nr => {
            log_unknown(t, s, nr);
            Ret(-(Errno::ENOSYS.0 as i64))
        }
    };
    if let Ret(v) = out {
        t.procs[s].tf.rax = v as u64;
    }
}

/// Logs an unimplemented system call once per number.
fn log_unknown(t: &ProcTable, s: usize, nr: u64) {
    static mut SEEN: [u64; 8] = [0; 8];
    static mut SEEN_HIGH: [u64; 8] = [0; 8];
    // SAFETY: the kernel is single-threaded (one vCPU, no interrupts), so
    // no other reference to these statics exists while this runs.
    let (low, high) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(SEEN),
            &mut *core::ptr::addr_of_mut!(SEEN_HIGH),
        )
    };
    let first = if nr < 512 {
        let (w, b) = ((nr / 64) as usize, nr % 64);
        let first = low[w] & (1 << b) == 0;
        low[w] |= 1 << b;
        first
    } else if high.contains(&nr) {
        false
    } else {
        if let Some(slot) = high.iter_mut().find(|x| **x == 0) {
            *slot = nr;
        }
        true
    };
    if first {
        let p = &t.procs[s];
        eprintln!(
            "kernel: pid {} ({}): system call {nr} is not implemented (ENOSYS)",
            p.pid,
            p.name()
        );
    }
}
