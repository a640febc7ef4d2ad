//! Linux x86-64 system calls: number in rax, arguments in rdi, rsi, rdx,
//! r10, r8, r9; the kernel returns the result (or -errno) in rax and
//! clobbers rcx and r11.

use core::arch::asm;

/// Raw system call with up to six arguments.
#[inline(always)]
pub fn syscall(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: `syscall` transfers to the kernel, which only changes rax,
    // rcx, r11 and memory the arguments name.
    unsafe {
        asm!("syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack));
    }
    ret
}

pub fn sc0(nr: u64) -> i64 {
    syscall(nr, [0; 6])
}
pub fn sc1(nr: u64, a: u64) -> i64 {
    syscall(nr, [a, 0, 0, 0, 0, 0])
}
pub fn sc2(nr: u64, a: u64, b: u64) -> i64 {
    syscall(nr, [a, b, 0, 0, 0, 0])
}
pub fn sc3(nr: u64, a: u64, b: u64, c: u64) -> i64 {
    syscall(nr, [a, b, c, 0, 0, 0])
}
pub fn sc4(nr: u64, a: u64, b: u64, c: u64, d: u64) -> i64 {
    syscall(nr, [a, b, c, d, 0, 0])
}

pub const READ: u64 = 0;
pub const WRITE: u64 = 1;
pub const MMAP: u64 = 9;
pub const MPROTECT: u64 = 10;
pub const MUNMAP: u64 = 11;
pub const BRK: u64 = 12;
pub const WRITEV: u64 = 20;
pub const SCHED_YIELD: u64 = 24;
pub const NANOSLEEP: u64 = 35;
pub const GETPID: u64 = 39;
pub const FORK: u64 = 57;
pub const VFORK: u64 = 58;
pub const EXECVE: u64 = 59;
pub const EXIT: u64 = 60;
pub const WAIT4: u64 = 61;
pub const KILL: u64 = 62;
pub const UNAME: u64 = 63;
pub const GETPPID: u64 = 110;
pub const ARCH_PRCTL: u64 = 158;
pub const GETTID: u64 = 186;
pub const SET_TID_ADDRESS: u64 = 218;
pub const CLOCK_GETTIME: u64 = 228;
pub const EXIT_GROUP: u64 = 231;
pub const GETRANDOM: u64 = 318;
/// vkernel's own call: host pool pages in use.
pub const VKERNEL_POOL_PAGES: u64 = 0x7fff_0001;

pub fn write(fd: u64, b: &[u8]) -> i64 {
    sc3(WRITE, fd, b.as_ptr() as u64, b.len() as u64)
}
pub fn read(fd: u64, b: &mut [u8]) -> i64 {
    sc3(READ, fd, b.as_mut_ptr() as u64, b.len() as u64)
}
pub fn exit(status: i32) -> ! {
    sc1(EXIT_GROUP, status as u64);
    loop {
        sc1(EXIT, status as u64);
    }
}
/// exit(2): ends only the calling thread.
pub fn exit_thread(status: i32) -> ! {
    loop {
        sc1(EXIT, status as u64);
    }
}
pub fn getpid() -> i64 {
    sc0(GETPID)
}
pub fn fork() -> i64 {
    sc0(FORK)
}
pub fn sched_yield() -> i64 {
    sc0(SCHED_YIELD)
}
/// wait4(pid, &status, options, NULL): (pid or -errno, status).
pub fn wait4(pid: i64, options: u64) -> (i64, i32) {
    let mut status = 0i32;
    let r = sc4(
        WAIT4,
        pid as u64,
        &mut status as *mut i32 as u64,
        options,
        0,
    );
    (r, status)
}
pub fn kill(pid: i64, sig: i32) -> i64 {
    sc2(KILL, pid as u64, sig as u64)
}
/// Sleeps `ms` milliseconds.
pub fn sleep_ms(ms: u64) -> i64 {
    let ts = [ms / 1000, (ms % 1000) * 1_000_000];
    sc2(NANOSLEEP, ts.as_ptr() as u64, 0)
}
/// clock_gettime(clock) in nanoseconds.
pub fn clock_ns(clock: u64) -> u64 {
    let mut ts = [0u64; 2];
    sc2(CLOCK_GETTIME, clock, ts.as_mut_ptr() as u64);
    ts[0] * 1_000_000_000 + ts[1]
}
pub fn mmap(addr: u64, len: u64, prot: u64, flags: u64) -> i64 {
    syscall(MMAP, [addr, len, prot, flags, u64::MAX, 0])
}
pub fn munmap(addr: u64, len: u64) -> i64 {
    sc2(MUNMAP, addr, len)
}
pub fn mprotect(addr: u64, len: u64, prot: u64) -> i64 {
    sc3(MPROTECT, addr, len, prot)
}
pub fn brk(addr: u64) -> u64 {
    sc1(BRK, addr) as u64
}
pub fn pool_pages() -> i64 {
    sc0(VKERNEL_POOL_PAGES)
}

/// execve(path, argv, envp) with Rust strings (each at most 255 bytes, at
/// most 15 arguments): returns -errno if it fails.
pub fn exec(path: &str, args: &[&str]) -> i64 {
    let mut bufs = [[0u8; 256]; 16];
    let mut ptrs = [0u64; 17];
    let mut pbuf = [0u8; 256];
    pbuf[..path.len().min(255)].copy_from_slice(&path.as_bytes()[..path.len().min(255)]);
    for (i, a) in args.iter().take(16).enumerate() {
        let n = a.len().min(255);
        bufs[i][..n].copy_from_slice(&a.as_bytes()[..n]);
        ptrs[i] = bufs[i].as_ptr() as u64;
    }
    let env = [c"PATH=/bin".as_ptr() as u64, 0];
    sc3(
        EXECVE,
        pbuf.as_ptr() as u64,
        ptrs.as_ptr() as u64,
        env.as_ptr() as u64,
    )
}

/// fork, then exec `path` with `args` in the child; the child's pid.
pub fn spawn(path: &str, args: &[&str]) -> i64 {
    let pid = fork();
    if pid == 0 {
        let e = exec(path, args);
        crate::eprintln!("exec {path} failed: {e}");
        exit(127);
    }
    pid
}

pub const PROT_READ: u64 = 1;
pub const PROT_WRITE: u64 = 2;
pub const MAP_PRIVATE: u64 = 2;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const WNOHANG: u64 = 1;
pub const EFAULT: i64 = -14;
pub const EINVAL: i64 = -22;
pub const ENOSYS: i64 = -38;
pub const ECHILD: i64 = -10;
pub const ESRCH: i64 = -3;
pub const ENOENT: i64 = -2;
pub const EBADF: i64 = -9;
pub const ENOMEM: i64 = -12;
pub const ENOEXEC: i64 = -8;

/// clone(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
/// | CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID): a thread
/// on `stack_top` that runs `f(arg)` (which must end with `exit_thread`);
/// `*ctid` holds its tid before either runs again, and is zeroed and woken
/// when it ends. Returns its tid or -errno.
///
/// # Safety
/// `stack_top` must be the 16-byte aligned top of memory nothing else
/// uses while the thread runs, and `ctid` valid until it ends.
pub unsafe fn spawn_thread(
    stack_top: u64,
    f: extern "C" fn(u64) -> !,
    arg: u64,
    ctid: *mut u32,
) -> i64 {
    const FLAGS: u64 = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000 | 0x100000 | 0x200000;
    let ret: i64;
    // SAFETY: as the caller promises; the child starts on its own stack
    // with rbp cleared and calls `f`, never returning here (r12 and r13
    // survive both the syscall and the clone).
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") 56i64 => ret,
            in("rdi") FLAGS, in("rsi") stack_top, in("rdx") ctid as u64,
            in("r10") ctid as u64, in("r8") 0u64,
            in("r12") arg, in("r13") f as usize as u64,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    ret
}

/// futex(uaddr, FUTEX_WAIT_PRIVATE, val) without a timeout.
pub fn futex_wait(word: &core::sync::atomic::AtomicU32, val: u32) -> i64 {
    syscall(202, [word.as_ptr() as u64, 128, val as u64, 0, 0, 0])
}

/// futex(uaddr, FUTEX_WAKE_PRIVATE, n).
pub fn futex_wake(word: &core::sync::atomic::AtomicU32, n: u32) -> i64 {
    syscall(202, [word.as_ptr() as u64, 129, n as u64, 0, 0, 0])
}
