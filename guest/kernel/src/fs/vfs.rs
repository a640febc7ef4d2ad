//! The virtual file system: the objects of every file system behind one
//! [`Inode`] trait, the mount table, and path resolution (xv6's fs.c
//! namei, with Linux's rules: `.` and `..`, symbolic links followed up to
//! [`MAX_SYMLINKS`] times, `ENAMETOOLONG`, `ENOTDIR`, `ENOENT`).
//!
//! Names are bytes, as on Linux. There are no dentries: each directory
//! knows its own entries and its parent, and the mount table maps a
//! covered directory to the root of what is mounted on it.

use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::cell::RefCell;

use linux_raw_sys::general::{
    DT_BLK, DT_CHR, DT_DIR, DT_FIFO, DT_LNK, DT_REG, DT_SOCK, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO,
    S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK,
};
use vkernel_abi::Errno;

use super::device::Device;

/// Longest path a call accepts, with its NUL (Linux's `PATH_MAX`).
pub const PATH_MAX: usize = 4096;
/// Longest name of one directory entry (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Symbolic links one resolution follows before `ELOOP` (Linux's).
pub const MAX_SYMLINKS: usize = 40;

/// A shared reference to an inode.
pub type InodeRef = Rc<dyn Inode>;

/// What kind of object an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl Kind {
    /// The `S_IF*` bits of `st_mode`.
    pub fn mode_bits(self) -> u32 {
        match self {
            Kind::Regular => S_IFREG,
            Kind::Directory => S_IFDIR,
            Kind::Symlink => S_IFLNK,
            Kind::CharDevice => S_IFCHR,
            Kind::BlockDevice => S_IFBLK,
            Kind::Fifo => S_IFIFO,
            Kind::Socket => S_IFSOCK,
        }
    }

    /// The kind named by the `S_IF*` bits of `mode`.
    pub fn from_mode(mode: u32) -> Option<Kind> {
        Some(match mode & S_IFMT {
            S_IFREG => Kind::Regular,
            S_IFDIR => Kind::Directory,
            S_IFLNK => Kind::Symlink,
            S_IFCHR => Kind::CharDevice,
            S_IFBLK => Kind::BlockDevice,
            S_IFIFO => Kind::Fifo,
            S_IFSOCK => Kind::Socket,
            _ => return None,
        })
    }

    /// The `d_type` of a directory entry.
    pub fn dirent_type(self) -> u8 {
        (match self {
            Kind::Regular => DT_REG,
            Kind::Directory => DT_DIR,
            Kind::Symlink => DT_LNK,
            Kind::CharDevice => DT_CHR,
            Kind::BlockDevice => DT_BLK,
            Kind::Fifo => DT_FIFO,
            Kind::Socket => DT_SOCK,
        }) as u8
    }
}

/// An inode's status (what `stat` reports).
#[derive(Clone, Copy, Debug)]
pub struct Metadata {
    /// The file system's device number.
    pub dev: u64,
    pub ino: u64,
    pub kind: Kind,
    /// Permission bits (07777).
    pub perm: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// The device a device node names.
    pub rdev: u64,
    /// 512-byte blocks held.
    pub blocks: u64,
    /// Times, nanoseconds since the epoch.
    pub atime_ns: u64,
    pub mtime_ns: u64,
    pub ctime_ns: u64,
}

/// One directory entry, as `getdents64` reports it.
pub struct DirEntry {
    pub ino: u64,
    pub kind: Kind,
    pub name: Vec<u8>,
}

/// Where a read or write of file data goes to or comes from: the file
/// system hands out a list of pieces of its own pages (a scatter list,
/// in order: one run of the file or ring), and the caller copies them
/// straight to or from the process (no bounce buffer; on `pmap=host` one
/// hypercall for the whole list). Returns how many bytes it took, counted
/// from the first piece (short at the first unmapped user page).
pub type Sink<'a> = &'a mut dyn FnMut(&[&[u8]]) -> Result<usize, Errno>;
/// See [`Sink`].
pub type Source<'a> = &'a mut dyn FnMut(&mut [&mut [u8]]) -> Result<usize, Errno>;

/// Whether the pieces a [`Sink`] is being handed stay as they are until
/// the next hypercall (see [`stable_pieces`]).
/// The file-system uid and gid of the process making the current system
/// call: who owns what it creates (set by the system-call layer).
static CREATOR: [core::sync::atomic::AtomicU32; 2] =
    [const { core::sync::atomic::AtomicU32::new(0) }; 2];

/// Records the file-system ids of the system call about to run.
pub fn set_creator(fsuid: u32, fsgid: u32) {
    use core::sync::atomic::Ordering::Relaxed;
    CREATOR[0].store(fsuid, Relaxed);
    CREATOR[1].store(fsgid, Relaxed);
}

/// The owner (uid, gid) of a file the current call creates.
pub fn creator() -> (u32, u32) {
    use core::sync::atomic::Ordering::Relaxed;
    (CREATOR[0].load(Relaxed), CREATOR[1].load(Relaxed))
}

static STABLE_PIECES: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Hands `out` pieces that stay as they are until the next hypercall
/// (tmpfs file pages: their writes and truncations send the posted calls
/// first, and a freed page does too), so the sink may post their copy to
/// the process with the next RUN (`syscall::uio::ToUser`) rather than
/// make it at once.
pub fn stable_pieces(out: Sink, pieces: &[&[u8]]) -> Result<usize, Errno> {
    use core::sync::atomic::Ordering::Relaxed;
    STABLE_PIECES.store(true, Relaxed);
    let r = out(pieces);
    STABLE_PIECES.store(false, Relaxed);
    r
}

/// Whether the pieces a [`Sink`] is handed now came from [`stable_pieces`].
pub fn pieces_stable() -> bool {
    STABLE_PIECES.load(core::sync::atomic::Ordering::Relaxed)
}

/// Most pieces a file system hands a [`Sink`] or [`Source`] at once
/// (4 MiB of pages: one preadv/pwritev hypercall).
pub const MAX_PIECES: usize = vkernel_abi::VMSPACE_IOV_MAX as usize;

/// One object of a file system. Every operation a kind does not support
/// has the errno Linux gives for it.
pub trait Inode {
    /// Its status.
    fn meta(&self) -> Metadata;
    /// Bytes its file system's files hold, and its size limit (statfs).
    fn usage(&self) -> (u64, u64) {
        (0, 0)
    }
    /// Its file system's `f_type` (statfs): tmpfs's unless it says.
    fn fs_magic(&self) -> u64 {
        linux_raw_sys::general::TMPFS_MAGIC as u64
    }
    /// chmod.
    fn set_perm(&self, _perm: u32) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }
    /// chown (`None` keeps that id).
    fn set_owner(&self, _uid: Option<u32>, _gid: Option<u32>) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }
    /// utimensat (`None` keeps that time).
    fn set_times(&self, _atime: Option<u64>, _mtime: Option<u64>) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    /// Called when a regular file is opened for writing (Linux's
    /// `may_open`/overlayfs copy-up point): an overlay copies the file up
    /// now, a read-only file system says `EROFS`.
    fn open_write(&self) -> Result<(), Errno> {
        Ok(())
    }

    /// fsync (`datasync`: fdatasync): what the file system keeps
    /// elsewhere is made durable there (tmpfs keeps nothing elsewhere).
    fn sync(&self, _datasync: bool) -> Result<(), Errno> {
        Ok(())
    }

    // ---- directories

    /// The entry `name` (never `.` or `..`: the VFS resolves those).
    fn lookup(&self, _name: &[u8]) -> Result<InodeRef, Errno> {
        Err(Errno::ENOTDIR)
    }
    /// The parent directory (itself for a file system's root).
    fn parent(&self) -> Option<InodeRef> {
        None
    }
    /// Makes a new entry `name`: a file, directory, device or fifo.
    fn create(&self, _name: &[u8], _kind: Kind, _perm: u32, _rdev: u64) -> Result<InodeRef, Errno> {
        Err(Errno::ENOTDIR)
    }
    /// Makes a regular file with no name in this directory's file system
    /// (`O_TMPFILE`); `linkable`: `linkat` may give it one later (no
    /// `O_EXCL`). `EOPNOTSUPP` where the file system cannot.
    fn create_unnamed(&self, _perm: u32, _linkable: bool) -> Result<InodeRef, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Whether a file with no links may be linked again (an `O_TMPFILE`
    /// file made linkable; linking it takes that away, as Linux's
    /// `I_LINKABLE`).
    fn linkable(&self) -> bool {
        false
    }
    /// Makes a symbolic link `name` pointing to `target`.
    fn symlink(&self, _name: &[u8], _target: &[u8]) -> Result<InodeRef, Errno> {
        Err(Errno::ENOTDIR)
    }
    /// Makes `name` a new link to `inode` (same file system).
    fn link(&self, _name: &[u8], _inode: &InodeRef) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }
    /// Removes entry `name`: a directory (empty) if `dir`, else anything
    /// but a directory.
    fn unlink(&self, _name: &[u8], _dir: bool) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }
    /// Moves entry `old` to `new` in `new_dir` (same file system),
    /// replacing what is there as POSIX's rename says.
    fn rename(&self, _old: &[u8], _new_dir: &InodeRef, _new: &[u8]) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }
    /// Entry number `index` (0 and 1 are `.` and `..`), if there is one.
    fn readdir(&self, _index: u64) -> Result<Option<DirEntry>, Errno> {
        Err(Errno::ENOTDIR)
    }

    // ---- regular files

    /// Reads up to `len` bytes at `off` into `out`; the bytes read (0 at
    /// or past the end).
    fn read_at(&self, _off: u64, _len: usize, _out: Sink) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    /// Writes up to `len` bytes at `off` from `src`; the bytes written.
    fn write_at(&self, _off: u64, _len: usize, _src: Source) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    /// Sets the size (zero-filled when growing).
    fn truncate(&self, _size: u64) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
    /// fallocate on the file (Linux's `fallocate` file operation):
    /// `punch` frees the bytes of `[off, off + len)` (they read as zeros
    /// after), else they are given pages and, unless `keep_size`, the file
    /// grows to hold them. `EOPNOTSUPP` where the file system has none.
    fn allocate(&self, _keep_size: bool, _punch: bool, _off: u64, _len: u64) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    // ---- the rest

    /// A symbolic link's target.
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }
    /// For a magic link (procfs's `/proc/PID/fd/N`): the object itself,
    /// which path resolution takes instead of resolving the link's text
    /// (so a pipe, a deleted or renamed file can be opened again).
    fn follow_magic(&self) -> Option<Result<InodeRef, Errno>> {
        None
    }
    /// What a device node or fifo opens to.
    fn device(&self) -> Option<Rc<dyn Device>> {
        None
    }
    /// For file systems to recognise their own inodes (rename, link).
    fn as_any(&self) -> &dyn Any;
    /// The file's pages for mmap, if it can be mapped (Linux's `mmap`
    /// file operation; others are `ENODEV`).
    fn pager(&self) -> Option<Rc<dyn crate::mm::Pager>> {
        None
    }
}

/// A file system mounted on a directory.
pub struct Mount {
    /// The covered directory.
    point: InodeRef,
    /// The mounted file system's root.
    pub root: InodeRef,
    /// Where it is mounted (absolute, clean), what (the source), and the
    /// file system's type, as `/proc/mounts` lists them.
    pub path: Vec<u8>,
    pub source: &'static str,
    pub fstype: &'static str,
}

/// The mount table, first entry the root (shared with procfs, which lists
/// it in `/proc/mounts`).
pub type MountTable = Rc<RefCell<Vec<Mount>>>;

/// The mount table and the root.
pub struct Vfs {
    root: InodeRef,
    mounts: MountTable,
}

/// Whether two references name the same inode.
pub fn same(a: &InodeRef, b: &InodeRef) -> bool {
    let (x, y) = (a.meta(), b.meta());
    x.dev == y.dev && x.ino == y.ino
}

/// How [`Vfs::resolve`] treats the last component when it is a symlink.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

impl Vfs {
    /// A VFS whose root is `root`, a file system of type `fstype`.
    pub fn new(root: InodeRef, fstype: &'static str) -> Vfs {
        let entry = Mount {
            point: root.clone(),
            root: root.clone(),
            path: alloc::vec![b'/'],
            source: fstype,
            fstype,
        };
        Vfs {
            root,
            mounts: Rc::new(RefCell::new(alloc::vec![entry])),
        }
    }

    /// The mount table, for procfs (weak: procfs is itself mounted).
    pub fn mount_table(&self) -> Weak<RefCell<Vec<Mount>>> {
        Rc::downgrade(&self.mounts)
    }

    /// The root directory.
    pub fn root(&self) -> InodeRef {
        self.root.clone()
    }

    /// Mounts `root`, a file system of type `fstype` from `source`, on
    /// the directory at absolute `path`.
    pub fn mount(
        &self,
        path: &[u8],
        root: InodeRef,
        source: &'static str,
        fstype: &'static str,
    ) -> Result<(), Errno> {
        let point = self.resolve(&self.root, path, Follow::Yes)?;
        if point.meta().kind != Kind::Directory {
            return Err(Errno::ENOTDIR);
        }
        self.mounts.borrow_mut().push(Mount {
            point,
            root,
            path: join_clean(b"/", path),
            source,
            fstype,
        });
        Ok(())
    }

    /// What is mounted on `dir`, or `dir` itself.
    fn mounted(&self, dir: InodeRef) -> InodeRef {
        let mounts = self.mounts.borrow();
        match mounts.iter().rev().find(|m| same(&m.point, &dir)) {
            Some(m) => m.root.clone(),
            None => dir,
        }
    }

    /// `..` of `dir`, crossing back over a mount point.
    fn dotdot(&self, dir: &InodeRef) -> InodeRef {
        if same(dir, &self.root) {
            return dir.clone();
        }
        let covered = {
            let mounts = self.mounts.borrow();
            mounts
                .iter()
                .find(|m| same(&m.root, dir))
                .map(|m| m.point.clone())
        };
        let from = covered.unwrap_or_else(|| dir.clone());
        from.parent().unwrap_or(from)
    }

    /// Resolves `path` (absolute, or relative to `cwd`).
    pub fn resolve(&self, cwd: &InodeRef, path: &[u8], follow: Follow) -> Result<InodeRef, Errno> {
        let mut links = 0;
        self.walk(cwd, path, follow, &mut links)
    }

    /// Resolves all of `path` but its last component: the directory that
    /// holds (or would hold) it, and the last name. A path ending in `/`,
    /// `.` or `..` has no last name to create or remove: `EEXIST`-style
    /// callers get `None` for the name then.
    pub fn resolve_parent<'p>(
        &self,
        cwd: &InodeRef,
        path: &'p [u8],
    ) -> Result<(InodeRef, Option<&'p [u8]>), Errno> {
        check_path(path)?;
        let trimmed = trim_trailing_slashes(path);
        let (dir_part, last) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..i + 1], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let dir = if dir_part.is_empty() {
            cwd.clone()
        } else {
            self.resolve(cwd, dir_part, Follow::Yes)?
        };
        if dir.meta().kind != Kind::Directory {
            return Err(Errno::ENOTDIR);
        }
        let last = (!last.is_empty() && last != b"." && last != b"..").then_some(last);
        Ok((dir, last))
    }

    fn walk(
        &self,
        cwd: &InodeRef,
        path: &[u8],
        follow: Follow,
        links: &mut usize,
    ) -> Result<InodeRef, Errno> {
        check_path(path)?;
        let mut cur = if path.first() == Some(&b'/') {
            self.root.clone()
        } else {
            cwd.clone()
        };
        let trailing_slash = path.last() == Some(&b'/');
        let names: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|n| !n.is_empty())
            .collect();
        for (i, name) in names.iter().enumerate() {
            let last = i + 1 == names.len();
            if cur.meta().kind != Kind::Directory {
                return Err(Errno::ENOTDIR);
            }
            if *name == b"." {
                continue;
            }
            if *name == b".." {
                cur = self.dotdot(&cur);
                continue;
            }
            if name.len() > NAME_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            let next = self.mounted(cur.lookup(name)?);
            if next.meta().kind == Kind::Symlink
                && (!last || follow == Follow::Yes || trailing_slash)
            {
                *links += 1;
                if *links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                if let Some(target) = next.follow_magic() {
                    cur = target?;
                    continue;
                }
                let target = next.readlink()?;
                cur = self.walk(&cur, &target, Follow::Yes, links)?;
            } else {
                cur = next;
            }
        }
        if trailing_slash && cur.meta().kind != Kind::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }
}

impl Vfs {
    /// The absolute path, without symbolic links, `.` or `..`, of what
    /// `path` (relative to `cwd_path`) names, as realpath(3) gives it:
    /// what `/proc/PID/exe` shows. The path lexically joined if a
    /// component does not resolve.
    pub fn real_path(&self, cwd_path: &[u8], path: &[u8]) -> Vec<u8> {
        let mut todo = join_clean(cwd_path, path);
        let mut links = 0;
        'restart: loop {
            let mut done: Vec<u8> = Vec::new();
            let names: Vec<Vec<u8>> = todo
                .split(|&b| b == b'/')
                .filter(|n| !n.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            for (i, name) in names.iter().enumerate() {
                let mut next = done.clone();
                next.push(b'/');
                next.extend_from_slice(name);
                let Ok(node) = self.resolve(&self.root, &next, Follow::No) else {
                    return todo;
                };
                if node.meta().kind == Kind::Symlink && links < MAX_SYMLINKS {
                    links += 1;
                    let Ok(target) = node.readlink() else {
                        return todo;
                    };
                    let base = if done.is_empty() { &b"/"[..] } else { &done };
                    let mut rest = join_clean(base, &target);
                    for n in &names[i + 1..] {
                        rest.push(b'/');
                        rest.extend_from_slice(n);
                    }
                    todo = join_clean(b"/", &rest);
                    continue 'restart;
                }
                done = next;
            }
            return if done.is_empty() {
                alloc::vec![b'/']
            } else {
                done
            };
        }
    }
}

/// `ENOENT` for an empty path, `ENAMETOOLONG` past `PATH_MAX`.
fn check_path(path: &[u8]) -> Result<(), Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

fn trim_trailing_slashes(path: &[u8]) -> &[u8] {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    &path[..end]
}

/// Joins a cleaned absolute `base` and `path` into a cleaned absolute
/// path (`.`, `..` and repeated slashes removed, lexically: the shape
/// getcwd reports).
pub fn join_clean(base: &[u8], path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let full: [&[u8]; 2] = if path.first() == Some(&b'/') {
        [b"", path]
    } else {
        [base, path]
    };
    for piece in full {
        for name in piece.split(|&b| b == b'/') {
            match name {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                n => parts.push(n),
            }
        }
    }
    let mut out = Vec::new();
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}
