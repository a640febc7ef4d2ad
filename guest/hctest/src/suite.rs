//! The hypercall test suite (`--append test=hypercalls`, `vkernel test`):
//! every vmspace hypercall with valid arguments and with each invalid case
//! the seed checks, effects checked by running code in the vmspace. Prints
//! one TAP-style line per case and `N passed, N failed`.

use core::fmt::Display;

use crate::usercode::{
    self, frame, new_process, peek, poke, GuestTables, Routine, DATA, PAGE, TEXT, VPT_BASE,
    VPT_PAGES,
};
use guestlib::hypercall;
use guestlib::vmspace::{self as vms, VmResult};
use guestlib::{print, println};
use vkernel_abi::frame::*;
use vkernel_abi::layout::*;
use vkernel_abi::mman::*;
use vkernel_abi::paging::{pf, pte};
use vkernel_abi::{
    rflags, selector, BatchEntry, BootInfo, Call, Errno, Hypercall, TrapFrame, VextFrame,
    BATCH_EXPECT_ANY, BATCH_MAX, VMSPACE_CTL_RUN,
};

struct Suite {
    n: u32,
    passed: u32,
    failed: u32,
    mem_bytes: u64,
    pool_bytes: u64,
    /// The host's stdin is a terminal (`console_kinds` byte 0).
    stdin_tty: bool,
}

fn show(r: VmResult) -> ResultText {
    ResultText(r)
}

struct ResultText(VmResult);

impl Display for ResultText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Ok(v) => write!(f, "{v:#x}"),
            Err(e) => write!(f, "{}", e.name()),
        }
    }
}

impl Suite {
    fn check(&mut self, desc: &str, ok: bool, detail: impl Display) {
        self.n += 1;
        if ok {
            self.passed += 1;
            println!("ok {} - {desc}", self.n);
        } else {
            self.failed += 1;
            println!("not ok {} - {desc} ({detail})", self.n);
        }
    }

    /// Checks a call's errno.
    fn err(&mut self, desc: &str, got: VmResult, want: Errno) {
        let ok = got == Err(want);
        self.check(desc, ok, Pair(show(got), want.name()));
    }

    /// Checks a call's success value.
    fn ok(&mut self, desc: &str, got: VmResult, want: i64) {
        let ok = got == Ok(want);
        self.check(desc, ok, Pair(show(got), Hex(want)));
    }
}

struct Pair<A, B>(A, B);
impl<A: Display, B: Display> Display for Pair<A, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "got {}, want {}", self.0, self.1)
    }
}
struct Hex(i64);
impl Display for Hex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Runs `tf` in `id` until it traps; returns ctl's result and the frame.
fn run(id: u64, mut tf: TrapFrame, timeout_us: u64) -> (VmResult, TrapFrame) {
    let mut vf = VextFrame::default();
    let r = vms::run(id, &mut tf, &mut vf, timeout_us);
    (r, tf)
}

/// Runs `routine` and describes the trap it came back with.
fn trap_of(id: u64, routine: Routine, rdi: u64, rsi: u64) -> (u64, TrapFrame) {
    let (r, tf) = run(id, frame(routine, rdi, rsi), 1_000_000);
    match r {
        Ok(_) => (tf.trapno, tf),
        Err(_) => (u64::MAX, tf),
    }
}

fn read_u64(id: u64, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    (vms::pread(id, &mut b, addr) == Ok(8)).then(|| u64::from_le_bytes(b))
}

/// Runs the whole suite and returns the number of failed cases.
pub fn run_all(info: &BootInfo) -> u32 {
    let mut s = Suite {
        n: 0,
        passed: 0,
        failed: 0,
        mem_bytes: info.mem_bytes,
        pool_bytes: info.pool_bytes,
        stdin_tty: info.console_kinds as u8 == vkernel_abi::console_kind::TTY,
    };
    let pool_at_start = vms::pool_pages();
    basic_cases(&mut s);
    // Before any vmspace is destroyed: the pool then has no page that was
    // a table and that KVM may still write-protect (a write to one is
    // emulated, which sees the tables as they are, stale or not).
    reduction_cases(&mut s);
    create_destroy(&mut s);
    mmap_cases(&mut s);
    munmap_cases(&mut s);
    pread_pwrite_cases(&mut s);
    preadv_pwritev_cases(&mut s);
    copy_cases(&mut s);
    mcontrol_cases(&mut s);
    mprotect_cases(&mut s);
    ctl_cases(&mut s);
    run_cases(&mut s);
    isolation_cases(&mut s);
    context_cases(&mut s);
    io_cases(&mut s);
    clone_cases(&mut s);
    batch_cases(&mut s);
    vpagetable_cases(&mut s);
    vpagetable_whole_range_cases(&mut s);
    let mem_bytes = s.mem_bytes;
    crate::hostfs::cases(mem_bytes, &mut |desc, ok, r| s.check(desc, ok, show(r)));
    let pool_at_end = vms::pool_pages();
    s.check(
        "pool: every page back after all vmspaces are destroyed",
        pool_at_end == pool_at_start,
        Pair(pool_at_end, pool_at_start),
    );
    println!("{} passed, {} failed", s.passed, s.failed);
    s.failed
}

fn basic_cases(s: &mut Suite) {
    use guestlib::hypercall::{call, call_nr};
    use vkernel_abi::Hypercall;
    s.ok("noop -> 0", call(Hypercall::Noop, [0; 7]), 0);
    let t0 = guestlib::hypercall::clock_ns();
    let t1 = guestlib::hypercall::clock_ns();
    s.check("clock: monotonic", t1 >= t0 && t0 > 0, Pair(t1, t0));
    let msg = b"console_write: this line is the test\n";
    s.ok(
        "console_write -> bytes written",
        call(
            Hypercall::ConsoleWrite,
            [msg.as_ptr() as u64, msg.len() as u64, 0, 0, 0, 0, 0],
        ),
        msg.len() as i64,
    );
    s.err(
        "console_write: buffer outside memory -> EFAULT",
        call(Hypercall::ConsoleWrite, [s.mem_bytes - 4, 8, 0, 0, 0, 0, 0]),
        Errno::EFAULT,
    );
    s.err(
        "console_read: buffer outside memory -> EFAULT",
        call(Hypercall::ConsoleRead, [s.mem_bytes, 8, 0, 0, 0, 0, 0]),
        Errno::EFAULT,
    );
    let deadline = guestlib::hypercall::clock_ns() + 5_000_000;
    let r = call(Hypercall::Idle, [deadline, 0, 0, 0, 0, 0, 0]);
    let woke = guestlib::hypercall::clock_ns();
    s.check(
        "idle: sleeps until the deadline",
        r == Ok(0) && woke >= deadline,
        Pair(show(r), woke),
    );
    let r = call(Hypercall::Idle, [1, 0, 0, 0, 0, 0, 0]);
    s.check(
        "idle: a deadline already past polls -> 0 or event bits",
        matches!(r, Ok(0..=3)),
        show(r),
    );
    s.err(
        "console_winsize: buffer outside memory -> EFAULT",
        call(Hypercall::ConsoleWinsize, [s.mem_bytes, 0, 0, 0, 0, 0, 0]),
        Errno::EFAULT,
    );
    s.err(
        "console_winsize: buffer across the end of memory -> EFAULT",
        call(
            Hypercall::ConsoleWinsize,
            [s.mem_bytes - 4, 0, 0, 0, 0, 0, 0],
        ),
        Errno::EFAULT,
    );
    let mut ws = [0u16; 4];
    let r = call(
        Hypercall::ConsoleWinsize,
        [ws.as_mut_ptr() as u64, 0, 0, 0, 0, 0, 0],
    );
    if s.stdin_tty {
        s.check(
            "console_winsize: stdin a terminal -> its size",
            matches!(r, Ok(n) if n >= 0),
            show(r),
        );
    } else {
        s.err(
            "console_winsize: stdin not a terminal -> ENOTTY",
            r,
            Errno::ENOTTY,
        );
    }
    s.err(
        "unknown hypercall -> ENOSYS",
        call_nr(60, [0; 7]),
        Errno::ENOSYS,
    );
}

fn create_destroy(s: &mut Suite) {
    s.err(
        "create: id 0 -> EINVAL",
        vms::create(0, 0, 0),
        Errno::EINVAL,
    );
    s.err(
        "create: type != 0 -> EINVAL",
        vms::create(0x100, 1, 0),
        Errno::EINVAL,
    );
    s.err(
        "create: data != 0 -> EINVAL",
        vms::create(0x100, 0, 0x1234),
        Errno::EINVAL,
    );
    s.ok("create: new id -> 0", vms::create(0x100, 0, 0), 0);
    s.err(
        "create: duplicate id -> EEXIST",
        vms::create(0x100, 0, 0),
        Errno::EEXIST,
    );
    s.err(
        "destroy: unknown id -> ENOENT",
        vms::destroy(0x999),
        Errno::ENOENT,
    );
    s.ok("destroy: existing id -> 0", vms::destroy(0x100), 0);
    s.err(
        "destroy: already destroyed -> ENOENT",
        vms::destroy(0x100),
        Errno::ENOENT,
    );
    let before = vms::pool_pages();
    let _ = vms::create(0x101, 0, 0);
    let _ = vms::mmap(
        0x101,
        DATA,
        8 * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_ANON | MAP_PRIVATE | MAP_FIXED,
        FD_NONE,
        0,
    );
    let _ = vms::pwrite(0x101, &[1u8; 8], DATA + 3 * PAGE);
    let during = vms::pool_pages();
    let _ = vms::destroy(0x101);
    let after = vms::pool_pages();
    s.check(
        "destroy: frees the vmspace's pages and tables",
        during > before && after == before,
        Pair(after, before),
    );
}

fn mmap_cases(s: &mut Suite) {
    let id = 0x200;
    let _ = vms::create(id, 0, 0);
    let rw = PROT_READ | PROT_WRITE;
    let anon = MAP_ANON | MAP_PRIVATE;
    let fixed = anon | MAP_FIXED;
    s.err(
        "mmap: unknown id -> ENOENT",
        vms::mmap(0x999, DATA, PAGE, rw, fixed, FD_NONE, 0),
        Errno::ENOENT,
    );
    s.err(
        "mmap: zero length -> EINVAL",
        vms::mmap(id, DATA, 0, rw, fixed, FD_NONE, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: unknown prot bits -> EINVAL",
        vms::mmap(id, DATA, PAGE, 0x100, fixed, FD_NONE, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: unknown flag bits -> EINVAL",
        vms::mmap(id, DATA, PAGE, rw, fixed | 0x4_0000, FD_NONE, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: neither SHARED nor PRIVATE -> EINVAL",
        vms::mmap(id, DATA, PAGE, rw, MAP_ANON | MAP_FIXED, FD_NONE, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: both SHARED and PRIVATE -> EINVAL",
        vms::mmap(id, DATA, PAGE, rw, fixed | MAP_SHARED, FD_NONE, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: MAP_ANON with an fd -> EINVAL",
        vms::mmap(id, DATA, PAGE, rw, fixed, 3, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: MAP_ANON with an offset -> EINVAL",
        vms::mmap(id, DATA, PAGE, rw, fixed, FD_NONE, PAGE),
        Errno::EINVAL,
    );
    s.err(
        "mmap: unknown fd -> EBADF",
        vms::mmap(id, DATA, PAGE, rw, MAP_PRIVATE | MAP_FIXED, 5, 0),
        Errno::EBADF,
    );
    s.err(
        "mmap: MAP_FIXED unaligned address -> EINVAL",
        vms::mmap(id, DATA + 8, PAGE, rw, fixed, FD_NONE, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: MAP_FIXED range wraps -> EINVAL",
        vms::mmap(id, u64::MAX - PAGE + 1, 2 * PAGE, rw, fixed, FD_NONE, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: length wraps when rounded -> EINVAL",
        vms::mmap(id, DATA, u64::MAX - 10, rw, fixed, FD_NONE, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: MAP_FIXED below VM_MIN -> EINVAL",
        vms::mmap(id, 0, PAGE, rw, fixed, FD_NONE, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: MAP_FIXED above VM_MAX -> EINVAL",
        vms::mmap(id, VM_MAX_USER_ADDRESS, PAGE, rw, fixed, FD_NONE, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: MAP_FIXED across VM_MAX -> EINVAL",
        vms::mmap(
            id,
            VM_MAX_USER_ADDRESS - PAGE,
            2 * PAGE,
            rw,
            fixed,
            FD_NONE,
            0,
        ),
        Errno::EINVAL,
    );
    // Pages are charged when touched, so a mapping larger than the pool
    // is accepted; its page tables are charged at mmap (one PT per 2 MiB).
    s.ok(
        "mmap: larger than the pool (its pages charged when touched) -> 0",
        vms::mmap(
            id,
            1 << 40,
            s.pool_bytes + PAGE,
            rw,
            anon | MAP_FIXED,
            FD_NONE,
            0,
        )
        .map(|_| 0),
        0,
    );
    let _ = vms::munmap(id, 1 << 40, s.pool_bytes + PAGE);
    s.err(
        "mmap: more page tables than the pool holds -> ENOMEM",
        vms::mmap(id, 0, (s.pool_bytes / PAGE + 1) << 21, rw, anon, FD_NONE, 0),
        Errno::ENOMEM,
    );
    s.err(
        "mmap: physical memory past the kernel's RAM -> EINVAL",
        vms::mmap(
            id,
            DATA,
            2 * PAGE,
            rw,
            MAP_SHARED | MAP_FIXED,
            PHYSMEM_FD,
            s.mem_bytes - PAGE,
        ),
        Errno::EINVAL,
    );
    s.err(
        "mmap: physical memory at an unaligned offset -> EINVAL",
        vms::mmap(id, DATA, PAGE, rw, MAP_SHARED | MAP_FIXED, PHYSMEM_FD, 0x10),
        Errno::EINVAL,
    );
    let vpt = MAP_SHARED | MAP_VPAGETABLE | MAP_FIXED;
    s.err(
        "mmap: MAP_VPAGETABLE without PROT_WRITE -> EINVAL",
        vms::mmap(id, DATA, PAGE, PROT_READ, vpt, PHYSMEM_FD, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: MAP_VPAGETABLE without PROT_READ -> EINVAL",
        vms::mmap(id, DATA, PAGE, PROT_WRITE, vpt, PHYSMEM_FD, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: MAP_VPAGETABLE private -> EINVAL",
        vms::mmap(
            id,
            DATA,
            PAGE,
            rw,
            MAP_PRIVATE | MAP_VPAGETABLE | MAP_FIXED,
            PHYSMEM_FD,
            0,
        ),
        Errno::EINVAL,
    );
    s.err(
        "mmap: MAP_VPAGETABLE anonymous -> EINVAL",
        vms::mmap(id, DATA, PAGE, rw, vpt | MAP_ANON, FD_NONE, 0),
        Errno::EINVAL,
    );
    s.err(
        "mmap: MAP_VPAGETABLE with MAP_POPULATE -> EINVAL",
        vms::mmap(id, DATA, PAGE, rw, vpt | MAP_POPULATE, PHYSMEM_FD, 0),
        Errno::EINVAL,
    );
    // MAP_POPULATE brings the pages in at once: the pool holds them (and
    // their tables) before anything touches them.
    let far = 0x50_0000_0000u64;
    let before = vms::pool_pages();
    let r = vms::mmap(id, far, 4 * PAGE, rw, fixed | MAP_POPULATE, FD_NONE, 0);
    let after = vms::pool_pages();
    s.check(
        "mmap: MAP_POPULATE brings every page in at once",
        r == Ok(far as i64) && after - before >= 4 + 3,
        Pair(show(r), after - before),
    );
    let _ = vms::munmap(id, far, 4 * PAGE);
    s.err(
        "mmap: MAP_VPAGETABLE over an unknown fd -> EBADF",
        vms::mmap(id, DATA, PAGE, rw, vpt, 5, 0),
        Errno::EBADF,
    );
    let r = vms::mmap(id, 0, 3 * PAGE, rw, anon, FD_NONE, 0);
    let ok = matches!(r, Ok(a) if (a as u64).is_multiple_of(PAGE) && (a as u64) >= VM_MIN_USER_ADDRESS && (a as u64) + 3 * PAGE <= VM_MAX_USER_ADDRESS);
    s.check("mmap: anywhere -> a page-aligned user address", ok, show(r));
    s.ok(
        "mmap: MAP_FIXED -> the address asked for",
        vms::mmap(id, DATA, PAGE, rw, fixed, FD_NONE, 0),
        DATA as i64,
    );
    let r2 = vms::mmap(id, DATA, 2 * PAGE, rw, anon, FD_NONE, 0);
    s.check(
        "mmap: hint on a used range -> another free range",
        matches!(r2, Ok(a) if a as u64 != DATA && (a as u64).is_multiple_of(PAGE)),
        show(r2),
    );
    let _ = vms::destroy(id);
}

fn munmap_cases(s: &mut Suite) {
    let id = 0x300;
    let _ = vms::create(id, 0, 0);
    let rw = PROT_READ | PROT_WRITE;
    let fixed = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
    let _ = vms::mmap(id, DATA, 8 * PAGE, rw, fixed, FD_NONE, 0);
    s.err(
        "munmap: unknown id -> ENOENT",
        vms::munmap(0x999, DATA, PAGE),
        Errno::ENOENT,
    );
    s.ok("munmap: zero length -> 0", vms::munmap(id, DATA, 0), 0);
    s.err(
        "munmap: range wraps -> EINVAL",
        vms::munmap(id, u64::MAX - PAGE, 4 * PAGE),
        Errno::EINVAL,
    );
    s.err(
        "munmap: length wraps when rounded -> EINVAL",
        vms::munmap(id, DATA + 1, u64::MAX),
        Errno::EINVAL,
    );
    s.err(
        "munmap: above VM_MAX -> EINVAL",
        vms::munmap(id, VM_MAX_USER_ADDRESS, PAGE),
        Errno::EINVAL,
    );
    s.err(
        "munmap: below VM_MIN -> EINVAL",
        vms::munmap(id, 0, PAGE),
        Errno::EINVAL,
    );
    s.err(
        "munmap: range with a hole -> EINVAL",
        vms::munmap(id, DATA + 7 * PAGE, 2 * PAGE),
        Errno::EINVAL,
    );
    s.err(
        "munmap: nothing mapped there -> EINVAL",
        vms::munmap(id, 0x1000_0000, PAGE),
        Errno::EINVAL,
    );
    let _ = vms::pwrite(id, &[7u8; 16], DATA + 2 * PAGE);
    s.ok(
        "munmap: unaligned address is rounded down -> 0",
        vms::munmap(id, DATA + 2 * PAGE + 0x10, 0x10),
        0,
    );
    s.check(
        "munmap: the page is gone (pread short)",
        read_u64(id, DATA + 2 * PAGE).is_none(),
        "pread still works",
    );
    s.check(
        "munmap: its neighbours stay",
        read_u64(id, DATA + 3 * PAGE) == Some(0),
        "neighbour lost",
    );
    s.ok(
        "munmap: whole remaining range around the hole's edges -> 0",
        vms::munmap(id, DATA + 3 * PAGE, 5 * PAGE),
        0,
    );
    let _ = vms::destroy(id);
}

fn pread_pwrite_cases(s: &mut Suite) {
    let id = 0x400;
    let _ = vms::create(id, 0, 0);
    let rw = PROT_READ | PROT_WRITE;
    let _ = vms::mmap(
        id,
        DATA,
        2 * PAGE,
        rw,
        MAP_ANON | MAP_PRIVATE | MAP_FIXED,
        FD_NONE,
        0,
    );
    let mut buf = [0u8; 64];
    s.err(
        "pread: unknown id -> ENOENT",
        vms::pread(0x999, &mut buf, DATA),
        Errno::ENOENT,
    );
    s.err(
        "pwrite: unknown id -> ENOENT",
        vms::pwrite(0x999, &buf, DATA),
        Errno::ENOENT,
    );
    let msg = *b"written by pwrite, read by pread";
    s.ok(
        "pwrite: into demand-zero memory -> full count",
        vms::pwrite(id, &msg, DATA + 100),
        msg.len() as i64,
    );
    let mut back = [0u8; 32];
    let r = vms::pread(id, &mut back, DATA + 100);
    s.check(
        "pread: returns what pwrite wrote",
        r == Ok(32) && back == msg,
        show(r),
    );
    let mut big = [0u8; 256];
    s.ok(
        "pread: across the end of the mapping -> short count",
        vms::pread(id, &mut big, DATA + 2 * PAGE - 100),
        100,
    );
    s.ok(
        "pwrite: across the end of the mapping -> short count",
        vms::pwrite(id, &big, DATA + 2 * PAGE - 8),
        8,
    );
    s.ok(
        "pread: at an unmapped page -> 0",
        vms::pread(id, &mut buf, 0x1000_0000),
        0,
    );
    s.ok(
        "pread: zero bytes -> 0",
        vms::pread(id, &mut buf[..0], DATA),
        0,
    );
    s.err(
        "pread: kernel buffer outside guest memory -> EFAULT",
        vms::pread_raw(id, s.mem_bytes + PAGE, 16, 0, DATA),
        Errno::EFAULT,
    );
    s.err(
        "pwrite: kernel buffer across the end of memory -> EFAULT",
        vms::pwrite_raw(id, s.mem_bytes - 8, 16, 0, DATA),
        Errno::EFAULT,
    );
    s.err(
        "pread: offset range wraps -> EINVAL",
        vms::pread(id, &mut buf, u64::MAX - 8),
        Errno::EINVAL,
    );
    s.err(
        "pread: flags != 0 -> EINVAL",
        vms::pread_raw(id, buf.as_mut_ptr() as u64, 8, 1, DATA),
        Errno::EINVAL,
    );
    let _ = vms::destroy(id);
}

fn preadv_pwritev_cases(s: &mut Suite) {
    use vkernel_abi::KernelIovec;
    let id = 0x410;
    let _ = vms::create(id, 0, 0);
    let rw = PROT_READ | PROT_WRITE;
    let _ = vms::mmap(
        id,
        DATA,
        2 * PAGE,
        rw,
        MAP_ANON | MAP_PRIVATE | MAP_FIXED,
        FD_NONE,
        0,
    );
    let iov_of = |bufs: &[&[u8]]| -> [KernelIovec; 3] {
        let mut v = [KernelIovec::default(); 3];
        for (slot, b) in v.iter_mut().zip(bufs) {
            *slot = KernelIovec {
                base: b.as_ptr() as u64,
                len: b.len() as u64,
            };
        }
        v
    };
    let (a, b) = ([0x5au8; 3000], [0xa5u8; 2000]);
    let empty: [u8; 0] = [];
    let iov = iov_of(&[&a, &empty, &b]);
    s.err(
        "preadv: unknown id -> ENOENT",
        vms::preadv(0x999, &iov, DATA),
        Errno::ENOENT,
    );
    s.err(
        "pwritev: unknown id -> ENOENT",
        vms::pwritev(0x999, &iov, DATA),
        Errno::ENOENT,
    );
    s.ok(
        "pwritev: three buffers (one empty) across a page boundary -> full count",
        vms::pwritev(id, &iov, DATA + 3000),
        5000,
    );
    let mut back = [0u8; 5000];
    let r = vms::pread(id, &mut back, DATA + 3000);
    s.check(
        "pwritev: the buffers landed one after another",
        r == Ok(5000) && back[..3000] == a && back[3000..] == b,
        show(r),
    );
    let (mut x, mut y) = ([0u8; 1], [0u8; 4999]);
    let iov = [
        KernelIovec {
            base: x.as_mut_ptr() as u64,
            len: 1,
        },
        KernelIovec {
            base: y.as_mut_ptr() as u64,
            len: 4999,
        },
    ];
    let r = vms::preadv(id, &iov, DATA + 3000);
    s.check(
        "preadv: scatters the range over the buffers in turn",
        r == Ok(5000) && x[0] == 0x5a && y[..2999] == a[1..] && y[2999..] == b,
        show(r),
    );
    s.ok(
        "preadv: across the end of the mapping -> short count",
        vms::preadv(id, &iov, DATA + 2 * PAGE - 100),
        100,
    );
    s.ok(
        "pwritev: across the end of the mapping -> short count",
        vms::pwritev(id, &iov, DATA + 2 * PAGE - 8),
        8,
    );
    s.ok(
        "preadv: at an unmapped page -> 0",
        vms::preadv(id, &iov, 0x1000_0000),
        0,
    );
    let iovp = iov.as_ptr() as u64;
    s.err(
        "preadv: iovcnt 0 -> EINVAL",
        vms::preadv_raw(id, iovp, 0, 0, DATA),
        Errno::EINVAL,
    );
    s.err(
        "preadv: iovcnt past VMSPACE_IOV_MAX -> EINVAL",
        vms::preadv_raw(id, iovp, vkernel_abi::VMSPACE_IOV_MAX + 1, 0, DATA),
        Errno::EINVAL,
    );
    s.err(
        "preadv: iovec array outside guest memory -> EFAULT",
        vms::preadv_raw(id, s.mem_bytes + PAGE, 1, 0, DATA),
        Errno::EFAULT,
    );
    s.err(
        "pwritev: iovec array across the end of memory -> EFAULT",
        vms::pwritev_raw(id, s.mem_bytes - 8, 1, 0, DATA),
        Errno::EFAULT,
    );
    let huge = [
        KernelIovec {
            base: x.as_mut_ptr() as u64,
            len: u64::MAX,
        },
        KernelIovec {
            base: x.as_mut_ptr() as u64,
            len: 2,
        },
    ];
    s.err(
        "preadv: lengths whose sum overflows -> EINVAL",
        vms::preadv(id, &huge, DATA),
        Errno::EINVAL,
    );
    let outside = [
        iov[0],
        KernelIovec {
            base: s.mem_bytes - 4,
            len: 8,
        },
    ];
    s.err(
        "preadv: a buffer across the end of memory -> EFAULT",
        vms::preadv(id, &outside, DATA),
        Errno::EFAULT,
    );
    s.err(
        "pwritev: a buffer outside guest memory -> EFAULT",
        vms::pwritev(
            id,
            &[KernelIovec {
                base: s.mem_bytes + PAGE,
                len: 8,
            }],
            DATA,
        ),
        Errno::EFAULT,
    );
    s.err(
        "preadv: offset range wraps -> EINVAL",
        vms::preadv(id, &iov, u64::MAX - 8),
        Errno::EINVAL,
    );
    s.err(
        "pwritev: flags != 0 -> EINVAL",
        vms::pwritev_raw(id, iovp, 2, 1, DATA),
        Errno::EINVAL,
    );
    let _ = vms::destroy(id);
}

fn copy_cases(s: &mut Suite) {
    let (src, dst) = (0x420, 0x421);
    let _ = vms::create(src, 0, 0);
    let _ = vms::create(dst, 0, 0);
    let rw = PROT_READ | PROT_WRITE;
    let anon = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
    let _ = vms::mmap(src, DATA, 2 * PAGE, rw, anon, FD_NONE, 0);
    let _ = vms::mmap(dst, DATA, 2 * PAGE, rw, anon, FD_NONE, 0);
    let data: [u8; 5000] = core::array::from_fn(|i| (i * 7 + 1) as u8);
    let _ = vms::pwrite(src, &data, DATA + 100);
    s.ok(
        "copy: vmspace to vmspace across a page boundary -> full count",
        vms::copy(dst, DATA + 3000, src, DATA + 100, 5000),
        5000,
    );
    let mut back = [0u8; 5000];
    let r = vms::pread(dst, &mut back, DATA + 3000);
    s.check(
        "copy: the bytes arrived in order",
        r == Ok(5000) && back == data,
        show(r),
    );
    s.ok(
        "copy: across the end of the destination's mapping -> short count",
        vms::copy(dst, DATA + 2 * PAGE - 10, src, DATA, 100),
        10,
    );
    s.ok(
        "copy: across the end of the source's mapping -> short count",
        vms::copy(dst, DATA, src, DATA + 2 * PAGE - 30, 100),
        30,
    );
    s.ok(
        "copy: from an unmapped page -> 0",
        vms::copy(dst, DATA, src, 0x1000_0000, 100),
        0,
    );
    s.ok(
        "copy: within one vmspace, overlapping -> full count",
        vms::copy(src, DATA + 200, src, DATA + 100, 5000),
        5000,
    );
    let r = vms::pread(src, &mut back, DATA + 200);
    s.check(
        "copy: an overlapping copy moves as through a buffer",
        r == Ok(5000) && back == data,
        show(r),
    );
    s.err(
        "copy: unknown destination -> ENOENT",
        vms::copy(0x999, DATA, src, DATA, 8),
        Errno::ENOENT,
    );
    s.err(
        "copy: unknown source -> ENOENT",
        vms::copy(dst, DATA, 0x999, DATA, 8),
        Errno::ENOENT,
    );
    s.err(
        "copy: len past VMSPACE_COPY_MAX -> EINVAL",
        vms::copy(dst, DATA, src, DATA, vkernel_abi::VMSPACE_COPY_MAX + 1),
        Errno::EINVAL,
    );
    s.err(
        "copy: destination range wraps -> EINVAL",
        vms::copy(dst, u64::MAX - 8, src, DATA, 100),
        Errno::EINVAL,
    );
    s.err(
        "copy: source range wraps -> EINVAL",
        vms::copy(dst, DATA, src, u64::MAX - 8, 100),
        Errno::EINVAL,
    );
    let _ = vms::destroy(src);
    let _ = vms::destroy(dst);
}

fn mcontrol_cases(s: &mut Suite) {
    let id = 0x500;
    let _ = vms::create(id, 0, 0);
    let rw = PROT_READ | PROT_WRITE;
    let _ = vms::mmap(
        id,
        DATA,
        4 * PAGE,
        rw,
        MAP_ANON | MAP_PRIVATE | MAP_FIXED,
        FD_NONE,
        0,
    );
    s.err(
        "mcontrol: unknown id -> ENOENT",
        vms::mcontrol(0x999, DATA, PAGE, MADV_NORMAL, 0),
        Errno::ENOENT,
    );
    s.err(
        "mcontrol: behaviour past MADV_CONTROL_END -> EINVAL",
        vms::mcontrol(id, DATA, PAGE, MADV_CONTROL_END + 1, 0),
        Errno::EINVAL,
    );
    s.err(
        "mcontrol: negative behaviour -> EINVAL",
        vms::mcontrol(id, DATA, PAGE, u64::MAX, 0),
        Errno::EINVAL,
    );
    s.err(
        "mcontrol: range wraps -> EINVAL",
        vms::mcontrol(id, DATA, u64::MAX - PAGE, MADV_NORMAL, 0),
        Errno::EINVAL,
    );
    s.err(
        "mcontrol: above VM_MAX -> EINVAL",
        vms::mcontrol(id, VM_MAX_USER_ADDRESS - PAGE, 2 * PAGE, MADV_NORMAL, 0),
        Errno::EINVAL,
    );
    s.err(
        "mcontrol: below VM_MIN -> EINVAL",
        vms::mcontrol(id, 0, PAGE, MADV_NORMAL, 0),
        Errno::EINVAL,
    );
    s.err(
        "mcontrol: MADV_SETMAP outside a VPAGETABLE mapping -> EINVAL",
        vms::mcontrol(id, DATA, PAGE, MADV_SETMAP, 0x10_0000),
        Errno::EINVAL,
    );
    let before = vms::pool_pages();
    s.ok(
        "mcontrol: MADV_WILLNEED -> 0",
        vms::mcontrol(id, DATA, 4 * PAGE, MADV_WILLNEED, 0),
        0,
    );
    let after = vms::pool_pages();
    s.check(
        "mcontrol: MADV_WILLNEED prefaults the pages",
        after >= before + 4,
        Pair(after, before),
    );
    let _ = vms::pwrite(id, &0x1122_3344u64.to_le_bytes(), DATA + PAGE);
    s.ok(
        "mcontrol: MADV_INVAL -> 0",
        vms::mcontrol(id, DATA, 4 * PAGE, MADV_INVAL, 0),
        0,
    );
    s.check(
        "mcontrol: MADV_INVAL keeps the data",
        read_u64(id, DATA + PAGE) == Some(0x1122_3344),
        "data lost",
    );
    s.ok(
        "mcontrol: MADV_DONTNEED -> 0",
        vms::mcontrol(id, DATA + PAGE, PAGE, MADV_DONTNEED, 0),
        0,
    );
    s.check(
        "mcontrol: MADV_DONTNEED discards (reads zero again)",
        read_u64(id, DATA + PAGE) == Some(0),
        "data still there",
    );
    let _ = vms::destroy(id);
}

fn mprotect_cases(s: &mut Suite) {
    let id = 0x600;
    let _ = new_process(id);
    s.err(
        "mprotect: unknown id -> ENOENT",
        vms::mprotect(0x999, DATA, PAGE, PROT_READ),
        Errno::ENOENT,
    );
    s.err(
        "mprotect: unaligned address -> EINVAL",
        vms::mprotect(id, DATA + 4, PAGE, PROT_READ),
        Errno::EINVAL,
    );
    s.err(
        "mprotect: unknown prot bits -> EINVAL",
        vms::mprotect(id, DATA, PAGE, 0x80),
        Errno::EINVAL,
    );
    s.err(
        "mprotect: range with a hole -> ENOMEM",
        vms::mprotect(id, DATA, 64 * PAGE, PROT_READ),
        Errno::ENOMEM,
    );
    s.err(
        "mprotect: above VM_MAX -> EINVAL",
        vms::mprotect(id, VM_MAX_USER_ADDRESS, PAGE, PROT_READ),
        Errno::EINVAL,
    );
    let _ = vms::pwrite(id, &5u64.to_le_bytes(), DATA);
    s.ok(
        "mprotect: read-only -> 0",
        vms::mprotect(id, DATA, PAGE, PROT_READ),
        0,
    );
    let (t, tf) = trap_of(id, Routine::StoreLoad, DATA, 9);
    s.check(
        "mprotect: a write to the read-only page traps (T_PAGEFLT, user write)",
        t == T_PAGEFLT && tf.addr == DATA && tf.err & 6 == 6,
        Pair(t, Hex(tf.err as i64)),
    );
    let (t, tf) = trap_of(id, Routine::Load, DATA, 0);
    s.check(
        "mprotect: reading it still works",
        t == T_FAST_SYSCALL && tf.rax == 5,
        Pair(t, tf.rax),
    );
    let _ = vms::destroy(id);
}

/// Translations taken away from a process that has run, so KVM may hold
/// them: the host must copy the tables it changes (or drop KVM's
/// translations), or the process goes on using the old ones.
fn reduction_cases(s: &mut Suite) {
    let id = 0x610;
    let _ = new_process(id);
    let _ = trap_of(id, Routine::StoreLoad, DATA, 1);
    let _ = vms::mprotect(id, DATA, PAGE, PROT_READ);
    let (t, tf) = trap_of(id, Routine::StoreLoad, DATA, 2);
    s.check(
        "reduce: a page the process wrote, made read-only, traps on its next write",
        t == T_PAGEFLT && tf.addr == DATA && tf.err & 6 == 6 && read_u64(id, DATA) == Some(1),
        Pair(t, Hex(tf.err as i64)),
    );
    let page = DATA + PAGE;
    let _ = vms::pwrite(id, &0x1111u64.to_le_bytes(), page);
    let _ = trap_of(id, Routine::Load, page, 0);
    let _ = vms::munmap(id, page, PAGE);
    // A new page elsewhere takes the freed frame, so the new mapping gets
    // another one.
    let anon = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
    let decoy = DATA + 32 * PAGE;
    let _ = vms::mmap(id, decoy, PAGE, PROT_READ | PROT_WRITE, anon, FD_NONE, 0);
    let _ = vms::pwrite(id, &0x9999u64.to_le_bytes(), decoy);
    let _ = vms::mmap(id, page, PAGE, PROT_READ | PROT_WRITE, anon, FD_NONE, 0);
    let _ = vms::pwrite(id, &0x2222u64.to_le_bytes(), page);
    let (t, tf) = trap_of(id, Routine::Load, page, 0);
    s.check(
        "reduce: after munmap and a new mapping at the same address the process sees the new page",
        t == T_FAST_SYSCALL && tf.rax == 0x2222,
        Pair(t, Hex(tf.rax as i64)),
    );
    // Alone in its 1 GiB region: munmap frees its PT and PD.
    let far = 0x40_0000_0000u64;
    let rw = PROT_READ | PROT_WRITE;
    let _ = vms::mmap(id, far, PAGE, rw, anon, FD_NONE, 0);
    let _ = vms::pwrite(id, &0x3333u64.to_le_bytes(), far);
    let _ = trap_of(id, Routine::Load, far, 0);
    let _ = vms::munmap(id, far, PAGE);
    let _ = vms::mmap(id, far, PAGE, rw, anon, FD_NONE, 0);
    let _ = vms::pwrite(id, &0x4444u64.to_le_bytes(), far);
    let (t, tf) = trap_of(id, Routine::Load, far, 0);
    s.check(
        "reduce: after its tables are freed and made again the process sees the new page",
        t == T_FAST_SYSCALL && tf.rax == 0x4444,
        Pair(t, Hex(tf.rax as i64)),
    );
    let page = DATA + 2 * PAGE;
    let _ = trap_of(id, Routine::StoreLoad, page, 0x5555);
    let _ = vms::mcontrol(id, page, PAGE, MADV_DONTNEED, 0);
    let (t, tf) = trap_of(id, Routine::Load, page, 0);
    s.check(
        "reduce: after MADV_DONTNEED of a page the process wrote, it reads zero",
        t == T_FAST_SYSCALL && tf.rax == 0,
        Pair(t, Hex(tf.rax as i64)),
    );
    let _ = vms::destroy(id);
}

/// A change that makes a good frame bad.
type Spoil = fn(&mut TrapFrame);

fn ctl_cases(s: &mut Suite) {
    let id = 0x700;
    let _ = new_process(id);
    let mut vf = VextFrame::default();
    let good = frame(Routine::Syscall, 1, 0);
    let mut tf = good;
    s.err(
        "ctl: unknown id -> ENOENT",
        vms::run(0x999, &mut tf, &mut vf, 0),
        Errno::ENOENT,
    );
    s.err(
        "ctl: command other than RUN -> EOPNOTSUPP",
        vms::ctl_raw(id, 2, &mut tf as *mut _ as u64, &mut vf as *mut _ as u64, 0),
        Errno::EOPNOTSUPP,
    );
    let vfa = &mut vf as *mut _ as u64;
    let tfa = &mut tf as *mut _ as u64;
    s.err(
        "ctl: trap frame outside guest memory -> EFAULT",
        vms::ctl_raw(id, 1, s.mem_bytes + PAGE, vfa, 0),
        Errno::EFAULT,
    );
    s.err(
        "ctl: trap frame across the end of memory -> EFAULT",
        vms::ctl_raw(id, 1, s.mem_bytes - 100, vfa, 0),
        Errno::EFAULT,
    );
    s.err(
        "ctl: vext frame outside guest memory -> EFAULT",
        vms::ctl_raw(id, 1, tfa, 0xffff_ffff_0000, 0),
        Errno::EFAULT,
    );
    let bad_frames: [(&str, Spoil); 8] = [
        ("ctl: frame with ring-0 code segment -> EINVAL", |f| {
            f.cs = selector::KERNEL_CS as u64
        }),
        ("ctl: frame with ring-0 stack segment -> EINVAL", |f| {
            f.ss = selector::KERNEL_SS as u64
        }),
        ("ctl: frame with IOPL 3 -> EINVAL", |f| {
            f.rflags |= rflags::IOPL
        }),
        ("ctl: frame with IF clear -> EINVAL", |f| {
            f.rflags &= !rflags::IF
        }),
        ("ctl: frame with VM86 flag -> EINVAL", |f| {
            f.rflags |= rflags::VM
        }),
        ("ctl: frame with non-canonical rip -> EINVAL", |f| {
            f.rip = 0x8000_0000_0000_0000
        }),
        ("ctl: frame with non-canonical rsp -> EINVAL", |f| {
            f.rsp = 0x0000_9000_0000_0000
        }),
        ("ctl: frame with rip in the trap area -> EINVAL", |f| {
            f.rip = TRAP_AREA_BASE
        }),
    ];
    for (desc, spoil) in bad_frames {
        let mut tf = good;
        spoil(&mut tf);
        let mut vf = VextFrame::default();
        s.err(desc, vms::run(id, &mut tf, &mut vf, 0), Errno::EINVAL);
    }
    let mut tf = good;
    let mut vf = VextFrame::default();
    vf.tls[0].base = 0xffff_8000_0000_0000;
    s.err(
        "ctl: non-canonical fs base -> EINVAL",
        vms::run(id, &mut tf, &mut vf, 0),
        Errno::EINVAL,
    );
    let _ = vms::destroy(id);
}

fn run_cases(s: &mut Suite) {
    let id = 0x800;
    let _ = new_process(id);
    let (r, tf) = run(id, frame(Routine::Syscall, 0x1234, 0), 0);
    let after_syscall = TEXT + usercode::offset(Routine::Syscall) + 5;
    s.check(
        "run: syscall returns to the kernel (T_FAST_SYSCALL, rax, rip past it)",
        r == Ok(0)
            && tf.trapno == T_FAST_SYSCALL
            && tf.rax == 0x1234
            && tf.rip == after_syscall
            && tf.err == 2,
        Pair(tf.trapno, Hex(tf.rip as i64)),
    );
    s.check(
        "run: syscall frame has rcx = return rip, r11 = rflags",
        tf.rcx == tf.rip && tf.r11 == tf.rflags,
        Hex(tf.rcx as i64),
    );
    let before = vms::pool_pages();
    let (t, tf) = trap_of(id, Routine::StoreLoad, DATA + 5 * PAGE + 8, 0xabcd);
    s.check(
        "run: demand-zero fault resolved by the host (no trap until syscall)",
        t == T_FAST_SYSCALL && tf.rax == 0xabcd,
        Pair(t, Hex(tf.rax as i64)),
    );
    s.check(
        "run: the faulted-in page came from the pool",
        vms::pool_pages() > before,
        vms::pool_pages(),
    );
    s.check(
        "run: data the process wrote is read back with pread",
        read_u64(id, DATA + 5 * PAGE + 8) == Some(0xabcd),
        "pread differs",
    );
    let (t, _) = trap_of(id, Routine::TouchPages, DATA, 16);
    s.check(
        "run: touching 16 fresh pages needs no help from the kernel",
        t == T_FAST_SYSCALL,
        t,
    );
    let _ = vms::pwrite(id, &0x5eedu64.to_le_bytes(), DATA + 9 * PAGE);
    let (t, tf) = trap_of(id, Routine::Load, DATA + 9 * PAGE, 0);
    s.check(
        "run: data written with pwrite is seen by the process",
        t == T_FAST_SYSCALL && tf.rax == 0x5eed,
        Hex(tf.rax as i64),
    );
    let (t, tf) = trap_of(id, Routine::Load, 0x3000_0000, 0);
    s.check(
        "run: fault outside any mapping goes to the kernel (T_PAGEFLT, addr, err)",
        t == T_PAGEFLT && tf.addr == 0x3000_0000 && tf.err & 4 == 4 && tf.err & 1 == 0,
        Pair(t, Hex(tf.addr as i64)),
    );
    let start = guestlib::hypercall::clock_ns();
    let (r, tf) = run(id, frame(Routine::Spin, 0, 0), 20_000);
    let took_us = (guestlib::hypercall::clock_ns() - start) / 1000;
    s.check(
        "run: timeout brings a spinning process back (trapno 0)",
        r == Ok(0)
            && tf.trapno == T_TIMEOUT
            && tf.rax > 0
            && (20_000..2_000_000).contains(&took_us),
        Pair(tf.trapno, took_us),
    );
    let rip_spin = tf.rip;
    // A 5 ms slice may end before the process runs at all when the host
    // is loaded: resuming must never lose its count, and within a few
    // slices it must have counted on.
    let (mut resumed, mut cur) = (true, tf);
    for _ in 0..50 {
        let (r2, tf2) = run(id, cur, 5_000);
        resumed &= r2 == Ok(0) && tf2.trapno == T_TIMEOUT && tf2.rax >= cur.rax;
        cur = tf2;
        if cur.rax > tf.rax || !resumed {
            break;
        }
    }
    s.check(
        "run: a timed-out process resumes where it was",
        resumed && cur.rax > tf.rax,
        Pair(Hex(rip_spin as i64), cur.rax),
    );
    // A slice shorter than KVM can deliver is rounded up to
    // RUN_TIMEOUT_MIN_US: the process runs (it never would if the timer
    // could fire before the vCPU entered it).
    let (mut ran, mut tiny) = (0u64, cur);
    for _ in 0..20 {
        let (r, tf2) = run(id, tiny, 1);
        if r != Ok(0) || tf2.trapno != T_TIMEOUT || tf2.rax < tiny.rax {
            ran = 0;
            break;
        }
        ran += u64::from(tf2.rax > tiny.rax);
        tiny = tf2;
    }
    s.check(
        "run: a 1 us timeout is rounded up: the process runs in 5 or more of 20 slices",
        ran >= 5,
        ran,
    );
    // Time slices ending as the process faults: whatever the race, each RUN
    // comes back as the fault or the timeout, and never hands the process's
    // exception to the kernel (which would crash it).
    let mut odd = 0u64;
    for i in 0..3000u64 {
        let mut tf = frame(Routine::Load, 0x3000_0000, 0);
        if i % 2 == 1 {
            tf.rflags |= rflags::TF;
        }
        let mut vf = VextFrame::default();
        let r = vms::run(id, &mut tf, &mut vf, 1 + i % 40);
        let ok = r == Ok(0)
            && (tf.trapno == T_PAGEFLT || tf.trapno == T_TIMEOUT || tf.trapno == T_TRCTRAP);
        odd += u64::from(!ok);
    }
    s.check(
        "run: 3,000 tiny time slices racing a fault end as the fault or the timeout",
        odd == 0,
        odd,
    );
    let traps = [
        ("run: hlt -> T_PROTFLT", Routine::Hlt, T_PROTFLT),
        (
            "run: out to a closed port -> T_PROTFLT",
            Routine::Out,
            T_PROTFLT,
        ),
        (
            "run: out to a hypercall port -> T_PROTFLT",
            Routine::OutHypercall,
            T_PROTFLT,
        ),
        ("run: mov to cr3 -> T_PROTFLT", Routine::MovCr3, T_PROTFLT),
        ("run: lgdt -> T_PROTFLT", Routine::Lgdt, T_PROTFLT),
        ("run: wrmsr -> T_PROTFLT", Routine::Wrmsr, T_PROTFLT),
        ("run: cli -> T_PROTFLT", Routine::Cli, T_PROTFLT),
        ("run: int3 -> T_BPTFLT", Routine::Int3, T_BPTFLT),
        ("run: ud2 -> T_PRIVINFLT", Routine::Ud2, T_PRIVINFLT),
        ("run: divide by zero -> T_DIVIDE", Routine::Div0, T_DIVIDE),
    ];
    for (desc, routine, want) in traps {
        let (t, tf) = trap_of(id, routine, 0, 0);
        let at = TEXT + usercode::offset(routine);
        // Where each trap leaves rip: after int3, on the faulting instruction
        // otherwise (div and the hypercall `out` follow 4 setup bytes).
        let skip = match routine {
            Routine::Int3 => 1,
            Routine::Div0 | Routine::OutHypercall => 4,
            _ => 0,
        };
        let rip_ok = tf.rip == at + skip;
        s.check(desc, t == want && rip_ok, Pair(t, Hex(tf.rip as i64)));
    }
    let _ = vms::pwrite(id, &0x7u64.to_le_bytes(), DATA + 10 * PAGE);
    let mut tf = frame(Routine::FsLoad, 0, 0);
    let mut vf = VextFrame::default();
    vf.tls[0].base = DATA + 10 * PAGE;
    let r = vms::run(id, &mut tf, &mut vf, 0);
    s.check(
        "run: fs base from the vext frame (fs:[0]) and back",
        r == Ok(0) && tf.rax == 7 && vf.tls[0].base == DATA + 10 * PAGE,
        Hex(tf.rax as i64),
    );
    let _ = vms::destroy(id);
}

fn isolation_cases(s: &mut Suite) {
    let (a, b) = (0x900, 0x901);
    let _ = new_process(a);
    let _ = new_process(b);
    let (t, tf) = trap_of(a, Routine::Load, 0x20_0000, 0);
    s.check(
        "isolation: the kernel's memory is not mapped in a process",
        t == T_PAGEFLT && tf.addr == 0x20_0000,
        t,
    );
    let (t, tf) = trap_of(a, Routine::Load, TRAP_AREA_BASE + PAGE, 0);
    s.check(
        "isolation: the trap area is not readable (T_PAGEFLT, protection)",
        t == T_PAGEFLT && tf.err & 1 == 1,
        Pair(t, Hex(tf.err as i64)),
    );
    let (t, _) = trap_of(a, Routine::StoreLoad, TRAP_AREA_BASE, 1);
    s.check(
        "isolation: the syscall stub page is not writable",
        t == T_PAGEFLT,
        t,
    );
    let (t, tf) = trap_of(a, Routine::CallStub, 0x77, SYSCALL_STUB_ADDR);
    s.check(
        "isolation: jumping to the syscall stub is only a system call",
        t == T_FAST_SYSCALL && tf.rax == 0x77,
        t,
    );
    let (t, _) = trap_of(a, Routine::StoreLoad, DATA + 3 * PAGE, 0xaaaa);
    let (t2, tf2) = trap_of(b, Routine::Load, DATA + 3 * PAGE, 0);
    s.check(
        "isolation: one vmspace's writes are invisible in another",
        t == T_FAST_SYSCALL && t2 == T_FAST_SYSCALL && tf2.rax == 0,
        Hex(tf2.rax as i64),
    );
    // The FPU/SSE state is the caller's, as in DragonFly: the host switches
    // no FPU state between vmspaces, so the kernel (soft-float, in ring 3
    // on the same vCPU) sees and saves its processes' registers itself.
    let (ra, _) = run(a, frame(Routine::Simd, 0xaaaa_0001, 0), 0);
    let (rb, tb) = run(b, frame(Routine::SimdRead, 0, 0), 0);
    let kernel_xmm0: u64;
    // SAFETY: reads xmm0 into a general register; no memory is touched.
    unsafe { core::arch::asm!("movq {}, xmm0", out(reg) kernel_xmm0) };
    s.check(
        "fpu: SIMD registers are the caller's (no switch between vmspaces)",
        ra.is_ok() && rb.is_ok() && tb.rax == 0xaaaa_0001 && kernel_xmm0 == 0xaaaa_0001,
        Pair(Hex(tb.rax as i64), Hex(kernel_xmm0 as i64)),
    );
    // Shared physical memory: the kernel's page is visible, both ways.
    let page = 0x3f0_0000u64.min(s.mem_bytes - 4 * PAGE);
    let r = vms::mmap(
        a,
        DATA + 12 * PAGE,
        PAGE,
        PROT_READ | PROT_WRITE,
        MAP_SHARED | MAP_FIXED,
        PHYSMEM_FD,
        page,
    );
    // SAFETY: `page` is free RAM near the top of memory, unused by the kernel.
    unsafe { core::ptr::write_volatile(page as *mut u64, 0x600d) };
    let (t, tf) = trap_of(a, Routine::Load, DATA + 12 * PAGE, 0);
    s.check(
        "physmem: a shared mapping sees the kernel's page",
        r.is_ok() && t == T_FAST_SYSCALL && tf.rax == 0x600d,
        Pair(show(r), Hex(tf.rax as i64)),
    );
    let (t, _) = trap_of(a, Routine::StoreLoad, DATA + 12 * PAGE, 0xd00d);
    // SAFETY: as above.
    let seen = unsafe { core::ptr::read_volatile(page as *const u64) };
    s.check(
        "physmem: the process's writes reach the kernel's page",
        t == T_FAST_SYSCALL && seen == 0xd00d,
        Hex(seen as i64),
    );
    // Unmapping really removes the translation the process used.
    let _ = trap_of(a, Routine::Load, DATA + 3 * PAGE, 0);
    let _ = vms::munmap(a, DATA + 3 * PAGE, PAGE);
    let (t, tf) = trap_of(a, Routine::Load, DATA + 3 * PAGE, 0);
    s.check(
        "isolation: after munmap the process faults on the page it had used",
        t == T_PAGEFLT && tf.addr == DATA + 3 * PAGE,
        Pair(t, Hex(tf.rax as i64)),
    );
    let _ = vms::destroy(a);
    let _ = vms::destroy(b);
}

/// The general registers a spinning context must keep (all but rax,
/// which it counts in, and rip/rflags): distinct per context.
fn spin_context(seed: u64) -> TrapFrame {
    let mut tf = frame(Routine::Spin, seed + 7, seed + 6);
    tf.rbx = seed + 1;
    tf.rcx = seed + 2;
    tf.rdx = seed + 3;
    tf.rbp = seed + 4;
    tf.r8 = seed + 8;
    tf.r9 = seed + 9;
    tf.r10 = seed + 10;
    tf.r11 = seed + 11;
    tf.r12 = seed + 12;
    tf.r13 = seed + 13;
    tf.r14 = seed + 14;
    tf.r15 = seed + 15;
    tf.rsp = usercode::STACK_TOP - 64 - (seed & 0xff0);
    tf
}

/// Whether `tf` still holds `spin_context(seed)`'s registers.
fn keeps_context(tf: &TrapFrame, seed: u64) -> bool {
    let want = spin_context(seed);
    let regs = |f: &TrapFrame| {
        [
            f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp, f.rsp, f.r8, f.r9, f.r10, f.r11, f.r12,
            f.r13, f.r14, f.r15,
        ]
    };
    regs(tf) == regs(&want)
}

/// Several register contexts of one vmspace (threads, as DragonFly's
/// vkernel runs each LWP of a process): ctl(RUN) of the same vmspace with
/// different frames, one at a time. The host keeps no registers per
/// vmspace, so each context gets back exactly its own, TLS bases too.
fn context_cases(s: &mut Suite) {
    let id = 0xa00;
    let _ = new_process(id);
    let seeds = [0x1000u64, 0x2000, 0x3000];
    let mut ctx: [(TrapFrame, VextFrame); 3] = [(TrapFrame::default(), VextFrame::default()); 3];
    for (c, &seed) in ctx.iter_mut().zip(&seeds) {
        c.0 = spin_context(seed);
        c.1.tls[0].base = DATA + seed;
        c.1.tls[1].base = DATA + 2 * seed;
    }
    let mut ok = true;
    let mut counts = [0u64; 3];
    for round in 0..6 {
        for (i, c) in ctx.iter_mut().enumerate() {
            let r = vms::run(id, &mut c.0, &mut c.1, 2_000);
            ok &= r == Ok(0) && c.0.trapno == T_TIMEOUT && keeps_context(&c.0, seeds[i]);
            ok &= c.1.tls[0].base == DATA + seeds[i] && c.1.tls[1].base == DATA + 2 * seeds[i];
            ok &= c.0.rax >= counts[i];
            counts[i] = c.0.rax;
            let _ = round;
        }
    }
    s.check(
        "contexts: three frames of one vmspace, interleaved, each keep their registers and TLS bases",
        ok,
        Pair(Hex(counts[0] as i64), Hex(counts[2] as i64)),
    );
    // Each context's fs base is its own: the same code reads different
    // memory through it.
    let _ = vms::pwrite(id, &0xaaaau64.to_le_bytes(), DATA + 0x100);
    let _ = vms::pwrite(id, &0xbbbbu64.to_le_bytes(), DATA + 0x200);
    let mut got = [0u64; 2];
    for (i, off) in [0x100u64, 0x200].iter().enumerate() {
        let mut tf = frame(Routine::FsLoad, 0, 0);
        let mut vf = VextFrame::default();
        vf.tls[0].base = DATA + off;
        let r = vms::run(id, &mut tf, &mut vf, 0);
        got[i] = if r == Ok(0) && tf.trapno == T_FAST_SYSCALL {
            tf.rax
        } else {
            0
        };
    }
    s.check(
        "contexts: fs-relative loads of two contexts read through their own bases",
        got == [0xaaaa, 0xbbbb],
        Pair(Hex(got[0] as i64), Hex(got[1] as i64)),
    );
    // Memory is the vmspace's: what one context stores, another loads.
    let (t, _) = trap_of(id, Routine::StoreLoad, DATA + 7 * PAGE, 0x7777);
    let (t2, tf2) = trap_of(id, Routine::Load, DATA + 7 * PAGE, 0);
    s.check(
        "contexts: one context's store is the other's load (one address space)",
        t == T_FAST_SYSCALL && t2 == T_FAST_SYSCALL && tf2.rax == 0x7777,
        Hex(tf2.rax as i64),
    );
    // Every run released its reference: the vmspace can go, and with it
    // whatever the contexts faulted in; their frames then name nothing.
    s.ok(
        "contexts: destroying a vmspace several contexts ran",
        vms::destroy(id),
        0,
    );
    let (c0, c1) = &mut ctx[0];
    s.err(
        "contexts: a context of a destroyed vmspace -> ENOENT",
        vms::run(id, c0, c1, 2_000),
        Errno::ENOENT,
    );
}

/// What a resume-address probe saw.
struct Probe {
    trapno: u64,
    registers: bool,
    memory: bool,
}
impl Display for Probe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "trapno {}, kernel registers intact {}, kernel memory intact {}",
            self.trapno, self.registers, self.memory
        )
    }
}

/// Kernel memory an I/O instruction finished in the wrong context would
/// overwrite (the resume-address cases point the process's RDI here).
static mut IO_CANARY: [u64; 2] = [0x1122_3344_5566_7788; 2];

/// Every I/O instruction a process can run on the syscall port (its bitmap
/// opens that port for the stub's one-byte `out`) other than the stub's:
/// the process's fault (T_PROTFLT, SIGSEGV in a real kernel), never a stop
/// of the VM; and nothing of it may be finished in the kernel's context.
fn io_cases(s: &mut Suite) {
    let id = 0x980;
    let _ = new_process(id);
    // (what, routine, rdi, rsi, where rip must be: Some(bytes into the
    // routine); None for an `out`, which KVM's emulator (PVM) completes
    // before the exit, leaving rip past it, and hardware KVM does not)
    let cases = [
        (
            "io: `in al, dx` from the syscall port -> T_PROTFLT",
            Routine::In,
            0,
            0,
            Some(4),
        ),
        (
            "io: `in eax, 0x60` -> T_PROTFLT",
            Routine::InImm,
            0,
            0,
            Some(0),
        ),
        ("io: `insb` -> T_PROTFLT", Routine::Insb, DATA, 0, Some(4)),
        (
            "io: `rep insb` of 4 GiB -> T_PROTFLT",
            Routine::RepInsb,
            DATA,
            1 << 32,
            Some(7),
        ),
        (
            "io: `outsb` to the syscall port -> T_PROTFLT",
            Routine::Outsb,
            0,
            DATA,
            None,
        ),
        (
            "io: 2-byte `out` to the syscall port -> T_PROTFLT",
            Routine::OutWord,
            0,
            0,
            Some(4),
        ),
        (
            "io: the stub's `out` from the process's own code -> T_PROTFLT",
            Routine::OutSyscallPort,
            0,
            0,
            None,
        ),
    ];
    for (desc, routine, rdi, rsi, skip) in cases {
        let (t, tf) = trap_of(id, routine, rdi, rsi);
        let at = TEXT + usercode::offset(routine);
        let rip_ok = match skip {
            Some(n) => tf.rip == at + n,
            None => (at..at + 8).contains(&{ tf.rip }),
        };
        // The process still runs afterwards (a real kernel would kill it).
        let (t2, tf2) = trap_of(id, Routine::Syscall, 0x42, 0);
        s.check(
            desc,
            t == T_PROTFLT && rip_ok && t2 == T_FAST_SYSCALL && tf2.rax == 0x42,
            Pair(t, Hex(tf.rip as i64)),
        );
    }
    let _ = vms::destroy(id);

    // The same instructions at the very address where the host resumes the
    // kernel, with RDI at kernel memory: KVM finishes an `in` (and skips
    // past an `out`) at the next KVM_RUN, in whatever context is then on
    // the vCPU; the host must have it done in the process's.
    let id = 0x981;
    let _ = new_process(id);
    let at = usercode::probe_resume();
    let page = at & !(PAGE - 1);
    let anon = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
    let mapped = vms::mmap(id, page, 2 * PAGE, PROT_READ | PROT_WRITE, anon, FD_NONE, 0);
    let canary = core::ptr::addr_of_mut!(IO_CANARY) as u64;
    let probes: [(&str, &[u8]); 4] = [
        (
            "io: `in al, dx` at the kernel's resume address -> T_PROTFLT, kernel intact",
            &[0xec, 0x0f, 0x0b],
        ),
        (
            "io: `insb` at the kernel's resume address -> T_PROTFLT, kernel intact",
            &[0x6c, 0x0f, 0x0b],
        ),
        (
            "io: `rep insb` at the kernel's resume address -> T_PROTFLT, kernel intact",
            &[0xf3, 0x6c, 0x0f, 0x0b],
        ),
        (
            "io: `out 0x60, al` at the kernel's resume address -> T_PROTFLT, kernel intact",
            &[0xe6, 0x60, 0x0f, 0x0b],
        ),
    ];
    for (desc, code) in probes {
        let _ = vms::mprotect(id, page, 2 * PAGE, PROT_READ | PROT_WRITE);
        let written = vms::pwrite(id, code, at);
        let _ = vms::mprotect(id, page, 2 * PAGE, PROT_READ | PROT_EXEC);
        let mut tf = frame(Routine::Syscall, canary, 0);
        tf.rip = at;
        tf.rdx = 0x60;
        tf.rcx = 8;
        tf.rax = 0;
        let mut vf = VextFrame::default();
        let (r, intact) = usercode::probe_ctl(id, &mut tf, &mut vf);
        let kept =
            peek(canary) == 0x1122_3344_5566_7788 && peek(canary + 8) == 0x1122_3344_5566_7788;
        s.check(
            desc,
            mapped.is_ok()
                && written == Ok(code.len() as i64)
                && r == Ok(0)
                && tf.trapno == T_PROTFLT
                && intact
                && kept,
            Probe {
                trapno: tf.trapno,
                registers: intact,
                memory: kept,
            },
        );
    }
    let _ = vms::destroy(id);
}

fn clone_cases(s: &mut Suite) {
    let (a, b) = (0xa00, 0xa01);
    let _ = new_process(a);
    let _ = vms::pwrite(a, &0x1111u64.to_le_bytes(), DATA);
    s.err(
        "clone: unknown source -> ENOENT",
        vms::clone(0x999, b),
        Errno::ENOENT,
    );
    s.err(
        "clone: existing destination -> EEXIST",
        vms::clone(a, a),
        Errno::EEXIST,
    );
    s.ok("clone: -> 0", vms::clone(a, b), 0);
    let _ = vms::pwrite(a, &0x2222u64.to_le_bytes(), DATA);
    let (t, tf) = trap_of(b, Routine::Load, DATA, 0);
    s.check(
        "clone: the copy keeps the data at clone time and runs",
        t == T_FAST_SYSCALL && tf.rax == 0x1111,
        Hex(tf.rax as i64),
    );
    let _ = vms::destroy(a);
    let _ = vms::destroy(b);
    print!("");
}

/// `batch(entries, count)` through the raw hypercall (no queue).
fn send_batch(entries: &mut [BatchEntry], count: u64) -> VmResult {
    hypercall::call(
        Hypercall::Batch,
        [entries.as_mut_ptr() as u64, count, 0, 0, 0, 0, 0],
    )
}

/// The entries as the host left them.
fn entries_back(entries: &[BatchEntry]) -> [BatchEntry; 4] {
    let mut out = [BatchEntry::default(); 4];
    for (o, e) in out.iter_mut().zip(entries) {
        // SAFETY: a volatile read of a valid reference.
        *o = unsafe { core::ptr::read_volatile(e) };
    }
    out
}

/// `batch` and `vmspace_ctl_batch` (Xen's multicall): entries carried out
/// in order with each result written back, the stop at the first unmet
/// expectation, and every malformed batch refused whole.
fn batch_cases(s: &mut Suite) {
    let (id, other) = (0xb00, 0xb01);
    let canceled = Errno::ECANCELED.0 as i64;
    let value = 0x5151_5151u64.to_le_bytes();
    let anon = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
    let rw = PROT_READ | PROT_WRITE;
    let mut e = [
        BatchEntry::new(Call::VmspaceCreate { id, ty: 0, data: 0 }, 0),
        BatchEntry::new(
            Call::VmspaceMmap {
                id,
                addr: DATA,
                len: PAGE,
                prot: rw,
                flags: anon,
                fd: FD_NONE,
                off: 0,
            },
            DATA as i64,
        ),
        BatchEntry::new(
            Call::VmspacePwrite {
                id,
                buf: value.as_ptr() as u64,
                len: 8,
                flags: 0,
                off: DATA,
            },
            8,
        ),
        BatchEntry::new(Call::PoolStats {}, BATCH_EXPECT_ANY),
    ];
    let r = send_batch(&mut e, 4);
    let back = entries_back(&e);
    s.ok("batch: create, mmap, pwrite, pool_stats -> all 4 met", r, 4);
    s.check(
        "batch: each entry's result written back",
        back[0].ret == 0
            && back[1].ret == DATA as i64
            && back[2].ret == 8
            && back[3].ret > 0
            && back.iter().all(|b| b.errno == 0),
        Hex(back[3].ret),
    );
    s.check(
        "batch: the calls took effect in order",
        read_u64(id, DATA) == Some(0x5151_5151),
        Hex(read_u64(id, DATA).map_or(-1, |v| v as i64)),
    );
    s.ok("batch: count 0 -> 0", send_batch(&mut e, 0), 0);
    // vmspace_copy may be batched (a pipe's hand-over goes with the RUN).
    let mut c = [BatchEntry::new(
        Call::VmspaceCopy {
            dst: id,
            dst_addr: DATA + 16,
            src: id,
            src_addr: DATA,
            len: 8,
        },
        8,
    )];
    let r = send_batch(&mut c, 1);
    s.check(
        "batch: vmspace_copy in a batch is carried out",
        r == Ok(1) && read_u64(id, DATA + 16) == Some(0x5151_5151),
        Hex(read_u64(id, DATA + 16).map_or(-1, |v| v as i64)),
    );

    // The first failure stops the batch; the rest are not carried out.
    let mut e = [
        BatchEntry::new(Call::Noop {}, 0),
        BatchEntry::new(Call::VmspaceDestroy { id: 0x999 }, 0),
        BatchEntry::new(
            Call::VmspaceCreate {
                id: other,
                ty: 0,
                data: 0,
            },
            0,
        ),
    ];
    let r = send_batch(&mut e, 3);
    let back = entries_back(&e);
    s.ok("batch: an entry failing -> how many met before it", r, 1);
    s.check(
        "batch: the failing entry has its errno, the rest ECANCELED",
        back[0].errno == 0
            && back[1].errno == Errno::ENOENT.0 as i64
            && back[2].errno == canceled
            && back[2].ret == -1,
        Pair(back[1].errno, back[2].errno),
    );
    s.err(
        "batch: an entry after the failure is not carried out",
        vms::destroy(other),
        Errno::ENOENT,
    );

    // A result other than the expected one stops it too: a short pwrite
    // (the page after DATA is not mapped) expecting its whole length.
    let mut e = [
        BatchEntry::new(
            Call::VmspacePwrite {
                id,
                buf: value.as_ptr() as u64,
                len: 8,
                flags: 0,
                off: DATA + PAGE - 4,
            },
            8,
        ),
        BatchEntry::new(Call::Noop {}, 0),
    ];
    let r = send_batch(&mut e, 2);
    let back = entries_back(&e);
    s.check(
        "batch: a short pwrite expecting its length stops the batch",
        r == Ok(0) && back[0].ret == 4 && back[0].errno == 0 && back[1].errno == canceled,
        Pair(show(r), back[0].ret),
    );

    // Calls that may not be batched: that entry's EINVAL, and they do
    // not happen (an exit would end the run here).
    let refused: [(&str, u64); 6] = [
        ("batch: exit in a batch -> EINVAL", Hypercall::Exit as u64),
        (
            "batch: vmspace_ctl in a batch -> EINVAL",
            Hypercall::VmspaceCtl as u64,
        ),
        ("batch: idle in a batch -> EINVAL", Hypercall::Idle as u64),
        (
            "batch: a batch in a batch -> EINVAL",
            Hypercall::Batch as u64,
        ),
        ("batch: unknown number in a batch -> EINVAL", 63),
        ("batch: number past u16 in a batch -> EINVAL", 1 << 40),
    ];
    for (desc, nr) in refused {
        let mut e = [BatchEntry {
            nr,
            expect: 0,
            args: [0; 7],
            ret: -1,
            errno: canceled,
        }];
        let r = send_batch(&mut e, 1);
        let back = entries_back(&e);
        s.check(
            desc,
            r == Ok(0) && back[0].errno == Errno::EINVAL.0 as i64,
            show(r),
        );
    }

    // Malformed batches are refused whole: nothing is carried out.
    let mut e = [BatchEntry::new(
        Call::VmspaceCreate {
            id: other,
            ty: 0,
            data: 0,
        },
        0,
    ); 1];
    s.err(
        "batch: count above BATCH_MAX -> EINVAL",
        send_batch(&mut e, BATCH_MAX + 1),
        Errno::EINVAL,
    );
    s.err(
        "batch: huge count -> EINVAL",
        send_batch(&mut e, u64::MAX),
        Errno::EINVAL,
    );
    let raw =
        |addr: u64, count: u64| hypercall::call(Hypercall::Batch, [addr, count, 0, 0, 0, 0, 0]);
    s.err(
        "batch: array outside guest memory -> EFAULT",
        raw(s.mem_bytes + PAGE, 1),
        Errno::EFAULT,
    );
    s.err(
        "batch: array across the end of memory -> EFAULT",
        raw(s.mem_bytes - 8, 2),
        Errno::EFAULT,
    );
    s.err(
        "batch: misaligned array -> EFAULT",
        raw(e.as_mut_ptr() as u64 + 4, 1),
        Errno::EFAULT,
    );
    s.err(
        "batch: a refused batch carried out nothing",
        vms::destroy(other),
        Errno::ENOENT,
    );

    // vmspace_ctl_batch: the entries, then the RUN, in one exit.
    let _ = vms::destroy(id);
    let _ = new_process(id);
    let seven = 7u64.to_le_bytes();
    let mut e = [BatchEntry::new(
        Call::VmspacePwrite {
            id,
            buf: seven.as_ptr() as u64,
            len: 8,
            flags: 0,
            off: DATA,
        },
        8,
    )];
    let mut tf = frame(Routine::Load, DATA, 0);
    let mut vf = VextFrame::default();
    let ctl_batch =
        |e: &mut [BatchEntry], count: u64, id: u64, tf: &mut TrapFrame, vf: &mut VextFrame| {
            hypercall::call(
                Hypercall::VmspaceCtlBatch,
                [
                    e.as_mut_ptr() as u64,
                    count,
                    id,
                    VMSPACE_CTL_RUN,
                    tf as *mut TrapFrame as u64,
                    vf as *mut VextFrame as u64,
                    1_000_000,
                ],
            )
        };
    let r = ctl_batch(&mut e, 1, id, &mut tf, &mut vf);
    let back = entries_back(&e);
    s.check(
        "ctl_batch: the pwrite is done before the process runs and reads it",
        r == Ok(0) && back[0].ret == 8 && tf.trapno == T_FAST_SYSCALL && tf.rax == 7,
        Pair(show(r), Hex(tf.rax as i64)),
    );
    let mut tf = frame(Routine::Load, DATA, 0);
    let r = ctl_batch(&mut e, 0, id, &mut tf, &mut vf);
    s.check(
        "ctl_batch: count 0 is a plain RUN",
        r == Ok(0) && tf.trapno == T_FAST_SYSCALL && tf.rax == 7,
        show(r),
    );
    let mut e = [BatchEntry::new(Call::VmspaceDestroy { id: 0x999 }, 0)];
    let mut tf = frame(Routine::Load, DATA, 0);
    tf.trapno = 0x77;
    let r = ctl_batch(&mut e, 1, id, &mut tf, &mut vf);
    s.check(
        "ctl_batch: a failing entry -> ECANCELED, nothing run",
        r == Err(Errno::ECANCELED) && tf.trapno == 0x77,
        show(r),
    );
    let mut e = [BatchEntry::new(
        Call::VmspaceCreate {
            id: other,
            ty: 0,
            data: 0,
        },
        0,
    )];
    let mut tf = frame(Routine::Load, DATA, 0);
    tf.cs = selector::KERNEL_CS as u64;
    s.err(
        "ctl_batch: a bad frame after a good batch -> EINVAL",
        ctl_batch(&mut e, 1, id, &mut tf, &mut vf),
        Errno::EINVAL,
    );
    s.ok(
        "ctl_batch: ... and the batch was carried out",
        vms::destroy(other),
        0,
    );
    let mut e = [BatchEntry::new(Call::Noop {}, 0)];
    let mut tf = frame(Routine::Load, DATA, 0);
    s.err(
        "ctl_batch: unknown vmspace after the batch -> ENOENT",
        ctl_batch(&mut e, 1, 0x999, &mut tf, &mut vf),
        Errno::ENOENT,
    );
    s.err(
        "ctl_batch: count above BATCH_MAX -> EINVAL, nothing run",
        ctl_batch(&mut e, BATCH_MAX + 1, id, &mut tf, &mut vf),
        Errno::EINVAL,
    );
    let _ = vms::destroy(id);
}

/// `MAP_VPAGETABLE` over the whole user range, as a guest pmap maps every
/// process: accepted, charged a fixed shadow allowance (not the range's
/// tables), and given back whole on destroy.
fn vpagetable_whole_range_cases(s: &mut Suite) {
    let id = 0xc03;
    let pool_before = vms::pool_pages();
    let _ = vms::create(id, 0, 0);
    let all = VM_MAX_USER_ADDRESS - VM_MIN_USER_ADDRESS;
    let rwx = PROT_READ | PROT_WRITE | PROT_EXEC;
    let vpt = MAP_SHARED | MAP_VPAGETABLE | MAP_FIXED;
    s.ok(
        "vpagetable: MAP_VPAGETABLE over the whole user range -> accepted",
        vms::mmap(id, VM_MIN_USER_ADDRESS, all, rwx, vpt, PHYSMEM_FD, 0),
        VM_MIN_USER_ADDRESS as i64,
    );
    s.ok(
        "vpagetable: SETMAP over the whole user range -> 0",
        vms::mcontrol(
            id,
            VM_MIN_USER_ADDRESS,
            all,
            MADV_SETMAP,
            GuestTables::root(),
        ),
        0,
    );
    let used = vms::pool_pages() - pool_before;
    s.check(
        "vpagetable: the whole range holds no more than its PML4 (tables come on faults)",
        (1..=2).contains(&used),
        used,
    );
    s.ok(
        "vpagetable: destroy the whole-range vmspace",
        vms::destroy(id),
        0,
    );
    let back = vms::pool_pages();
    s.check(
        "vpagetable: the pool is back after the whole-range vmspace",
        back == pool_before,
        Pair(pool_before, back),
    );
}

/// `MAP_VPAGETABLE`: the kernel keeps the process's page table in its own
/// RAM (a static table, identity-mapped, so its address is its
/// guest-physical address), names it with `MADV_SETMAP`, and the process
/// loads and stores through it.
fn vpagetable_cases(s: &mut Suite) {
    let id = 0xc00;
    let pool_before = vms::pool_pages();
    let _ = new_process(id);
    let rw = PROT_READ | PROT_WRITE;
    let vpt = MAP_SHARED | MAP_VPAGETABLE | MAP_FIXED;
    let len = VPT_PAGES * PAGE;
    s.ok(
        "vpagetable: mmap MAP_VPAGETABLE|MAP_SHARED over physical memory -> the address",
        vms::mmap(id, VPT_BASE, len, rw, vpt, PHYSMEM_FD, 0),
        VPT_BASE as i64,
    );
    GuestTables::build();
    let (a, b) = (GuestTables::data_a(), GuestTables::data_b());
    let user_rw = pte::P | pte::RW | pte::US;
    GuestTables::set_pte(0, a | user_rw);
    GuestTables::set_pte(1, a | pte::P | pte::US); // read-only
    GuestTables::set_pte(3, b | pte::P | pte::RW); // supervisor
    GuestTables::set_pte(4, s.mem_bytes | user_rw); // past RAM
    poke(a, 0xfeed_f00d);
    poke(b, 0xb0b0_b0b0);
    let (t, tf) = trap_of(id, Routine::Load, VPT_BASE, 0);
    s.check(
        "vpagetable: before SETMAP every access is the kernel's (T_PAGEFLT, not present)",
        t == T_PAGEFLT && tf.addr == VPT_BASE && tf.err & pf::P == 0,
        Pair(t, Hex(tf.err as i64)),
    );
    s.err(
        "vpagetable: SETMAP on a non-VPAGETABLE range -> EINVAL",
        vms::mcontrol(id, DATA, PAGE, MADV_SETMAP, GuestTables::root()),
        Errno::EINVAL,
    );
    s.err(
        "vpagetable: SETMAP with an unaligned root -> EINVAL",
        vms::mcontrol(id, VPT_BASE, len, MADV_SETMAP, GuestTables::root() + 8),
        Errno::EINVAL,
    );
    s.err(
        "vpagetable: SETMAP with a root outside RAM -> EINVAL",
        vms::mcontrol(id, VPT_BASE, len, MADV_SETMAP, s.mem_bytes),
        Errno::EINVAL,
    );
    s.err(
        "vpagetable: SETMAP with a root in the host pool -> EINVAL",
        vms::mcontrol(id, VPT_BASE, len, MADV_SETMAP, POOL_BASE),
        Errno::EINVAL,
    );
    s.ok(
        "vpagetable: SETMAP with the kernel's table -> 0",
        vms::mcontrol(id, VPT_BASE, len, MADV_SETMAP, GuestTables::root()),
        0,
    );
    let (t, tf) = trap_of(id, Routine::Load, VPT_BASE, 0);
    s.check(
        "vpagetable: a load through the guest table sees the kernel's page",
        t == T_FAST_SYSCALL && tf.rax == 0xfeed_f00d,
        Pair(t, Hex(tf.rax as i64)),
    );
    s.check(
        "vpagetable: the host set A in the guest's entry",
        GuestTables::pte(0) & (pte::A | pte::D) == pte::A,
        Hex(GuestTables::pte(0) as i64),
    );
    let (t, tf) = trap_of(id, Routine::StoreLoad, VPT_BASE + 8, 0x5704e);
    s.check(
        "vpagetable: a store lands in the kernel's page (and sets D)",
        t == T_FAST_SYSCALL
            && tf.rax == 0x5704e
            && peek(a + 8) == 0x5704e
            && GuestTables::pte(0) & pte::D != 0,
        Pair(t, Hex(peek(a + 8) as i64)),
    );
    let (t, tf) = trap_of(id, Routine::Load, VPT_BASE + 2 * PAGE + 16, 0);
    s.check(
        "vpagetable: a not-present guest entry -> T_PAGEFLT, addr, err P clear",
        t == T_PAGEFLT
            && tf.addr == VPT_BASE + 2 * PAGE + 16
            && tf.err & (pf::P | pf::U | pf::W) == pf::U,
        Pair(t, Hex(tf.err as i64)),
    );
    let (t, tf) = trap_of(id, Routine::StoreLoad, VPT_BASE + PAGE, 1);
    s.check(
        "vpagetable: a store to a read-only guest entry -> T_PAGEFLT, err P|W|U",
        t == T_PAGEFLT
            && tf.addr == VPT_BASE + PAGE
            && tf.err & (pf::P | pf::U | pf::W) == pf::P | pf::U | pf::W,
        Pair(t, Hex(tf.err as i64)),
    );
    let (t, tf) = trap_of(id, Routine::Load, VPT_BASE + PAGE, 0);
    s.check(
        "vpagetable: a load from the read-only guest entry works",
        t == T_FAST_SYSCALL && tf.rax == 0xfeed_f00d,
        Pair(t, Hex(tf.rax as i64)),
    );
    let (t, tf) = trap_of(id, Routine::Load, VPT_BASE + 3 * PAGE, 0);
    s.check(
        "vpagetable: a supervisor guest entry -> T_PAGEFLT, err P set",
        t == T_PAGEFLT && tf.addr == VPT_BASE + 3 * PAGE && tf.err & pf::P != 0,
        Pair(t, Hex(tf.err as i64)),
    );
    let (t, tf) = trap_of(id, Routine::Load, VPT_BASE + 4 * PAGE, 0);
    s.check(
        "vpagetable: a guest entry pointing past RAM -> T_PAGEFLT",
        t == T_PAGEFLT && tf.addr == VPT_BASE + 4 * PAGE,
        Pair(t, Hex(tf.err as i64)),
    );
    // The kernel fixes its table (the entry was not present: no INVAL
    // needed) and runs the process again.
    GuestTables::set_pte(2, b | user_rw);
    let (t, tf) = trap_of(id, Routine::Load, VPT_BASE + 2 * PAGE, 0);
    s.check(
        "vpagetable: after the kernel fills the entry the access works",
        t == T_FAST_SYSCALL && tf.rax == 0xb0b0_b0b0,
        Pair(t, Hex(tf.rax as i64)),
    );
    // Point a valid entry at another page and invalidate.
    GuestTables::set_pte(0, b | user_rw);
    s.ok(
        "vpagetable: MADV_INVAL -> 0",
        vms::mcontrol(id, VPT_BASE, PAGE, MADV_INVAL, 0),
        0,
    );
    let (t, tf) = trap_of(id, Routine::Load, VPT_BASE, 0);
    s.check(
        "vpagetable: after changing the entry and MADV_INVAL the process sees the new page",
        t == T_FAST_SYSCALL && tf.rax == 0xb0b0_b0b0,
        Pair(t, Hex(tf.rax as i64)),
    );
    GuestTables::set_pte(0, 0);
    let _ = vms::mcontrol(id, VPT_BASE, PAGE, MADV_INVAL, 0);
    let (t, tf) = trap_of(id, Routine::Load, VPT_BASE, 0);
    s.check(
        "vpagetable: after clearing the entry and MADV_INVAL the access faults",
        t == T_PAGEFLT && tf.addr == VPT_BASE && tf.err & pf::P == 0,
        Pair(t, Hex(tf.err as i64)),
    );
    let mut word = [0u8; 8];
    let r = vms::pread(id, &mut word, VPT_BASE + 2 * PAGE);
    s.check(
        "vpagetable: pread goes through the guest table",
        r == Ok(8) && u64::from_le_bytes(word) == 0xb0b0_b0b0,
        show(r),
    );
    s.ok("vpagetable: munmap -> 0", vms::munmap(id, VPT_BASE, len), 0);
    let (t, _) = trap_of(id, Routine::Load, VPT_BASE + 2 * PAGE, 0);
    s.check(
        "vpagetable: after munmap the guest table is not used",
        t == T_PAGEFLT,
        t,
    );
    let _ = vms::destroy(id);
    let pool_after = vms::pool_pages();
    s.check(
        "vpagetable: every pool page back after destroy",
        pool_after == pool_before,
        Pair(pool_after, pool_before),
    );
}
