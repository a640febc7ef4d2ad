//! Formatting into a fixed buffer that hands its bytes to a sink in as few
//! pieces as it can: the kernel's console (one hypercall per line) and the
//! user runtime's `print!` (one `write` per call) both use it.

use core::fmt;

/// Collects formatted bytes in `N` bytes and passes them to `sink` when
/// full, at each newline if `per_line`, and on [`FmtBuffer::flush`].
pub struct FmtBuffer<F: FnMut(&[u8]), const N: usize> {
    buf: [u8; N],
    len: usize,
    per_line: bool,
    sink: F,
}

impl<F: FnMut(&[u8]), const N: usize> FmtBuffer<F, N> {
    /// An empty buffer writing to `sink`.
    pub fn new(per_line: bool, sink: F) -> Self {
        FmtBuffer {
            buf: [0; N],
            len: 0,
            per_line,
            sink,
        }
    }

    /// Hands what is buffered to the sink.
    pub fn flush(&mut self) {
        if self.len > 0 {
            (self.sink)(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl<F: FnMut(&[u8]), const N: usize> fmt::Write for FmtBuffer<F, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == N {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' && self.per_line {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Formats `args` through a fresh buffer and flushes it.
pub fn write_fmt<F: FnMut(&[u8]), const N: usize>(per_line: bool, sink: F, args: fmt::Arguments) {
    let mut w = FmtBuffer::<F, N>::new(per_line, sink);
    let _ = fmt::Write::write_fmt(&mut w, args);
    w.flush();
}
