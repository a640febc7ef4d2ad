//! The user runtime: `_start`, Linux x86-64 system calls, argv, printing,
//! and a panic handler that exits with status 101. Enough for the
//! programs of the built-in image; any static Linux program runs too.
#![no_std]

pub mod sys;

use core::fmt;

core::arch::global_asm!(
    ".section .text._start",
    ".global _start",
    "_start:",
    "    xor ebp, ebp",
    "    mov rdi, rsp", // argc, argv..., NULL, envp..., NULL, auxv
    "    and rsp, -16",
    "    call {start}",
    "    ud2",
    start = sym rt_start,
);

static mut ARGC: usize = 0;
static mut ARGV: *const *const u8 = core::ptr::null();

extern "Rust" {
    fn user_main() -> i32;
}

/// Declares the program's main function (`fn() -> i32`).
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        fn user_main() -> i32 {
            $main()
        }
    };
}

extern "C" fn rt_start(sp: *const usize) -> ! {
    // SAFETY: the kernel built the initial stack: argc at sp, then argv.
    // ARGC/ARGV are written once, before anything reads them.
    unsafe {
        ARGC = *sp;
        ARGV = sp.add(1) as *const *const u8;
        sys::exit(user_main())
    }
}

/// Number of arguments.
pub fn argc() -> usize {
    // SAFETY: written once at start, read-only afterwards.
    unsafe { ARGC }
}

/// Argument `i` (without its NUL), or "" past the end.
pub fn arg(i: usize) -> &'static str {
    if i >= argc() {
        return "";
    }
    // SAFETY: argv[i] is a NUL-terminated string on the initial stack,
    // which lives for the whole program.
    unsafe {
        let p = *ARGV.add(i);
        let mut n = 0;
        while *p.add(n) != 0 {
            n += 1;
        }
        core::str::from_utf8(core::slice::from_raw_parts(p, n)).unwrap_or("")
    }
}

/// The value of auxiliary-vector entry `key` (`AT_*`), if the kernel
/// passed one.
pub fn auxval(key: u64) -> Option<u64> {
    // SAFETY: the initial stack holds argv, NULL, envp, NULL, then the
    // (key, value) pairs up to AT_NULL; it lives for the whole program.
    unsafe {
        let mut p = ARGV.add(argc() + 1) as *const u64;
        while *p != 0 {
            p = p.add(1);
        }
        p = p.add(1);
        loop {
            let (k, v) = (*p, *p.add(1));
            if k == 0 {
                return None;
            }
            if k == key {
                return Some(v);
            }
            p = p.add(2);
        }
    }
}

/// Parses a decimal argument.
pub fn arg_num(i: usize, default: u64) -> u64 {
    arg(i).parse().unwrap_or(default)
}

#[doc(hidden)]
pub fn _print(fd: u64, args: fmt::Arguments) {
    guestlib::fmtbuf::write_fmt::<_, 512>(
        false,
        |b| {
            sys::write(fd, b);
        },
        args,
    )
}

/// Prints to stdout (one write per call).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::_print(1, format_args!($($arg)*)) };
}

/// Prints a line to stdout (one write per line).
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::_print(1, format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints a line to stderr.
#[macro_export]
macro_rules! eprintln {
    ($($arg:tt)*) => { $crate::_print(2, format_args!("{}\n", format_args!($($arg)*))) };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    eprintln!("panic: {info}");
    sys::exit(101)
}
