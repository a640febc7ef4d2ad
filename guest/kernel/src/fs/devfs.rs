//! `/dev`: a tmpfs holding the device nodes of the built-in devices
//! (null, zero, full, random, urandom, tty, console, ptmx) and the links Linux's
//! udev makes (`fd`, `stdin`, `stdout`, `stderr` into `/proc/self/fd`).

use alloc::rc::Rc;

use super::device::{self, Device};
use super::tmpfs::{self, Node, Tmpfs};
use super::vfs::Inode;
use crate::mm::physmem::Frames;

/// Device numbers of the file systems (`st_dev`).
pub const DEV_DEVFS: u64 = 0x05;

const NAMES: [&[u8]; 8] = [
    b"null", b"zero", b"full", b"random", b"urandom", b"tty", b"console", b"ptmx",
];

/// A new `/dev`.
pub fn new(frames: Frames) -> Rc<Node> {
    // Device nodes hold no pages.
    let root = Tmpfs::new_root(DEV_DEVFS, frames, 0);
    for name in NAMES {
        if let Some((dev, rdev)) = device::builtin(name) {
            // The names are distinct and valid: this cannot fail.
            let _ = tmpfs::add_device(&root, name, rdev, dev);
        }
    }
    // devpts is mounted here (`fs::build`).
    let _ = root.create(b"pts", super::vfs::Kind::Directory, 0o755, 0);
    for (name, target) in [
        (&b"fd"[..], &b"/proc/self/fd"[..]),
        (b"stdin", b"/proc/self/fd/0"),
        (b"stdout", b"/proc/self/fd/1"),
        (b"stderr", b"/proc/self/fd/2"),
    ] {
        let _ = root.symlink(name, target);
    }
    root
}

/// The built-in device with device number `rdev` (for device nodes made
/// with mknod elsewhere).
pub fn by_rdev(rdev: u64) -> Option<Rc<dyn Device>> {
    NAMES
        .iter()
        .filter_map(|n| device::builtin(n))
        .find(|(_, r)| *r == rdev)
        .map(|(d, _)| d)
}
