//! The host process sandboxes itself once the VM is built (Firecracker's
//! model): no new privileges, no capabilities, and a seccomp-BPF allowlist
//! on the thread that runs the vCPU, installed before the first `KVM_RUN`.
//! Everything that needs a path, a socket or a new descriptor (KVM, the
//! memory, the kernel and image, /proc/self/status for `--stats`) is done
//! or opened before. `--no-seccomp` leaves the filter out, for debugging.
//!
//! A system call outside the list raises SIGSYS (`SECCOMP_RET_TRAP`), whose
//! handler writes one line naming the call and ends the process with
//! status 159 (128 + SIGSYS, as a kill by SIGSYS reads): the kernel's
//! `SECCOMP_RET_KILL_PROCESS` would say nothing. The handler cannot be
//! replaced (rt_sigaction is not allowed), and a blocked SIGSYS is forced
//! through by the kernel.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::Error;

/// Exit status after a violation: what a kill by SIGSYS shows.
pub const EXIT_SECCOMP: i32 = 128 + libc::SIGSYS;

/// `_IOC(dir, 'KVMIO' (0xae), nr, size)`.
const fn kvm_ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (0xae << 8) | nr
}
const NONE: u64 = 0;
const W: u64 = 1;
const R: u64 = 2;

/// The ioctls the vCPU thread makes once running (vcpu.rs, and the
/// debugger's register access): no VM or device creation, no memory
/// slots but the flush slot's cycle and the pool's as it grows (host
/// addresses of the host's own mappings), no CPUID or MSR changes.
pub const VCPU_IOCTLS: [(u64, &str); 13] = {
    use kvm_bindings::*;
    use std::mem::size_of;
    [
        (kvm_ioc(NONE, 0x80, 0), "KVM_RUN"),
        (kvm_ioc(R, 0x81, size_of::<kvm_regs>()), "KVM_GET_REGS"),
        (kvm_ioc(W, 0x82, size_of::<kvm_regs>()), "KVM_SET_REGS"),
        (kvm_ioc(R, 0x83, size_of::<kvm_sregs>()), "KVM_GET_SREGS"),
        (kvm_ioc(W, 0x84, size_of::<kvm_sregs>()), "KVM_SET_SREGS"),
        (kvm_ioc(R, 0x8c, size_of::<kvm_fpu>()), "KVM_GET_FPU"),
        // The guest TSC, for the clock page.
        (kvm_ioc(R | W, 0x88, size_of::<kvm_msrs>()), "KVM_GET_MSRS"),
        (kvm_ioc(W, 0x8d, size_of::<kvm_fpu>()), "KVM_SET_FPU"),
        (
            kvm_ioc(R, 0x9f, size_of::<kvm_vcpu_events>()),
            "KVM_GET_VCPU_EVENTS",
        ),
        (
            kvm_ioc(W, 0xa0, size_of::<kvm_vcpu_events>()),
            "KVM_SET_VCPU_EVENTS",
        ),
        (
            kvm_ioc(W, 0x46, size_of::<kvm_userspace_memory_region>()),
            "KVM_SET_USER_MEMORY_REGION",
        ),
        (
            kvm_ioc(W, 0x9b, size_of::<kvm_guest_debug>()),
            "KVM_SET_GUEST_DEBUG",
        ),
        // isatty(3) on the console, should anything ask again.
        (libc::TCGETS, "TCGETS"),
    ]
};

/// The system calls the vCPU thread makes once running, beside `ioctl`:
/// console I/O (read/write on inherited descriptors), the slice timer and
/// its signal, the idle wait (epoll, futex for its lock, a short sleep),
/// memory (the allocator; madvise for the pool's returned pages; mincore
/// for `--stats`), reading the already-open /proc/self/status (`--stats`),
/// and exiting. No open, no socket, no exec, no fork.
const VCPU_SYSCALLS: &[i64] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_timer_settime,
    libc::SYS_timer_gettime,
    libc::SYS_timer_delete,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_ctl,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_futex,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_gettimeofday,
    libc::SYS_sched_yield,
    libc::SYS_getrandom,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_brk,
    libc::SYS_madvise,
    libc::SYS_mincore,
    libc::SYS_gettid,
    libc::SYS_getpid,
    // A Rust panic aborts: raise(SIGABRT).
    libc::SYS_tgkill,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// What the vCPU thread also does when a debugger is attached
/// (gdb/mod.rs): accept a client on the listening socket it bound during
/// setup, talk to it, switch the socket between blocking and not.
const DEBUGGER_SYSCALLS: &[i64] = &[
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_shutdown,
    libc::SYS_setsockopt,
    libc::SYS_getsockopt,
    libc::SYS_getpeername,
    libc::SYS_getsockname,
    libc::SYS_fcntl,
];

/// `ioctl(FIONBIO)`: `set_nonblocking` on the debugger's sockets.
const DEBUGGER_IOCTLS: [(u64, &str); 1] = [(libc::FIONBIO, "FIONBIO")];

/// The debugger's watcher thread (gdb/watcher.rs): it polls one socket,
/// waits on a condition variable and signals the vCPU thread; and, at the
/// end, exits.
const WATCHER_SYSCALLS: &[i64] = &[
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_futex,
    libc::SYS_tgkill,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_clock_gettime,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_sched_yield,
    libc::SYS_write,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// What serving host directories adds (`hostfs.rs`), beside the open
/// call (`openat2`, or `openat` where it is missing): attributes of a
/// handle, directory records, reading a file or link (pread64, lseek and
/// close are on the list already).
const HOSTFS_SYSCALLS: &[i64] = &[
    libc::SYS_newfstatat,
    libc::SYS_getdents64,
    libc::SYS_readlinkat,
];

/// What writable volumes add (`-v HOST:GUEST:rw`): each change is made
/// relative to a handle (`hostfs.rs`); `fchmodat` only for the
/// `/proc/self/fd` fallback of kernels without `fchmodat2`.
const HOSTFS_WRITE_SYSCALLS: &[i64] = &[
    libc::SYS_pwrite64,
    libc::SYS_ftruncate,
    libc::SYS_mkdirat,
    libc::SYS_mknodat,
    libc::SYS_symlinkat,
    libc::SYS_linkat,
    libc::SYS_unlinkat,
    libc::SYS_renameat2,
    452, // fchmodat2
    libc::SYS_fchmodat,
    libc::SYS_fchownat,
    libc::SYS_utimensat,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
];

/// The threads that filter themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The vCPU thread (the run loop); `debugger`: a gdb stub is attached.
    Vcpu {
        /// `--gdb` was given.
        debugger: bool,
        /// Host directories are served (`--rootfs`, `--volume`), opened
        /// the way this says.
        hostfs: Option<crate::hostfs::OpenMode>,
        /// A volume is writable (`:rw`).
        hostfs_writes: bool,
    },
    /// The gdb stub's watcher thread.
    Watcher,
}

impl Role {
    fn name(self) -> &'static [u8] {
        match self {
            Role::Vcpu { .. } => b"vCPU",
            Role::Watcher => b"gdb watcher",
        }
    }
}

/// ioctls on the host terminal (fd 0 only): the size for the guest's
/// `console_winsize`, and putting the saved settings back (`terminal.rs`:
/// from the guard, a panic hook or a signal handler, on any thread).
pub const TERMINAL_IOCTLS: [(u64, &str); 2] =
    [(libc::TIOCGWINSZ, "TIOCGWINSZ"), (libc::TCSETS, "TCSETS")];

/// The filter of `role`.
pub fn filter(role: Role) -> Result<BpfProgram, Error> {
    let err = |e: seccompiler::BackendError| Error::Setup(format!("seccomp filter: {e}"));
    let (calls, ioctls): (Vec<i64>, Vec<u64>) = match role {
        Role::Vcpu {
            debugger,
            hostfs,
            hostfs_writes,
        } => {
            let mut calls = VCPU_SYSCALLS.to_vec();
            if let Some(mode) = hostfs {
                calls.extend_from_slice(HOSTFS_SYSCALLS);
                if hostfs_writes {
                    calls.extend_from_slice(HOSTFS_WRITE_SYSCALLS);
                }
                calls.push(match mode {
                    crate::hostfs::OpenMode::Openat2 => libc::SYS_openat2,
                    crate::hostfs::OpenMode::Openat => libc::SYS_openat,
                });
            }
            let mut ioctls: Vec<u64> = VCPU_IOCTLS.iter().map(|i| i.0).collect();
            if debugger {
                calls.extend_from_slice(DEBUGGER_SYSCALLS);
                ioctls.extend(DEBUGGER_IOCTLS.iter().map(|i| i.0));
            }
            (calls, ioctls)
        }
        Role::Watcher => (WATCHER_SYSCALLS.to_vec(), Vec::new()),
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        calls.iter().map(|&nr| (nr, Vec::new())).collect();
    if !ioctls.is_empty() {
        let ioctls = ioctls
            .iter()
            .map(|&req| {
                SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, req)
                    .and_then(|c| SeccompRule::new(vec![c]))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        rules.insert(libc::SYS_ioctl, ioctls);
    }
    // Both threads may restore the terminal (a signal lands on either);
    // only the vCPU thread asks for its size.
    let fd0 = |req: u64| {
        SeccompRule::new(vec![
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, 0)?,
            SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, req)?,
        ])
    };
    let terminal = match role {
        Role::Vcpu { .. } => &TERMINAL_IOCTLS[..],
        Role::Watcher => &TERMINAL_IOCTLS[1..],
    };
    for &(req, _) in terminal {
        let rule = fd0(req).map_err(err)?;
        rules.entry(libc::SYS_ioctl).or_default().push(rule);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(err)?;
    filter.try_into().map_err(err)
}

thread_local! {
    /// This thread's name in the violation line (set with its filter).
    static ROLE: std::cell::Cell<&'static [u8]> = const { std::cell::Cell::new(b"vCPU") };
}

/// SIGSYS: a system call outside the allowlist. Writes one line (with
/// async-signal-safe calls only: the number is formatted by hand) and
/// exits.
extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers;
    // for SIGSYS from seccomp, `si_syscall` sits at byte 24 (after
    // si_signo, si_errno, si_code and padding, then `si_call_addr`).
    let nr = unsafe { *(info as *const u8).add(24).cast::<i32>() };
    // A const-initialized thread-local: a plain TLS load, no allocation.
    let role = ROLE.with(|r| r.get());
    let head = b"vkernel: seccomp: system call ";
    let middle = b" is not allowed on the ";
    let tail = b" thread (run with --no-seccomp to debug); stopped\n";
    let mut digits = [0u8; 10];
    let mut n = nr.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    // SAFETY: write and _exit are async-signal-safe; the buffers are ours.
    unsafe {
        libc::write(2, head.as_ptr().cast(), head.len());
        libc::write(2, digits[at..].as_ptr().cast(), digits.len() - at);
        libc::write(2, middle.as_ptr().cast(), middle.len());
        libc::write(2, role.as_ptr().cast(), role.len());
        libc::write(2, tail.as_ptr().cast(), tail.len());
        crate::terminal::restore();
        libc::_exit(EXIT_SECCOMP);
    }
}

/// No new privileges, no capabilities and (unless `seccomp` is false)
/// `role`'s allowlist, for the calling thread (all three are per thread):
/// the vCPU thread calls it after setup, before the first `KVM_RUN`; the
/// watcher thread as it starts.
pub fn enter(role: Role, seccomp: bool) -> Result<(), Error> {
    prepare(role, seccomp)?.enter()
}

/// A thread's sandbox made ready ahead: its filter built (plain
/// computation), and, once [`Prepared::drop_privileges`] is called, no
/// new privileges and no capabilities. The vCPU thread prepares it while
/// the VM's thread is still at work, so that only the filter's
/// installation is left between the VM being ready and its first run.
pub struct Prepared {
    role: Role,
    filter: Option<BpfProgram>,
    dropped: bool,
}

/// [`enter`]'s first half: `role`'s filter (none if `seccomp` is false).
pub fn prepare(role: Role, seccomp: bool) -> Result<Prepared, Error> {
    let filter = if seccomp { Some(filter(role)?) } else { None };
    Ok(Prepared {
        role,
        filter,
        dropped: false,
    })
}

fn os(what: &'static str) -> Error {
    Error::Io {
        what,
        source: std::io::Error::last_os_error(),
    }
}

impl Prepared {
    /// No new privileges and no capabilities for the calling thread, now
    /// (nothing it does afterwards may need one: a jail's pivot does).
    pub fn drop_privileges(&mut self) -> Result<(), Error> {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(os("PR_SET_NO_NEW_PRIVS"));
        }
        drop_capabilities().map_err(|()| os("dropping capabilities"))?;
        self.dropped = true;
        Ok(())
    }

    /// Drops privileges (unless done already) and installs the filter on
    /// the calling thread, with the SIGSYS handler that reports a
    /// violation.
    pub fn enter(mut self) -> Result<(), Error> {
        if !self.dropped {
            self.drop_privileges()?;
        }
        let role = self.role;
        let Some(filter) = self.filter else {
            log::info!("--no-seccomp: the {role:?} thread runs without a system-call filter");
            return Ok(());
        };
        ROLE.with(|r| r.set(role.name()));
        // SAFETY: installs a handler that only calls write and _exit; the
        // sigaction struct is zeroed and then filled.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigsys as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            if libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) != 0 {
                return Err(os("installing the SIGSYS handler"));
            }
        }
        seccompiler::apply_filter(&filter)
            .map_err(|e| Error::Setup(format!("installing the seccomp filter: {e}")))
    }
}

/// Empties the bounding, ambient, effective, permitted and inheritable
/// capability sets (as root, vkernel needs none of them once set up).
fn drop_capabilities() -> Result<(), ()> {
    // Dropping from the bounding set needs CAP_SETPCAP; without it (not
    // root) there is nothing in the other sets to drop, and EPERM is fine.
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if r != 0 {
            let e = std::io::Error::last_os_error().raw_os_error();
            if e == Some(libc::EINVAL) {
                break; // past the last capability
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads a version-3 header and two data structs, both
    // ours and live for the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if r == 0 {
        Ok(())
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_are_the_kernels() {
        let n = |name: &str| VCPU_IOCTLS.iter().find(|i| i.1 == name).unwrap().0;
        assert_eq!(n("KVM_RUN"), 0xae80);
        assert_eq!(n("KVM_GET_VCPU_EVENTS"), 0x8040_ae9f);
        assert_eq!(n("KVM_SET_USER_MEMORY_REGION"), 0x4020_ae46);
        assert_eq!(n("KVM_GET_REGS"), 0x8090_ae81);
        assert_eq!(n("KVM_SET_SREGS"), 0x4138_ae84);
    }

    #[test]
    fn every_filter_compiles() {
        for role in [
            Role::Vcpu {
                debugger: false,
                hostfs: None,
                hostfs_writes: false,
            },
            Role::Vcpu {
                debugger: true,
                hostfs: Some(crate::hostfs::OpenMode::Openat2),
                hostfs_writes: true,
            },
            Role::Vcpu {
                debugger: false,
                hostfs: Some(crate::hostfs::OpenMode::Openat),
                hostfs_writes: false,
            },
            Role::Watcher,
        ] {
            assert!(!filter(role).unwrap().is_empty(), "{role:?}");
        }
    }
}
