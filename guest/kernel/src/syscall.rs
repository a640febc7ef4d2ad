//! The Linux x86-64 system-call ABI: `rax` = number, arguments in rdi,
//! rsi, rdx, r10, r8, r9; the result in `rax`, `-errno` on error. The
//! process trapped with `T_FAST_SYSCALL`; its frame's rip is already past
//! the `syscall`, and rcx/r11 hold rip/rflags as the instruction left them.
//!
//! Every user pointer goes through `uaccess` (host-checked copies).

use crate::exec::{self, ArgBuf, ExecError};
use crate::hypercall;
use crate::proc::{self, ProcTable, State, NRLIMIT, RLIM_INFINITY};
use crate::uaccess::{self, copy_in, copy_in_str, copy_out, read_u64, write_u64, write_words};
use crate::vmspace as vms;
use crate::{eprintln, random};
use vkernel_abi::cpio::Archive;
use vkernel_abi::layout::{PAGE_SIZE, VM_MAX_USER_ADDRESS, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::*;
use vkernel_abi::{rflags, selector, Errno, TrapFrame, VextFrame};

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
use Outcome::*;

fn ret(r: Result<i64, Errno>) -> Outcome {
    match r {
        Ok(v) => Ret(v),
        Err(e) => Ret(-(e.0 as i64)),
    }
}

const ETIMEDOUT: i64 = 110;

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
        SYS_VKERNEL_POOL_PAGES => Ret(vms::pool_pages()),
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

// ---- console I/O -------------------------------------------------------

fn sys_read(t: &mut ProcTable, s: usize, fd: u64, buf: u64, count: u64) -> Outcome {
    if fd != 0 {
        return Ret(-(Errno::EBADF.0 as i64));
    }
    if count == 0 {
        return Ret(0);
    }
    let mut kbuf = [0u8; 4096];
    let n = (count as usize).min(kbuf.len());
    if !uaccess::user_range(buf, n as u64) {
        return Ret(-(Errno::EFAULT.0 as i64));
    }
    match hypercall::console_read(&mut kbuf[..n]) {
        Ok(got) => ret(copy_out(t.procs[s].vmid, buf, &kbuf[..got]).map(|_| got as i64)),
        Err(Errno::EAGAIN) => {
            // Block until input; the scheduler wakes us to retry the read.
            let p = &mut t.procs[s];
            p.state = State::ReadWait;
            p.restart = true;
            NoReturn
        }
        Err(e) => Ret(-(e.0 as i64)),
    }
}

fn sys_write(t: &ProcTable, s: usize, fd: u64, buf: u64, count: u64) -> Result<i64, Errno> {
    if fd != 1 && fd != 2 {
        return Err(Errno::EBADF);
    }
    let vmid = t.procs[s].vmid;
    let mut kbuf = [0u8; 4096];
    let mut done = 0u64;
    while done < count {
        let n = ((count - done) as usize).min(kbuf.len());
        let got = uaccess::copy_in_partial(vmid, buf.wrapping_add(done), &mut kbuf[..n]);
        if got > 0 {
            hypercall::console_write_to(fd, &kbuf[..got]);
        }
        done += got as u64;
        if got < n {
            break;
        }
    }
    if done == 0 && count > 0 {
        return Err(Errno::EFAULT);
    }
    Ok(done as i64)
}

fn sys_writev(t: &ProcTable, s: usize, fd: u64, iov: u64, cnt: u64) -> Result<i64, Errno> {
    if fd != 1 && fd != 2 {
        return Err(Errno::EBADF);
    }
    if cnt > 1024 {
        return Err(Errno::EINVAL);
    }
    let vmid = t.procs[s].vmid;
    let mut total = 0i64;
    for i in 0..cnt {
        let base = read_u64(vmid, iov + 16 * i)?;
        let len = read_u64(vmid, iov + 16 * i + 8)?;
        if len == 0 {
            continue;
        }
        match sys_write(t, s, fd, base, len) {
            Ok(n) => {
                total += n;
                if (n as u64) < len {
                    break;
                }
            }
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

// ---- file status (the console on fds 0-2, files of the image) ------------

const S_IFCHR: u64 = 0o020000;

/// Linux's `struct stat` (144 bytes) for a file of `mode` and `size`.
fn stat_words(mode: u64, size: u64, rdev: u64, ino: u64) -> [u64; 18] {
    let mut w = [0u64; 18];
    w[0] = 0x16; // st_dev
    w[1] = ino;
    w[2] = 1; // st_nlink
    w[3] = mode; // st_mode (u32) and st_uid (u32) = 0
    w[5] = rdev;
    w[6] = size;
    w[7] = 4096; // st_blksize
    w[8] = size.div_ceil(512);
    w
}

fn fstat(vmid: u64, fd: u64, st: u64) -> Result<i64, Errno> {
    if fd > 2 {
        return Err(Errno::EBADF);
    }
    // A terminal-like character device (major 136, a pty), mode 0620.
    write_words(
        vmid,
        st,
        &stat_words(S_IFCHR | 0o620, 0, 0x8800 + fd, 3 + fd),
    )?;
    Ok(0)
}

/// Stats an image file by path.
fn stat_path(t: &ProcTable, s: usize, path: u64, st: u64) -> Result<i64, Errno> {
    let vmid = t.procs[s].vmid;
    let mut buf = [0u8; 1024];
    let n = copy_in_str(vmid, path, &mut buf)?;
    let name = core::str::from_utf8(&buf[..n]).map_err(|_| Errno::ENOENT)?;
    let name = vkernel_abi::cpio::normalize(name);
    for (i, e) in Archive::new(t.image).filter_map(Result::ok).enumerate() {
        if e.name == name {
            let words = stat_words(e.mode as u64, e.data.len() as u64, 0, 100 + i as u64);
            write_words(vmid, st, &words)?;
            return Ok(0);
        }
    }
    Err(Errno::ENOENT)
}

fn sys_newfstatat(
    t: &ProcTable,
    s: usize,
    dirfd: i32,
    path: u64,
    st: u64,
    flags: u64,
) -> Result<i64, Errno> {
    const AT_EMPTY_PATH: u64 = 0x1000;
    let vmid = t.procs[s].vmid;
    let mut first = [0u8; 1];
    copy_in(vmid, path, &mut first)?;
    if first[0] == 0 {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        return fstat(vmid, dirfd as u64, st);
    }
    stat_path(t, s, path, st)
}

/// There are no symbolic links: an existing path is EINVAL, others ENOENT.
fn readlink(t: &ProcTable, s: usize, path: u64) -> Result<i64, Errno> {
    let mut buf = [0u8; 1024];
    let n = copy_in_str(t.procs[s].vmid, path, &mut buf)?;
    let name = core::str::from_utf8(&buf[..n]).map_err(|_| Errno::ENOENT)?;
    match Archive::find(t.image, name) {
        Some(_) => Err(Errno::EINVAL),
        None => Err(Errno::ENOENT),
    }
}

fn sys_getcwd(vmid: u64, buf: u64, size: u64) -> Result<i64, Errno> {
    if size < 2 {
        return Err(Errno::ERANGE);
    }
    copy_out(vmid, buf, b"/\0")?;
    Ok(2)
}

// ---- memory --------------------------------------------------------------

fn page_up(x: u64) -> Option<u64> {
    Some(x.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

fn anon(vmid: u64, addr: u64, len: u64, prot: u64) -> Result<i64, Errno> {
    vms::mmap(
        vmid,
        addr,
        len,
        prot,
        MAP_ANON | MAP_PRIVATE | MAP_FIXED,
        FD_NONE,
        0,
    )
}

/// brk(addr): grows or shrinks the break; returns the (new) break, or the
/// old one when the request cannot be met, as Linux does.
fn sys_brk(t: &mut ProcTable, s: usize, addr: u64) -> u64 {
    let p = &mut t.procs[s];
    let cur = p.brk;
    if addr < p.brk_start || addr >= p.mmap_floor {
        return cur;
    }
    let (Some(old_top), Some(new_top)) = (page_up(cur), page_up(addr)) else {
        return cur;
    };
    if new_top > old_top {
        if anon(p.vmid, old_top, new_top - old_top, PROT_READ | PROT_WRITE).is_err() {
            return cur;
        }
    } else if new_top < old_top && vms::munmap(p.vmid, new_top, old_top - new_top).is_err() {
        return cur;
    }
    p.brk = addr;
    addr
}

fn sys_mmap(t: &mut ProcTable, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    const MAP_TYPE: u64 = 0x0f;
    const MAP_HUGETLB: u64 = 0x40000;
    let [addr, len, prot, flags, fd, off] = a;
    let p = &mut t.procs[s];
    match flags & MAP_TYPE {
        1 | 3 => {
            // Shared mappings would need pages shared across fork; not yet.
            return Err(Errno::EINVAL);
        }
        2 => {}
        _ => return Err(Errno::EINVAL),
    }
    if len == 0 || off % PAGE_SIZE != 0 || prot & !PROT_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MAP_ANON == 0 {
        return Err(if fd as i32 >= 0 && fd <= 2 {
            Errno::ENODEV
        } else {
            Errno::EBADF
        });
    }
    if flags & MAP_HUGETLB != 0 {
        return Err(Errno::ENOMEM);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let at = if flags & MAP_FIXED != 0 {
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        if addr < VM_MIN_USER_ADDRESS
            || addr
                .checked_add(len)
                .is_none_or(|e| e > VM_MAX_USER_ADDRESS)
        {
            return Err(Errno::ENOMEM);
        }
        addr
    } else {
        // The hint is ignored: new mappings go down from mmap_next.
        let at = p.mmap_next.checked_sub(len).ok_or(Errno::ENOMEM)?;
        if at < p.mmap_floor {
            return Err(Errno::ENOMEM);
        }
        at
    };
    anon(p.vmid, at, len, prot).map_err(|e| if e == Errno::EINVAL { e } else { Errno::ENOMEM })?;
    if flags & MAP_FIXED == 0 {
        p.mmap_next = at;
    }
    Ok(at as i64)
}

fn sys_munmap(t: &ProcTable, s: usize, addr: u64, len: u64) -> Result<i64, Errno> {
    if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::EINVAL)?;
    let vmid = t.procs[s].vmid;
    match vms::munmap(vmid, addr, len) {
        Err(Errno::EINVAL) if addr >= VM_MIN_USER_ADDRESS && uaccess::user_range(addr, len) => {
            // The range has holes, which the seed's munmap refuses but
            // Linux's unmaps around: fill them with one fixed mapping
            // (replacing what is there), then unmap the whole range.
            anon(vmid, addr, len, PROT_NONE).map_err(|_| Errno::ENOMEM)?;
            vms::munmap(vmid, addr, len).map(|_| 0)
        }
        r => r.map(|_| 0),
    }
}

fn sys_mprotect(t: &ProcTable, s: usize, addr: u64, len: u64, prot: u64) -> Result<i64, Errno> {
    if !addr.is_multiple_of(PAGE_SIZE) || prot & !PROT_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    vms::mprotect(t.procs[s].vmid, addr, len, prot).map(|_| 0)
}

fn sys_madvise(t: &ProcTable, s: usize, addr: u64, len: u64, advice: u64) -> Result<i64, Errno> {
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let len = page_up(len).ok_or(Errno::EINVAL)?;
    let vmid = t.procs[s].vmid;
    match advice {
        0..=2 => Ok(0),
        3 => vms::mcontrol(vmid, addr, len, MADV_WILLNEED, 0).map(|_| 0),
        // DONTNEED and FREE: the pages read as zero again.
        4 | 8 => vms::mcontrol(vmid, addr, len, MADV_DONTNEED, 0).map(|_| 0),
        // MERGEABLE, UNMERGEABLE, HUGEPAGE, NOHUGEPAGE, DONTDUMP, DODUMP:
        // hints with no effect on what the program sees.
        12..=17 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

// ---- time ------------------------------------------------------------------

/// Nanoseconds on `clock` (Linux clock ids), or EINVAL.
fn clock_now(clock: u64) -> Result<u64, Errno> {
    match clock {
        0 | 5 | 8 | 11 => Ok(hypercall::realtime_ns()),
        1 | 4 | 6 | 7 | 9 => Ok(hypercall::clock_ns()),
        _ => Err(Errno::EINVAL),
    }
}

fn timespec(vmid: u64, addr: u64) -> Result<u64, Errno> {
    let sec = read_u64(vmid, addr)? as i64;
    let nsec = read_u64(vmid, addr + 8)? as i64;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64))
}

fn sys_clock_gettime(vmid: u64, clock: u64, tp: u64) -> Result<i64, Errno> {
    let ns = clock_now(clock)?;
    write_words(vmid, tp, &[ns / 1_000_000_000, ns % 1_000_000_000])?;
    Ok(0)
}

fn sys_clock_getres(vmid: u64, clock: u64, tp: u64) -> Result<i64, Errno> {
    clock_now(clock)?;
    if tp != 0 {
        write_words(vmid, tp, &[0, 1])?;
    }
    Ok(0)
}

fn sys_gettimeofday(vmid: u64, tv: u64, tz: u64) -> Result<i64, Errno> {
    let ns = hypercall::realtime_ns();
    if tv != 0 {
        write_words(vmid, tv, &[ns / 1_000_000_000, ns % 1_000_000_000 / 1000])?;
    }
    if tz != 0 {
        copy_out(vmid, tz, &[0u8; 8])?; // UTC, no DST
    }
    Ok(0)
}

fn sys_time(vmid: u64, tloc: u64) -> Result<i64, Errno> {
    let sec = hypercall::realtime_ns() / 1_000_000_000;
    if tloc != 0 {
        write_u64(vmid, tloc, sec)?;
    }
    Ok(sec as i64)
}

/// nanosleep and clock_nanosleep: the process sleeps until the deadline
/// (host monotonic ns); the scheduler wakes it with rax = 0.
fn sys_nanosleep(t: &mut ProcTable, s: usize, clock: u64, flags: u64, req: u64) -> Outcome {
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

// ---- identity, limits, misc --------------------------------------------------

fn sys_uname(vmid: u64, buf: u64) -> Result<i64, Errno> {
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

fn sys_getrandom(vmid: u64, buf: u64, len: u64, flags: u64) -> Result<i64, Errno> {
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
fn prlimit(
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

fn sys_arch_prctl(t: &mut ProcTable, s: usize, code: u64, addr: u64) -> Result<i64, Errno> {
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
fn sys_futex(t: &mut ProcTable, s: usize, a: [u64; 6]) -> Outcome {
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

// ---- processes ---------------------------------------------------------------

/// fork: the child is an eager copy of the parent's vmspace and returns 0.
fn fork(t: &mut ProcTable, s: usize) -> Result<i64, Errno> {
    let parent = t.procs[s];
    let c = t.alloc(parent.pid).ok_or(Errno::EAGAIN)?;
    let child_vmid = t.procs[c].vmid;
    if let Err(e) = vms::clone(parent.vmid, child_vmid) {
        t.free(c);
        return Err(if e == Errno::ENOMEM { e } else { Errno::EAGAIN });
    }
    let child = &mut t.procs[c];
    child.tf = parent.tf;
    child.tf.rax = 0;
    child.vf = parent.vf;
    child.brk_start = parent.brk_start;
    child.brk = parent.brk;
    child.mmap_next = parent.mmap_next;
    child.mmap_floor = parent.mmap_floor;
    child.rlimits = parent.rlimits;
    child.name = parent.name;
    child.name_len = parent.name_len;
    Ok(child.pid as i64)
}

/// clone, for what glibc's fork() asks: a new process (no CLONE_VM, no
/// new stack), optionally storing the child's tid.
fn sys_clone(
    t: &mut ProcTable,
    s: usize,
    flags: u64,
    newsp: u64,
    ptid: u64,
    ctid: u64,
) -> Result<i64, Errno> {
    const CSIGNAL: u64 = 0xff;
    const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
    const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
    const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
    if flags & !(CSIGNAL | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID) != 0
        || newsp != 0
    {
        return Err(Errno::ENOSYS); // threads and shared address spaces: not yet
    }
    let pid = fork(t, s)?;
    let c = t.find(pid as u32).ok_or(Errno::EAGAIN)?;
    let child_vmid = t.procs[c].vmid;
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = copy_out(t.procs[s].vmid, ptid, &(pid as u32).to_le_bytes());
        let _ = copy_out(child_vmid, ptid, &(pid as u32).to_le_bytes());
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        let _ = copy_out(child_vmid, ctid, &(pid as u32).to_le_bytes());
    }
    if flags & CLONE_CHILD_CLEARTID != 0 {
        t.procs[c].clear_child_tid = ctid;
    }
    Ok(pid)
}

/// Copies a NULL-terminated array of string pointers into `args`.
fn copy_strings(vmid: u64, mut arr: u64, args: &mut ArgBuf, env: bool) -> Result<(), Errno> {
    if arr == 0 {
        return Ok(());
    }
    loop {
        let ptr = read_u64(vmid, arr)?;
        if ptr == 0 {
            return Ok(());
        }
        let n = copy_in_str(vmid, ptr, args.spare()).map_err(|e| {
            if e == Errno::ENAMETOOLONG {
                Errno::E2BIG
            } else {
                e
            }
        })?;
        args.commit(n, env)?;
        arr += 8;
    }
}

/// A fresh user frame entering `entry` with stack `sp`.
pub fn start_frame(entry: u64, sp: u64) -> TrapFrame {
    TrapFrame {
        rip: entry,
        rsp: sp,
        cs: selector::USER_CS as u64,
        ss: selector::USER_SS as u64,
        rflags: rflags::IF | rflags::FIXED,
        ..Default::default()
    }
}

/// Loads `path` into a fresh vmspace for process `s` and, on success,
/// switches the process to it (the old image is destroyed).
pub fn exec_into(t: &mut ProcTable, s: usize, path: &[u8], args: &ArgBuf) -> Result<(), ExecError> {
    let old = t.procs[s].vmid;
    let new = proc::vmid_for(t.procs[s].pid, proc::generation_of(old) + 1);
    let loaded = exec::load(t.image, path, args, new)?;
    if t.procs[s].alive() {
        let _ = vms::destroy(old);
    }
    let p = &mut t.procs[s];
    p.vmid = new;
    p.tf = start_frame(loaded.entry, loaded.sp);
    p.vf = VextFrame::default();
    p.brk_start = loaded.brk;
    p.brk = loaded.brk;
    p.mmap_floor = loaded.brk.saturating_add(exec::BRK_ROOM);
    p.mmap_next = exec::MMAP_TOP;
    p.clear_child_tid = 0;
    p.robust_list = 0;
    p.set_name(path);
    Ok(())
}

fn sys_execve(
    t: &mut ProcTable,
    s: usize,
    path: u64,
    argv: u64,
    envp: u64,
    args: &mut ArgBuf,
) -> Outcome {
    let vmid = t.procs[s].vmid;
    let mut pbuf = [0u8; 1024];
    let r = (|| -> Result<usize, Errno> {
        let n = copy_in_str(vmid, path, &mut pbuf)?;
        args.clear();
        copy_strings(vmid, argv, args, false)?;
        copy_strings(vmid, envp, args, true)?;
        Ok(n)
    })();
    let n = match r {
        Ok(n) => n,
        Err(e) => return Ret(-(e.0 as i64)),
    };
    match exec_into(t, s, &pbuf[..n], args) {
        Ok(()) => NoReturn,
        Err(e) => {
            if e == ExecError::Dynamic {
                let p = &t.procs[s];
                eprintln!(
                    "kernel: pid {} ({}): exec {}: {}",
                    p.pid,
                    p.name(),
                    core::str::from_utf8(&pbuf[..n]).unwrap_or("?"),
                    e.message()
                );
            }
            Ret(-(e.errno().0 as i64))
        }
    }
}

fn sys_wait4(
    t: &mut ProcTable,
    s: usize,
    pid: i32,
    wstatus: u64,
    options: u64,
    rusage: u64,
) -> Outcome {
    const WNOHANG: u64 = 1;
    const KNOWN: u64 = 1 | 2 | 8 | 0x4000_0000 | 0x8000_0000;
    if options & !KNOWN != 0 {
        return Ret(-(Errno::EINVAL.0 as i64));
    }
    let me = t.procs[s].pid;
    let vmid = t.procs[s].vmid;
    // pid > 0: that child; anything else: any child (one process group).
    let matches = |p: &proc::Proc| {
        p.state != State::Free && p.parent == me && (pid <= 0 || p.pid == pid as u32)
    };
    let Some(_) = t.procs.iter().position(matches) else {
        return Ret(-(Errno::ECHILD.0 as i64));
    };
    if let Some(z) = t
        .procs
        .iter()
        .position(|p| matches(p) && p.state == State::Zombie)
    {
        let (zpid, status) = (t.procs[z].pid, t.procs[z].wait_status);
        if wstatus != 0 {
            if let Err(e) = copy_out(vmid, wstatus, &status.to_le_bytes()) {
                return Ret(-(e.0 as i64));
            }
        }
        if rusage != 0 {
            // Resource use is not accounted yet: all zero.
            if let Err(e) = copy_out(vmid, rusage, &[0u8; 144]) {
                return Ret(-(e.0 as i64));
            }
        }
        t.free(z);
        return Ret(zpid as i64);
    }
    if options & WNOHANG != 0 {
        return Ret(0);
    }
    let p = &mut t.procs[s];
    p.state = State::ChildWait;
    p.restart = true;
    NoReturn
}

/// kill: without signal handlers, a signal does its default action:
/// ignored for SIGCHLD, SIGCONT, SIGURG and SIGWINCH; stop signals are
/// refused (EINVAL: stopping is not supported yet); every other signal
/// terminates the target. Only pid > 0 is supported (no process groups:
/// pid 0 and negative pids are EINVAL).
fn sys_kill(t: &mut ProcTable, s: usize, pid: i32, sig: i32) -> Outcome {
    if !(0..=64).contains(&sig) || pid <= 0 {
        return Ret(-(Errno::EINVAL.0 as i64));
    }
    let Some(target) = t.find(pid as u32) else {
        return Ret(-(Errno::ESRCH.0 as i64));
    };
    if sig == 0 || !t.procs[target].alive() || matches!(sig, 17 | 18 | 23 | 28) {
        return Ret(0);
    }
    if pid == 1 && target != s {
        // As in a Linux pid namespace: init has no handlers, so signals
        // from other processes are ignored (init can still kill itself).
        return Ret(0);
    }
    if matches!(sig, 19..=22) {
        return Ret(-(Errno::EINVAL.0 as i64));
    }
    t.exit(target, sig);
    if target == s {
        NoReturn
    } else {
        Ret(0)
    }
}
