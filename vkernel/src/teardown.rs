//! The VM's teardown after vkernel has exited, as QEMU's
//! `-run-with async-teardown=on` does it.
//!
//! Destroying a KVM VM takes about a millisecond here (`kvm_destroy_vm`:
//! its shadow MMU, its debugfs files, the static keys it held), a sixth of
//! a short run, and vkernel's parent would wait for it: a process's
//! memory and descriptors go in `exit_mm` and `exit_files`, before it
//! becomes a zombie its parent can reap.
//!
//! So a helper process is made with `CLONE_VM`: it shares vkernel's
//! address space (the vCPU's `kvm_run` page among it) and holds copies of
//! the VM's and the vCPU's descriptors. When vkernel exits, its exit only
//! drops references, and its parent sees the exit status at once. The
//! helper then holds the last references, and drops them by exiting
//! itself, woken by the end of a pipe only vkernel held. (vkernel unmaps
//! guest memory itself first: `Machine::leave_to_exit` says why.)
//!
//! The helper runs in vkernel's memory, which an exploited vkernel could
//! rewrite while the helper sleeps. It is therefore confined before it
//! sleeps, more tightly than vkernel: every other descriptor closed,
//! every signal blocked, and seccomp's strict mode (`read`, `write`,
//! `_exit`, `rt_sigreturn`), so whatever it is made to run can do no more
//! than end it. It makes only raw system calls: it shares vkernel's
//! thread-local storage, so not even `errno` may be written.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The helper's name in `ps` (at most 15 bytes and a NUL).
const NAME: &[u8] = b"vk-teardown\0";

/// The helper's stack: it makes a handful of system calls and no others.
const STACK_BYTES: usize = 16 << 10;

/// What the helper is given: set before it starts, never written after.
struct HelperArgs {
    /// Descriptors it keeps, ascending: the pipe's read end among them.
    keep: Vec<RawFd>,
    wake: RawFd,
}

/// The pipe's write end: held until vkernel's exit closes it. Dropping it
/// earlier lets the helper go early and the teardown happen in vkernel.
pub struct Teardown {
    _wake: OwnedFd,
}

impl Teardown {
    /// Leaves the handle to the process's exit (see the module's comment).
    pub fn leave_to_exit(self) {
        std::mem::forget(self);
    }
}

/// Starts the helper, keeping `vm_fds` (the VM's and the vCPU's) open in
/// it. Every descriptor of `vm_fds` must stay open in vkernel until it
/// exits: the helper is woken when vkernel's exit closes the pipe's write
/// end, which is given a higher number than all of them so that the
/// exit (which closes descriptors in ascending order) has dropped its
/// references to the VM first.
pub fn start(vm_fds: &[RawFd]) -> io::Result<Teardown> {
    let mut ends = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into `ends`.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 made both and nothing else owns them.
    let read_end = unsafe { OwnedFd::from_raw_fd(ends[0]) };
    // SAFETY: as above.
    let first_write = unsafe { OwnedFd::from_raw_fd(ends[1]) };
    let above = vm_fds.iter().copied().max().unwrap_or(0) + 1;
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one.
    let w = unsafe { libc::fcntl(first_write.as_raw_fd(), libc::F_DUPFD_CLOEXEC, above) };
    if w < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl made `w` and nothing else owns it.
    let write_end = unsafe { OwnedFd::from_raw_fd(w) };
    drop(first_write);

    let mut keep: Vec<RawFd> = vm_fds.to_vec();
    keep.push(read_end.as_raw_fd());
    keep.sort_unstable();
    keep.dedup();
    // Both live as long as the helper may run: for the process.
    let args: &'static HelperArgs = Box::leak(Box::new(HelperArgs {
        keep,
        wake: read_end.as_raw_fd(),
    }));
    let stack: &'static mut [u8] = Box::leak(vec![0u8; STACK_BYTES].into_boxed_slice());
    // The top, 16-byte aligned as the ABI wants it at a call.
    let top = (stack.as_mut_ptr() as usize + STACK_BYTES) & !15;

    // The helper starts with every signal blocked: no handler of
    // vkernel's (copied at clone) may ever run in it. The raw call, as
    // glibc's wrapper leaves its own two signals unblocked.
    let all: u64 = !0;
    let mut old: u64 = 0;
    // SAFETY: rt_sigprocmask on this thread with 8-byte sets on the stack.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            &mut old as *mut u64,
            8,
        )
    };
    // SAFETY: the helper gets its own stack (leaked, so never freed) and
    // `args` (leaked, never written again). It shares memory but makes
    // only raw system calls (see `helper`). No exit signal: vkernel does
    // not wait for it; once vkernel is gone its new parent reaps it.
    let pid = unsafe {
        libc::clone(
            helper,
            top as *mut libc::c_void,
            libc::CLONE_VM,
            args as *const HelperArgs as *mut libc::c_void,
        )
    };
    let err = io::Error::last_os_error();
    // SAFETY: restores this thread's mask saved above.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &old as *const u64,
            std::ptr::null_mut::<u64>(),
            8,
        )
    };
    if pid < 0 {
        return Err(err);
    }
    // Its work (about a millisecond) waits for idle CPUs: on a host as
    // small as two CPUs, the next vkernel's boot would otherwise wait
    // for it.
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sets the scheduling policy of our own child.
    if unsafe { libc::sched_setscheduler(pid, libc::SCHED_IDLE, &param) } != 0 {
        log::debug!(
            "teardown helper {pid}: SCHED_IDLE refused: {}",
            io::Error::last_os_error()
        );
    }
    log::debug!("teardown helper {pid} started");
    drop(read_end);
    Ok(Teardown { _wake: write_end })
}

/// The helper: confine itself, wait for vkernel's end, exit.
extern "C" fn helper(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `start` passes a leaked HelperArgs that is never written.
    let args = unsafe { &*(arg as *const HelperArgs) };
    // Close every descriptor but the kept ones (stdout above all: a
    // reader of vkernel's output must see its end when vkernel ends).
    let mut from: u64 = 0;
    for &fd in &args.keep {
        let fd = fd as u64;
        if fd > from {
            // SAFETY: close_range on our own descriptor table.
            unsafe { raw_syscall3(libc::SYS_close_range, from, fd - 1, 0) };
        }
        from = fd + 1;
    }
    // SAFETY: as above.
    unsafe { raw_syscall3(libc::SYS_close_range, from, u32::MAX as u64, 0) };
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of ≤ 16 bytes.
    unsafe {
        raw_syscall3(
            libc::SYS_prctl,
            libc::PR_SET_NAME as u64,
            NAME.as_ptr() as u64,
            0,
        )
    };
    // SAFETY: prctl with integer arguments.
    let strict = unsafe {
        raw_syscall3(
            libc::SYS_prctl,
            libc::PR_SET_SECCOMP as u64,
            libc::SECCOMP_MODE_STRICT as u64,
            0,
        )
    };
    if strict != 0 {
        // Not confined: go now; vkernel's own exit then tears down.
        return 0;
    }
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into a local.
        let n = unsafe {
            raw_syscall3(
                libc::SYS_read,
                args.wake as u64,
                &mut byte as *mut u8 as u64,
                1,
            )
        };
        if n != -(libc::EINTR as i64) {
            return 0;
        }
    }
}

/// A system call with no C library in between (the helper must not write
/// `errno`, which lives in the thread-local storage it shares).
///
/// # Safety
/// As the call itself.
unsafe fn raw_syscall3(nr: i64, a: u64, b: u64, c: u64) -> i64 {
    let ret: i64;
    // SAFETY: the x86-64 Linux system-call convention: rax, rdi, rsi,
    // rdx in; rax out; rcx and r11 clobbered.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
