//! The guest console: bytes the guest kernel writes go to the host's
//! stdout, flushed per hypercall so they interleave correctly with the
//! host's own messages on stderr.

use std::io::Write;

use vkernel_abi::Errno;
use vmspace::KernelRam;

/// Largest write done in one hypercall; a longer one is a short write, as
/// write(2) may be.
pub const MAX_WRITE: u64 = 64 * 1024;

/// Copies `len` bytes at guest-physical `buf` (in kernel RAM) to
/// the host's stdout, or its stderr when `stream` is 2 (the guest kernel's
/// own messages and its processes' fd 2). Returns how many bytes were
/// written.
pub fn write(ram: &KernelRam, buf: u64, len: u64, stream: u64) -> Result<i64, Errno> {
    let len = len.min(MAX_WRITE);
    let mut bytes = vec![0u8; len as usize];
    ram.read_slice(buf, &mut bytes)?;
    if stream == 2 {
        let mut err = std::io::stderr().lock();
        err.write_all(&bytes).map_err(|_| Errno::EIO)?;
        err.flush().map_err(|_| Errno::EIO)?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes).map_err(|_| Errno::EIO)?;
        out.flush().map_err(|_| Errno::EIO)?;
    }
    Ok(len as i64)
}
