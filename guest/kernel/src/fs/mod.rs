//! Files, as far as the kernel has them: the host console on fds 0-2 and
//! the files of the boot image, looked up by path. (The VFS, with a
//! writable root, descriptors and pipes, comes next and lives here.)

pub mod console;
pub mod image;
