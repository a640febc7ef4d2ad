//! The Linux x86-64 system-call ABI: `rax` = number, arguments in rdi,
//! rsi, rdx, r10, r8, r9; the result in `rax`, `-errno` on error. The
//! process trapped with `T_FAST_SYSCALL`; its frame's rip is already past
//! the `syscall`, and rcx/r11 hold rip/rflags as the instruction left them.
//!
//! This module only decodes: the table below maps each number (from
//! linux-raw-sys, as xv6's syscall.h) to a `sys_*` function in the files
//! beside it, which check the arguments and call into the subsystems
//! (`proc`, `mm`, `fs`). Every user pointer goes through
//! [`crate::mm::uaccess`].

mod creds;
mod fd;
mod futex;
mod lock;
mod mem;
mod misc;
mod names;
mod path;
mod poll;
mod proc;
pub mod signal;
mod socket;
mod time;
mod timer;
mod tty;
mod uio;

use crate::fs::vfs::Follow;
use creds::*;
use fd::*;
use futex::*;
use linux_raw_sys::general::*;
use lock::*;
use mem::*;
use misc::*;
use path::*;
use poll::*;
use proc::*;
use signal::*;
use socket::*;
use time::*;
use timer::*;

use crate::kernel::Kernel;
use guestlib::eprintln;
use vkernel_abi::Errno;

/// vkernel's own system call: host pool pages in use (for tests that check
/// nothing leaks). Outside Linux's range.
pub const SYS_VKERNEL_POOL_PAGES: u32 = 0x7fff_0001;

/// What a system call did to its process.
pub enum Outcome {
    /// Finished: this goes in rax.
    Ret(i64),
    /// The process blocked (its state says on what) or is gone or has a new
    /// image: rax is not touched.
    NoReturn,
}
pub use Outcome::*;

/// An open's result, or nothing if it went to sleep (a fifo open waiting
/// for its other side: the call restarts when woken).
fn open_outcome(
    k: &mut Kernel,
    s: usize,
    open: impl FnOnce(&mut Kernel) -> Result<i64, Errno>,
) -> Outcome {
    let r = open(k);
    if matches!(k.procs.procs[s].state, crate::proc::State::Blocked { .. }) {
        NoReturn
    } else {
        ret(r)
    }
}

/// A result as the value rax gets.
pub fn ret(r: Result<i64, Errno>) -> Outcome {
    match r {
        Ok(v) => Ret(v),
        Err(e) => Ret(err(e)),
    }
}

/// `-errno`, as rax holds an error.
pub fn err(e: Errno) -> i64 {
    -(e.0 as i64)
}

/// Dispatches the system call in process `s`'s frame.
// The numbers keep the kernel headers' names (`__NR_read`).
#[allow(non_upper_case_globals)]
pub fn dispatch(k: &mut Kernel, s: usize) {
    let tf = k.procs.procs[s].tf;
    let a = [tf.rdi, tf.rsi, tf.rdx, tf.r10, tf.r8, tf.r9];
    // `/proc/self` names the caller (see proc/procfs.rs).
    k.procs.tasks.current.set(k.procs.procs[s].tgid);
    // What a signalfd polled by this call would read.
    crate::fs::signalfd::set_caller_pending(k.procs.procs[s].sig.pending.0);
    // Whose credentials a Unix socket's plain write sends.
    let p = &k.procs.procs[s];
    crate::fs::unix::set_caller([p.tgid, p.creds.ruid, p.creds.rgid]);
    // Who owns the files it creates.
    crate::fs::vfs::set_creator(p.creds.fsuid, p.creds.fsgid);
    // A number past u32 names no call.
    let nr = u32::try_from(tf.rax).unwrap_or(u32::MAX);
    const CWD: u64 = AT_FDCWD as u64;
    let out = match nr {
        // Descriptors.
        __NR_read => sys_read(k, s, a[0], a[1], a[2]),
        __NR_write => sys_write(k, s, a[0], a[1], a[2]),
        __NR_pread64 => sys_pread64(k, s, a[0], a[1], a[2], a[3]),
        __NR_pwrite64 => sys_pwrite64(k, s, a[0], a[1], a[2], a[3]),
        __NR_readv => sys_vectored(k, s, Dir::Read, a[0], a[1], a[2], None, false),
        __NR_writev => sys_vectored(k, s, Dir::Write, a[0], a[1], a[2], None, false),
        __NR_preadv => sys_vectored(k, s, Dir::Read, a[0], a[1], a[2], Some(a[3]), false),
        __NR_pwritev => sys_vectored(k, s, Dir::Write, a[0], a[1], a[2], Some(a[3]), false),
        __NR_preadv2 => sys_vectored2(k, s, Dir::Read, a),
        __NR_pwritev2 => sys_vectored2(k, s, Dir::Write, a),
        __NR_lseek => ret(sys_lseek(k, s, a[0], a[1], a[2])),
        __NR_close => ret(sys_close(k, s, a[0])),
        __NR_close_range => ret(sys_close_range(k, s, a[0], a[1], a[2])),
        __NR_dup => ret(sys_dup(k, s, a[0])),
        __NR_dup2 => ret(sys_dup3(k, s, a[0], a[1], 0, false)),
        __NR_dup3 => ret(sys_dup3(k, s, a[0], a[1], a[2], true)),
        __NR_fcntl if is_lock_cmd(a[1]) => sys_fcntl_lock(k, s, a[0], a[1], a[2]),
        __NR_fcntl => ret(sys_fcntl(k, s, a[0], a[1], a[2])),
        __NR_flock => sys_flock(k, s, a[0], a[1]),
        __NR_pipe => ret(sys_pipe2(k, s, a[0], 0)),
        __NR_pipe2 => ret(sys_pipe2(k, s, a[0], a[1])),
        __NR_ioctl => sys_ioctl(k, s, a[0], a[1], a[2]),
        __NR_fstat => ret(sys_fstat(k, s, a[0], a[1])),
        __NR_getdents64 => ret(sys_getdents64(k, s, a[0], a[1], a[2])),
        __NR_ftruncate => ret(sys_ftruncate(k, s, a[0], a[1])),
        __NR_fsync => ret(sys_fsync(k, s, a[0], false)),
        __NR_fdatasync => ret(sys_fsync(k, s, a[0], true)),
        __NR_fallocate => ret(sys_fallocate(k, s, a[0], a[1], a[2], a[3])),
        __NR_memfd_create => ret(sys_memfd_create(k, s, a[0], a[1])),
        __NR_fadvise64 => ret(sys_fadvise64(k, s, a[0], a[2], a[3])),
        // Waiting on many.
        __NR_poll => sys_poll(k, s, a[0], a[1], a[2]),
        __NR_ppoll => sys_ppoll(k, s, a),
        __NR_select => sys_select(k, s, a),
        __NR_pselect6 => sys_pselect6(k, s, a),
        __NR_epoll_create => ret(sys_epoll_create(k, s, a[0])),
        __NR_epoll_create1 => ret(sys_epoll_create1(k, s, a[0])),
        __NR_epoll_ctl => ret(sys_epoll_ctl(k, s, a[0], a[1], a[2], a[3])),
        __NR_epoll_wait => sys_epoll_pwait(k, s, [a[0], a[1], a[2], a[3], 0, 0]),
        __NR_epoll_pwait => sys_epoll_pwait(k, s, a),
        __NR_epoll_pwait2 => sys_epoll_pwait2(k, s, a),
        __NR_eventfd => ret(sys_eventfd2(k, s, a[0], 0)),
        __NR_eventfd2 => ret(sys_eventfd2(k, s, a[0], a[1])),
        __NR_sendfile => copy_between(
            k,
            s,
            Copy {
                out_fd: a[0],
                in_fd: a[1],
                off_in: a[2],
                off_out: 0,
                count: a[3],
                out_must_be_file: false,
            },
        ),
        __NR_splice => sys_splice(k, s, a),
        __NR_tee => sys_tee(k, s, a),
        __NR_vmsplice => sys_vmsplice(k, s, a),
        __NR_copy_file_range if a[5] != 0 => Ret(err(Errno::EINVAL)),
        __NR_copy_file_range => copy_between(
            k,
            s,
            Copy {
                out_fd: a[2],
                in_fd: a[0],
                off_in: a[1],
                off_out: a[3],
                count: a[4],
                out_must_be_file: true,
            },
        ),
        // Names.
        __NR_open => open_outcome(k, s, |k| sys_openat(k, s, CWD, a[0], a[1], a[2])),
        __NR_openat => open_outcome(k, s, |k| sys_openat(k, s, a[0], a[1], a[2], a[3])),
        __NR_creat => open_outcome(k, s, |k| {
            sys_openat(k, s, CWD, a[0], (O_CREAT | O_WRONLY | O_TRUNC) as u64, a[1])
        }),
        __NR_stat => ret(sys_stat(k, s, a[0], a[1], Follow::Yes)),
        __NR_lstat => ret(sys_stat(k, s, a[0], a[1], Follow::No)),
        __NR_newfstatat => ret(sys_newfstatat(k, s, a[0], a[1], a[2], a[3])),
        __NR_statx => ret(sys_statx(k, s, a[0], a[1], a[2], a[3], a[4])),
        __NR_access => ret(sys_faccessat(k, s, CWD, a[0], a[1], 0)),
        __NR_faccessat => ret(sys_faccessat(k, s, a[0], a[1], a[2], 0)),
        __NR_faccessat2 => ret(sys_faccessat(k, s, a[0], a[1], a[2], a[3])),
        __NR_mkdir => ret(sys_mkdirat(k, s, CWD, a[0], a[1])),
        __NR_mkdirat => ret(sys_mkdirat(k, s, a[0], a[1], a[2])),
        __NR_mknod => ret(sys_mknodat(k, s, CWD, a[0], a[1], a[2])),
        __NR_mknodat => ret(sys_mknodat(k, s, a[0], a[1], a[2], a[3])),
        __NR_rmdir => ret(sys_unlinkat(k, s, CWD, a[0], AT_REMOVEDIR as u64)),
        __NR_unlink => ret(sys_unlinkat(k, s, CWD, a[0], 0)),
        __NR_unlinkat => ret(sys_unlinkat(k, s, a[0], a[1], a[2])),
        __NR_rename => ret(sys_renameat2(k, s, CWD, a[0], CWD, a[1], 0)),
        __NR_renameat => ret(sys_renameat2(k, s, a[0], a[1], a[2], a[3], 0)),
        __NR_renameat2 => ret(sys_renameat2(k, s, a[0], a[1], a[2], a[3], a[4])),
        __NR_link => ret(sys_linkat(k, s, CWD, a[0], CWD, a[1], 0)),
        __NR_linkat => ret(sys_linkat(k, s, a[0], a[1], a[2], a[3], a[4])),
        __NR_symlink => ret(sys_symlinkat(k, s, a[0], CWD, a[1])),
        __NR_symlinkat => ret(sys_symlinkat(k, s, a[0], a[1], a[2])),
        __NR_readlink => ret(sys_readlinkat(k, s, CWD, a[0], a[1], a[2])),
        __NR_readlinkat => ret(sys_readlinkat(k, s, a[0], a[1], a[2], a[3])),
        __NR_chdir => ret(sys_chdir(k, s, a[0])),
        __NR_fchdir => ret(sys_fchdir(k, s, a[0])),
        __NR_getcwd => ret(sys_getcwd(k, s, a[0], a[1])),
        __NR_umask => Ret(sys_umask(k, s, a[0])),
        __NR_chmod => ret(sys_fchmodat(k, s, CWD, a[0], a[1])),
        __NR_fchmod => ret(sys_fchmodat(k, s, a[0], 0, a[1])),
        __NR_fchmodat => ret(sys_fchmodat(k, s, a[0], a[1], a[2])),
        __NR_chown => ret(sys_fchownat(k, s, CWD, a[0], a[1], a[2], 0)),
        __NR_lchown => ret(sys_fchownat(
            k,
            s,
            CWD,
            a[0],
            a[1],
            a[2],
            AT_SYMLINK_NOFOLLOW as u64,
        )),
        __NR_fchown => ret(sys_fchownat(k, s, a[0], 0, a[1], a[2], 0)),
        __NR_fchownat => ret(sys_fchownat(k, s, a[0], a[1], a[2], a[3], a[4])),
        __NR_truncate => ret(sys_truncate(k, s, a[0], a[1])),
        __NR_utimensat => ret(sys_utimensat(k, s, a[0], a[1], a[2], a[3])),
        __NR_statfs => ret(sys_statfs(k, s, a[0], a[1])),
        __NR_getxattr | __NR_lgetxattr | __NR_listxattr | __NR_llistxattr => {
            let follow = if nr == __NR_getxattr || nr == __NR_listxattr {
                Follow::Yes
            } else {
                Follow::No
            };
            let list = nr == __NR_listxattr || nr == __NR_llistxattr;
            ret(path::sys_xattr_query(
                k,
                s,
                path::XattrTarget::Path(a[0], follow),
                list,
            ))
        }
        __NR_fgetxattr | __NR_flistxattr => ret(path::sys_xattr_query(
            k,
            s,
            path::XattrTarget::Fd(a[0]),
            nr == __NR_flistxattr,
        )),
        __NR_fstatfs => ret(sys_fstatfs(k, s, a[0], a[1])),
        // Memory.
        __NR_mmap => ret(sys_mmap(k, s, a)),
        __NR_mprotect => ret(sys_mprotect(k, s, a[0], a[1], a[2])),
        __NR_munmap => ret(sys_munmap(k, s, a[0], a[1])),
        __NR_msync => ret(sys_msync(k, s, a[0], a[1], a[2])),
        __NR_brk => Ret(sys_brk(k, s, a[0]) as i64),
        // The process gives way: its run ends with this call, and the
        // others runnable take their turns before it runs again.
        __NR_sched_yield => {
            k.procs.yielded = true;
            Ret(0)
        }
        __NR_sched_getaffinity => ret(sys_sched_getaffinity(k, s, a[0], a[1], a[2])),
        __NR_sched_setaffinity => ret(sys_sched_setaffinity(k, s, a[0], a[1], a[2])),
        __NR_sched_getscheduler => ret(sys_sched_getparam(k, s, a[0] as i32 as i64, None)),
        __NR_sched_setscheduler => ret(sys_sched_setscheduler(
            k,
            s,
            a[0] as i32 as i64,
            Some(a[1] as i32 as u32 as u64),
            a[2],
        )),
        __NR_sched_setparam => ret(sys_sched_setscheduler(k, s, a[0] as i32 as i64, None, a[1])),
        __NR_sched_getparam => ret(sys_sched_getparam(k, s, a[0] as i32 as i64, Some(a[1]))),
        __NR_sched_get_priority_max => ret(sched_priority_range(a[0]).map(|r| r.1)),
        __NR_sched_get_priority_min => ret(sched_priority_range(a[0]).map(|r| r.0)),
        __NR_sched_rr_get_interval => {
            ret(sys_sched_rr_get_interval(k, s, a[0] as i32 as i64, a[1]))
        }
        __NR_getcpu => ret(sys_getcpu(k, s, a[0], a[1])),
        __NR_pidfd_open => ret(sys_pidfd_open(k, s, a[0], a[1])),
        __NR_pidfd_send_signal => ret(sys_pidfd_send_signal(k, s, [a[0], a[1], a[2], a[3]])),
        __NR_pidfd_getfd => ret(sys_pidfd_getfd(k, s, a[0], a[1], a[2])),
        __NR_get_mempolicy => ret(sys_get_mempolicy(k, s, [a[0], a[1], a[2], a[3], a[4]])),
        __NR_set_mempolicy => ret(sys_set_mempolicy(k, s, [a[0], a[1], a[2]])),
        __NR_membarrier => ret(sys_membarrier(a[0], a[1])),
        __NR_mremap => ret(sys_mremap(k, s, [a[0], a[1], a[2], a[3], a[4]])),
        __NR_madvise => ret(sys_madvise(k, s, a[0], a[1], a[2])),
        __NR_nanosleep => sys_nanosleep(k, s, CLOCK_MONOTONIC as u64, 0, a[0]),
        __NR_getpid => Ret(k.procs.procs[s].tgid as i64),
        __NR_gettid => Ret(k.procs.procs[s].pid as i64),
        __NR_clone => sys_clone(k, s, a),
        __NR_clone3 => sys_clone3(k, s, a[0], a[1]),
        __NR_fork => sys_fork(k, s, false),
        __NR_vfork => sys_fork(k, s, true),
        __NR_execve => sys_execve(k, s, a[0], a[1], a[2]),
        __NR_execveat => sys_execveat(k, s, a[0], a[1], a[2], a[3], a[4]),
        __NR_exit => {
            k.procs.exit(s, ((a[0] & 0xff) << 8) as i32);
            NoReturn
        }
        __NR_exit_group => {
            k.procs.exit_group(s, ((a[0] & 0xff) << 8) as i32);
            NoReturn
        }
        __NR_wait4 => sys_wait4(k, s, a[0] as i32, a[1], a[2], a[3]),
        __NR_waitid => sys_waitid(k, s, a),
        __NR_getrusage => ret(sys_getrusage(k, s, a[0], a[1])),
        __NR_times => ret(sys_times(k, s, a[0])),
        // Signals.
        __NR_kill => ret(sys_kill(k, s, a[0] as i32, a[1])),
        __NR_tkill => ret(sys_tgkill(k, s, None, a[0] as i32, a[1])),
        __NR_tgkill => ret(sys_tgkill(k, s, Some(a[0] as i32), a[1] as i32, a[2])),
        __NR_rt_sigaction => ret(sys_rt_sigaction(k, s, a[0], a[1], a[2], a[3])),
        __NR_rt_sigprocmask => ret(sys_rt_sigprocmask(k, s, a[0], a[1], a[2], a[3])),
        __NR_rt_sigpending => ret(sys_rt_sigpending(k, s, a[0], a[1])),
        __NR_rt_sigsuspend => sys_rt_sigsuspend(k, s, a[0], a[1]),
        __NR_rt_sigtimedwait => sys_rt_sigtimedwait(k, s, a),
        __NR_rt_sigqueueinfo => sys_rt_sigqueueinfo(k, s, a[0] as i32, a[1], a[2]),
        __NR_rt_tgsigqueueinfo => sys_rt_tgsigqueueinfo(k, s, a),
        __NR_rt_sigreturn => sys_rt_sigreturn(k, s),
        __NR_sigaltstack => ret(sys_sigaltstack(k, s, a[0], a[1])),
        __NR_pause => sys_pause(k, s),
        __NR_alarm => Ret(sys_alarm(k, s, a[0])),
        __NR_setitimer => ret(sys_setitimer(k, s, a[0], a[1], a[2])),
        __NR_getitimer => ret(sys_getitimer(k, s, a[0], a[1])),
        __NR_timer_create => ret(sys_timer_create(k, s, a[0], a[1], a[2])),
        __NR_timer_settime => ret(sys_timer_settime(k, s, a)),
        __NR_timer_gettime => ret(sys_timer_gettime(k, s, a[0], a[1])),
        __NR_timer_getoverrun => ret(sys_timer_getoverrun(k, s, a[0])),
        __NR_timer_delete => ret(sys_timer_delete(k, s, a[0])),
        // Unix sockets.
        __NR_socket => ret(sys_socket(k, s, a[0], a[1], a[2])),
        __NR_bind => ret(sys_bind(k, s, a[0], a[1], a[2])),
        __NR_listen => ret(sys_listen(k, s, a[0], a[1])),
        __NR_connect => sys_connect(k, s, a[0], a[1], a[2]),
        __NR_accept => sys_accept4(k, s, [a[0], a[1], a[2], 0, 0, 0]),
        __NR_accept4 => sys_accept4(k, s, a),
        __NR_setsockopt => ret(sys_setsockopt(k, s, a)),
        __NR_socketpair => ret(sys_socketpair(k, s, a)),
        __NR_sendto => sys_sendto(k, s, a),
        __NR_recvfrom => sys_recvfrom(k, s, a),
        __NR_sendmsg => sys_sendmsg(k, s, a[0], a[1], a[2]),
        __NR_recvmsg => sys_recvmsg(k, s, a[0], a[1], a[2]),
        __NR_shutdown => ret(sys_shutdown(k, s, a[0], a[1])),
        __NR_getsockname => ret(sys_getname(k, s, a[0], a[1], a[2], false)),
        __NR_getpeername => ret(sys_getname(k, s, a[0], a[1], a[2], true)),
        __NR_getsockopt => ret(sys_getsockopt(k, s, a)),
        __NR_signalfd => ret(sys_signalfd4(k, s, [a[0], a[1], a[2], 0, 0, 0])),
        __NR_signalfd4 => ret(sys_signalfd4(k, s, a)),
        __NR_timerfd_create => ret(sys_timerfd_create(k, s, a[0], a[1])),
        __NR_timerfd_settime => ret(sys_timerfd_settime(k, s, a)),
        __NR_timerfd_gettime => ret(sys_timerfd_gettime(k, s, a[0], a[1])),
        // Process groups and sessions.
        __NR_setpgid => ret(sys_setpgid(k, s, a[0] as i32, a[1] as i32)),
        __NR_getpgid => ret(sys_getpgid(k, s, a[0] as i32)),
        __NR_getpgrp => Ret(k.procs.procs[s].pgid as i64),
        __NR_setsid => ret(sys_setsid(k, s)),
        __NR_getsid => ret(sys_getsid(k, s, a[0] as i32)),
        __NR_uname => ret(sys_uname(k, s, a[0])),
        __NR_sysinfo => ret(sys_sysinfo(k, s, a[0])),
        __NR_gettimeofday => ret(sys_gettimeofday(k, s, a[0], a[1])),
        __NR_getrlimit => ret(sys_prlimit(k, s, 0, a[0], 0, a[1])),
        __NR_getuid => Ret(k.procs.procs[s].creds.ruid.into()),
        __NR_geteuid => Ret(k.procs.procs[s].creds.euid.into()),
        __NR_getgid => Ret(k.procs.procs[s].creds.rgid.into()),
        __NR_getegid => Ret(k.procs.procs[s].creds.egid.into()),
        __NR_getresuid => ret(sys_getresid(k, s, Ids::User, [a[0], a[1], a[2]])),
        __NR_getresgid => ret(sys_getresid(k, s, Ids::Group, [a[0], a[1], a[2]])),
        __NR_setuid => ret(sys_setid(k, s, Ids::User, a[0])),
        __NR_setgid => ret(sys_setid(k, s, Ids::Group, a[0])),
        __NR_setreuid => ret(sys_setreid(k, s, Ids::User, a[0], a[1])),
        __NR_setregid => ret(sys_setreid(k, s, Ids::Group, a[0], a[1])),
        __NR_setresuid => ret(sys_setresid(k, s, Ids::User, [a[0], a[1], a[2]])),
        __NR_setresgid => ret(sys_setresid(k, s, Ids::Group, [a[0], a[1], a[2]])),
        __NR_setfsuid => ret(sys_setfsid(k, s, Ids::User, a[0])),
        __NR_setfsgid => ret(sys_setfsid(k, s, Ids::Group, a[0])),
        __NR_capget => ret(sys_capget(k, s, a[0], a[1])),
        __NR_capset => ret(sys_capset(k, s, a[0], a[1])),
        __NR_getpriority => ret(sys_getpriority(k, s, a[0], a[1])),
        __NR_setpriority => ret(sys_setpriority(k, s, a[0], a[1], a[2])),
        __NR_getgroups => ret(sys_getgroups(k, s, a[0], a[1])),
        __NR_setgroups => ret(sys_setgroups(k, s, a[0], a[1])),
        __NR_getppid => Ret(k.procs.procs[s].parent as i64),
        __NR_arch_prctl => ret(sys_arch_prctl(k, s, a[0], a[1])),
        __NR_prctl => ret(sys_prctl(k, s, a)),
        __NR_setrlimit => ret(sys_prlimit(k, s, 0, a[0], a[1], 0)),
        __NR_time => ret(sys_time(k, s, a[0])),
        __NR_futex => sys_futex(k, s, a),
        __NR_set_tid_address => {
            k.procs.procs[s].clear_child_tid = a[0];
            Ret(k.procs.procs[s].pid as i64)
        }
        __NR_clock_gettime => ret(sys_clock_gettime(k, s, a[0], a[1])),
        __NR_clock_getres => ret(sys_clock_getres(k, s, a[0], a[1])),
        __NR_clock_nanosleep => sys_nanosleep(k, s, a[0], a[1], a[2]),
        __NR_set_robust_list => ret(sys_set_robust_list(k, s, a[0], a[1])),
        __NR_get_robust_list => ret(sys_get_robust_list(k, s, a[0], a[1], a[2])),
        __NR_prlimit64 => ret(sys_prlimit(k, s, a[0] as u32, a[1], a[2], a[3])),
        __NR_getrandom => ret(sys_getrandom(k, s, a[0], a[1], a[2])),
        // glibc runs without restartable sequences.
        __NR_rseq => Ret(err(Errno::ENOSYS)),
        SYS_VKERNEL_POOL_PAGES => Ret(k.mm.pages_in_use()),
        _ => {
            log_unimplemented(k, s, tf.rax);
            Ret(err(Errno::ENOSYS))
        }
    };
    if let Ret(v) = out {
        complete(k, s, v);
    }
    if k.procs.procs[s].alive() {
        k.procs.publish_signals(s);
    }
}

/// Ends the system call of task `s` with result `v` (what `Ret` does when
/// the call returns; also a sleeping reader's `read` that a pipe's writer
/// filled, see `fd::hand_to_reader`).
pub fn complete(k: &mut Kernel, s: usize, v: i64) {
    let p = &mut k.procs.procs[s];
    p.tf.rax = v as u64;
    // The call is over: its next sleep is a fresh one's, and a mask it
    // ran under (ppoll, pselect6, epoll_pwait) is undone.
    p.deadline_ns = 0;
    p.sig.waiting = crate::proc::signal::SigSet::EMPTY;
    if let Some(m) = p.sig.saved_mask.take() {
        p.sig.mask = m;
    }
}

/// Logs, once per call, what part of a call the kernel refused: a flag
/// or mode it does not implement (`what`). The call returns the errno
/// Linux would give a kernel built without the feature.
pub fn log_refused(k: &Kernel, s: usize, call: &str, what: core::fmt::Arguments) {
    let p = &k.procs.procs[s];
    eprintln!(
        "kernel: pid {} ({}): {call}: {what} is not implemented",
        p.pid,
        p.name()
    );
}

/// Logs an unimplemented system call, once per number, with its name.
fn log_unimplemented(k: &Kernel, s: usize, nr: u64) {
    static SEEN: LogOnce = LogOnce::new();
    if !SEEN.first(nr) {
        return;
    }
    let p = &k.procs.procs[s];
    let name = u32::try_from(nr).ok().and_then(names::name);
    match name {
        Some(name) => eprintln!(
            "kernel: pid {} ({}): system call {nr} ({name}) is not implemented (ENOSYS)",
            p.pid,
            p.name()
        ),
        None => eprintln!(
            "kernel: pid {} ({}): system call {nr} is not implemented (ENOSYS)",
            p.pid,
            p.name()
        ),
    }
}

/// A set of numbers below 512 seen so far, plus a few above (so a program
/// calling one missing call in a loop logs it once).
struct LogOnce {
    low: [core::sync::atomic::AtomicU64; 8],
    high: [core::sync::atomic::AtomicU64; 8],
}

impl LogOnce {
    const fn new() -> Self {
        LogOnce {
            low: [const { core::sync::atomic::AtomicU64::new(0) }; 8],
            high: [const { core::sync::atomic::AtomicU64::new(0) }; 8],
        }
    }

    /// Whether `nr` is seen for the first time (and marks it seen).
    fn first(&self, nr: u64) -> bool {
        use core::sync::atomic::Ordering::Relaxed;
        if nr < 512 {
            let bit = 1 << (nr % 64);
            return self.low[(nr / 64) as usize].fetch_or(bit, Relaxed) & bit == 0;
        }
        if self.high.iter().any(|h| h.load(Relaxed) == nr) {
            return false;
        }
        if let Some(h) = self.high.iter().find(|h| h.load(Relaxed) == 0) {
            h.store(nr, Relaxed);
        }
        true
    }
}
