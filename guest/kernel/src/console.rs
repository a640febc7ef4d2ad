//! Console output through the console-write hypercall, one hypercall per
//! line (or per 256 bytes), so a line is never split between exits.

use core::fmt::{self, Write};

struct LineWriter {
    buf: [u8; 256],
    len: usize,
    stream: u64,
}

impl LineWriter {
    fn flush(&mut self) {
        if self.len > 0 {
            crate::hypercall::console_write_to(self.stream, &self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    print_to(1, args)
}

#[doc(hidden)]
pub fn _eprint(args: fmt::Arguments) {
    print_to(2, args)
}

fn print_to(stream: u64, args: fmt::Arguments) {
    let mut w = LineWriter {
        buf: [0; 256],
        len: 0,
        stream,
    };
    let _ = w.write_fmt(args);
    w.flush();
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
