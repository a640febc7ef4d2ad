//! Host directories served to the guest kernel (9P-style, as gVisor's
//! gofer or UML's hostfs): the guest walks one name at a time from a
//! handle and its own VFS resolves `..`, symbolic links and mount points,
//! so an absolute link inside the directory means the directory's path,
//! never the host's.
//!
//! Confinement: every handle is a descriptor opened beneath its parent's
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV
//! | RESOLVE_NO_SYMLINKS)` and `O_PATH | O_NOFOLLOW`, from a name that is
//! one component (no `/`, no NUL, not `.` or `..`, not empty, at most
//! `NAME_MAX` bytes). A symbolic link is opened as itself, never followed;
//! another file system mounted inside the directory is `EXDEV`; the root
//! handle is the directory itself, so `..` cannot be expressed at all.
//! Where `openat2` is missing (`ENOSYS`, Linux before 5.6) the same holds
//! with `openat(O_NOFOLLOW)` of the one component and a device-number
//! check against the root's. A regular file's handle is reopened
//! read-only the same way and kept only if it is the same inode (dev and
//! ino), so a file swapped in between is refused; device nodes, fifos and
//! sockets are never opened for I/O on the host, only as `O_PATH`.
//!
//! Writing (`hostfs_create` ... `hostfs_chown`) is refused with `EROFS`
//! unless the volume was given as writable (`-v HOST:GUEST:rw`; never
//! `--rootfs`, which the guest only ever writes through its overlay's
//! tmpfs upper layer). On a writable volume every change is made relative
//! to a directory handle opened as above, with a checked one-component
//! name and the `*at` calls that never follow a final symbolic link
//! (`O_CREAT | O_EXCL | O_NOFOLLOW`, `mkdirat`, `mknodat`, `symlinkat`,
//! `unlinkat`, `renameat2`, `linkat` without `AT_SYMLINK_FOLLOW`), or to
//! the handle of the object itself (`fchmodat2`/`fchownat`/`utimensat`
//! with `AT_EMPTY_PATH`, `ftruncate`, `pwrite`): a symbolic link planted
//! in the volume is never written through, and `..` cannot be named.
//! Devices are never made (`EPERM`). What the host cannot prevent: a hard
//! link the host itself made from inside the volume to a file outside it
//! is the same file, and a write to it changes that file (the guest can
//! never make such a link: both names of a `hostfs_link` are handles
//! beneath the root).
//!
//! The handle table is bounded ([`HOSTFS_MAX_HANDLES`], `EMFILE` past it);
//! an unknown handle is `EBADF`. The root directories are opened before
//! the vCPU thread's seccomp filter goes on (it allows no path open but
//! `openat2` relative to a descriptor).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use vkernel_abi::{
    Errno, HostfsStat, KernelIovec, HOSTFS_IOV_MAX, HOSTFS_IO_MAX, HOSTFS_MAX_HANDLES,
    HOSTFS_NAME_MAX, HOSTFS_REMOVEDIR, HOSTFS_SET_ATIME, HOSTFS_SET_MODE, HOSTFS_SET_MTIME,
    HOSTFS_SET_SIZE, HOSTFS_TARGET_MAX,
};
use vmspace::KernelRam;

/// What a handle is: what the calls on it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    /// A regular file; `readable`: the descriptor is open for reading
    /// (else `O_PATH`, and a read is `EACCES`); `writable`: open for
    /// writing too (on a writable volume, when the host allows it).
    Regular {
        readable: bool,
        writable: bool,
    },
    Symlink,
    /// A device node, fifo or socket: attributes only.
    Other,
}

struct Handle {
    fd: OwnedFd,
    kind: Kind,
    /// The volume it is beneath.
    volume: usize,
}

/// One served directory.
struct Root {
    /// The directory (`O_PATH`).
    fd: OwnedFd,
    /// Its device number.
    dev: u64,
    /// `-v HOST:GUEST:rw`: the guest may change it.
    writable: bool,
}

/// How descriptors are opened beneath a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// `openat2` with `RESOLVE_*` flags (Linux 5.6 and later).
    Openat2,
    /// `openat` with `O_NOFOLLOW` and a device check (`openat2` is ENOSYS).
    Openat,
}

/// The served directories and the guest's handles on them.
pub struct HostFs {
    /// Each volume's root directory.
    roots: Vec<Root>,
    handles: Vec<Option<Handle>>,
    open: usize,
    mode: OpenMode,
    /// Bounce buffer for reads (reused: no allocation per call).
    buf: Vec<u8>,
    /// File bytes read for the guest (`--stats`: the page cache's
    /// misses).
    pub bytes_read: u64,
    /// Walks made (`--stats`).
    pub walks: u64,
    /// File bytes the guest wrote to the host (`--stats`).
    pub bytes_written: u64,
}

/// Why a volume could not be served.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct VolumeError {
    path: String,
    source: std::io::Error,
}

/// Linux's `struct open_how` (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

// `struct stat` fields as the host kernel fills them.
fn stat_fd(fd: RawFd) -> Result<libc::stat, Errno> {
    // SAFETY: `st` is a plain C struct the kernel fills; the path is an
    // empty NUL-terminated string, as AT_EMPTY_PATH wants.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        let r = libc::syscall(
            libc::SYS_newfstatat,
            fd,
            c"".as_ptr(),
            &mut st as *mut libc::stat,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        );
        if r < 0 {
            return Err(last_errno());
        }
        Ok(st)
    }
}

fn last_errno() -> Errno {
    Errno(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

fn ns(sec: i64, nsec: i64) -> u64 {
    (sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec.max(0) as u64)
}

impl HostFs {
    /// Serves `dirs` (volume 0 first), read-only.
    pub fn new(dirs: &[&Path]) -> Result<HostFs, VolumeError> {
        let volumes: Vec<(&Path, bool)> = dirs.iter().map(|d| (*d, false)).collect();
        HostFs::with_access(&volumes)
    }

    /// Serves `volumes` (volume 0 first; `true`: writable). Opens each
    /// now, before the sandbox forbids opening paths, and finds out
    /// whether `openat2` works.
    pub fn with_access(volumes: &[(&Path, bool)]) -> Result<HostFs, VolumeError> {
        let mut roots = Vec::new();
        for &(dir, writable) in volumes {
            let err = |source| VolumeError {
                path: dir.display().to_string(),
                source,
            };
            let c = CString::new(dir.as_os_str().as_encoded_bytes())
                .map_err(|_| err(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
            // SAFETY: a NUL-terminated path; the descriptor is checked.
            let fd = unsafe {
                libc::open(
                    c.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(err(std::io::Error::last_os_error()));
            }
            // SAFETY: a descriptor just opened, owned by nothing else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let st =
                stat_fd(fd.as_raw_fd()).map_err(|e| err(std::io::Error::from_raw_os_error(e.0)))?;
            roots.push(Root {
                fd,
                dev: st.st_dev,
                writable,
            });
        }
        let mut fs = HostFs {
            roots,
            handles: Vec::new(),
            open: 0,
            mode: OpenMode::Openat2,
            buf: Vec::new(),
            bytes_read: 0,
            walks: 0,
            bytes_written: 0,
        };
        if let Some(root) = fs.roots.first() {
            if let Err(Errno::ENOSYS) = fs.open_beneath(root.fd.as_raw_fd(), c".", libc::O_PATH, 0)
            {
                log::warn!(
                    "hostfs: openat2 is missing; using openat(O_NOFOLLOW) and device checks"
                );
                fs.mode = OpenMode::Openat;
            }
        }
        Ok(fs)
    }

    /// Whether any directory is served, and how it opens files (the
    /// seccomp filter allows that call).
    pub fn open_mode(&self) -> Option<OpenMode> {
        (!self.roots.is_empty()).then_some(self.mode)
    }

    /// Whether any volume is writable (the seccomp filter then allows
    /// the calls that change files).
    pub fn writes(&self) -> bool {
        self.roots.iter().any(|r| r.writable)
    }

    /// Opens `name` (one checked component, or `.`) beneath `dir`.
    fn open_beneath(
        &self,
        dir: RawFd,
        name: &std::ffi::CStr,
        flags: i32,
        dev: u64,
    ) -> Result<OwnedFd, Errno> {
        self.open_beneath_mode(dir, name, flags, 0, dev)
    }

    /// [`HostFs::open_beneath`] with the permission bits of a file
    /// `O_CREAT` makes.
    fn open_beneath_mode(
        &self,
        dir: RawFd,
        name: &std::ffi::CStr,
        flags: i32,
        mode: u32,
        dev: u64,
    ) -> Result<OwnedFd, Errno> {
        let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let fd = match self.mode {
            OpenMode::Openat2 => {
                let how = OpenHow {
                    flags: flags as u64,
                    mode: mode as u64,
                    resolve: libc::RESOLVE_BENEATH
                        | libc::RESOLVE_NO_MAGICLINKS
                        | libc::RESOLVE_NO_XDEV
                        | libc::RESOLVE_NO_SYMLINKS,
                };
                // SAFETY: a NUL-terminated name and an open_how the
                // kernel reads `size_of` bytes of.
                unsafe {
                    libc::syscall(
                        libc::SYS_openat2,
                        dir,
                        name.as_ptr(),
                        &how as *const OpenHow,
                        std::mem::size_of::<OpenHow>(),
                    )
                }
            }
            // SAFETY: as above.
            OpenMode::Openat => unsafe {
                libc::syscall(libc::SYS_openat, dir, name.as_ptr(), flags, mode)
            },
        };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: a descriptor just opened, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        if self.mode == OpenMode::Openat && dev != 0 {
            // RESOLVE_NO_XDEV by hand: another file system mounted here.
            if stat_fd(fd.as_raw_fd())?.st_dev != dev {
                return Err(Errno::EXDEV);
            }
        }
        Ok(fd)
    }

    fn handle(&self, h: u64) -> Result<&Handle, Errno> {
        usize::try_from(h)
            .ok()
            .and_then(|i| self.handles.get(i))
            .and_then(Option::as_ref)
            .ok_or(Errno::EBADF)
    }

    fn insert(&mut self, handle: Handle) -> Result<i64, Errno> {
        if self.open >= HOSTFS_MAX_HANDLES {
            return Err(Errno::EMFILE);
        }
        let slot = match self.handles.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.handles.push(None);
                self.handles.len() - 1
            }
        };
        self.handles[slot] = Some(handle);
        self.open += 1;
        Ok(slot as i64)
    }

    /// `hostfs_root(volume)`.
    pub fn root(&mut self, volume: u64) -> Result<i64, Errno> {
        let index = usize::try_from(volume)
            .ok()
            .filter(|&v| v < self.roots.len())
            .ok_or(Errno::ENOENT)?;
        let root = &self.roots[index];
        if self.open >= HOSTFS_MAX_HANDLES {
            return Err(Errno::EMFILE);
        }
        let fd = self.open_beneath(root.fd.as_raw_fd(), c".", libc::O_PATH, root.dev)?;
        self.insert(Handle {
            fd,
            kind: Kind::Dir,
            volume: index,
        })
    }

    /// Reads and checks a name from guest RAM: one component (no `/`, no
    /// NUL, not `.` or `..`), 1 to [`HOSTFS_NAME_MAX`] bytes.
    fn name(ram: &KernelRam, name: u64, len: u64) -> Result<CString, Errno> {
        if len == 0 {
            return Err(Errno::ENOENT);
        }
        if len > HOSTFS_NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut bytes = vec![0u8; len as usize];
        ram.read_slice(name, &mut bytes)?;
        if bytes == b"." || bytes == b".." || bytes.iter().any(|&b| b == b'/' || b == 0) {
            return Err(Errno::EINVAL);
        }
        // No NUL inside (checked): the conversion cannot fail.
        CString::new(bytes).map_err(|_| Errno::EINVAL)
    }

    /// The device number a walk from `dir_fd` must stay on (checked by
    /// hand only without `openat2`).
    fn dev_of(&self, dir_fd: RawFd) -> Result<u64, Errno> {
        match self.mode {
            OpenMode::Openat => Ok(stat_fd(dir_fd)?.st_dev),
            OpenMode::Openat2 => Ok(0),
        }
    }

    /// Handle `h` for a change: it must exist and be beneath a writable
    /// volume (`EROFS` otherwise).
    fn for_write(&self, h: u64) -> Result<&Handle, Errno> {
        let handle = self.handle(h)?;
        if !self.roots[handle.volume].writable {
            return Err(Errno::EROFS);
        }
        Ok(handle)
    }

    /// Directory handle `h` for a change of its entries: its descriptor
    /// and volume.
    fn dir_for_write(&self, h: u64) -> Result<(RawFd, usize), Errno> {
        let dir = self.handle(h)?;
        if dir.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let dir = self.for_write(h)?;
        Ok((dir.fd.as_raw_fd(), dir.volume))
    }

    /// `hostfs_walk(handle, name, name_len)`.
    pub fn walk(&mut self, ram: &KernelRam, h: u64, name: u64, len: u64) -> Result<i64, Errno> {
        self.walks += 1;
        let dir = self.handle(h)?;
        if dir.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let (dir_fd, volume) = (dir.fd.as_raw_fd(), dir.volume);
        let name = HostFs::name(ram, name, len)?;
        if self.open >= HOSTFS_MAX_HANDLES {
            return Err(Errno::EMFILE);
        }
        let dev = self.dev_of(dir_fd)?;
        let handle = self.open_entry(dir_fd, &name, volume, dev)?;
        self.insert(handle)
    }

    /// Opens entry `name` of `dir_fd` as a handle: `O_PATH`, and a
    /// regular file reopened for reading, kept only if it is the same file
    /// (`O_NONBLOCK`: a fifo swapped in does not block the open). Never
    /// for writing here, even on a writable volume: a host descriptor
    /// open for writing makes the host's `exec` of that file `ETXTBSY`,
    /// and the guest keeps handles of every file it has looked at; the
    /// first write reopens it ([`HostFs::write_fd`]).
    fn open_entry(
        &self,
        dir_fd: RawFd,
        name: &std::ffi::CStr,
        volume: usize,
        dev: u64,
    ) -> Result<Handle, Errno> {
        let path = self.open_beneath(dir_fd, name, libc::O_PATH, dev)?;
        let st = stat_fd(path.as_raw_fd())?;
        let (fd, kind) = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => (path, Kind::Dir),
            libc::S_IFLNK => (path, Kind::Symlink),
            libc::S_IFREG => {
                let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
                match self.open_beneath(dir_fd, name, flags, dev) {
                    Ok(rd) => {
                        same_file(&st, rd.as_raw_fd())?;
                        (
                            rd,
                            Kind::Regular {
                                readable: true,
                                writable: false,
                            },
                        )
                    }
                    // Not readable on the host: attributes only.
                    Err(Errno::EACCES | Errno::EPERM) => (
                        path,
                        Kind::Regular {
                            readable: false,
                            writable: false,
                        },
                    ),
                    Err(e) => return Err(e),
                }
            }
            _ => (path, Kind::Other),
        };
        Ok(Handle { fd, kind, volume })
    }

    /// The descriptor of regular file `h` open for writing: reopened
    /// read-write the first time, through its own `/proc/self/fd` link
    /// (exactly the object the handle holds, never a path the guest
    /// named), and kept only if it is the same file. The host's
    /// permission check applies (`EACCES`).
    fn write_fd(&mut self, h: u64) -> Result<RawFd, Errno> {
        let mode = self.mode;
        let file = usize::try_from(h)
            .ok()
            .and_then(|i| self.handles.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or(Errno::EBADF)?;
        if let Kind::Regular { writable: true, .. } = file.kind {
            return Ok(file.fd.as_raw_fd());
        }
        let st = stat_fd(file.fd.as_raw_fd())?;
        let path = proc_fd_path(file.fd.as_raw_fd());
        let flags = libc::O_RDWR | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        let fd = match mode {
            OpenMode::Openat2 => {
                let how = OpenHow {
                    flags: flags as u64,
                    mode: 0,
                    resolve: 0,
                };
                // SAFETY: a NUL-terminated path and an open_how the kernel
                // reads `size_of` bytes of.
                unsafe {
                    libc::syscall(
                        libc::SYS_openat2,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        &how as *const OpenHow,
                        std::mem::size_of::<OpenHow>(),
                    )
                }
            }
            // SAFETY: a NUL-terminated path.
            OpenMode::Openat => unsafe {
                libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags, 0)
            },
        };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: a descriptor just opened, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        same_file(&st, fd.as_raw_fd())?;
        let raw = fd.as_raw_fd();
        file.fd = fd;
        file.kind = Kind::Regular {
            readable: true,
            writable: true,
        };
        Ok(raw)
    }

    /// `hostfs_getattr(handle, buf)`.
    pub fn getattr(&self, ram: &KernelRam, h: u64, buf: u64) -> Result<i64, Errno> {
        let fd = self.handle(h)?.fd.as_raw_fd();
        ram.check(buf, std::mem::size_of::<HostfsStat>() as u64)?;
        let st = stat_fd(fd)?;
        let out = HostfsStat {
            ino: st.st_ino,
            mode: st.st_mode as u64,
            nlink: st.st_nlink,
            uid: st.st_uid as u64,
            gid: st.st_gid as u64,
            size: st.st_size.max(0) as u64,
            rdev: st.st_rdev,
            blocks: st.st_blocks.max(0) as u64,
            atime_ns: ns(st.st_atime, st.st_atime_nsec),
            mtime_ns: ns(st.st_mtime, st.st_mtime_nsec),
            ctime_ns: ns(st.st_ctime, st.st_ctime_nsec),
        };
        ram.write_obj(buf, &out)?;
        Ok(0)
    }

    /// `hostfs_readdir(handle, cookie, buf, len)`: the host's
    /// `getdents64` records, as they are.
    pub fn readdir(
        &mut self,
        ram: &KernelRam,
        h: u64,
        cookie: u64,
        buf: u64,
        len: u64,
    ) -> Result<i64, Errno> {
        let dir = self.handle(h)?;
        if dir.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let len = len.min(HOSTFS_IO_MAX);
        ram.check(buf, len)?;
        let cookie = i64::try_from(cookie).map_err(|_| Errno::EINVAL)?;
        let dev = self.dev_of(dir.fd.as_raw_fd())?;
        let fd = self.open_beneath(
            dir.fd.as_raw_fd(),
            c".",
            libc::O_RDONLY | libc::O_DIRECTORY,
            dev,
        )?;
        // SAFETY: lseek on a descriptor we own.
        if unsafe { libc::lseek(fd.as_raw_fd(), cookie, libc::SEEK_SET) } < 0 {
            return Err(last_errno());
        }
        self.buf.resize(len as usize, 0);
        // SAFETY: the kernel writes at most `len` bytes into our buffer.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                self.buf.as_mut_ptr(),
                len as usize,
            )
        };
        if n < 0 {
            return Err(last_errno());
        }
        ram.write_slice(buf, &self.buf[..n as usize])?;
        Ok(n as i64)
    }

    /// `hostfs_read(handle, buf, len, off)`.
    pub fn read(
        &mut self,
        ram: &KernelRam,
        h: u64,
        buf: u64,
        len: u64,
        off: u64,
    ) -> Result<i64, Errno> {
        self.readable(h)?;
        let len = len.min(HOSTFS_IO_MAX);
        ram.check(buf, len)?;
        let n = self.read_host(h, len, off)?;
        ram.write_slice(buf, &self.buf[..n])?;
        Ok(n as i64)
    }

    /// The descriptor of `h` if it is a readable regular file, else why not.
    fn readable(&self, h: u64) -> Result<RawFd, Errno> {
        let file = self.handle(h)?;
        match file.kind {
            Kind::Regular { readable: true, .. } => Ok(file.fd.as_raw_fd()),
            Kind::Regular {
                readable: false, ..
            } => Err(Errno::EACCES),
            Kind::Dir => Err(Errno::EISDIR),
            Kind::Symlink | Kind::Other => Err(Errno::EINVAL),
        }
    }

    /// Reads up to `len` bytes of regular file `h` at `off` into the
    /// bounce buffer; the count.
    fn read_host(&mut self, h: u64, len: u64, off: u64) -> Result<usize, Errno> {
        let fd = self.readable(h)?;
        let off = i64::try_from(off).map_err(|_| Errno::EINVAL)?;
        self.buf.resize(len as usize, 0);
        // SAFETY: the kernel writes at most `len` bytes into our buffer.
        let n = unsafe { libc::pread64(fd, self.buf.as_mut_ptr().cast(), len as usize, off) };
        if n < 0 {
            return Err(last_errno());
        }
        self.bytes_read += n as u64;
        Ok(n as usize)
    }

    /// `hostfs_readv(handle, iov, iovcnt, off)`: as [`HostFs::read`] into
    /// each buffer in turn. Checked first: `iovcnt` 0 or above
    /// [`HOSTFS_IOV_MAX`] → `EINVAL`; the array or a buffer not in RAM →
    /// `EFAULT`; buffers adding up to more than [`HOSTFS_IO_MAX`] →
    /// `EINVAL`. Nothing is read when a check fails.
    pub fn readv(
        &mut self,
        ram: &KernelRam,
        h: u64,
        iov: u64,
        iovcnt: u64,
        off: u64,
    ) -> Result<i64, Errno> {
        self.readable(h)?;
        if iovcnt == 0 || iovcnt > HOSTFS_IOV_MAX {
            return Err(Errno::EINVAL);
        }
        let size = std::mem::size_of::<KernelIovec>() as u64;
        let mut bufs = Vec::with_capacity(iovcnt as usize);
        let mut total = 0u64;
        for i in 0..iovcnt {
            let v: KernelIovec = ram.read_obj(iov.checked_add(i * size).ok_or(Errno::EFAULT)?)?;
            ram.check(v.base, v.len)?;
            total = total.checked_add(v.len).ok_or(Errno::EINVAL)?;
            bufs.push(v);
        }
        if total > HOSTFS_IO_MAX {
            return Err(Errno::EINVAL);
        }
        // One host read for the whole range, then scattered.
        let n = self.read_host(h, total, off)?;
        let mut at = 0usize;
        for v in bufs {
            if at >= n {
                break;
            }
            let take = (v.len as usize).min(n - at);
            ram.write_slice(v.base, &self.buf[at..at + take])?;
            at += take;
        }
        Ok(n as i64)
    }

    /// `hostfs_readlink(handle, buf, len)`.
    pub fn readlink(&mut self, ram: &KernelRam, h: u64, buf: u64, len: u64) -> Result<i64, Errno> {
        let link = self.handle(h)?;
        if link.kind != Kind::Symlink {
            return Err(Errno::EINVAL);
        }
        let fd = link.fd.as_raw_fd();
        let len = len.min(4096);
        ram.check(buf, len)?;
        self.buf.resize(4096, 0);
        // SAFETY: an O_PATH descriptor of the link with an empty path (Linux
        // 2.6.39+); the kernel writes at most 4096 bytes into our buffer.
        let n = unsafe {
            libc::syscall(
                libc::SYS_readlinkat,
                fd,
                c"".as_ptr(),
                self.buf.as_mut_ptr(),
                self.buf.len(),
            )
        };
        if n < 0 {
            return Err(last_errno());
        }
        let n = (n as u64).min(len) as usize;
        ram.write_slice(buf, &self.buf[..n])?;
        Ok(n as i64)
    }

    /// `hostfs_clunk(handle)`.
    pub fn clunk(&mut self, h: u64) -> Result<i64, Errno> {
        self.handle(h)?;
        // Dropping the handle closes its descriptor.
        self.handles[h as usize] = None;
        self.open -= 1;
        Ok(0)
    }
}

/// A descriptor's `/proc/self/fd` path: names exactly the object the
/// descriptor holds (a magic link to it), for the calls that take no
/// `AT_EMPTY_PATH` on older kernels.
fn proc_fd_path(fd: RawFd) -> CString {
    // Digits only: no NUL inside.
    CString::new(format!("/proc/self/fd/{fd}")).unwrap_or_default()
}

/// `ESTALE` unless descriptor `fd` holds the file `st` describes (a file
/// swapped in between two opens is refused).
fn same_file(st: &libc::stat, fd: RawFd) -> Result<(), Errno> {
    let now = stat_fd(fd)?;
    if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
        return Err(Errno::ESTALE);
    }
    Ok(())
}

/// `fchmodat2`'s number (Linux 6.6; libc does not name it yet).
const SYS_FCHMODAT2: libc::c_long = 452;

fn check(r: libc::c_long) -> Result<(), Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

impl HostFs {
    /// `hostfs_create(dir, name, name_len, mode)`: `O_CREAT | O_EXCL`.
    pub fn create(
        &mut self,
        ram: &KernelRam,
        dir: u64,
        name: u64,
        len: u64,
        mode: u64,
    ) -> Result<i64, Errno> {
        let (dir_fd, volume) = self.dir_for_write(dir)?;
        let name = HostFs::name(ram, name, len)?;
        let perm = (mode & 0o7777) as u32;
        let kind = (mode as u32) & libc::S_IFMT;
        if mode > u32::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        if self.open >= HOSTFS_MAX_HANDLES {
            return Err(Errno::EMFILE);
        }
        let dev = self.dev_of(dir_fd)?;
        let handle = match kind {
            libc::S_IFREG => {
                let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_NOCTTY;
                let fd = self.open_beneath_mode(dir_fd, &name, flags, perm, dev)?;
                Handle {
                    fd,
                    kind: Kind::Regular {
                        readable: true,
                        writable: true,
                    },
                    volume,
                }
            }
            libc::S_IFDIR => {
                // SAFETY: a NUL-terminated one-component name under a
                // directory descriptor we hold.
                check(unsafe { libc::mkdirat(dir_fd, name.as_ptr(), perm) } as libc::c_long)?;
                self.open_entry(dir_fd, &name, volume, dev)?
            }
            libc::S_IFIFO | libc::S_IFSOCK => {
                // SAFETY: as above.
                let r = unsafe { libc::mknodat(dir_fd, name.as_ptr(), kind | perm, 0) };
                check(r as libc::c_long)?;
                self.open_entry(dir_fd, &name, volume, dev)?
            }
            // The host never makes device nodes (nor could it: vkernel
            // runs without CAP_MKNOD).
            libc::S_IFCHR | libc::S_IFBLK => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        };
        // The host's umask took bits off: put the guest's mode back (the
        // guest applied its own umask).
        if stat_fd(handle.fd.as_raw_fd())?.st_mode & 0o7777 != perm {
            chmod_fd(handle.fd.as_raw_fd(), perm)?;
        }
        self.insert(handle)
    }

    /// `hostfs_symlink(dir, name, name_len, target, target_len)`.
    pub fn symlink(
        &mut self,
        ram: &KernelRam,
        dir: u64,
        name: u64,
        len: u64,
        target: u64,
        target_len: u64,
    ) -> Result<i64, Errno> {
        let (dir_fd, volume) = self.dir_for_write(dir)?;
        let name = HostFs::name(ram, name, len)?;
        if target_len == 0 {
            return Err(Errno::ENOENT);
        }
        if target_len > HOSTFS_TARGET_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut bytes = vec![0u8; target_len as usize];
        ram.read_slice(target, &mut bytes)?;
        // The target is text the guest resolves; only NUL cannot be said.
        let target = CString::new(bytes).map_err(|_| Errno::EINVAL)?;
        if self.open >= HOSTFS_MAX_HANDLES {
            return Err(Errno::EMFILE);
        }
        // SAFETY: NUL-terminated strings; a directory descriptor we hold.
        check(unsafe { libc::symlinkat(target.as_ptr(), dir_fd, name.as_ptr()) } as libc::c_long)?;
        let dev = self.dev_of(dir_fd)?;
        let handle = self.open_entry(dir_fd, &name, volume, dev)?;
        self.insert(handle)
    }

    /// `hostfs_link(handle, dir, name, name_len)`.
    pub fn link(
        &mut self,
        ram: &KernelRam,
        h: u64,
        dir: u64,
        name: u64,
        len: u64,
    ) -> Result<i64, Errno> {
        let (dir_fd, volume) = self.dir_for_write(dir)?;
        let file = self.handle(h)?;
        if file.volume != volume {
            return Err(Errno::EXDEV);
        }
        if file.kind == Kind::Dir {
            return Err(Errno::EPERM);
        }
        let fd = file.fd.as_raw_fd();
        let name = HostFs::name(ram, name, len)?;
        // The object the handle holds, never a path: AT_EMPTY_PATH (which
        // needs CAP_DAC_READ_SEARCH, which vkernel has dropped), else the
        // descriptor's magic link, followed to exactly that object.
        // SAFETY: NUL-terminated strings; descriptors we hold.
        let r =
            unsafe { libc::linkat(fd, c"".as_ptr(), dir_fd, name.as_ptr(), libc::AT_EMPTY_PATH) };
        if r < 0 {
            match last_errno() {
                Errno::ENOENT | Errno::EPERM => {
                    let path = proc_fd_path(fd);
                    // SAFETY: as above.
                    check(unsafe {
                        libc::linkat(
                            libc::AT_FDCWD,
                            path.as_ptr(),
                            dir_fd,
                            name.as_ptr(),
                            libc::AT_SYMLINK_FOLLOW,
                        )
                    } as libc::c_long)?;
                }
                e => return Err(e),
            }
        }
        Ok(0)
    }

    /// `hostfs_unlink(dir, name, name_len, flags)`.
    pub fn unlink(
        &mut self,
        ram: &KernelRam,
        dir: u64,
        name: u64,
        len: u64,
        flags: u64,
    ) -> Result<i64, Errno> {
        let (dir_fd, _) = self.dir_for_write(dir)?;
        if flags & !HOSTFS_REMOVEDIR != 0 {
            return Err(Errno::EINVAL);
        }
        let name = HostFs::name(ram, name, len)?;
        // SAFETY: a NUL-terminated name; a directory descriptor we hold.
        check(unsafe { libc::unlinkat(dir_fd, name.as_ptr(), flags as i32) } as libc::c_long)?;
        Ok(0)
    }

    /// `hostfs_rename(olddir, oldname, oldname_len, newdir, newname,
    /// newname_len, flags)`: within one volume (`EXDEV` across).
    #[allow(clippy::too_many_arguments)]
    pub fn rename(
        &mut self,
        ram: &KernelRam,
        olddir: u64,
        oldname: u64,
        oldlen: u64,
        newdir: u64,
        newname: u64,
        newlen: u64,
        flags: u64,
    ) -> Result<i64, Errno> {
        let (old_fd, old_volume) = self.dir_for_write(olddir)?;
        let (new_fd, new_volume) = self.dir_for_write(newdir)?;
        if old_volume != new_volume {
            return Err(Errno::EXDEV);
        }
        let known = (libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) as u64;
        if flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        let old = HostFs::name(ram, oldname, oldlen)?;
        let new = HostFs::name(ram, newname, newlen)?;
        // SAFETY: NUL-terminated names; directory descriptors we hold.
        check(unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                old_fd,
                old.as_ptr(),
                new_fd,
                new.as_ptr(),
                flags as libc::c_uint,
            )
        })?;
        Ok(0)
    }

    /// `hostfs_writev(handle, iov, iovcnt, off)`: the buffers, in turn,
    /// to the file range at `off`. Checked first, as
    /// [`HostFs::readv`]; nothing is written when a check fails.
    pub fn writev(
        &mut self,
        ram: &KernelRam,
        h: u64,
        iov: u64,
        iovcnt: u64,
        off: u64,
    ) -> Result<i64, Errno> {
        match self.handle(h)?.kind {
            Kind::Regular { .. } => {}
            Kind::Dir => return Err(Errno::EISDIR),
            Kind::Symlink | Kind::Other => return Err(Errno::EINVAL),
        }
        self.for_write(h)?;
        let fd = self.write_fd(h)?;
        if iovcnt == 0 || iovcnt > HOSTFS_IOV_MAX {
            return Err(Errno::EINVAL);
        }
        let off = i64::try_from(off).map_err(|_| Errno::EINVAL)?;
        let size = std::mem::size_of::<KernelIovec>() as u64;
        let mut bufs = Vec::with_capacity(iovcnt as usize);
        let mut total = 0u64;
        for i in 0..iovcnt {
            let v: KernelIovec = ram.read_obj(iov.checked_add(i * size).ok_or(Errno::EFAULT)?)?;
            ram.check(v.base, v.len)?;
            total = total.checked_add(v.len).ok_or(Errno::EINVAL)?;
            bufs.push(v);
        }
        if total > HOSTFS_IO_MAX || off.checked_add(total as i64).is_none() {
            return Err(Errno::EINVAL);
        }
        // Gathered, then one host write.
        self.buf.resize(total as usize, 0);
        let mut at = 0usize;
        for v in bufs {
            ram.read_slice(v.base, &mut self.buf[at..at + v.len as usize])?;
            at += v.len as usize;
        }
        // SAFETY: the kernel reads `total` bytes of our buffer.
        let n = unsafe { libc::pwrite64(fd, self.buf.as_ptr().cast(), total as usize, off) };
        if n < 0 {
            return Err(last_errno());
        }
        self.bytes_written += n as u64;
        Ok(n as i64)
    }

    /// `hostfs_setattr(handle, valid, mode, size, atime_ns, mtime_ns)`.
    /// In order: the size (`ftruncate`: a regular file open for writing,
    /// else `EACCES`), the permission bits, the times.
    pub fn setattr(
        &mut self,
        h: u64,
        valid: u64,
        mode: u64,
        size: u64,
        atime_ns: u64,
        mtime_ns: u64,
    ) -> Result<i64, Errno> {
        let known = HOSTFS_SET_MODE | HOSTFS_SET_SIZE | HOSTFS_SET_ATIME | HOSTFS_SET_MTIME;
        let kind = self.for_write(h)?.kind;
        if valid & !known != 0 || (valid & HOSTFS_SET_MODE != 0 && mode & !0o7777 != 0) {
            return Err(Errno::EINVAL);
        }
        if valid & HOSTFS_SET_SIZE != 0 {
            let size = i64::try_from(size).map_err(|_| Errno::EINVAL)?;
            match kind {
                Kind::Regular { .. } => {}
                Kind::Dir => return Err(Errno::EISDIR),
                Kind::Symlink | Kind::Other => return Err(Errno::EINVAL),
            }
            let fd = self.write_fd(h)?;
            // SAFETY: a descriptor we hold, open for writing.
            check(unsafe { libc::ftruncate(fd, size) } as libc::c_long)?;
        }
        let fd = self.handle(h)?.fd.as_raw_fd();
        if valid & HOSTFS_SET_MODE != 0 {
            chmod_fd(fd, mode as u32)?;
        }
        if valid & (HOSTFS_SET_ATIME | HOSTFS_SET_MTIME) != 0 {
            let time = |set: u64, ns: u64| libc::timespec {
                tv_sec: if valid & set != 0 {
                    (ns / 1_000_000_000).min(i64::MAX as u64) as i64
                } else {
                    0
                },
                tv_nsec: if valid & set != 0 {
                    (ns % 1_000_000_000) as i64
                } else {
                    libc::UTIME_OMIT
                },
            };
            let times = [
                time(HOSTFS_SET_ATIME, atime_ns),
                time(HOSTFS_SET_MTIME, mtime_ns),
            ];
            // SAFETY: an empty path with AT_EMPTY_PATH names the handle's
            // object itself (a link is not followed); two timespecs.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_utimensat,
                    fd,
                    c"".as_ptr(),
                    times.as_ptr(),
                    libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            // Kernels before 5.8 take no AT_EMPTY_PATH here: the
            // descriptor's magic link names the same object.
            if r < 0 && last_errno() == Errno::EINVAL {
                let path = proc_fd_path(fd);
                // SAFETY: a NUL-terminated path naming our own
                // descriptor; two timespecs.
                check(unsafe {
                    libc::syscall(
                        libc::SYS_utimensat,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        times.as_ptr(),
                        0,
                    )
                })?;
            } else {
                check(r)?;
            }
        }
        Ok(0)
    }

    /// `hostfs_chown(handle, uid, gid)`: the host decides, by Linux's
    /// rules for an unprivileged process (vkernel has dropped its
    /// capabilities): an owner may change the group to one of its own
    /// groups, nothing else.
    pub fn chown(&mut self, h: u64, uid: u64, gid: u64) -> Result<i64, Errno> {
        let file = self.for_write(h)?;
        let id =
            |v: u64| -> Result<libc::uid_t, Errno> { u32::try_from(v).map_err(|_| Errno::EINVAL) };
        let (uid, gid) = (id(uid)?, id(gid)?);
        // SAFETY: an empty path with AT_EMPTY_PATH names the handle's
        // object itself (a link is not followed).
        check(unsafe {
            libc::fchownat(
                file.fd.as_raw_fd(),
                c"".as_ptr(),
                uid,
                gid,
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        } as libc::c_long)?;
        Ok(0)
    }

    /// `hostfs_fsync(handle, datasync)`: a file open for reading, or a
    /// directory (reopened for it).
    pub fn fsync(&mut self, h: u64, datasync: u64) -> Result<i64, Errno> {
        let file = self.handle(h)?;
        if datasync > 1 {
            return Err(Errno::EINVAL);
        }
        let sync = |fd: RawFd| {
            // SAFETY: a descriptor we hold.
            check(unsafe {
                if datasync == 1 {
                    libc::fdatasync(fd)
                } else {
                    libc::fsync(fd)
                }
            } as libc::c_long)
        };
        match file.kind {
            Kind::Regular { readable: true, .. } => sync(file.fd.as_raw_fd())?,
            Kind::Regular { .. } => return Err(Errno::EACCES),
            Kind::Dir => {
                let dev = self.dev_of(file.fd.as_raw_fd())?;
                let fd = self.open_beneath(
                    file.fd.as_raw_fd(),
                    c".",
                    libc::O_RDONLY | libc::O_DIRECTORY,
                    dev,
                )?;
                sync(fd.as_raw_fd())?;
            }
            Kind::Symlink | Kind::Other => return Err(Errno::EINVAL),
        }
        Ok(0)
    }
}

/// chmod of exactly the object `fd` holds (an `O_PATH` descriptor too):
/// `fchmodat2(AT_EMPTY_PATH)`, or its magic link where that is missing
/// (Linux before 6.6). A symbolic link's mode cannot change
/// (`EOPNOTSUPP`, as on Linux).
fn chmod_fd(fd: RawFd, perm: u32) -> Result<(), Errno> {
    if stat_fd(fd)?.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(Errno::EOPNOTSUPP);
    }
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH.
    let r = unsafe { libc::syscall(SYS_FCHMODAT2, fd, c"".as_ptr(), perm, libc::AT_EMPTY_PATH) };
    if r == 0 {
        return Ok(());
    }
    match last_errno() {
        Errno::ENOSYS | Errno::EINVAL => {
            let path = proc_fd_path(fd);
            // SAFETY: a NUL-terminated path naming our own descriptor.
            check(unsafe { libc::syscall(libc::SYS_fchmodat, libc::AT_FDCWD, path.as_ptr(), perm) })
        }
        e => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    const NAME: u64 = 0x1000;
    const BUF: u64 = 0x2000;

    fn ram() -> KernelRam {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_000)]).unwrap();
        KernelRam::new(mem, 0x10_000)
    }

    /// `dir/inside/{file, sub/, abs -> /etc/passwd, up -> ../outside}` and
    /// `dir/outside/secret`.
    fn fixture() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let inside = d.path().join("inside");
        std::fs::create_dir_all(inside.join("sub")).unwrap();
        std::fs::create_dir(d.path().join("outside")).unwrap();
        std::fs::write(d.path().join("outside/secret"), "secret").unwrap();
        std::fs::write(inside.join("file"), "inside").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", inside.join("abs")).unwrap();
        std::os::unix::fs::symlink("../outside", inside.join("up")).unwrap();
        d
    }

    fn walk(fs: &mut HostFs, ram: &KernelRam, h: i64, name: &[u8]) -> Result<i64, Errno> {
        ram.write_slice(NAME, name).unwrap();
        fs.walk(ram, h as u64, NAME, name.len() as u64)
    }

    /// The same cases with openat2 and with the fallback for kernels
    /// without it (which this machine would never take otherwise).
    #[test]
    fn both_open_modes_confine_walks() {
        for mode in [OpenMode::Openat2, OpenMode::Openat] {
            let d = fixture();
            let inside = d.path().join("inside");
            let mut fs = HostFs::new(&[&inside]).unwrap();
            if fs.mode == OpenMode::Openat && mode == OpenMode::Openat2 {
                continue; // no openat2 here
            }
            fs.mode = mode;
            let ram = ram();
            let root = fs.root(0).unwrap();
            let f = walk(&mut fs, &ram, root, b"file").unwrap();
            assert_eq!(fs.read(&ram, f as u64, BUF, 64, 0), Ok(6), "{mode:?}");
            let mut b = [0u8; 6];
            ram.read_slice(BUF, &mut b).unwrap();
            assert_eq!(&b, b"inside");
            // Links are opened as themselves: no read, no walk through.
            for link in [&b"abs"[..], b"up"] {
                let l = walk(&mut fs, &ram, root, link).unwrap();
                assert_eq!(fs.read(&ram, l as u64, BUF, 64, 0), Err(Errno::EINVAL));
                ram.write_slice(NAME, b"secret").unwrap();
                assert_eq!(fs.walk(&ram, l as u64, NAME, 6), Err(Errno::ENOTDIR));
                fs.clunk(l as u64).unwrap();
            }
            for bad in [&b".."[..], b".", b"up/secret", b"sub/../../outside"] {
                assert_eq!(
                    walk(&mut fs, &ram, root, bad),
                    Err(Errno::EINVAL),
                    "{mode:?}"
                );
            }
            let sub = walk(&mut fs, &ram, root, b"sub").unwrap();
            assert_eq!(walk(&mut fs, &ram, sub, b".."), Err(Errno::EINVAL));
            assert_eq!(fs.read(&ram, sub as u64, BUF, 64, 0), Err(Errno::EISDIR));
            // A directory swapped for a link after its handle was taken:
            // the handle still names the directory itself.
            std::fs::rename(inside.join("sub"), inside.join("sub2")).unwrap();
            std::os::unix::fs::symlink("../outside", inside.join("sub")).unwrap();
            assert_eq!(walk(&mut fs, &ram, sub, b"secret"), Err(Errno::ENOENT));
            let now = walk(&mut fs, &ram, root, b"sub").unwrap();
            assert_eq!(walk(&mut fs, &ram, now, b"secret"), Err(Errno::ENOTDIR));
            for h in [f, sub, now, root] {
                fs.clunk(h as u64).unwrap();
            }
            assert_eq!(fs.open, 0);
        }
    }

    #[test]
    fn another_file_system_mounted_inside_is_exdev() {
        // /proc is a mount of its own under / on every Linux.
        for mode in [OpenMode::Openat2, OpenMode::Openat] {
            let mut fs = HostFs::new(&[Path::new("/")]).unwrap();
            if fs.mode == OpenMode::Openat && mode == OpenMode::Openat2 {
                continue;
            }
            fs.mode = mode;
            let ram = ram();
            let root = fs.root(0).unwrap();
            assert_eq!(
                walk(&mut fs, &ram, root, b"proc"),
                Err(Errno::EXDEV),
                "{mode:?}"
            );
            let etc = walk(&mut fs, &ram, root, b"etc");
            assert!(etc.is_ok(), "{mode:?}");
        }
    }

    fn iov(ram: &KernelRam, at: u64, bytes: &[u8]) -> u64 {
        ram.write_slice(BUF, bytes).unwrap();
        let v = KernelIovec {
            base: BUF,
            len: bytes.len() as u64,
        };
        ram.write_obj(at, &v).unwrap();
        at
    }

    /// The writing calls with openat2 and with the fallback: a planted
    /// link is never followed by a create, a write or a chmod; nothing
    /// outside the volume changes; the read-only volume is EROFS and the
    /// other volume EXDEV.
    #[test]
    fn writes_stay_beneath_a_writable_volume() {
        for mode in [OpenMode::Openat2, OpenMode::Openat] {
            let d = fixture();
            let inside = d.path().join("inside");
            let other = d.path().join("other");
            std::fs::create_dir(&other).unwrap();
            std::os::unix::fs::symlink("../outside/secret", inside.join("esc")).unwrap();
            let mut fs =
                HostFs::with_access(&[(inside.as_path(), true), (other.as_path(), false)]).unwrap();
            if fs.mode == OpenMode::Openat && mode == OpenMode::Openat2 {
                continue;
            }
            fs.mode = mode;
            let ram = ram();
            let root = fs.root(0).unwrap() as u64;
            let ro = fs.root(1).unwrap() as u64;
            let name = |ram: &KernelRam, n: &[u8]| {
                ram.write_slice(NAME, n).unwrap();
                (NAME, n.len() as u64)
            };
            let (n, l) = name(&ram, b"esc");
            assert_eq!(
                fs.create(&ram, root, n, l, 0o100644),
                Err(Errno::EEXIST),
                "{mode:?}"
            );
            let esc = walk(&mut fs, &ram, root as i64, b"esc").unwrap() as u64;
            let v = iov(&ram, 0x3000, b"pwned");
            assert_eq!(fs.writev(&ram, esc, v, 1, 0), Err(Errno::EINVAL));
            assert_eq!(
                fs.setattr(esc, HOSTFS_SET_MODE, 0o777, 0, 0, 0),
                Err(Errno::EOPNOTSUPP)
            );
            assert_eq!(
                fs.setattr(esc, HOSTFS_SET_SIZE, 0, 0, 0, 0),
                Err(Errno::EINVAL)
            );
            let (n, l) = name(&ram, b"new");
            let f = fs.create(&ram, root, n, l, 0o100600).unwrap() as u64;
            let v = iov(&ram, 0x3000, b"data");
            assert_eq!(fs.writev(&ram, f, v, 1, 0), Ok(4));
            assert_eq!(std::fs::read(inside.join("new")).unwrap(), b"data");
            // A rename of the planted link moves the link itself.
            ram.write_slice(NAME, b"esc").unwrap();
            ram.write_slice(NAME + 0x100, b"moved").unwrap();
            assert_eq!(
                fs.rename(&ram, root, NAME, 3, root, NAME + 0x100, 5, 0),
                Ok(0)
            );
            assert!(std::fs::symlink_metadata(inside.join("moved"))
                .unwrap()
                .file_type()
                .is_symlink());
            let (n, l) = name(&ram, b"..");
            assert_eq!(fs.unlink(&ram, root, n, l, 0), Err(Errno::EINVAL));
            assert_eq!(fs.create(&ram, root, n, l, 0o40755), Err(Errno::EINVAL));
            let (n, l) = name(&ram, b"x");
            assert_eq!(fs.create(&ram, ro, n, l, 0o100644), Err(Errno::EROFS));
            assert_eq!(fs.link(&ram, f, ro, n, l), Err(Errno::EROFS));
            let sub = fs.create(&ram, root, n, l, 0o40700).unwrap() as u64;
            let (n, l) = name(&ram, b"hard");
            assert_eq!(fs.link(&ram, f, sub, n, l), Ok(0));
            assert_eq!(std::fs::read(inside.join("x/hard")).unwrap(), b"data");
            // A walk opens a file read-only (the host can still exec it);
            // its first write reopens it read-write.
            let (n, l) = name(&ram, b"file");
            let file = fs.walk(&ram, root, n, l).unwrap() as u64;
            let access = |fs: &HostFs| {
                let fd = fs.handle(file).unwrap().fd.as_raw_fd();
                // SAFETY: F_GETFL on a descriptor the table holds.
                let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
                flags & libc::O_ACCMODE
            };
            assert_eq!(access(&fs), libc::O_RDONLY);
            let v = iov(&ram, 0x3000, b"IN");
            assert_eq!(fs.writev(&ram, file, v, 1, 0), Ok(2));
            assert_eq!(access(&fs), libc::O_RDWR);
            assert_eq!(std::fs::read(inside.join("file")).unwrap(), b"INside");
            assert_eq!(
                std::fs::read(d.path().join("outside/secret")).unwrap(),
                b"secret",
                "{mode:?}"
            );
            assert_eq!(
                std::fs::read_dir(d.path().join("outside")).unwrap().count(),
                1
            );
            assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0);
        }
    }
}
