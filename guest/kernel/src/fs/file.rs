//! Open files and descriptor tables (xv6's file.c, Linux's `struct file`
//! and `files_struct`). An open file description holds the object, the
//! offset and the status flags, shared by every descriptor that `dup` or
//! `fork` made from it, as POSIX requires; the close-on-exec flag belongs
//! to the descriptor.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use linux_raw_sys::general::{O_ACCMODE, O_APPEND, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY};
use vkernel_abi::Errno;

use super::device::{Device, IoError};
use super::vfs::{InodeRef, Kind, Metadata, Sink, Source};

/// What an open file reads and writes.
pub enum Object {
    /// A file system object: a regular file, a directory, a symlink
    /// (`O_PATH`), read and written through the inode.
    Inode(InodeRef),
    /// A device, pipe end or fifo end; `node` is its name in a file
    /// system, if it has one (for fstat).
    Device {
        dev: Rc<dyn Device>,
        node: Option<InodeRef>,
    },
}

/// An open file description.
pub struct OpenFile {
    pub object: Object,
    pub offset: Cell<u64>,
    /// `O_ACCMODE`, `O_APPEND`, `O_NONBLOCK`, ... as open was given them
    /// (`F_SETFL` changes `O_APPEND` and `O_NONBLOCK`).
    pub flags: Cell<u32>,
    /// The path it was opened by, for `/proc/PID/fd`.
    pub path: Vec<u8>,
    /// For a pipe end: a stable inode number for fstat.
    pub pipe_ino: u64,
    /// A regular file opened for writing by its name: its file cannot
    /// run meanwhile.
    _writer: Option<super::textbusy::Writer>,
}

/// Most descriptors a table holds (Linux's default `fs.nr_open`; setrlimit
/// refuses an `RLIMIT_NOFILE` above it).
pub const NR_OPEN: usize = 1 << 20;

/// Flags `F_SETFL` may change.
pub const SETFL_MASK: u32 = O_APPEND | O_NONBLOCK;

impl OpenFile {
    /// A new open file.
    pub fn new(object: Object, flags: u32, path: Vec<u8>) -> Rc<OpenFile> {
        OpenFile::writing(object, flags, path, None)
    }

    /// A new open file, holding `writer` while it is open.
    pub fn writing(
        object: Object,
        flags: u32,
        path: Vec<u8>,
        writer: Option<super::textbusy::Writer>,
    ) -> Rc<OpenFile> {
        Rc::new(OpenFile {
            object,
            offset: Cell::new(0),
            flags: Cell::new(flags),
            path,
            pipe_ino: 0,
            _writer: writer,
        })
    }

    /// A pipe end (no name; inode number `ino`).
    pub fn pipe(dev: Rc<dyn Device>, flags: u32, ino: u64) -> Rc<OpenFile> {
        Rc::new(OpenFile {
            object: Object::Device { dev, node: None },
            offset: Cell::new(0),
            flags: Cell::new(flags),
            path: alloc::format!("pipe:[{ino}]").into_bytes(),
            pipe_ino: ino,
            _writer: None,
        })
    }

    /// An object with no name (eventfd, epoll): `path` is what
    /// `/proc/PID/fd` shows (`anon_inode:[eventfd]`).
    pub fn anon(dev: Rc<dyn Device>, flags: u32, path: &str) -> Rc<OpenFile> {
        OpenFile::new(Object::Device { dev, node: None }, flags, path.into())
    }

    /// poll's view of the file (Linux's `vfs_poll`): the `POLL*` events
    /// ready now (epoll's bits have the same values) and the device's
    /// event counts (in, out) for edge triggering. A file with no
    /// readiness of its own (a regular file, a directory, `/dev/null`) is
    /// always ready.
    pub fn poll(&self) -> (u32, [u64; 2]) {
        use linux_raw_sys::general::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
        match &self.object {
            Object::Device { dev, .. } if dev.pollable() => {
                let r = dev.ready();
                let mut m = 0;
                if r.read {
                    m |= POLLIN | POLLRDNORM;
                }
                if r.write {
                    m |= POLLOUT | POLLWRNORM;
                }
                if r.hangup {
                    m |= POLLHUP;
                }
                if r.error {
                    m |= POLLERR;
                }
                (m, [r.in_seq, r.out_seq])
            }
            _ => (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM, [0, 0]),
        }
    }

    /// Whether the file has readiness of its own (epoll takes only these).
    pub fn pollable(&self) -> bool {
        self.device().is_some_and(|d| d.pollable())
    }

    /// Adds the channels a poll of this file sleeps on.
    pub fn poll_chans(&self, out: &mut Vec<crate::chan::Chan>) {
        if let Some(d) = self.device() {
            d.poll_chans(out);
        }
    }

    pub fn readable(&self) -> bool {
        matches!(self.flags.get() & O_ACCMODE, O_RDONLY | O_RDWR)
    }

    pub fn writable(&self) -> bool {
        matches!(self.flags.get() & O_ACCMODE, O_WRONLY | O_RDWR)
    }

    pub fn nonblocking(&self) -> bool {
        self.flags.get() & O_NONBLOCK != 0
    }

    /// The inode, if the object has one.
    pub fn inode(&self) -> Option<&InodeRef> {
        match &self.object {
            Object::Inode(i) => Some(i),
            Object::Device { node, .. } => node.as_ref(),
        }
    }

    /// The device, if the object is one.
    pub fn device(&self) -> Option<&Rc<dyn Device>> {
        match &self.object {
            Object::Device { dev, .. } => Some(dev),
            Object::Inode(_) => None,
        }
    }

    /// Status for fstat: the inode's, or a pipe's or console's.
    pub fn meta(&self) -> Metadata {
        match self.inode() {
            Some(i) => i.meta(),
            None => Metadata {
                dev: super::DEV_PIPEFS,
                ino: self.pipe_ino,
                kind: self.device().map_or(Kind::Fifo, |d| d.kind()),
                perm: 0o600,
                nlink: 1,
                uid: 0,
                gid: 0,
                size: 0,
                rdev: 0,
                blocks: 0,
                atime_ns: 0,
                mtime_ns: 0,
                ctime_ns: 0,
            },
        }
    }

    /// Whether lseek applies (regular files, directories, and block
    /// devices; not pipes, fifos, terminals).
    pub fn seekable(&self) -> bool {
        matches!(&self.object, Object::Inode(i) if i.meta().kind != Kind::Symlink)
    }

    /// Reads up to `len` bytes at the file offset (or `at`, for pread)
    /// into `out`, advancing the offset unless `at` is given.
    pub fn read(&self, len: usize, at: Option<u64>, out: Sink) -> Result<usize, IoError> {
        if !self.readable() {
            return Err(Errno::EBADF.into());
        }
        match &self.object {
            Object::Inode(i) => {
                if i.meta().kind == Kind::Directory {
                    return Err(Errno::EISDIR.into());
                }
                let off = at.unwrap_or(self.offset.get());
                let n = i.read_at(off, len, out)?;
                if at.is_none() {
                    self.offset.set(off + n as u64);
                }
                Ok(n)
            }
            Object::Device { dev, .. } => dev.read(len, out),
        }
    }

    /// Writes up to `len` bytes from `src` at the file offset (the end,
    /// with `O_APPEND`; or `at`, for pwrite).
    pub fn write(&self, len: usize, at: Option<u64>, src: Source) -> Result<usize, IoError> {
        if !self.writable() {
            return Err(Errno::EBADF.into());
        }
        match &self.object {
            Object::Inode(i) => {
                // With O_APPEND every write goes to the end, pwrite's too
                // (Linux ignores pwrite's offset then, as its man page says).
                let append = self.flags.get() & O_APPEND != 0;
                let off = match at {
                    _ if append => i.meta().size,
                    Some(a) => a,
                    None => self.offset.get(),
                };
                let n = i.write_at(off, len, src)?;
                if at.is_none() {
                    self.offset.set(off + n as u64);
                }
                Ok(n)
            }
            Object::Device { dev, .. } => dev.write(len, src),
        }
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let Object::Device { dev, .. } = &self.object {
            dev.release();
        }
    }
}

/// One descriptor.
#[derive(Clone)]
pub struct Fd {
    pub file: Rc<OpenFile>,
    pub cloexec: bool,
}

/// A process's descriptor table (shared by threads with `CLONE_FILES`,
/// hence the `RefCell` behind an `Rc`).
#[derive(Clone, Default)]
pub struct FdTable {
    fds: Vec<Option<Fd>>,
}

/// A shared descriptor table.
pub type FdTableRef = Rc<RefCell<FdTable>>;

impl FdTable {
    /// The open file of `fd`.
    pub fn get(&self, fd: i32) -> Result<Rc<OpenFile>, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i))
            .and_then(|f| f.as_ref())
            .map(|f| f.file.clone())
            .ok_or(Errno::EBADF)
    }

    /// The descriptor `fd`.
    pub fn slot(&self, fd: i32) -> Result<&Fd, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i))
            .and_then(|f| f.as_ref())
            .ok_or(Errno::EBADF)
    }

    /// Installs `file` at the lowest free descriptor at or above `min`,
    /// below `limit` (`RLIMIT_NOFILE`): `EMFILE` when none is.
    pub fn install(
        &mut self,
        file: Rc<OpenFile>,
        cloexec: bool,
        min: usize,
        limit: u64,
    ) -> Result<i32, Errno> {
        let free = (min..)
            .take_while(|&i| (i as u64) < limit.min(NR_OPEN as u64))
            .find(|&i| self.fds.get(i).is_none_or(|f| f.is_none()))
            .ok_or(Errno::EMFILE)?;
        self.set(free, Fd { file, cloexec })?;
        Ok(free as i32)
    }

    /// Puts `fd` at index `i`, closing what was there. Growing the table
    /// may fail (`EMFILE` past `NR_OPEN`, `ENOMEM` when the kernel heap
    /// cannot hold it), never panic.
    pub fn set(&mut self, i: usize, fd: Fd) -> Result<(), Errno> {
        if i >= NR_OPEN {
            return Err(Errno::EMFILE);
        }
        if self.fds.len() <= i {
            self.fds
                .try_reserve(i + 1 - self.fds.len())
                .map_err(|_| Errno::ENOMEM)?;
            self.fds.resize(i + 1, None);
        }
        self.fds[i] = Some(fd);
        Ok(())
    }

    /// Closes `fd`.
    pub fn close(&mut self, fd: i32) -> Result<(), Errno> {
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get_mut(i))
            .ok_or(Errno::EBADF)?;
        slot.take().map(|_| ()).ok_or(Errno::EBADF)
    }

    /// Sets or clears close-on-exec of `fd`.
    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> Result<(), Errno> {
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get_mut(i))
            .and_then(|f| f.as_mut())
            .ok_or(Errno::EBADF)?;
        slot.cloexec = on;
        Ok(())
    }

    /// Closes every descriptor in `[lo, hi]` (close_range), or marks them
    /// close-on-exec; the files closed.
    pub fn close_range(&mut self, lo: usize, hi: usize, cloexec_only: bool) -> Vec<Rc<OpenFile>> {
        let end = hi.saturating_add(1).min(self.fds.len());
        let mut closed = Vec::new();
        for slot in self.fds.iter_mut().take(end).skip(lo) {
            if cloexec_only {
                if let Some(f) = slot.as_mut() {
                    f.cloexec = true;
                }
            } else if let Some(f) = slot.take() {
                closed.push(f.file);
            }
        }
        closed
    }

    /// execve: descriptors marked close-on-exec go; the files closed.
    pub fn close_on_exec(&mut self) -> Vec<Rc<OpenFile>> {
        let mut closed = Vec::new();
        for slot in self.fds.iter_mut() {
            if slot.as_ref().is_some_and(|f| f.cloexec) {
                if let Some(f) = slot.take() {
                    closed.push(f.file);
                }
            }
        }
        closed
    }

    /// One past the highest descriptor the table has room for.
    pub fn size(&self) -> usize {
        self.fds.len()
    }

    /// The open descriptors, for `/proc/PID/fd`.
    pub fn open_fds(&self) -> impl Iterator<Item = (usize, &Fd)> {
        self.fds
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_ref().map(|f| (i, f)))
    }
}
