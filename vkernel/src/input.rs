//! Files named on the command line (`--kernel`, `--image`, the files under
//! `--rootfs`, `-- PROGRAM`) are read bounded: each must be a regular
//! file, no larger than what guest memory could hold, and that is checked
//! on the opened file before a byte is read. `/dev/zero` as an image once
//! grew the host to 5.9 GB in 8 s, and a FIFO blocked it forever: both are
//! now a one-line refusal.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::Error;

/// What a non-regular file is, for the refusal.
fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads `path` (named by option `what`, e.g. "--kernel") as a regular file
/// of at most `max` bytes. It is opened with O_NONBLOCK, so a FIFO does not
/// block the open (its reader would wait for a writer forever), checked
/// with fstat on the descriptor (no race with a rename), and read with a
/// cap of `max + 1` bytes, so a file that grows meanwhile is refused
/// rather than followed.
pub fn read_regular(what: &str, path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    read_regular_into(what, path, max, 0, &mut bytes)?;
    Ok(bytes)
}

/// [`read_regular`], appending the file to `bytes` (with room reserved for
/// `extra` bytes more after it); returns the file's length. On an error
/// `bytes` may hold part of the file.
pub fn read_regular_into(
    what: &str,
    path: &Path,
    max: u64,
    extra: usize,
    bytes: &mut Vec<u8>,
) -> Result<usize, Error> {
    let read_err = |source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read_err)?;
    let meta = f.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(Error::Setup(format!(
            "{what} {}: {}, not a regular file",
            path.display(),
            kind(meta.file_type())
        )));
    }
    let too_big = || {
        Error::Setup(format!(
            "{what} {}: larger than {} (what --memory can hold); give the guest more --memory",
            path.display(),
            size(max)
        ))
    };
    if meta.len() > max {
        return Err(too_big());
    }
    let start = bytes.len();
    bytes
        .try_reserve_exact((meta.len() as usize).saturating_add(extra))
        .map_err(|_| {
            Error::Setup(format!(
                "{what} {}: no host memory for its {} bytes",
                path.display(),
                meta.len()
            ))
        })?;
    f.take(max.saturating_add(1))
        .read_to_end(bytes)
        .map_err(read_err)?;
    let len = bytes.len() - start;
    if len as u64 > max {
        return Err(too_big());
    }
    Ok(len)
}

/// `n` bytes in MiB, or in bytes below one.
fn size(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(what: &str, path: &Path, max: u64) -> String {
        match read_regular(what, path, max) {
            Err(Error::Setup(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn regular_files_up_to_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_regular("--image", &p, 10).unwrap(), b"0123456789");
        let s = refusal("--image", &p, 9);
        assert!(s.contains("larger than 9 bytes"), "{s}");
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_reading() {
        let s = refusal("--image", Path::new("/dev/zero"), 1 << 20);
        assert!(s.ends_with("a character device, not a regular file"), "{s}");
        let dir = tempfile::tempdir().unwrap();
        let s = refusal("--kernel", dir.path(), 1 << 20);
        assert!(s.contains("a directory"), "{s}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer: a blocking open would never return.
        let s = refusal("--", &fifo, 1 << 20);
        assert!(s.contains("a FIFO"), "{s}");
    }
}
