//! The host console, the processes' fds 0-2: reads come from the host's
//! stdin, writes go to its stdout (fd 1) or stderr (fd 2), through the
//! console hypercalls.

use guestlib::hypercall;
use vkernel_abi::Errno;

/// Reads console input into `buf`: the count, 0 at end of input, or
/// `EAGAIN` when none is ready (the reader then sleeps on the
/// console-input channel).
pub fn read(buf: &mut [u8]) -> Result<usize, Errno> {
    hypercall::console_read(buf)
}

/// Writes `bytes` to the host stream of `fd` (1: stdout, 2: stderr).
pub fn write(fd: u64, bytes: &[u8]) -> usize {
    hypercall::console_write_to(fd, bytes)
}

/// Whether `fd` is one of the console's descriptors.
pub fn is_console_fd(fd: u64) -> bool {
    fd <= 2
}
