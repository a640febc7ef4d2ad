//! `--jail DIR`: Firecracker's jailer, in-process. Two steps:
//!
//! 1. [`enter_namespaces`], first thing in a run (one thread, nothing
//!    opened): new mount, PID and network namespaces (and a user
//!    namespace when not root), then a fork, because a process never
//!    enters a PID namespace itself, only its children do. The child is
//!    PID 1 of the new namespace and runs the VM (KVM ties a VM to the
//!    process that made it, so the fork must come before it); the parent
//!    stays outside, waits, and exits with the child's status. Descriptors
//!    the child inherited beyond stdio (and the gdb socket, bound before
//!    the network namespace left the host's network) are closed: what the
//!    child holds afterwards is what it opens itself.
//! 2. [`pivot`], after setup (KVM, memory, kernel and image, the hostfs
//!    directory descriptors, /proc/self/status for `--stats`) and before
//!    the first `KVM_RUN`: DIR is bind-mounted on itself, read-only, and
//!    becomes the root (`pivot_root`); the old root is detached. The
//!    descriptors opened before keep working (a detached mount lives while
//!    referenced), nothing else of the host's file system is reachable.
//!
//! The seccomp filter ([`crate::sandbox`]) goes on after the pivot.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::Error;

fn os_err(what: &'static str) -> Error {
    Error::Io {
        what,
        source: std::io::Error::last_os_error(),
    }
}

fn cstr(p: &Path) -> Result<CString, Error> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::Setup("--jail: path holds a NUL".into()))
}

/// Checks that `dir` is a directory (before anything else is done).
pub fn check_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::Setup(format!(
            "--jail {}: not a directory",
            dir.display()
        ))),
        Err(e) => Err(Error::Setup(format!("--jail {}: {e}", dir.display()))),
    }
}

/// Set by the parent's handler: the signal that asked it to end.
static ENDING: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_ending(sig: libc::c_int) {
    ENDING.store(sig, std::sync::atomic::Ordering::Relaxed);
}

/// Enters the namespaces and forks. In the child (which goes on to run
/// the VM) returns `None`; in the parent, once the child has ended, its
/// exit status (128 + N for a signal N, as a shell shows it). `keep` is a
/// descriptor the child keeps besides stdio (the bound gdb socket).
pub fn enter_namespaces(keep: Option<RawFd>) -> Result<Option<u8>, Error> {
    // SAFETY: geteuid/getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET;
    if uid != 0 {
        // Unprivileged: a user namespace grants the rest.
        flags |= libc::CLONE_NEWUSER;
    }
    // SAFETY: unshare with flags only; the process is single-threaded
    // here (required for CLONE_NEWUSER).
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(os_err(
            "--jail: unshare (new mount, PID, network namespaces)",
        ));
    }
    if uid != 0 {
        let write = |file: &str, text: String| {
            std::fs::write(file, text).map_err(|source| Error::Io {
                what: "--jail: writing the user namespace's id maps",
                source,
            })
        };
        write("/proc/self/setgroups", "deny".into())?;
        write("/proc/self/uid_map", format!("0 {uid} 1"))?;
        write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    }
    // The terminal's settings, restored by the parent if the child is
    // killed before it could.
    // SAFETY: a zeroed termios is a valid out-parameter.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes into `saved`; fails harmlessly off a tty.
    let tty = unsafe { libc::tcgetattr(0, &mut saved) } == 0;
    // SAFETY: fork in a single-threaded process.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(os_err("--jail: fork into the new PID namespace"));
    }
    if child == 0 {
        // SAFETY: prctl with integer arguments: the child dies with the
        // parent, which is what a signal to vkernel reaches.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        close_inherited(keep);
        return Ok(None);
    }
    if let Some(fd) = keep {
        // SAFETY: the parent has no further use for the socket.
        unsafe { libc::close(fd) };
    }
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
        // SAFETY: a handler that stores to an atomic; no SA_RESTART, so
        // waitpid returns EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_ending as *const () as usize;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    let mut status = 0;
    let mut killed = false;
    loop {
        // SAFETY: waits for our own child, writing `status`.
        let r = unsafe { libc::waitpid(child, &mut status, 0) };
        if r == child {
            break;
        }
        let sig = ENDING.load(std::sync::atomic::Ordering::Relaxed);
        if sig != 0 && !killed {
            // PID 1 of a namespace ignores signals it has no handler for:
            // end it for sure.
            // SAFETY: kill of our own child.
            unsafe { libc::kill(child, libc::SIGKILL) };
            killed = true;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(os_err("--jail: waiting for the jailed vkernel"));
        }
    }
    if tty {
        // SAFETY: restores the settings read above.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
    }
    let sig = ENDING.load(std::sync::atomic::Ordering::Relaxed);
    Ok(Some(if sig != 0 {
        (128 + sig) as u8
    } else if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u8
    } else {
        (128 + libc::WTERMSIG(status)) as u8
    }))
}

/// Closes every descriptor above stderr except `keep`.
fn close_inherited(keep: Option<RawFd>) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        if fd > 2 && Some(fd) != keep {
            // SAFETY: closing a descriptor this process inherited and
            // does not use (the directory's own, already closed, gives
            // EBADF harmlessly).
            unsafe { libc::close(fd) };
        }
    }
}

/// Makes `dir` the root: bind-mounted on itself read-only, `pivot_root`
/// into it, the old root detached.
pub fn pivot(dir: &Path) -> Result<(), Error> {
    let d = cstr(dir)?;
    let none = std::ptr::null::<libc::c_char>();
    let root = c"/";
    let dot = c".";
    // SAFETY: mount/chdir/pivot_root/umount2 with NUL-terminated strings
    // that outlive the calls; they act on this process's own mount
    // namespace (made private first, so nothing propagates to the host).
    unsafe {
        if libc::mount(
            none,
            root.as_ptr(),
            none,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(os_err("--jail: making the mounts private"));
        }
        if libc::mount(
            d.as_ptr(),
            d.as_ptr(),
            none,
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ) != 0
        {
            return Err(os_err("--jail: bind-mounting the jail directory"));
        }
        if libc::chdir(d.as_ptr()) != 0 {
            return Err(os_err("--jail: entering the jail directory"));
        }
        if libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) != 0 {
            return Err(os_err("--jail: pivot_root"));
        }
        // The old root is stacked on the new one: detach it.
        if libc::umount2(dot.as_ptr(), libc::MNT_DETACH) != 0 {
            return Err(os_err("--jail: detaching the old root"));
        }
        if libc::chdir(root.as_ptr()) != 0 {
            return Err(os_err("--jail: entering the new root"));
        }
        let ro = libc::MS_REMOUNT
            | libc::MS_BIND
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC;
        if libc::mount(none, root.as_ptr(), none, ro, std::ptr::null()) != 0 {
            // A user namespace may not drop flags the mount had.
            log::debug!(
                "--jail: read-only remount: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}
