//! Linux errno values returned in [`crate::HypercallBlock::errno`] and to
//! processes (as `-errno` in `rax`).

/// A Linux errno value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $val:expr, $doc:expr;)*) => {
        impl Errno {
            $(#[doc = $doc] pub const $name: Errno = Errno($val);)*

            /// The symbolic name (`"EINVAL"`), or `"E?"` for an unknown value.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $($val => stringify!($name),)*
                    _ => "E?",
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted.";
    ENOENT = 2, "No such file or directory (or vmspace).";
    ESRCH = 3, "No such process.";
    EINTR = 4, "Interrupted.";
    EIO = 5, "I/O error.";
    E2BIG = 7, "Argument list too long.";
    ENOEXEC = 8, "Exec format error.";
    EBADF = 9, "Bad file descriptor.";
    ECHILD = 10, "No child processes.";
    EAGAIN = 11, "Try again.";
    ENOMEM = 12, "Out of memory.";
    EACCES = 13, "Permission denied.";
    EFAULT = 14, "Bad address.";
    EBUSY = 16, "Busy.";
    EEXIST = 17, "Exists.";
    ENODEV = 19, "No such device.";
    ENOTDIR = 20, "Not a directory.";
    EISDIR = 21, "Is a directory.";
    EINVAL = 22, "Invalid argument.";
    EMFILE = 24, "Too many open files.";
    ENOTTY = 25, "Not a typewriter.";
    ENOSPC = 28, "No space left.";
    ESPIPE = 29, "Illegal seek.";
    EPIPE = 32, "Broken pipe.";
    ERANGE = 34, "Result out of range.";
    ENAMETOOLONG = 36, "File name too long.";
    ENOSYS = 38, "Function not implemented.";
    EOPNOTSUPP = 95, "Operation not supported.";
}
