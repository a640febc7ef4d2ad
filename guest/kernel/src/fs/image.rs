//! The boot image (a cpio "newc" archive the host placed in RAM), read in
//! place: programs are loaded from it and its files can be stat'ed.

use vkernel_abi::cpio::{self, Archive};

/// A file of the image.
pub struct ImageFile {
    pub mode: u64,
    pub data: &'static [u8],
    /// Its position in the archive, as an inode number.
    pub ino: u64,
}

/// Looks `path` up (absolute or relative to `/`).
pub fn lookup(image: &'static [u8], path: &[u8]) -> Option<ImageFile> {
    let path = core::str::from_utf8(path).ok()?;
    let name = cpio::normalize(path);
    Archive::new(image)
        .map_while(Result::ok)
        .enumerate()
        .find(|(_, e)| e.name == name)
        .map(|(i, e)| ImageFile {
            mode: e.mode as u64,
            data: e.data,
            ino: 100 + i as u64,
        })
}

/// The bytes of regular file `path`.
pub fn find_file(image: &'static [u8], path: &[u8]) -> Option<&'static [u8]> {
    let path = core::str::from_utf8(path).ok()?;
    Archive::find(image, path)
        .filter(|e| e.is_file())
        .map(|e| e.data)
}
