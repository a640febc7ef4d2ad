//! `systest MODE [ARGS]`: exercises one area of the system-call ABI and
//! prints what it saw; the integration tests assert on the output and the
//! exit status.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
use vkernel_user::sys::{self, sc0, sc1, sc2, sc3, sc4, syscall};
use vkernel_user::{arg, arg_num, argc, auxval, entry, println};

entry!(main);

/// Reports a check; returns whether it held.
fn check(what: &str, ok: bool, got: i64) -> bool {
    println!("{} {what} ({got})", if ok { "ok" } else { "FAIL" });
    ok
}

fn main() -> i32 {
    let ok = match arg(1) {
        "args" => args(),
        "exit" => return arg_num(2, 0) as i32,
        "write" => write(),
        "read" => read(),
        "ids" => ids(),
        "sleep" => sleep(arg_num(2, 200)),
        "clock" => clock(),
        "brk" => brk(),
        "mmap" => mmap(),
        "mprotect" => mprotect(),
        "tls" => tls(),
        "uname" => uname(),
        "random" => random(),
        "fork" => fork(),
        "exec" => exec(),
        "wait" => wait(),
        "kill" => kill(),
        "yield" => check("sched_yield returns 0", sys::sched_yield() == 0, 0),
        "isolation" => isolation(),
        "peek" => peek(),
        "forkloop" => forkloop(arg_num(2, 200)),
        "forkbench" => forkbench(arg_num(2, 50)),
        "threadbench" => threadbench(arg_num(2, 1000)),
        "touchbench" => touchbench(arg_num(2, 1024)),
        "filebench" => filebench(arg_num(2, 64), arg_num(3, arg_num(2, 64))),
        "clockbench" => clockbench(arg_num(2, 100_000)),
        "cow" => cow(),
        "stale" => stale(arg_num(2, 20)),
        "hog" => hog(),
        "mapcycle" => mapcycle(),
        "cowtree" => cowtree(arg_num(2, 5)),
        "cowprotect" => cowprotect(),
        "placement" => placement(),
        "spawnafter" => spawn_after(arg(2), arg_num(3, 10)),
        "preempt" => preempt(),
        "unknown" => unknown(),
        "crashwait" => crashwait(arg(2)),
        "futex" => futex(),
        "misc" => misc(),
        "chaos" => chaos(arg_num(2, 20000)),
        "busy" => busy(arg_num(2, 100000)),
        "orphans" => return orphans(),
        "forkbomb" => forkbomb(),
        m => {
            println!("systest: unknown mode {m:?}");
            false
        }
    };
    if ok {
        0
    } else {
        1
    }
}

fn args() -> bool {
    println!("argc {}", argc());
    for i in 0..argc() {
        println!("argv[{i}] = {}", arg(i));
    }
    true
}

fn write() -> bool {
    let n = sys::write(1, b"hello from write\n");
    let mut ok = check("write returns its count", n == 17, n);
    let parts: [&[u8]; 3] = [b"writev ", b"joins ", b"three parts\n"];
    let iov = [
        [parts[0].as_ptr() as u64, parts[0].len() as u64],
        [parts[1].as_ptr() as u64, parts[1].len() as u64],
        [parts[2].as_ptr() as u64, parts[2].len() as u64],
    ];
    let n = sc3(sys::WRITEV, 1, iov.as_ptr() as u64, 3);
    ok &= check("writev returns the total", n == 25, n);
    let n = sc3(sys::WRITE, 1, 0x10, 8);
    ok &= check(
        "write from an unmapped buffer is EFAULT",
        n == sys::EFAULT,
        n,
    );
    let n = sys::write(9, b"x");
    ok &= check("write to a closed fd is EBADF", n == sys::EBADF, n);
    let n = sys::write(2, b"to stderr\n");
    ok &= check("write to fd 2", n == 10, n);
    ok
}

fn read() -> bool {
    let mut buf = [0u8; 256];
    let mut total = 0;
    loop {
        let n = sys::read(0, &mut buf);
        if n < 0 {
            println!("read error {n}");
            return false;
        }
        if n == 0 {
            break;
        }
        let s = core::str::from_utf8(&buf[..n as usize]).unwrap_or("?");
        println!("read {n} bytes: {:?}", s);
        total += n;
    }
    println!("read total {total}, then end of input");
    let n = sc3(sys::READ, 0, 0x10, 8);
    check(
        "read into an unmapped buffer at EOF returns 0 or EFAULT",
        n == 0 || n == sys::EFAULT,
        n,
    )
}

fn ids() -> bool {
    let pid = sys::getpid();
    let mut ok = check("getpid is positive", pid > 0, pid);
    let ppid = sc0(sys::GETPPID);
    println!("pid {pid} ppid {ppid}");
    ok &= check("gettid equals getpid", sc0(sys::GETTID) == pid, pid);
    let mut tid = 0u32;
    let r = sc1(sys::SET_TID_ADDRESS, &mut tid as *mut u32 as u64);
    ok &= check("set_tid_address returns the tid", r == pid, r);
    for (nr, name) in [
        (102, "getuid"),
        (104, "getgid"),
        (107, "geteuid"),
        (108, "getegid"),
    ] {
        ok &= check(name, sc0(nr) == 0, sc0(nr));
    }
    let child = sys::fork();
    if child == 0 {
        let pp = sc0(sys::GETPPID);
        sys::exit(if pp == pid { 0 } else { 1 });
    }
    let (_, st) = sys::wait4(child, 0);
    ok &= check("a child's getppid is its parent", st == 0, st as i64);
    ok
}

fn sleep(ms: u64) -> bool {
    let t0 = sys::clock_ns(1);
    let r = sys::sleep_ms(ms);
    let slept = (sys::clock_ns(1) - t0) / 1_000_000;
    println!("slept {slept} ms");
    let mut ok = check("nanosleep returns 0", r == 0, r);
    ok &= check("slept at least as asked", slept >= ms, slept as i64);
    ok &= check("and not much longer", slept < ms + 200, slept as i64);
    let bad = [0u64, 1_000_000_000];
    let r = sc2(sys::NANOSLEEP, bad.as_ptr() as u64, 0);
    ok &= check("nanosleep with 1e9 ns is EINVAL", r == sys::EINVAL, r);
    ok
}

fn clock() -> bool {
    let real = sys::clock_ns(0) / 1_000_000_000;
    println!("realtime {real}");
    let a = sys::clock_ns(1);
    let b = sys::clock_ns(1);
    let mut ok = check("monotonic does not go back", b >= a, (b - a) as i64);
    let mut ts = [0u64; 2];
    let r = sc2(sys::CLOCK_GETTIME, 99, ts.as_mut_ptr() as u64);
    ok &= check("unknown clock is EINVAL", r == sys::EINVAL, r);
    let r = sc2(sys::CLOCK_GETTIME, 1, 0x10);
    ok &= check(
        "clock_gettime into an unmapped page is EFAULT",
        r == sys::EFAULT,
        r,
    );
    let t = sc1(201, 0);
    ok &= check(
        "time() agrees with CLOCK_REALTIME",
        (t as u64).abs_diff(real) <= 1,
        t,
    );
    ok
}

fn brk() -> bool {
    let start = sys::brk(0);
    println!("brk starts page-aligned: {}", start.is_multiple_of(4096));
    let mut ok = check(
        "brk(0) is above the program",
        start > 0x400000,
        start as i64,
    );
    let grown = sys::brk(start + (1 << 20) + 5);
    ok &= check(
        "brk grows by 1 MiB",
        grown == start + (1 << 20) + 5,
        grown as i64,
    );
    let p = (start + 4096 * 100) as *mut u64;
    // SAFETY: inside the break just grown.
    unsafe {
        p.write_volatile(0xdead_beef);
        ok &= check(
            "the new memory is usable",
            p.read_volatile() == 0xdead_beef,
            0,
        );
    }
    let shrunk = sys::brk(start);
    ok &= check("brk shrinks back", shrunk == start, shrunk as i64);
    let below = sys::brk(0x1000);
    ok &= check(
        "brk below the start leaves it",
        below == start,
        below as i64,
    );
    let child = sys::fork();
    if child == 0 {
        // The page is gone: this faults and the child dies of SIGSEGV.
        // SAFETY: none; the fault is the point.
        unsafe { p.write_volatile(1) };
        sys::exit(0);
    }
    let (_, st) = sys::wait4(child, 0);
    ok &= check("memory past a shrunk break faults", st == 11, st as i64);
    ok
}

fn mmap() -> bool {
    use sys::*;
    let len = 3 << 20;
    let a = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    let mut ok = check("anonymous mmap", a > 0 && a % 4096 == 0, a);
    let p = a as *mut u8;
    // SAFETY: inside the new mapping.
    unsafe {
        ok &= check(
            "reads as zero",
            p.add(len as usize - 1).read_volatile() == 0,
            0,
        );
        p.add(12345).write_volatile(7);
        ok &= check("is writable", p.add(12345).read_volatile() == 7, 0);
    }
    let b = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    ok &= check(
        "a second mapping does not overlap",
        b + 4096 <= a || b >= a + len as i64,
        b,
    );
    let fixed = 0x3000_0000u64;
    let f = mmap(
        fixed,
        8192,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
    );
    ok &= check("MAP_FIXED maps at the address", f == fixed as i64, f);
    let r = mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
    ok &= check("length 0 is EINVAL", r == EINVAL, r);
    let r = mmap(
        fixed + 1,
        4096,
        PROT_READ,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
    );
    ok &= check("unaligned MAP_FIXED is EINVAL", r == EINVAL, r);
    let r = syscall(MMAP, [0, 4096, PROT_READ, MAP_PRIVATE, 7, 0]);
    ok &= check("a file mapping of a closed fd is EBADF", r == EBADF, r);
    let r = mmap(
        0,
        1 << 46,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
    );
    ok &= check("64 TiB is ENOMEM", r == ENOMEM, r);
    let r = munmap(a as u64, len);
    ok &= check("munmap", r == 0, r);
    let r = munmap(a as u64 + 1, 4096);
    ok &= check("unaligned munmap is EINVAL", r == EINVAL, r);
    let r = munmap(a as u64, len);
    ok &= check("munmap of an unmapped range is 0, as on Linux", r == 0, r);
    let r = munmap(fixed - 4096, 4 * 4096);
    ok &= check(
        "munmap of a range with holes unmaps what is there",
        r == 0,
        r,
    );
    let r = munmap(0xffff_8000_0000_0000, 4096);
    ok &= check("munmap of a kernel address is EINVAL", r == EINVAL, r);
    let child = sys::fork();
    if child == 0 {
        // SAFETY: none; touching the unmapped range faults.
        unsafe { p.write_volatile(1) };
        sys::exit(0);
    }
    let (_, st) = sys::wait4(child, 0);
    ok &= check("unmapped memory faults (SIGSEGV)", st == 11, st as i64);
    ok
}

fn mprotect() -> bool {
    use sys::*;
    let a = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS) as u64;
    let p = a as *mut u64;
    // SAFETY: inside the mapping.
    unsafe { p.write_volatile(42) };
    let r = sys::mprotect(a, 8192, PROT_READ);
    let mut ok = check("mprotect to read-only", r == 0, r);
    // SAFETY: still readable.
    ok &= check("still readable", unsafe { p.read_volatile() } == 42, 0);
    let r = sys::mprotect(a + 1, 4096, PROT_READ);
    ok &= check("unaligned mprotect is EINVAL", r == EINVAL, r);
    let child = sys::fork();
    if child == 0 {
        // SAFETY: none; the write faults.
        unsafe { p.write_volatile(1) };
        sys::exit(0);
    }
    let (_, st) = sys::wait4(child, 0);
    ok &= check("writing read-only memory faults", st == 11, st as i64);
    let r = sys::mprotect(a, 8192, PROT_READ | PROT_WRITE);
    // SAFETY: writable again.
    unsafe { p.write_volatile(43) };
    ok &= check("and writable again", r == 0, r);
    ok
}

fn tls() -> bool {
    static mut BLOCK: [u64; 4] = [0x1122_3344, 0, 0, 0];
    let base = core::ptr::addr_of!(BLOCK) as u64;
    let r = sc2(sys::ARCH_PRCTL, 0x1002, base);
    let mut ok = check("ARCH_SET_FS", r == 0, r);
    let v: u64;
    // SAFETY: fs points at BLOCK.
    unsafe { core::arch::asm!("mov {}, fs:[0]", out(reg) v) };
    ok &= check(
        "fs:[0] reads through the new base",
        v == 0x1122_3344,
        v as i64,
    );
    let mut got = 0u64;
    let r = sc2(sys::ARCH_PRCTL, 0x1003, &mut got as *mut u64 as u64);
    ok &= check("ARCH_GET_FS returns it", r == 0 && got == base, got as i64);
    let r = sc2(sys::ARCH_PRCTL, 0x1002, 0xffff_8000_0000_0000);
    ok &= check("a kernel address is EPERM", r == -1, r);
    let r = sc2(sys::ARCH_PRCTL, 0x9999, 0);
    ok &= check("unknown code is EINVAL", r == sys::EINVAL, r);
    let child = sys::fork();
    if child == 0 {
        let v: u64;
        // SAFETY: the fs base is inherited.
        unsafe { core::arch::asm!("mov {}, fs:[0]", out(reg) v) };
        sys::exit(if v == 0x1122_3344 { 0 } else { 1 });
    }
    let (_, st) = sys::wait4(child, 0);
    ok &= check("a forked child keeps the fs base", st == 0, st as i64);
    ok
}

fn cstr(b: &[u8]) -> &str {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    core::str::from_utf8(&b[..n]).unwrap_or("?")
}

fn uname() -> bool {
    let mut u = [0u8; 390];
    let r = sc1(sys::UNAME, u.as_mut_ptr() as u64);
    println!(
        "sysname {} nodename {} release {} machine {}",
        cstr(&u[0..65]),
        cstr(&u[65..130]),
        cstr(&u[130..195]),
        cstr(&u[260..325])
    );
    check("uname", r == 0, r)
        & check(
            "uname to a bad pointer",
            sc1(sys::UNAME, 8) == sys::EFAULT,
            0,
        )
}

fn random() -> bool {
    let mut a = [0u8; 64];
    let mut b = [0u8; 64];
    let r1 = sc3(sys::GETRANDOM, a.as_mut_ptr() as u64, 64, 0);
    let r2 = sc3(sys::GETRANDOM, b.as_mut_ptr() as u64, 64, 0);
    let mut ok = check("getrandom fills the buffer", r1 == 64 && r2 == 64, r1);
    ok &= check("two calls differ", a != b, 0);
    ok &= check("not all zero", a.iter().any(|&x| x != 0), 0);
    let r = sc3(sys::GETRANDOM, a.as_mut_ptr() as u64, 8, 0x100);
    ok &= check("unknown flags are EINVAL", r == sys::EINVAL, r);
    let r = sc3(sys::GETRANDOM, 0x10, 8, 0);
    ok &= check("a bad buffer is EFAULT", r == sys::EFAULT, r);
    ok
}

static mut SHARED: u64 = 1;

fn fork() -> bool {
    // SAFETY: single-threaded; each process has its own copy after fork.
    unsafe { core::ptr::addr_of_mut!(SHARED).write_volatile(100) };
    let child = sys::fork();
    if child == 0 {
        // SAFETY: as above.
        unsafe {
            let p = core::ptr::addr_of_mut!(SHARED);
            let saw = p.read_volatile();
            p.write_volatile(200);
            println!("child: saw {saw}, wrote 200");
        }
        sys::exit(7);
    }
    let (pid, st) = sys::wait4(child, 0);
    // SAFETY: as above.
    let mine = unsafe { core::ptr::addr_of!(SHARED).read_volatile() };
    println!("parent: child {child} exited, status {st:#x}; parent still sees {mine}");
    let mut ok = check("wait4 returns the child", pid == child, pid);
    ok &= check("exit status 7 is 0x700", st == 0x700, st as i64);
    ok &= check(
        "the child's write is invisible to the parent",
        mine == 100,
        mine as i64,
    );
    let v = sc0(sys::VFORK);
    if v == 0 {
        sys::exit(3);
    }
    let (_, st) = sys::wait4(v, 0);
    ok &= check("vfork (as fork) child exits 3", st == 0x300, st as i64);
    ok
}

/// What fork costs in pages: a parent with 1 MiB written forks; the child
/// reports the pages in use (host pool and guest kernel) that its birth
/// added, then again after writing all of that memory, and checks it
/// still sees the parent's bytes and the parent never sees its own.
fn cow() -> bool {
    const PAGES: u64 = 256;
    let at = sys::mmap(0, PAGES * 4096, 3, 0x22);
    if at < 0 {
        return check("mmap 1 MiB", false, at);
    }
    let page = |i: u64| (at as u64 + i * 4096) as *mut u64;
    for i in 0..PAGES {
        // SAFETY: inside the mapping just made.
        unsafe { page(i).write_volatile(i) };
    }
    let before = sys::pool_pages();
    let child = sys::fork();
    if child == 0 {
        let at_birth = sys::pool_pages() - before;
        let mut same = true;
        for i in 0..PAGES {
            // SAFETY: the child's copy of the mapping.
            unsafe {
                same &= page(i).read_volatile() == i;
                page(i).write_volatile(i + 1000);
            }
        }
        let after_writes = sys::pool_pages() - before;
        println!("cow: child pages at birth {at_birth}, after its writes {after_writes}");
        sys::exit(if same { 0 } else { 1 });
    }
    let (_, st) = sys::wait4(child, 0);
    let mut ok = check("the child saw the parent's bytes", st == 0, st as i64);
    let mut kept = true;
    for i in 0..PAGES {
        // SAFETY: the parent's mapping.
        kept &= unsafe { page(i).read_volatile() } == i;
    }
    ok &= check("the child's writes are invisible to the parent", kept, 0);
    ok
}

/// Translations do not outlive a process: `rounds` times, one child
/// writes a fresh page at a fixed address and exits, and the next child
/// maps a fresh page at that address: it must read zero, whatever the
/// host or KVM cached for the dead one.
fn stale(rounds: u64) -> bool {
    const AT: u64 = 0x5000_0000;
    let mut ok = true;
    for round in 0..rounds {
        let writer = sys::fork();
        if writer == 0 {
            let r = sys::mmap(AT, 4096, 3, 0x32);
            // SAFETY: the page just mapped.
            unsafe { (AT as *mut u64).write_volatile(0xdead_0000 + round) };
            sys::exit(if r == AT as i64 { 0 } else { 1 });
        }
        let (_, st) = sys::wait4(writer, 0);
        let reader = sys::fork();
        if reader == 0 {
            let r = sys::mmap(AT, 4096, 3, 0x32);
            // SAFETY: the page just mapped.
            let v = unsafe { (AT as *const u64).read_volatile() };
            sys::exit(if r == AT as i64 && v == 0 { 0 } else { 1 });
        }
        let (_, st2) = sys::wait4(reader, 0);
        ok &= st == 0 && st2 == 0;
    }
    check("a fresh page never shows a dead process's data", ok, 0)
}

/// `rounds` times: a child runs `/bin/crash KIND` (or exits at once for
/// `exit`), then a new program is exec'd into a fresh child; the new one
/// must run normally (`/bin/hello` exits 0).
fn spawn_after(kind: &str, rounds: u64) -> bool {
    let mut ok = true;
    for _ in 0..rounds {
        let c = if kind == "exit" {
            let c = sys::fork();
            if c == 0 {
                sys::exit(0);
            }
            c
        } else {
            sys::spawn("/bin/crash", &["crash", kind])
        };
        sys::wait4(c, 0);
        let h = sys::spawn("/bin/hello", &["hello", "x"]);
        let (_, st) = sys::wait4(h, 0);
        ok &= st == 0;
    }
    check(
        "a program exec'd after another process ended runs normally",
        ok,
        0,
    )
}

/// Maps and writes 8 MiB after 8 MiB until the kernel says no: a refused
/// mmap ends it (status 0 with `hog: mmap refused`), an out-of-memory
/// kill ends the process.
fn hog() -> bool {
    let mut total = 0u64;
    loop {
        let len = 8u64 << 20;
        let at = sys::mmap(0, len, 3, 0x22);
        if at < 0 {
            println!("hog: mmap refused after {} MiB ({at})", total >> 20);
            return true;
        }
        for off in (0..len).step_by(4096) {
            // SAFETY: inside the mapping just made.
            unsafe { ((at as u64 + off) as *mut u8).write_volatile(1) };
        }
        total += len;
        println!("hog: {} MiB written", total >> 20);
    }
}

/// munmap gives back the page tables too: 64 pages, each in its own 4 MiB
/// of address space (so each needs its own page table), are mapped,
/// written and unmapped; the pages in use must come back to where they
/// started.
fn mapcycle() -> bool {
    let cycle = |base: u64| {
        let mut ok = true;
        for i in 0..64u64 {
            let at = base + i * (4 << 20);
            ok &= sys::mmap(at, 4096, 3, 0x32) == at as i64;
            // SAFETY: the page just mapped.
            unsafe { (at as *mut u64).write_volatile(i) };
        }
        for i in 0..64u64 {
            ok &= sys::munmap(base + i * (4 << 20), 4096) == 0;
        }
        ok
    };
    // A first cycle settles what the host caches (shadow tables of the
    // stack and code the loop itself touches); the second, elsewhere, must
    // give back everything it took.
    let mut ok = cycle(0x6000_0000);
    let before = sys::pool_pages();
    ok &= cycle(0x2_0000_0000);
    let after = sys::pool_pages();
    ok &= check("64 scattered pages mapped and unmapped", ok, 0);
    ok & check(
        "the pages in use are back, page tables included",
        after == before,
        after - before,
    )
}

/// Copy-on-write across three generations, `rounds` times: 64 pages
/// written by the parent; a child checks them, forks a grandchild that
/// rewrites the odd pages, then rewrites the even ones itself; each checks
/// its own view after the others wrote, and the parent's view never
/// changes until it writes every page itself.
fn cowtree(rounds: u64) -> bool {
    const PAGES: u64 = 64;
    let at = sys::mmap(0, PAGES * 4096, 3, 0x22);
    if at < 0 {
        return check("mmap", false, at);
    }
    let page = |i: u64| (at as u64 + i * 4096 + (i % 7) * 8) as *mut u64;
    // SAFETY: inside the mapping, in this process's own copy of it.
    let get = |i: u64| unsafe { page(i).read_volatile() };
    // SAFETY: as for `get`.
    let set = |i: u64, v: u64| unsafe { page(i).write_volatile(v) };
    let all = |f: &dyn Fn(u64) -> u64| (0..PAGES).all(|i| get(i) == f(i));
    for i in 0..PAGES {
        set(i, i);
    }
    let mut ok = true;
    for round in 0..rounds {
        let base = round * 10_000;
        let child = sys::fork();
        if child == 0 {
            // Rewrites the pages of one parity (1: odd) and checks them
            // together with the other parity's untouched values.
            let rewrite = |parity: u64, add: u64| {
                for i in (parity..PAGES).step_by(2) {
                    set(i, base + i + add);
                }
                all(&|i| base + i + if i % 2 == parity { add } else { 0 })
            };
            let mut good = all(&|i| base + i);
            let grandchild = sys::fork();
            if grandchild == 0 {
                sys::exit(if rewrite(1, 1000) { 0 } else { 1 });
            }
            let (_, st) = sys::wait4(grandchild, 0);
            good &= st == 0 && all(&|i| base + i);
            good &= rewrite(0, 2000);
            sys::exit(if good { 0 } else { 1 });
        }
        let (_, st) = sys::wait4(child, 0);
        ok &= st == 0 && all(&|i| base + i);
        // Nobody shares the pages any more: writable in place.
        for i in 0..PAGES {
            set(i, base + 10_000 + i);
        }
        ok &= all(&|i| base + 10_000 + i);
    }
    check("three generations each see their own writes only", ok, 0)
}

/// mprotect on shared pages: the parent makes 4 written pages read-only
/// and forks; the child makes them writable again and writes, and its
/// writes must stay its own (mprotect must not hand it the shared page).
fn cowprotect() -> bool {
    let at = sys::mmap(0, 4 * 4096, 3, 0x22) as u64;
    // SAFETY: inside the mapping.
    let get = |i: u64| unsafe { ((at + i * 4096) as *const u64).read_volatile() };
    // SAFETY: inside the mapping.
    let set = |i: u64, v: u64| unsafe { ((at + i * 4096) as *mut u64).write_volatile(v) };
    for i in 0..4 {
        set(i, 7 + i);
    }
    let mut ok = check("mprotect read-only", sys::mprotect(at, 4 * 4096, 1) == 0, 0);
    let child = sys::fork();
    if child == 0 {
        let r = sys::mprotect(at, 4 * 4096, 3);
        for i in 0..4 {
            set(i, 100 + i);
        }
        let mine = (0..4).all(|i| get(i) == 100 + i);
        sys::exit(if r == 0 && mine { 0 } else { 1 });
    }
    let (_, st) = sys::wait4(child, 0);
    ok &= check(
        "the child wrote after making them writable",
        st == 0,
        st as i64,
    );
    ok &= check(
        "the parent still sees its own bytes",
        (0..4).all(|i| get(i) == 7 + i),
        get(0) as i64,
    );
    ok
}

/// Where mappings land: a non-fixed mmap never lands on a MAP_FIXED one,
/// reuses a hole munmap left, honours a free hint; brk does not grow over
/// a mapping.
fn placement() -> bool {
    const P: u64 = 4096;
    let (anon, fixed) = (0x22, 0x32);
    let a = sys::mmap(0, 4 * P, 3, anon) as u64;
    let x = a - 4 * P;
    let mut ok = check(
        "MAP_FIXED just below",
        sys::mmap(x, 4 * P, 3, fixed) == x as i64,
        0,
    );
    // SAFETY: inside the mapping just made.
    unsafe { (x as *mut u64).write_volatile(0x5eed) };
    let b = sys::mmap(0, 4 * P, 3, anon) as u64;
    ok &= check(
        "the next mmap lands beside it, not on it",
        b + 4 * P <= x || b >= x + 4 * P,
        b as i64,
    );
    // SAFETY: inside the mappings.
    unsafe { (b as *mut u64).write_volatile(1) };
    // SAFETY: inside the MAP_FIXED mapping.
    let kept = unsafe { (x as *const u64).read_volatile() };
    ok &= check("the MAP_FIXED data survives", kept == 0x5eed, kept as i64);
    // A hole: the highest free range of its size is reused.
    let c = sys::mmap(0, 4 * P, 3, anon) as u64;
    ok &= check("munmap a middle mapping", sys::munmap(b, 4 * P) == 0, 0);
    let d = sys::mmap(0, 4 * P, 3, anon) as u64;
    ok &= check("the hole is reused", d == b, d as i64);
    let hint = c - 64 * P;
    let e = sys::mmap(hint, P, 3, anon) as u64;
    ok &= check("a free hint is honoured", e == hint, e as i64);
    // brk stops at a mapping above the break.
    let cur = sys::brk(0);
    let top = (cur + P - 1) & !(P - 1);
    ok &= check(
        "MAP_FIXED right above the break",
        sys::mmap(top + P, P, 3, fixed) == (top + P) as i64,
        0,
    );
    // SAFETY: inside the mapping just made.
    unsafe { ((top + P) as *mut u64).write_volatile(77) };
    let grown = sys::brk(top + 4 * P);
    ok &= check("brk does not grow over it", grown == cur, grown as i64);
    // SAFETY: the mapping is still there (brk refused to grow over it).
    let kept = unsafe { ((top + P) as *const u64).read_volatile() };
    ok &= check("and the mapping keeps its data", kept == 77, kept as i64);
    ok
}

fn exec() -> bool {
    let r = sys::exec("/bin/nonexistent", &["x"]);
    let mut ok = check("exec of a missing file is ENOENT", r == sys::ENOENT, r);
    let r = sys::exec("/etc/motd", &["motd"]);
    ok &= check(
        "exec of a file without execute permission is EACCES",
        r == -13,
        r,
    );
    // An executable file that is neither ELF nor script.
    let fd = syscall(2, [c"/tmp/notelf".as_ptr() as u64, 0o1101, 0o755, 0, 0, 0]);
    ok &= check("open O_CREAT", fd >= 0, fd);
    sys::write(fd as u64, b"garbage, not a program\n");
    syscall(3, [fd as u64, 0, 0, 0, 0, 0]);
    let r = sys::exec("/tmp/notelf", &["notelf"]);
    ok &= check("exec of a non-ELF is ENOEXEC", r == sys::ENOEXEC, r);
    let r = sc3(sys::EXECVE, 0x10, 0, 0);
    ok &= check(
        "exec with a bad path pointer is EFAULT",
        r == sys::EFAULT,
        r,
    );
    if !ok {
        return false;
    }
    let r = sys::exec("/bin/systest", &["systest", "args", "one", "two words"]);
    println!("exec returned {r}");
    false
}

fn wait() -> bool {
    let (r, _) = sys::wait4(-1, 0);
    let mut ok = check("wait4 without children is ECHILD", r == sys::ECHILD, r);
    let child = sys::fork();
    if child == 0 {
        sys::sleep_ms(100);
        sys::exit(5);
    }
    let (r, _) = sys::wait4(-1, sys::WNOHANG);
    ok &= check("WNOHANG with a live child returns 0", r == 0, r);
    let (r, _) = sys::wait4(child + 1000, 0);
    ok &= check("waiting for a non-child is ECHILD", r == sys::ECHILD, r);
    let (r, st) = sys::wait4(child, 0);
    ok &= check(
        "wait4 blocks until the child exits",
        r == child && st == 0x500,
        st as i64,
    );
    let r = sc4(sys::WAIT4, u64::MAX, 0, 0x100, 0);
    ok &= check("unknown options are EINVAL", r == sys::EINVAL, r);
    ok
}

fn kill() -> bool {
    let mut ok = true;
    for sig in [9, 15] {
        let child = sys::fork();
        if child == 0 {
            loop {
                sys::sleep_ms(1000);
            }
        }
        let r = sys::kill(child, sig);
        ok &= check("kill returns 0", r == 0, r);
        let (_, st) = sys::wait4(child, 0);
        ok &= check("the child died of the signal", st == sig, st as i64);
    }
    let r = sys::kill(30000, 9);
    ok &= check("kill of a missing pid is ESRCH", r == sys::ESRCH, r);
    let r = sys::kill(sys::getpid(), 0);
    ok &= check("signal 0 checks existence", r == 0, r);
    let child = sys::fork();
    if child == 0 {
        sys::kill(sys::getpid(), 15);
        sys::exit(0);
    }
    let (_, st) = sys::wait4(child, 0);
    ok &= check("a process can kill itself", st == 15, st as i64);
    if sys::getpid() == 1 {
        let child = sys::fork();
        if child == 0 {
            sys::exit(if sys::kill(1, 15) == 0 { 0 } else { 1 });
        }
        let (_, st) = sys::wait4(child, 0);
        ok &= check(
            "init ignores signals from other processes",
            st == 0,
            st as i64,
        );
    }
    ok
}

const ADDR: u64 = 0x2000_0000;

fn isolation() -> bool {
    use sys::*;
    let r = mmap(
        ADDR,
        4096,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
    );
    let p = ADDR as *mut u64;
    // SAFETY: mapped just above.
    unsafe { p.write_volatile(0xaaaa) };
    let mut ok = check("mapped", r == ADDR as i64, r);
    let other = sys::spawn("/bin/systest", &["systest", "peek"]);
    let (_, st) = sys::wait4(other, 0);
    ok &= check(
        "another process reads its own (zero) page there",
        st == 0,
        st as i64,
    );
    let child = sys::fork();
    if child == 0 {
        // SAFETY: the child's copy of the page.
        unsafe { p.write_volatile(0xbbbb) };
        sys::exit(0);
    }
    sys::wait4(child, 0);
    // SAFETY: our page.
    let v = unsafe { p.read_volatile() };
    ok &= check(
        "a forked child's write does not reach the parent",
        v == 0xaaaa,
        v as i64,
    );
    ok
}

fn peek() -> bool {
    use sys::*;
    mmap(
        ADDR,
        4096,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
    );
    // SAFETY: mapped just above.
    let v = unsafe { (ADDR as *const u64).read_volatile() };
    println!("peek: {ADDR:#x} holds {v:#x}");
    v == 0
}

fn forkloop(n: u64) -> bool {
    let before = sys::pool_pages();
    for i in 0..n {
        let c = sys::fork();
        if c == 0 {
            sys::exit((i % 200) as i32);
        }
        if c < 0 {
            println!("fork failed: {c}");
            return false;
        }
        let (r, st) = sys::wait4(c, 0);
        if r != c || st != ((i % 200) as i32) << 8 {
            println!("cycle {i}: wait4 {r} status {st:#x}");
            return false;
        }
    }
    let after = sys::pool_pages();
    println!("{n} fork+exit+wait cycles: pool pages {before} before, {after} after");
    check(
        "the pool is as it started",
        before == after && before > 0,
        after,
    )
}

/// `vkernel bench`'s fork figure: 7 repetitions of `n` fork+_exit+wait4,
/// printed as the guest kernel's benchmark lines are.
fn forkbench(n: u64) -> bool {
    let mut per_op = [0u64; 7];
    for slot in per_op.iter_mut() {
        let t0 = sys::clock_ns(1);
        for _ in 0..n {
            let c = sys::fork();
            if c == 0 {
                sys::exit(0);
            }
            if c < 0 || sys::wait4(c, 0).0 != c {
                return false;
            }
        }
        *slot = (sys::clock_ns(1) - t0) / n.max(1);
    }
    per_op.sort_unstable();
    println!(
        "bench fork_exit_wait median_ns={} min_ns={} max_ns={} iters={n}",
        per_op[3], per_op[0], per_op[6]
    );
    true
}

/// A thread's stack for the thread benchmark (one at a time).
const THREAD_STACK: u64 = 64 * 1024;

/// What the benchmark threads share: the ping-pong word and a stop flag.
static PING: AtomicU32 = AtomicU32::new(0);
static STOP: AtomicU32 = AtomicU32::new(0);

extern "C" fn thread_exit_at_once(_: u64) -> ! {
    sys::exit_thread(0)
}

/// The ping-pong partner: waits for 1, answers 0, until told to stop.
extern "C" fn thread_pong(_: u64) -> ! {
    loop {
        while PING.load(SeqCst) == 0 {
            if STOP.load(SeqCst) != 0 {
                sys::exit_thread(0);
            }
            sys::futex_wait(&PING, 0);
        }
        PING.store(0, SeqCst);
        sys::futex_wake(&PING, 1);
    }
}

/// Yields until told to stop (the other side of the switch figures).
extern "C" fn thread_yield(_: u64) -> ! {
    while STOP.load(SeqCst) == 0 {
        sys::sched_yield();
    }
    sys::exit_thread(0)
}

/// Starts `f` on `stack` with CLONE_CHILD_CLEARTID on `ctid`.
fn start(stack: u64, f: extern "C" fn(u64) -> !, ctid: &AtomicU32) -> bool {
    // SAFETY: `stack` is a fresh mapping only this thread uses, and `ctid`
    // is a static the caller waits on until the thread is gone. The kernel
    // stores the tid there (CLONE_PARENT_SETTID) before the thread can end.
    let tid = unsafe { sys::spawn_thread(stack + THREAD_STACK, f, 0, ctid.as_ptr()) };
    tid > 0
}

/// Waits for the thread of `ctid` to end (its tid zeroed and woken).
/// The wait is a shared FUTEX_WAIT, as glibc's pthread_join's: Linux
/// wakes the CLONE_CHILD_CLEARTID word without FUTEX_PRIVATE_FLAG, and a
/// private waiter's key differs from that wake's, so natively a private
/// wait that starts before the thread ends sleeps for ever.
fn join(ctid: &AtomicU32) {
    loop {
        let v = ctid.load(SeqCst);
        if v == 0 {
            return;
        }
        syscall(202, [ctid.as_ptr() as u64, 0, v as u64, 0, 0, 0]);
    }
}

/// `vkernel bench`'s thread figures, each the median of seven runs of
/// `n`: thread create + join (CLONE_CHILD_CLEARTID), a futex wake -> wait
/// round trip between two threads, and a switch between two threads of
/// one process (both yielding) next to one between two processes.
fn threadbench(n: u64) -> bool {
    static CTID: AtomicU32 = AtomicU32::new(0);
    let stack = sys::mmap(0, THREAD_STACK, 3, 0x22);
    if stack < 0 {
        return check("threadbench stack", false, stack);
    }
    let stack = stack as u64;
    let create = seven(|| {
        let t0 = sys::clock_ns(1);
        for _ in 0..n {
            if !start(stack, thread_exit_at_once, &CTID) {
                return None;
            }
            join(&CTID);
        }
        Some((sys::clock_ns(1) - t0) / n.max(1))
    });
    let mut ok = report("thread_create_join", create, n);
    let pingpong = seven(|| {
        PING.store(0, SeqCst);
        STOP.store(0, SeqCst);
        if !start(stack, thread_pong, &CTID) {
            return None;
        }
        let t0 = sys::clock_ns(1);
        for _ in 0..n {
            PING.store(1, SeqCst);
            sys::futex_wake(&PING, 1);
            while PING.load(SeqCst) == 1 {
                sys::futex_wait(&PING, 1);
            }
        }
        let per = (sys::clock_ns(1) - t0) / n.max(1);
        STOP.store(1, SeqCst);
        sys::futex_wake(&PING, 1);
        join(&CTID);
        Some(per)
    });
    ok &= report("futex_pingpong", pingpong, n);
    // Two tasks yielding to each other: 2n switches per run.
    let thread_switch = seven(|| {
        STOP.store(0, SeqCst);
        if !start(stack, thread_yield, &CTID) {
            return None;
        }
        let t0 = sys::clock_ns(1);
        for _ in 0..n {
            sys::sched_yield();
        }
        let per = (sys::clock_ns(1) - t0) / (2 * n).max(1);
        STOP.store(1, SeqCst);
        join(&CTID);
        Some(per)
    });
    ok &= report("thread_switch", thread_switch, n);
    let process_switch = seven(|| {
        let c = sys::fork();
        if c == 0 {
            for _ in 0..n + 10 {
                sys::sched_yield();
            }
            sys::exit(0);
        }
        if c < 0 {
            return None;
        }
        let t0 = sys::clock_ns(1);
        for _ in 0..n {
            sys::sched_yield();
        }
        let per = (sys::clock_ns(1) - t0) / (2 * n).max(1);
        (sys::wait4(c, 0).0 == c).then_some(per)
    });
    ok &= report("process_switch", process_switch, n);
    ok
}

/// Median, min and max of seven runs of `f` (each returns ns per unit).
fn seven(mut f: impl FnMut() -> Option<u64>) -> Option<[u64; 3]> {
    let mut v = [0u64; 7];
    for slot in v.iter_mut() {
        *slot = f()?;
    }
    v.sort_unstable();
    Some([v[3], v[0], v[6]])
}

/// Prints one `bench` line.
fn report(name: &str, r: Option<[u64; 3]>, iters: u64) -> bool {
    match r {
        Some([med, min, max]) => {
            println!("bench {name} median_ns={med} min_ns={min} max_ns={max} iters={iters}");
            true
        }
        None => check(name, false, -1),
    }
}

/// The address of the vDSO's function `name` (AT_SYSINFO_EHDR, then its
/// dynamic symbol table), natively or in vkernel alike.
fn vdso_symbol(name: &str) -> Option<u64> {
    use elf::endian::LittleEndian;
    let base = auxval(33)?;
    // SAFETY: the kernel maps the whole vDSO image at AT_SYSINFO_EHDR; the
    // header says how long it is (the section headers come last).
    let len = unsafe {
        let h = base as *const u8;
        let shoff = core::ptr::read_unaligned(h.add(0x28) as *const u64);
        let shentsize = core::ptr::read_unaligned(h.add(0x3a) as *const u16) as u64;
        let shnum = core::ptr::read_unaligned(h.add(0x3c) as *const u16) as u64;
        shoff + shentsize * shnum
    };
    // SAFETY: as above, `len` bytes from `base` are the mapped image.
    let image = unsafe { core::slice::from_raw_parts(base as *const u8, len as usize) };
    let file = elf::ElfBytes::<LittleEndian>::minimal_parse(image).ok()?;
    let (symbols, strings) = file.dynamic_symbol_table().ok()??;
    let sym = symbols
        .iter()
        .find(|s| strings.get(s.st_name as usize).is_ok_and(|n| n == name))?;
    Some(base + sym.st_value)
}

/// The time calls a process makes: clock_gettime and gettimeofday
/// through the vDSO (glibc's path), and clock_gettime as a system call;
/// ns per call over `n` calls (runs natively too).
fn clockbench(n: u64) -> bool {
    type ClockGettime = extern "C" fn(i32, *mut [i64; 2]) -> i64;
    type Gettimeofday = extern "C" fn(*mut [i64; 2], *mut u8) -> i64;
    let (Some(cg), Some(gtod)) = (
        vdso_symbol("__vdso_clock_gettime"),
        vdso_symbol("__vdso_gettimeofday"),
    ) else {
        return check("a vDSO with clock_gettime and gettimeofday", false, 0);
    };
    // SAFETY: the vDSO's functions have these C signatures.
    let (cg, gtod): (ClockGettime, Gettimeofday) = unsafe {
        (
            core::mem::transmute::<u64, ClockGettime>(cg),
            core::mem::transmute::<u64, Gettimeofday>(gtod),
        )
    };
    let mut ts = [0i64; 2];
    let per_call = |f: &mut dyn FnMut()| {
        seven(|| {
            let t0 = sys::clock_ns(1);
            for _ in 0..n {
                f();
            }
            Some((sys::clock_ns(1) - t0) / n)
        })
    };
    let mut ok = report(
        "clock_gettime_vdso",
        per_call(&mut || {
            cg(1, &mut ts);
        }),
        n,
    );
    ok &= report(
        "gettimeofday_vdso",
        per_call(&mut || {
            gtod(&mut ts, core::ptr::null_mut());
        }),
        n,
    );
    let calls = (n / 100).max(10);
    ok &= report(
        "clock_gettime_syscall",
        seven(|| {
            let t0 = sys::clock_ns(1);
            for _ in 0..calls {
                syscall(228, [1, &mut ts as *mut _ as u64, 0, 0, 0, 0]);
            }
            Some((sys::clock_ns(1) - t0) / calls)
        }),
        calls,
    );
    ok
}

/// Files and pipes (runs natively too, for the ratio to native):
/// - pipe throughput: a child writes `pipe_mib` MiB (`mib` unless a
///   second argument says otherwise: the peer script's 256 MiB) in 64 KiB
///   writes, the parent reads them; ns per 64 KiB;
/// - pipe ping-pong: one byte there and back between two processes;
/// - tmpfs sequential write and read of an `mib` MiB file in 1 MiB calls,
///   ns per MiB;
/// - open + fstat + close of an existing file.
fn filebench(mib: u64, pipe_mib: u64) -> bool {
    const CHUNK: usize = 64 * 1024;
    let chunks = pipe_mib * 16;
    let buf = sys::mmap(0, 1 << 20, 3, 0x22);
    if buf < 0 {
        return check("mmap", false, buf);
    }
    let big = buf as u64;
    let pipe = |fds: &mut [i32; 2]| syscall(22, [fds.as_mut_ptr() as u64, 0, 0, 0, 0, 0]) == 0;
    let mut ok = report(
        "pipe_64k",
        seven(|| {
            let mut p = [0i32; 2];
            if !pipe(&mut p) {
                return None;
            }
            let t0 = sys::clock_ns(1);
            let c = sys::fork();
            if c == 0 {
                syscall(3, [p[0] as u64, 0, 0, 0, 0, 0]);
                for _ in 0..chunks {
                    syscall(1, [p[1] as u64, big, CHUNK as u64, 0, 0, 0]);
                }
                sys::exit(0);
            }
            syscall(3, [p[1] as u64, 0, 0, 0, 0, 0]);
            let mut got = 0u64;
            loop {
                let n = syscall(0, [p[0] as u64, big, CHUNK as u64, 0, 0, 0]);
                if n <= 0 {
                    break;
                }
                got += n as u64;
            }
            syscall(3, [p[0] as u64, 0, 0, 0, 0, 0]);
            sys::wait4(c, 0);
            (got == chunks * CHUNK as u64).then(|| (sys::clock_ns(1) - t0) / chunks)
        }),
        chunks,
    );
    let rounds = 200u64;
    ok &= report(
        "pipe_pingpong",
        seven(|| {
            let (mut a, mut b) = ([0i32; 2], [0i32; 2]);
            if !pipe(&mut a) || !pipe(&mut b) {
                return None;
            }
            let byte = [0u8; 1];
            let c = sys::fork();
            if c == 0 {
                // Its own write end of `a` would keep its read from ever
                // seeing the end.
                syscall(3, [a[1] as u64, 0, 0, 0, 0, 0]);
                syscall(3, [b[0] as u64, 0, 0, 0, 0, 0]);
                let mut x = [0u8; 1];
                while sys::read(a[0] as u64, &mut x) == 1 {
                    sys::write(b[1] as u64, &x);
                }
                sys::exit(0);
            }
            let mut x = [0u8; 1];
            let t0 = sys::clock_ns(1);
            for _ in 0..rounds {
                sys::write(a[1] as u64, &byte);
                sys::read(b[0] as u64, &mut x);
            }
            let ns = (sys::clock_ns(1) - t0) / rounds;
            for fd in [a[0], a[1], b[0], b[1]] {
                syscall(3, [fd as u64, 0, 0, 0, 0, 0]);
            }
            sys::wait4(c, 0);
            Some(ns)
        }),
        rounds,
    );
    let path = c"/tmp/vkernel-filebench";
    let open = |flags: u64| syscall(2, [path.as_ptr() as u64, flags, 0o644, 0, 0, 0]);
    ok &= report(
        "tmpfs_write_1m",
        seven(|| {
            let fd = open(0o1101); // O_CREAT | O_TRUNC | O_WRONLY
            let t0 = sys::clock_ns(1);
            for _ in 0..mib {
                if syscall(1, [fd as u64, big, 1 << 20, 0, 0, 0]) != 1 << 20 {
                    return None;
                }
            }
            let ns = (sys::clock_ns(1) - t0) / mib.max(1);
            syscall(3, [fd as u64, 0, 0, 0, 0, 0]);
            Some(ns)
        }),
        mib,
    );
    ok &= report(
        "tmpfs_read_1m",
        seven(|| {
            let fd = open(0);
            let t0 = sys::clock_ns(1);
            for _ in 0..mib {
                if syscall(0, [fd as u64, big, 1 << 20, 0, 0, 0]) != 1 << 20 {
                    return None;
                }
            }
            let ns = (sys::clock_ns(1) - t0) / mib.max(1);
            syscall(3, [fd as u64, 0, 0, 0, 0, 0]);
            Some(ns)
        }),
        mib,
    );
    let opens = 500u64;
    ok &= report(
        "open_fstat_close",
        seven(|| {
            let mut st = [0u64; 18];
            let t0 = sys::clock_ns(1);
            for _ in 0..opens {
                let fd = open(0);
                syscall(5, [fd as u64, st.as_mut_ptr() as u64, 0, 0, 0, 0]);
                syscall(3, [fd as u64, 0, 0, 0, 0, 0]);
            }
            Some((sys::clock_ns(1) - t0) / opens)
        }),
        opens,
    );
    syscall(87, [path.as_ptr() as u64, 0, 0, 0, 0, 0]);
    ok
}

/// First touch of fresh anonymous memory, per page: `pages` pages mapped
/// and written once each, seven times over (median, min, max).
fn touchbench(pages: u64) -> bool {
    let mut per_page = [0u64; 7];
    for slot in per_page.iter_mut() {
        let len = pages * 4096;
        let at = sys::mmap(0, len, 3, 0x22);
        if at < 0 {
            return false;
        }
        let t0 = sys::clock_ns(1);
        for i in 0..pages {
            // SAFETY: inside the mapping just made.
            unsafe { core::ptr::write_volatile((at as u64 + i * 4096) as *mut u8, 1) };
        }
        *slot = (sys::clock_ns(1) - t0) / pages.max(1);
        if sys::munmap(at as u64, len) != 0 {
            return false;
        }
    }
    per_page.sort_unstable();
    println!(
        "bench first_touch median_ns={} min_ns={} max_ns={} pages={pages}",
        per_page[3], per_page[0], per_page[6]
    );
    true
}

fn spin(iters: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iters {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        // SAFETY-free: keeps the loop from being folded away.
        core::hint::black_box(x);
    }
    x
}

fn preempt() -> bool {
    // A spins forever without a system call; B has finite work. Without
    // preemption whichever runs first would keep the CPU forever.
    let a = sys::fork();
    if a == 0 {
        loop {
            spin(1 << 20);
        }
    }
    let b = sys::fork();
    if b == 0 {
        spin(50_000_000);
        println!("preempt: B finished its work while A spins");
        sys::exit(0);
    }
    let (_, st) = sys::wait4(b, 0);
    let mut ok = check("B finished", st == 0, st as i64);
    sys::kill(a, 9);
    let (_, st) = sys::wait4(a, 0);
    ok &= check("A was killed", st == 9, st as i64);
    ok
}

fn unknown() -> bool {
    let r1 = sc0(500);
    let r2 = sc0(500);
    let mut ok = check(
        "unknown system calls are ENOSYS",
        r1 == sys::ENOSYS && r2 == sys::ENOSYS,
        r1,
    );
    // A Linux call the kernel does not implement (add_key): ENOSYS, and
    // the log names it.
    let r = sc0(248);
    ok &= check("an unimplemented call is ENOSYS", r == sys::ENOSYS, r);
    // clone into a new mount namespace (CLONE_NEWNS): refused (EINVAL, as
    // a kernel without namespaces), and logged.
    let r = syscall(56, [0x20000 | 17, 0, 0, 0, 0, 0]);
    ok &= check("clone(CLONE_NEWNS) is refused", r == sys::EINVAL, r);
    ok
}

fn crashwait(kind: &str) -> bool {
    let c = sys::spawn("/bin/crash", &["crash", kind]);
    let (_, st) = sys::wait4(c, 0);
    println!("crashwait: crash {kind} ended with status {st}");
    true
}

fn futex() -> bool {
    let word = 5u32;
    let addr = &word as *const u32 as u64;
    let r = syscall(202, [addr, 128, 6, 0, 0, 0]);
    let mut ok = check("FUTEX_WAIT with another value is EAGAIN", r == -11, r);
    let ts = [0u64, 50_000_000];
    let t0 = sys::clock_ns(1);
    let r = syscall(202, [addr, 128, 5, ts.as_ptr() as u64, 0, 0]);
    let ms = (sys::clock_ns(1) - t0) / 1_000_000;
    ok &= check(
        "FUTEX_WAIT times out with ETIMEDOUT",
        r == -110 && ms >= 50,
        r,
    );
    let r = syscall(202, [addr, 129, 1, 0, 0, 0]);
    ok &= check("FUTEX_WAKE wakes nobody", r == 0, r);
    ok
}

fn misc() -> bool {
    let mut lim = [0u64; 2];
    let r = sc4(302, 0, 3, 0, lim.as_mut_ptr() as u64);
    let mut ok = check(
        "prlimit64 RLIMIT_STACK",
        r == 0 && lim[0] == 8 << 20,
        lim[0] as i64,
    );
    let new = [1000u64, 2000];
    let r = sc4(302, 0, 7, new.as_ptr() as u64, lim.as_mut_ptr() as u64);
    ok &= check(
        "prlimit64 sets NOFILE and returns the old",
        r == 0 && lim[0] == 1024,
        lim[0] as i64,
    );
    let r = sc4(302, 0, 7, 0, lim.as_mut_ptr() as u64);
    ok &= check(
        "and keeps the new",
        r == 0 && lim == [1000, 2000],
        lim[0] as i64,
    );
    let mut termios = [0u8; 60];
    let r = sc3(16, 1, 0x5401, termios.as_mut_ptr() as u64);
    ok &= check("ioctl TCGETS is ENOTTY", r == -25, r);
    // The tests run vkernel with its stdout on a pipe: the guest's fd 1
    // says so, as natively.
    let mut st = [0u64; 18];
    let r = sc2(5, 1, st.as_mut_ptr() as u64);
    ok &= check(
        "fstat(1) is a pipe, as the host's stdout is",
        r == 0 && (st[3] & 0o170000) == 0o010000,
        r,
    );
    let r = sc4(262, 1, c"".as_ptr() as u64, st.as_mut_ptr() as u64, 0x1000);
    ok &= check(
        "newfstatat(1, \"\", AT_EMPTY_PATH)",
        r == 0 && (st[3] & 0o170000) == 0o010000,
        r,
    );
    let r = sc4(
        262,
        u64::MAX - 99,
        c"/bin/systest".as_ptr() as u64,
        st.as_mut_ptr() as u64,
        0,
    );
    ok &= check(
        "newfstatat of an image file",
        r == 0 && st[6] > 0,
        st[6] as i64,
    );
    let r = sc2(5, 7, st.as_mut_ptr() as u64);
    ok &= check("fstat(7) is EBADF", r == sys::EBADF, r);
    let mut buf = [0u8; 64];
    let r = sc3(
        89,
        c"/proc/self/nonexistent".as_ptr() as u64,
        buf.as_mut_ptr() as u64,
        64,
    );
    ok &= check("readlink of a missing path is ENOENT", r == sys::ENOENT, r);
    let r = sc3(28, 0x40_0000, 4096, 0);
    ok &= check("madvise NORMAL", r == 0, r);
    let r = sc2(273, 0x1000, 24);
    ok &= check("set_robust_list", r == 0, r);
    let r = sc4(334, 0, 0, 0, 0);
    ok &= check("rseq is ENOSYS", r == sys::ENOSYS, r);
    let r = sc2(79, buf.as_mut_ptr() as u64, 64);
    ok &= check("getcwd is /", r == 2 && buf[0] == b'/', r);
    ok
}

/// Calls random system calls with random arguments (bad pointers, huge
/// lengths, garbage flags) in a child; the kernel must keep running and
/// answer each with a result or an errno. Calls that would end or block
/// the child, or unmap its own code, are left out.
fn chaos(n: u64) -> bool {
    // Calls that end the process, change its memory under this loop, or
    // may rightly block forever (a pipe it holds both ends of, a wait
    // with no timeout): Linux would hang on them too. And the signal
    // calls that would kill it or jump to a random handler, as on Linux:
    // rt_sigaction, rt_sigreturn, alarm, setitimer, rt_sigqueueinfo,
    // tkill, rt_tgsigqueueinfo. And flock: two eventfds share one inode
    // (as Linux's anonymous inode), so LOCK_EX on both waits forever.
    const SKIP: &[u64] = &[
        0, 7, 9, 10, 11, 12, 13, 15, 22, 23, 25, 28, 34, 35, 37, 38, 56, 57, 58, 59, 60, 61, 62,
        73, 128, 129, 130, 200, 202, 230, 231, 232, 234, 270, 271, 281, 293, 297,
    ];
    let child = sys::fork();
    if child == 0 {
        let mut seed = [0u8; 8];
        sc3(sys::GETRANDOM, seed.as_mut_ptr() as u64, 8, 0);
        let mut x = u64::from_le_bytes(seed) | 1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // The buffer calls get: one page between two PROT_NONE guards, so
        // a random read of a huge length into it stops at the guard
        // instead of overwriting this loop's own stack (as it would on
        // Linux).
        let area = sys::mmap(0, 3 * 4096, 3, 0x22) as u64;
        syscall(10, [area, 4096, 0, 0, 0, 0]);
        syscall(10, [area + 2 * 4096, 4096, 0, 0, 0, 0]);
        let buf = area + 4096;
        let mut calls = 0u64;
        while calls < n {
            let nr = next() % 340;
            if SKIP.contains(&nr) {
                continue;
            }
            let mut a = [0u64; 6];
            for v in a.iter_mut() {
                *v = match next() % 6 {
                    0 => 0,
                    1 => next() % 8,
                    2 => buf + next() % 4096,
                    3 => next(),
                    // The unmapped guard page at the top of the user
                    // half (the stack's own top page would be this loop's
                    // state): ranges running into the kernel's half.
                    4 => 0x7f80_0000_0000 - 1 - next() % 4096,
                    _ => u64::MAX - next() % 4096,
                };
            }
            let r = syscall(nr, a);
            if r > 0 && (nr == 1 || nr == 20) {
                continue; // wrote something to the console: fine
            }
            calls += 1;
        }
        // The child may have closed or replaced its stdout (close and
        // dup2 are among the calls): the parent reports.
        sys::exit(if calls == n { 0 } else { 1 });
    }
    let (_, st) = sys::wait4(child, 0);
    if st == 0 {
        println!("chaos: {n} random system calls answered");
    }
    check("the chaos child finished", st == 0, st as i64)
}

/// Makes `n` system calls back to back; with a tiny time slice many slices
/// end in the middle of one (between `syscall` and the host's stub).
fn busy(n: u64) -> bool {
    let pid = sys::getpid();
    for i in 0..n {
        let r = sys::getpid();
        if r != pid {
            return check("getpid stays the same", false, i as i64);
        }
    }
    check("every system call returned", true, n as i64)
}

/// Leaves children sleeping and spinning, then exits 3: as init, that
/// ends the run with status 3 and tears the children down.
fn orphans() -> i32 {
    for i in 0..4 {
        if sys::fork() == 0 {
            loop {
                if i % 2 == 0 {
                    sys::sleep_ms(1000);
                } else {
                    spin(1 << 30);
                }
            }
        }
    }
    println!("orphans: leaving 4 children behind");
    3
}

/// Forks sleeping children until the kernel has no room for another task
/// (EAGAIN: threads-max, or its heap, bounds the table), then kills and
/// reaps them all: the pool must be back where it was.
fn forkbomb() -> bool {
    let before = sys::pool_pages();
    let mut kids = [0i64; 4096];
    let mut n = 0;
    let last = loop {
        let c = sys::fork();
        if c == 0 {
            loop {
                sys::sleep_ms(10_000);
            }
        }
        if c < 0 || n == kids.len() {
            break c;
        }
        kids[n] = c;
        n += 1;
    };
    println!("forkbomb: {n} children, then fork returned {last}");
    let mut ok = check(
        "a full process table is EAGAIN",
        last == -11 && n > 64,
        last,
    );
    for &k in &kids[..n] {
        sys::kill(k, 9);
    }
    let mut reaped = 0;
    while sys::wait4(-1, 0).0 > 0 {
        reaped += 1;
    }
    ok &= check("every child reaped", reaped == n, reaped as i64);
    let after = sys::pool_pages();
    ok &= check("the pool is as it started", after == before, after);
    ok
}
