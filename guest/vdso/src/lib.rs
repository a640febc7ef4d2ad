//! The vDSO (`linux-vdso.so.1`): the time calls a process makes without a
//! system call, as Linux's. They read the clock page (`vkernel_abi::clock`)
//! that the kernel maps read-only in the page below this object ([vvar])
//! and fall back to the system call for the clocks it cannot serve (CPU
//! time) or when the page says the TSC is not to be used.
//!
//! Built as position-independent code and linked by `kernel/build.rs` into
//! a shared object with the symbols versioned `LINUX_2.6` (`vdso.ver`) and
//! one read-only, executable segment (`vdso.lds`); it must have no
//! relocations, since nothing relocates a vDSO.

#![no_std]

use vkernel_abi::clock::ClockPage;

const NSEC_PER_SEC: u64 = 1_000_000_000;

#[repr(C)]
pub struct Timespec {
    sec: i64,
    nsec: i64,
}

#[repr(C)]
pub struct Timeval {
    sec: i64,
    usec: i64,
}

/// The clock page, in the page below this object.
fn clock_page() -> ClockPage {
    let page: *const ClockPage;
    // SAFETY: computes an address (rip-relative, no memory access).
    unsafe {
        core::arch::asm!("lea {}, [rip + __vvar_page]", out(reg) page, options(nomem, nostack))
    };
    // SAFETY: the kernel maps the clock page there, readable, for as long
    // as this object is mapped (both come and go with the address space).
    unsafe { core::ptr::read_volatile(page) }
}

/// Monotonic and realtime ns, if the page may be used.
fn now() -> Option<(u64, u64)> {
    let page = clock_page();
    if !page.stable() || !page.version.is_multiple_of(2) {
        return None;
    }
    // SAFETY: RDTSC only reads the time-stamp counter.
    let tsc = unsafe { core::arch::x86_64::_rdtsc() };
    let mono = page.ns_at(tsc);
    Some((mono, mono.saturating_add(page.realtime_offset_ns)))
}

/// A system call with two arguments (the fallback).
fn syscall2(nr: u64, a: u64, b: u64) -> i64 {
    let ret: i64;
    // SAFETY: the system call reads or writes only what its arguments name,
    // which the caller passed on from its own caller.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") nr as i64 => ret, in("rdi") a, in("rsi") b,
            lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    ret
}

const SYS_GETTIMEOFDAY: u64 = 96;
const SYS_TIME: u64 = 201;
const SYS_CLOCK_GETTIME: u64 = 228;
const SYS_CLOCK_GETRES: u64 = 229;

/// Which reading a clock id is: Some(false) monotonic, Some(true)
/// realtime, None one the page cannot serve.
fn kind(clock: i32) -> Option<bool> {
    match clock {
        // REALTIME, REALTIME_COARSE, TAI.
        0 | 5 | 11 => Some(true),
        // MONOTONIC, MONOTONIC_RAW, MONOTONIC_COARSE, BOOTTIME.
        1 | 4 | 6 | 7 => Some(false),
        _ => None,
    }
}

/// `clock_gettime`.
///
/// # Safety
/// `ts` is what the caller passed to clock_gettime.
#[no_mangle]
pub unsafe extern "C" fn __vdso_clock_gettime(clock: i32, ts: *mut Timespec) -> i64 {
    if let (Some(real), Some((mono, rt))) = (kind(clock), now()) {
        let ns = if real { rt } else { mono };
        // SAFETY: as documented; a bad pointer faults in the caller, as
        // Linux's vDSO does.
        unsafe {
            (*ts).sec = (ns / NSEC_PER_SEC) as i64;
            (*ts).nsec = (ns % NSEC_PER_SEC) as i64;
        }
        return 0;
    }
    syscall2(SYS_CLOCK_GETTIME, clock as u64, ts as u64)
}

/// `gettimeofday`.
///
/// # Safety
/// `tv` and `tz` are what the caller passed to gettimeofday.
#[no_mangle]
pub unsafe extern "C" fn __vdso_gettimeofday(tv: *mut Timeval, tz: *mut [i32; 2]) -> i64 {
    let Some((_, rt)) = now() else {
        return syscall2(SYS_GETTIMEOFDAY, tv as u64, tz as u64);
    };
    // SAFETY: as documented.
    unsafe {
        if !tv.is_null() {
            (*tv).sec = (rt / NSEC_PER_SEC) as i64;
            (*tv).usec = (rt % NSEC_PER_SEC / 1000) as i64;
        }
        if !tz.is_null() {
            // UTC, no DST, as the system call says.
            *tz = [0, 0];
        }
    }
    0
}

/// `time`.
///
/// # Safety
/// `t` is what the caller passed to time.
#[no_mangle]
pub unsafe extern "C" fn __vdso_time(t: *mut i64) -> i64 {
    let Some((_, rt)) = now() else {
        return syscall2(SYS_TIME, t as u64, 0);
    };
    let sec = (rt / NSEC_PER_SEC) as i64;
    if !t.is_null() {
        // SAFETY: as documented.
        unsafe { *t = sec };
    }
    sec
}

/// `clock_getres`: 1 ns for the clocks the page serves.
///
/// # Safety
/// `res` is what the caller passed to clock_getres.
#[no_mangle]
pub unsafe extern "C" fn __vdso_clock_getres(clock: i32, res: *mut Timespec) -> i64 {
    if kind(clock).is_none() || now().is_none() {
        return syscall2(SYS_CLOCK_GETRES, clock as u64, res as u64);
    }
    if !res.is_null() {
        // SAFETY: as documented.
        unsafe {
            (*res).sec = 0;
            (*res).nsec = 1;
        }
    }
    0
}

/// `getcpu`: the one CPU, node 0.
///
/// # Safety
/// `cpu` and `node` are what the caller passed to getcpu.
#[no_mangle]
pub unsafe extern "C" fn __vdso_getcpu(cpu: *mut u32, node: *mut u32, _cache: *mut u8) -> i64 {
    // SAFETY: as documented.
    unsafe {
        if !cpu.is_null() {
            *cpu = 0;
        }
        if !node.is_null() {
            *node = 0;
        }
    }
    0
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Nothing here can panic (no indexing, no unwrap); were it to, the
    // process faults rather than loops.
    // SAFETY: ud2 raises #UD (SIGILL for the process).
    unsafe { core::arch::asm!("ud2", options(noreturn)) }
}
