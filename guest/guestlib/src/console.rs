//! Console output through the console-write hypercall, one hypercall per
//! line (or per 256 bytes), so a line is never split between exits.

use core::fmt;

use crate::fmtbuf;
use crate::hypercall::console_write_to;

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    fmtbuf::write_fmt::<_, 256>(
        true,
        |b| {
            console_write_to(1, b);
        },
        args,
    )
}

#[doc(hidden)]
pub fn _eprint(args: fmt::Arguments) {
    fmtbuf::write_fmt::<_, 256>(
        true,
        |b| {
            console_write_to(2, b);
        },
        args,
    )
}

/// Prints to the host console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints a line to the host console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints a line to the host's stderr: the kernel's own messages (crash
/// reports, unimplemented system calls), apart from program output.
#[macro_export]
macro_rules! eprintln {
    ($($arg:tt)*) => { $crate::console::_eprint(format_args!("{}\n", format_args!($($arg)*))) };
}
