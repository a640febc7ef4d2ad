//! Console output through the console-write hypercall, one hypercall per
//! line (or per 256 bytes), so a line is never split between exits.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::fmtbuf;
use crate::hypercall::console_write_to;

/// Whether the host's console is a terminal in raw mode: the kernel's own
/// lines then end in CR LF (the terminal does not add the CR).
pub static CRLF: AtomicBool = AtomicBool::new(false);

/// Writes `b` to host stream `stream`, each LF as CR LF when [`CRLF`].
fn put(stream: u64, b: &[u8]) {
    if !CRLF.load(Ordering::Relaxed) {
        console_write_to(stream, b);
        return;
    }
    for (i, piece) in b.split(|&c| c == b'\n').enumerate() {
        if i > 0 {
            console_write_to(stream, b"\r\n");
        }
        if !piece.is_empty() {
            console_write_to(stream, piece);
        }
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    fmtbuf::write_fmt::<_, 256>(
        true,
        |b| {
            put(1, b);
        },
        args,
    )
}

#[doc(hidden)]
pub fn _eprint(args: fmt::Arguments) {
    fmtbuf::write_fmt::<_, 256>(
        true,
        |b| {
            put(2, b);
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
