//! The guest console: bytes the guest kernel writes go to the host's
//! stdout, flushed per hypercall so they interleave correctly with the
//! host's own messages on stderr.

use std::io::Write;

use vkernel_abi::Errno;

/// A line of vkernel's own on stderr. Unlike `eprintln!`, a closed or
/// broken stderr is not a panic: the message is lost, the run goes on.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // A terminal in raw mode does not add the CR.
        let end = if $crate::terminal::raw() { "\r\n" } else { "\n" };
        let _ = write!(std::io::stderr(), "{}{end}", format_args!($($arg)*));
    }};
}
/// Like [`report!`] (no newline added) for text that is not a whole line.
#[macro_export]
macro_rules! report_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

/// A line of vkernel's own on stdout (the benchmark table): unlike
/// `println!`, a closed stdout (`vkernel bench | head -1`) is not a panic.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
use vmspace::KernelRam;

/// Largest write done in one hypercall; a longer one is a short write, as
/// write(2) may be.
pub const MAX_WRITE: u64 = 64 * 1024;

/// Copies `len` bytes at guest-physical `buf` (in kernel RAM) to
/// the host's stdout, or its stderr when `stream` is 2 (the guest kernel's
/// own messages and its processes' fd 2). Returns how many bytes were
/// written, or the host's error: `EPIPE` when the reader went away (Rust
/// ignores SIGPIPE, so the host sees the error and the guest gets it, with
/// its own SIGPIPE), `ENOSPC` on a full disk, `EIO`.
pub fn write(ram: &KernelRam, buf: u64, len: u64, stream: u64) -> Result<i64, Errno> {
    let len = len.min(MAX_WRITE);
    let mut bytes = vec![0u8; len as usize];
    ram.read_slice(buf, &mut bytes)?;
    let errno = |e: std::io::Error| e.raw_os_error().map_or(Errno::EIO, Errno);
    if stream == 2 {
        let mut err = std::io::stderr().lock();
        err.write_all(&bytes).map_err(errno)?;
        err.flush().map_err(errno)?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes).map_err(errno)?;
        out.flush().map_err(errno)?;
    }
    Ok(len as i64)
}

/// What the host's stdin, stdout and stderr are, as
/// [`vkernel_abi::BootInfo::console_kinds`] says it to the guest.
pub fn stdio_kinds() -> u64 {
    use vkernel_abi::console_kind::*;
    let mut kinds = 0u64;
    for fd in 0..3 {
        // SAFETY: fstat writes only into `st`, a zeroed stat we own; a
        // closed fd is an error, not undefined behaviour.
        let st = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            (libc::fstat(fd, &mut st) == 0).then_some(st)
        };
        let kind = match st.map(|st| st.st_mode & libc::S_IFMT) {
            // SAFETY: isatty only inspects the descriptor.
            Some(libc::S_IFCHR) if unsafe { libc::isatty(fd) } == 1 => TTY,
            Some(libc::S_IFCHR) => CHAR_DEVICE,
            Some(libc::S_IFIFO) => PIPE,
            Some(libc::S_IFREG) => FILE,
            Some(libc::S_IFSOCK) => SOCKET,
            _ => UNKNOWN,
        };
        kinds |= (kind as u64) << (8 * fd);
    }
    kinds
}
