//! Linux errno values returned in [`crate::HypercallBlock::errno`] and to
//! processes (as `-errno` in `rax`). The values are linux-raw-sys's (the
//! kernel's own `asm-generic/errno*.h`); only the names used here are
//! listed.

use linux_raw_sys::errno as linux;

/// A Linux errno value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident, $doc:expr;)*) => {
        impl Errno {
            $(#[doc = $doc] pub const $name: Errno = Errno(linux::$name as i32);)*

            /// The symbolic name (`"EINVAL"`), or `"E?"` for an unknown value.
            pub fn name(self) -> &'static str {
                const NAMES: &[(Errno, &str)] = &[$((Errno::$name, stringify!($name)),)*];
                NAMES
                    .iter()
                    .find(|(e, _)| *e == self)
                    .map_or("E?", |(_, n)| n)
            }
        }
    };
}

errnos! {
    EPERM, "Operation not permitted.";
    ENOENT, "No such file or directory (or vmspace).";
    ESRCH, "No such process.";
    EINTR, "Interrupted.";
    EIO, "I/O error.";
    E2BIG, "Argument list too long.";
    ENOEXEC, "Exec format error.";
    EBADF, "Bad file descriptor.";
    ECHILD, "No child processes.";
    EAGAIN, "Try again.";
    ENOMEM, "Out of memory.";
    EACCES, "Permission denied.";
    EFAULT, "Bad address.";
    EBUSY, "Busy.";
    EEXIST, "Exists.";
    ENODEV, "No such device.";
    ENOTDIR, "Not a directory.";
    EISDIR, "Is a directory.";
    EINVAL, "Invalid argument.";
    EMFILE, "Too many open files.";
    ENOTTY, "Not a typewriter.";
    ENOSPC, "No space left.";
    ESPIPE, "Illegal seek.";
    EPIPE, "Broken pipe.";
    ERANGE, "Result out of range.";
    ENAMETOOLONG, "File name too long.";
    ENOSYS, "Function not implemented.";
    EOPNOTSUPP, "Operation not supported.";
    EDEADLK, "Resource deadlock would occur.";
    ENOTEMPTY, "Directory not empty.";
    ELOOP, "Too many symbolic links.";
    ECANCELED, "Operation canceled (a batched call not carried out).";
    ETIMEDOUT, "Timed out.";
    EXDEV, "Cross-device link.";
    EROFS, "Read-only file system.";
    EMLINK, "Too many links.";
    ENFILE, "Too many open files in the system.";
    EFBIG, "File too large.";
    ENXIO, "No such device or address.";
    ENOLCK, "No record locks available.";
    EOVERFLOW, "Value too large for the type.";
    ENODATA, "No data (no such extended attribute).";
    ENOTSOCK, "Not a socket.";
    EMSGSIZE, "Message too long.";
    EPROTONOSUPPORT, "Protocol not supported.";
    ESOCKTNOSUPPORT, "Socket type not supported.";
    EAFNOSUPPORT, "Address family not supported by protocol.";
    ENOBUFS, "No buffer space available.";
    EISCONN, "Transport endpoint is already connected.";
    ENOTCONN, "Transport endpoint is not connected.";
    ECONNREFUSED, "Connection refused.";
    ECONNRESET, "Connection reset by peer.";
    ENOPROTOOPT, "Protocol not available.";
    EADDRINUSE, "Address already in use.";
    EPROTOTYPE, "Protocol wrong type for socket.";
    EADDRNOTAVAIL, "Cannot assign requested address.";
    ENETUNREACH, "Network is unreachable.";
    EINPROGRESS, "Operation now in progress.";
    EDESTADDRREQ, "Destination address required.";
    EDOM, "Argument out of domain.";
    ESTALE, "Stale file handle.";
    ETXTBSY, "Text file busy.";
}
