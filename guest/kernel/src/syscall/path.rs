//! System calls on names (xv6's sysfile.c, name half): open, stat,
//! access, mkdir, mknod, unlink, rmdir, rename, link, symlink, readlink,
//! chdir, getcwd, umask, chmod, chown, truncate, utimensat. They copy the
//! path in, pick the directory it starts from (`AT_FDCWD`, a dirfd, or the
//! root for an absolute path) and call the VFS. Every process is root, so
//! permission bits are stored and reported but, as for Linux's root, only
//! the execute bits are enforced (by exec).

use alloc::vec::Vec;

use super::fd::file;
use super::poll::install;
use crate::fs::file::{Object, OpenFile};
use crate::fs::pty::PtySlave;
use crate::fs::textbusy;
use crate::fs::tty::Term;
use crate::fs::vfs::{self, Follow, InodeRef, Kind, Metadata, PATH_MAX};
use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in_str, copy_out, read_u64};
use crate::mm::SpaceRef;
use crate::syscall::log_refused;
use guestlib::hypercall;
use linux_raw_sys::general::*;
use vkernel_abi::Errno;

/// Copies a path in: `ENAMETOOLONG` past `PATH_MAX`, `EFAULT` unreadable.
pub fn user_path(k: &Kernel, s: usize, addr: u64) -> Result<Vec<u8>, Errno> {
    let mut buf = alloc::vec![0u8; PATH_MAX];
    let n = copy_in_str(&k.space(s), addr, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// The directory a `*at` call's relative path starts from.
pub(super) fn start_dir(k: &Kernel, s: usize, dirfd: u64, path: &[u8]) -> Result<InodeRef, Errno> {
    if path.first() == Some(&b'/') || dirfd as i32 == AT_FDCWD {
        return Ok(k.cwd(s));
    }
    let f = file(k, s, dirfd)?;
    let dir = f.inode().ok_or(Errno::ENOTDIR)?.clone();
    if dir.meta().kind != Kind::Directory {
        return Err(Errno::ENOTDIR);
    }
    Ok(dir)
}

/// The absolute path a name resolves from (for `/proc/PID/fd` and fchdir).
pub(super) fn path_of(k: &Kernel, s: usize, dirfd: u64, path: &[u8]) -> Vec<u8> {
    let base = if path.first() == Some(&b'/') || dirfd as i32 == AT_FDCWD {
        k.procs.procs[s].cwd_path.clone()
    } else {
        file(k, s, dirfd)
            .map(|f| f.path.clone())
            .unwrap_or_default()
    };
    vfs::join_clean(&base, path)
}

/// Resolves `path` from `dirfd` (with `AT_EMPTY_PATH`: an empty path is
/// the dirfd's own file).
fn lookup_at(
    k: &Kernel,
    s: usize,
    dirfd: u64,
    path: &[u8],
    follow: Follow,
    empty_ok: bool,
) -> Result<InodeRef, Errno> {
    if path.is_empty() {
        if !empty_ok {
            return Err(Errno::ENOENT);
        }
        if dirfd as i32 == AT_FDCWD {
            return Ok(k.cwd(s));
        }
        let f = file(k, s, dirfd)?;
        return f.inode().cloned().ok_or(Errno::EBADF);
    }
    let start = start_dir(k, s, dirfd, path)?;
    k.vfs.resolve(&start, path, follow)
}

/// `AT_SYMLINK_NOFOLLOW` in `flags` as a [`Follow`].
fn follow_unless_nofollow(flags: u64) -> Follow {
    if flags & AT_SYMLINK_NOFOLLOW as u64 != 0 {
        Follow::No
    } else {
        Follow::Yes
    }
}

// ---- open -----------------------------------------------------------------

pub fn sys_openat(
    k: &mut Kernel,
    s: usize,
    dirfd: u64,
    path: u64,
    flags: u64,
    mode: u64,
) -> Result<i64, Errno> {
    let path = user_path(k, s, path)?;
    let flags = flags as u32;
    if flags & __O_TMPFILE != 0 {
        return open_tmpfile(k, s, dirfd, &path, flags, mode);
    }
    let start = start_dir(k, s, dirfd, &path)?;
    let follow = if flags & O_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    };
    let umask = k.procs.procs[s].umask;
    let node = if flags & O_CREAT != 0 {
        // Follow a symbolic link in the last place too: O_CREAT through a
        // dangling link creates its target, as on Linux.
        let (mut from, mut at, mut links) = (start.clone(), path.clone(), 0);
        loop {
            let (dir, name) = k.vfs.resolve_parent(&from, &at)?;
            let name = name.ok_or(Errno::EISDIR)?;
            match dir.lookup(name) {
                Ok(existing) if existing.meta().kind == Kind::Symlink => {
                    if flags & O_EXCL != 0 {
                        return Err(Errno::EEXIST);
                    }
                    if follow == Follow::No {
                        return Err(Errno::ELOOP);
                    }
                    links += 1;
                    if links > vfs::MAX_SYMLINKS {
                        return Err(Errno::ELOOP);
                    }
                    at = existing.readlink()?;
                    from = dir;
                }
                Ok(_) if flags & O_EXCL != 0 => return Err(Errno::EEXIST),
                // Through the VFS, so a mount point gives what is mounted.
                Ok(_) => break k.vfs.resolve(&dir, name, Follow::No)?,
                Err(Errno::ENOENT) => {
                    if at.last() == Some(&b'/') {
                        return Err(Errno::EISDIR);
                    }
                    break dir.create(name, Kind::Regular, mode as u32 & !umask & 0o7777, 0)?;
                }
                Err(e) => return Err(e),
            }
        }
    } else {
        k.vfs.resolve(&start, &path, follow)?
    };
    let meta = node.meta();
    let access = flags & O_ACCMODE;
    let writing = access == O_WRONLY || access == O_RDWR;
    if flags & O_PATH == 0 {
        if meta.kind == Kind::Symlink {
            return Err(Errno::ELOOP);
        }
        // O_TRUNC asks for write access too (Linux's build_open_flags).
        if meta.kind == Kind::Directory && (writing || flags & O_TRUNC != 0) {
            return Err(Errno::EISDIR);
        }
    }
    if flags & O_DIRECTORY != 0 && meta.kind != Kind::Directory {
        return Err(Errno::ENOTDIR);
    }
    if access == O_ACCMODE {
        return Err(Errno::EINVAL);
    }
    // A file that runs is not written (ETXTBSY), nor truncated by
    // O_TRUNC even without write access (Linux's handle_truncate).
    let writer =
        if flags & O_PATH == 0 && meta.kind == Kind::Regular && (writing || flags & O_TRUNC != 0) {
            let writer = textbusy::Writer::new(&meta)?;
            node.open_write()?;
            Some(writer).filter(|_| writing)
        } else {
            None
        };
    let object = match meta.kind {
        Kind::CharDevice | Kind::BlockDevice | Kind::Fifo if flags & O_PATH == 0 => {
            let mut dev = node.device().ok_or(Errno::ENXIO)?;
            // /dev/tty is the caller's controlling terminal: none, ENXIO.
            // When the host's stdin is no terminal, init's session keeps
            // it the console (the host's own terminal, if any, natively).
            if meta.rdev == crate::fs::tty::DEV_TTY && meta.kind == Kind::CharDevice {
                match super::tty::ctty(k, s) {
                    Some(Term::Pty(p)) if p.hung_up() => return Err(Errno::EIO),
                    Some(Term::Pty(p)) => dev = PtySlave::open(&p),
                    Some(Term::Console) => {}
                    None if dev.terminal().is_some() || k.procs.procs[s].sid != 1 => {
                        return Err(Errno::ENXIO)
                    }
                    None => {}
                }
            }
            if meta.kind == Kind::Fifo {
                return open_fifo(k, s, dev, node, flags, path_of(k, s, dirfd, &path));
            }
            let dev = dev.open(true, writing)?.unwrap_or(dev);
            // A pty slave may become the caller's controlling terminal.
            if flags & O_NOCTTY == 0 && meta.rdev != crate::fs::tty::DEV_TTY {
                if let Some(term @ Term::Pty(_)) = dev.terminal() {
                    super::tty::open_sets_ctty(k, s, &term);
                }
            }
            Object::Device {
                dev,
                node: Some(node),
            }
        }
        Kind::Socket if flags & O_PATH == 0 => return Err(Errno::ENXIO),
        _ => {
            // Read-only too, as Linux (POSIX leaves it open).
            if flags & O_TRUNC != 0 && flags & O_PATH == 0 && meta.kind == Kind::Regular {
                node.truncate(0)?;
            }
            Object::Inode(node)
        }
    };
    // O_PATH files are neither readable nor writable.
    let kept = if flags & O_PATH != 0 {
        O_PATH | O_ACCMODE
    } else {
        flags & !(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)
    };
    let f = OpenFile::writing(object, kept, path_of(k, s, dirfd, &path), writer);
    install(k, s, f, flags & O_CLOEXEC != 0)
}

/// `O_TMPFILE`: a regular file with no name in directory `path`'s file
/// system, open for writing (Linux's checks: `O_DIRECTORY` with it and no
/// `O_CREAT`, write access, else `EINVAL`; `ENOTDIR` for a path that is
/// no directory). Without `O_EXCL`, `linkat` may name it later. tmpfs
/// makes them; other file systems are `EOPNOTSUPP`, as Linux's without a
/// `tmpfile` operation (glibc's `tmpfile` then makes a named one).
fn open_tmpfile(
    k: &Kernel,
    s: usize,
    dirfd: u64,
    path: &[u8],
    flags: u32,
    mode: u64,
) -> Result<i64, Errno> {
    let access = flags & O_ACCMODE;
    if flags & (__O_TMPFILE | O_DIRECTORY | O_CREAT) != O_TMPFILE
        || !(access == O_WRONLY || access == O_RDWR)
        || flags & O_PATH != 0
    {
        return Err(Errno::EINVAL);
    }
    let start = start_dir(k, s, dirfd, path)?;
    let dir = k.vfs.resolve(&start, path, Follow::Yes)?;
    if dir.meta().kind != Kind::Directory {
        return Err(Errno::ENOTDIR);
    }
    let umask = k.procs.procs[s].umask;
    let node = dir.create_unnamed(mode as u32 & !umask & 0o7777, flags & O_EXCL == 0)?;
    // What /proc/PID/fd shows, as Linux: the directory, `#` and the inode.
    let mut name = path_of(k, s, dirfd, path);
    while name.len() > 1 && name.last() == Some(&b'/') {
        name.pop();
    }
    if name.last() != Some(&b'/') {
        name.push(b'/');
    }
    name.extend_from_slice(alloc::format!("#{} (deleted)", node.meta().ino).as_bytes());
    let kept =
        flags & !(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC | O_DIRECTORY | __O_TMPFILE);
    let writer = textbusy::Writer::new(&node.meta())?;
    let f = OpenFile::writing(Object::Inode(node), kept, name, Some(writer));
    install(k, s, f, flags & O_CLOEXEC != 0)
}

/// Opens a fifo, as Linux's fifo_open: a reader waits until a writer has
/// opened it (and a writer until a reader has), unless `O_NONBLOCK`: then
/// a reader goes on and a writer is `ENXIO`; `O_RDWR` never waits. A
/// waiting open sleeps holding its end, and its restart takes it up
/// (`Ok(0)` with the caller asleep: see `syscall::open_outcome`).
fn open_fifo(
    k: &mut Kernel,
    s: usize,
    fifo: alloc::rc::Rc<dyn crate::fs::device::Device>,
    node: crate::fs::vfs::InodeRef,
    flags: u32,
    name: Vec<u8>,
) -> Result<i64, Errno> {
    let access = flags & O_ACCMODE;
    let nonblock = flags & O_NONBLOCK != 0;
    let kept = flags & !(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC);
    let f = match k.procs.procs[s].fifo_wait.take() {
        Some((f, seen)) => {
            let partner = f.device().and_then(|d| d.fifo_partner());
            if let Some((false, opens, chan)) = partner {
                if opens == seen {
                    k.procs.procs[s].fifo_wait = Some((f, seen));
                    k.procs.sleep(s, chan, 0, 0);
                    return Ok(0);
                }
            }
            f
        }
        None => {
            let end = fifo
                .open(access != O_WRONLY, access != O_RDONLY)?
                .unwrap_or(fifo);
            // Whoever waits for this side to appear looks again.
            if let Some(chans) = end.wake_on_close() {
                for c in chans {
                    k.procs.wakeup(c);
                }
            }
            let partner = end.fifo_partner();
            let f = OpenFile::new(
                Object::Device {
                    dev: end,
                    node: Some(node),
                },
                kept,
                name,
            );
            if let Some((false, opens, chan)) = partner {
                if nonblock && access == O_WRONLY {
                    return Err(Errno::ENXIO);
                }
                if !nonblock {
                    k.procs.procs[s].fifo_wait = Some((f, opens));
                    k.procs.sleep(s, chan, 0, 0);
                    return Ok(0);
                }
            }
            f
        }
    };
    install(k, s, f, flags & O_CLOEXEC != 0)
}

// ---- status ---------------------------------------------------------------

/// Writes Linux's `struct stat` (144 bytes).
/// Writes `m` at `addr` as Linux's `struct stat`, posted (`result_tag`:
/// the calling task's, EFAULT if the host cannot make the write).
pub fn write_stat(space: &SpaceRef, addr: u64, m: &Metadata, tag: u64) -> Result<i64, Errno> {
    let mut w = [0u64; 18];
    w[0] = m.dev;
    w[1] = m.ino;
    w[2] = m.nlink as u64;
    w[3] = (m.kind.mode_bits() | m.perm) as u64 | ((m.uid as u64) << 32);
    w[4] = m.gid as u64;
    w[5] = m.rdev;
    w[6] = m.size;
    w[7] = 4096;
    w[8] = m.blocks;
    for (i, t) in [m.atime_ns, m.mtime_ns, m.ctime_ns].iter().enumerate() {
        w[9 + 2 * i] = t / 1_000_000_000;
        w[10 + 2 * i] = t % 1_000_000_000;
    }
    crate::mm::uaccess::write_words_posted(space, addr, &w, tag)?;
    Ok(0)
}

pub fn sys_stat(k: &Kernel, s: usize, path: u64, st: u64, follow: Follow) -> Result<i64, Errno> {
    let path = user_path(k, s, path)?;
    let node = lookup_at(k, s, AT_FDCWD as u64, &path, follow, false)?;
    write_stat(&k.space(s), st, &node.meta(), k.procs.result_tag(s))
}

pub fn sys_newfstatat(
    k: &Kernel,
    s: usize,
    dirfd: u64,
    path: u64,
    st: u64,
    flags: u64,
) -> Result<i64, Errno> {
    if flags & !((AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(k, s, path)?;
    let follow = follow_unless_nofollow(flags);
    let empty = flags & AT_EMPTY_PATH as u64 != 0;
    if path.is_empty() && empty && dirfd as i32 != AT_FDCWD {
        // The descriptor itself, which may be a pipe.
        let f = file(k, s, dirfd)?;
        return write_stat(&k.space(s), st, &f.meta(), k.procs.result_tag(s));
    }
    let node = lookup_at(k, s, dirfd, &path, follow, empty)?;
    write_stat(&k.space(s), st, &node.meta(), k.procs.result_tag(s))
}

pub fn sys_statx(
    k: &Kernel,
    s: usize,
    dirfd: u64,
    path: u64,
    flags: u64,
    _mask: u64,
    buf: u64,
) -> Result<i64, Errno> {
    let known = AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE;
    if flags & !(known as u64) != 0
        || flags & AT_STATX_SYNC_TYPE as u64 == AT_STATX_SYNC_TYPE as u64
    {
        return Err(Errno::EINVAL);
    }
    let path = user_path(k, s, path)?;
    let follow = follow_unless_nofollow(flags);
    let empty = flags & AT_EMPTY_PATH as u64 != 0;
    let m = if path.is_empty() && empty && dirfd as i32 != AT_FDCWD {
        file(k, s, dirfd)?.meta()
    } else {
        lookup_at(k, s, dirfd, &path, follow, empty)?.meta()
    };
    let mut b = [0u8; 256];
    let put32 = |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |b: &mut [u8], at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put32(&mut b, 0, STATX_BASIC_STATS);
    put32(&mut b, 4, 4096);
    put32(&mut b, 16, m.nlink);
    put32(&mut b, 20, m.uid);
    put32(&mut b, 24, m.gid);
    b[28..30].copy_from_slice(&((m.kind.mode_bits() | m.perm) as u16).to_le_bytes());
    put64(&mut b, 32, m.ino);
    put64(&mut b, 40, m.size);
    put64(&mut b, 48, m.blocks);
    for (at, t) in [(64, m.atime_ns), (96, m.ctime_ns), (112, m.mtime_ns)] {
        put64(&mut b, at, t / 1_000_000_000);
        put32(&mut b, at + 8, (t % 1_000_000_000) as u32);
    }
    put32(&mut b, 128, (m.rdev >> 8) as u32);
    put32(&mut b, 132, (m.rdev & 0xff) as u32);
    put32(&mut b, 136, (m.dev >> 8) as u32);
    put32(&mut b, 140, (m.dev & 0xff) as u32);
    crate::mm::uaccess::copy_out_posted(&k.space(s), buf, &b, k.procs.result_tag(s))?;
    Ok(0)
}

pub fn sys_faccessat(
    k: &Kernel,
    s: usize,
    dirfd: u64,
    path: u64,
    mode: u64,
    flags: u64,
) -> Result<i64, Errno> {
    if mode & !7 != 0 || flags & !((AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(k, s, path)?;
    let follow = follow_unless_nofollow(flags);
    let m = lookup_at(
        k,
        s,
        dirfd,
        &path,
        follow,
        flags & AT_EMPTY_PATH as u64 != 0,
    )?
    .meta();
    // Root may read and write anything, and execute what has an execute
    // bit (or is a directory).
    if mode & X_OK as u64 != 0 && m.kind != Kind::Directory && m.perm & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    Ok(0)
}

// ---- making and removing names -------------------------------------------

pub fn sys_mknodat(
    k: &Kernel,
    s: usize,
    dirfd: u64,
    path: u64,
    mode: u64,
    dev: u64,
) -> Result<i64, Errno> {
    let path = user_path(k, s, path)?;
    let mode = mode as u32;
    let kind = if mode & S_IFMT == 0 {
        Kind::Regular
    } else {
        Kind::from_mode(mode).ok_or(Errno::EINVAL)?
    };
    if kind == Kind::Directory || kind == Kind::Symlink {
        return Err(Errno::EINVAL);
    }
    let start = start_dir(k, s, dirfd, &path)?;
    let (dir, name) = k.vfs.resolve_parent(&start, &path)?;
    let name = name.ok_or(Errno::EEXIST)?;
    let umask = k.procs.procs[s].umask;
    dir.create(name, kind, mode & !umask & 0o7777, dev)?;
    Ok(0)
}

pub fn sys_mkdirat(k: &Kernel, s: usize, dirfd: u64, path: u64, mode: u64) -> Result<i64, Errno> {
    let path = user_path(k, s, path)?;
    let start = start_dir(k, s, dirfd, &path)?;
    let (dir, name) = k.vfs.resolve_parent(&start, &path)?;
    let name = name.ok_or(Errno::EEXIST)?;
    let umask = k.procs.procs[s].umask;
    dir.create(name, Kind::Directory, mode as u32 & !umask & 0o7777, 0)?;
    Ok(0)
}

pub fn sys_unlinkat(k: &Kernel, s: usize, dirfd: u64, path: u64, flags: u64) -> Result<i64, Errno> {
    if flags & !(AT_REMOVEDIR as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let rmdir = flags & AT_REMOVEDIR as u64 != 0;
    let path = user_path(k, s, path)?;
    let start = start_dir(k, s, dirfd, &path)?;
    let (dir, name) = k.vfs.resolve_parent(&start, &path)?;
    let Some(name) = name else {
        return Err(if rmdir { Errno::EINVAL } else { Errno::EISDIR });
    };
    if !rmdir && path.last() == Some(&b'/') {
        // "file/" names a directory that is not there.
        let node = dir.lookup(name)?;
        return Err(if node.meta().kind == Kind::Directory {
            Errno::EISDIR
        } else {
            Errno::ENOTDIR
        });
    }
    if rmdir {
        // A mount point is busy.
        let node = dir.lookup(name)?;
        if node.meta().kind == Kind::Directory
            && k.vfs
                .resolve(&dir, name, Follow::No)
                .is_ok_and(|n| !vfs::same(&n, &node))
        {
            return Err(Errno::EBUSY);
        }
    }
    dir.unlink(name, rmdir)?;
    Ok(0)
}

pub fn sys_renameat2(
    k: &mut Kernel,
    s: usize,
    olddirfd: u64,
    old: u64,
    newdirfd: u64,
    new: u64,
    flags: u64,
) -> Result<i64, Errno> {
    if flags & RENAME_EXCHANGE as u64 != 0 || flags & RENAME_WHITEOUT as u64 != 0 {
        log_refused(k, s, "renameat2", format_args!("flags {flags:#x}"));
        return Err(Errno::EINVAL);
    }
    if flags & !(RENAME_NOREPLACE as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let (old, new) = (user_path(k, s, old)?, user_path(k, s, new)?);
    let ostart = start_dir(k, s, olddirfd, &old)?;
    let nstart = start_dir(k, s, newdirfd, &new)?;
    let (odir, oname) = k.vfs.resolve_parent(&ostart, &old)?;
    let (ndir, nname) = k.vfs.resolve_parent(&nstart, &new)?;
    let (Some(oname), Some(nname)) = (oname, nname) else {
        return Err(Errno::EBUSY);
    };
    let node = odir.lookup(oname)?;
    let trailing = old.last() == Some(&b'/') || new.last() == Some(&b'/');
    if trailing && node.meta().kind != Kind::Directory {
        return Err(Errno::ENOTDIR);
    }
    if flags & RENAME_NOREPLACE as u64 != 0 && ndir.lookup(nname).is_ok() {
        return Err(Errno::EEXIST);
    }
    odir.rename(oname, &ndir, nname)?;
    Ok(0)
}

pub fn sys_linkat(
    k: &Kernel,
    s: usize,
    olddirfd: u64,
    old: u64,
    newdirfd: u64,
    new: u64,
    flags: u64,
) -> Result<i64, Errno> {
    if flags & !((AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let (old, new) = (user_path(k, s, old)?, user_path(k, s, new)?);
    let follow = if flags & AT_SYMLINK_FOLLOW as u64 != 0 {
        Follow::Yes
    } else {
        Follow::No
    };
    let node = lookup_at(
        k,
        s,
        olddirfd,
        &old,
        follow,
        flags & AT_EMPTY_PATH as u64 != 0,
    )?;
    let nstart = start_dir(k, s, newdirfd, &new)?;
    let (ndir, nname) = k.vfs.resolve_parent(&nstart, &new)?;
    let nname = nname.ok_or(Errno::EEXIST)?;
    // As Linux: an existing new name first, then a directory.
    if ndir.lookup(nname).is_ok() {
        return Err(Errno::EEXIST);
    }
    if node.meta().kind == Kind::Directory {
        return Err(Errno::EPERM);
    }
    // A file with no links stays so (an unlinked file reached through
    // /proc/PID/fd), unless it is an O_TMPFILE file made linkable.
    if node.meta().nlink == 0 && !node.linkable() {
        return Err(Errno::ENOENT);
    }
    ndir.link(nname, &node)?;
    Ok(0)
}

pub fn sys_symlinkat(
    k: &Kernel,
    s: usize,
    target: u64,
    dirfd: u64,
    path: u64,
) -> Result<i64, Errno> {
    let (target, path) = (user_path(k, s, target)?, user_path(k, s, path)?);
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let start = start_dir(k, s, dirfd, &path)?;
    let (dir, name) = k.vfs.resolve_parent(&start, &path)?;
    let name = name.ok_or(Errno::EEXIST)?;
    dir.symlink(name, &target)?;
    Ok(0)
}

pub fn sys_readlinkat(
    k: &Kernel,
    s: usize,
    dirfd: u64,
    path: u64,
    buf: u64,
    size: u64,
) -> Result<i64, Errno> {
    if (size as i64) <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(k, s, path)?;
    let node = lookup_at(k, s, dirfd, &path, Follow::No, true)?;
    let target = node.readlink()?;
    let n = target.len().min(size as usize);
    copy_out(&k.space(s), buf, &target[..n])?;
    Ok(n as i64)
}

// ---- the working directory and the mask ----------------------------------

pub fn sys_chdir(k: &mut Kernel, s: usize, path: u64) -> Result<i64, Errno> {
    let path = user_path(k, s, path)?;
    let dir = k.vfs.resolve(&k.cwd(s), &path, Follow::Yes)?;
    if dir.meta().kind != Kind::Directory {
        return Err(Errno::ENOTDIR);
    }
    let new_path = path_of(k, s, AT_FDCWD as u64, &path);
    let p = &mut k.procs.procs[s];
    p.cwd = Some(dir);
    p.cwd_path = new_path;
    publish_cwd(p);
    k.procs.sync_fs(s);
    Ok(0)
}

pub fn sys_fchdir(k: &mut Kernel, s: usize, fd: u64) -> Result<i64, Errno> {
    let f = file(k, s, fd)?;
    let dir = f.inode().ok_or(Errno::ENOTDIR)?.clone();
    if dir.meta().kind != Kind::Directory {
        return Err(Errno::ENOTDIR);
    }
    let p = &mut k.procs.procs[s];
    p.cwd = Some(dir);
    p.cwd_path = f.path.clone();
    publish_cwd(p);
    k.procs.sync_fs(s);
    Ok(0)
}

/// Shows a new working directory in `/proc/PID/cwd`.
fn publish_cwd(p: &crate::proc::Proc) {
    if let Some(t) = &p.task {
        t.cwd.borrow_mut().clone_from(&p.cwd_path);
    }
}

pub fn sys_getcwd(k: &Kernel, s: usize, buf: u64, size: u64) -> Result<i64, Errno> {
    let mut path = k.procs.procs[s].cwd_path.clone();
    path.push(0);
    if (size as usize) < path.len() {
        return Err(Errno::ERANGE);
    }
    copy_out(&k.space(s), buf, &path)?;
    Ok(path.len() as i64)
}

pub fn sys_umask(k: &mut Kernel, s: usize, mask: u64) -> i64 {
    let p = &mut k.procs.procs[s];
    let old = p.umask;
    p.umask = mask as u32 & 0o777;
    if let Some(t) = &p.task {
        t.umask.set(p.umask);
    }
    k.procs.sync_fs(s);
    old as i64
}

// ---- file systems ---------------------------------------------------------

/// Writes Linux's `struct statfs` (120 bytes) for the file system of `node`.
fn write_statfs(space: &SpaceRef, addr: u64, node: &InodeRef) -> Result<i64, Errno> {
    let (used, limit) = node.usage();
    let bsize = 4096u64;
    let blocks = limit / bsize;
    let free = limit.saturating_sub(used) / bsize;
    let m = node.meta();
    let w: [u64; 15] = [
        node.fs_magic(),
        bsize,
        blocks,
        free,
        free,
        0,
        0,
        m.dev,
        vfs::NAME_MAX as u64,
        bsize,
        0,
        0,
        0,
        0,
        0,
    ];
    crate::mm::uaccess::write_words(space, addr, &w)?;
    Ok(0)
}

pub fn sys_statfs(k: &Kernel, s: usize, path: u64, buf: u64) -> Result<i64, Errno> {
    let path = user_path(k, s, path)?;
    let node = k.vfs.resolve(&k.cwd(s), &path, Follow::Yes)?;
    write_statfs(&k.space(s), buf, &node)
}

pub fn sys_fstatfs(k: &Kernel, s: usize, fd: u64, buf: u64) -> Result<i64, Errno> {
    let f = file(k, s, fd)?;
    match f.inode() {
        Some(node) => write_statfs(&k.space(s), buf, node),
        // A pipe: pipefs, which holds no blocks.
        None => {
            let w = [
                0x5049_5045u64,
                4096,
                0,
                0,
                0,
                0,
                0,
                0,
                255,
                4096,
                0,
                0,
                0,
                0,
                0,
            ];
            crate::mm::uaccess::write_words(&k.space(s), buf, &w)?;
            Ok(0)
        }
    }
}

// ---- attributes -----------------------------------------------------------

/// The inode a `*at` attribute call names (`path` 0 with a dirfd: the
/// file itself, as fchmod and futimens are).
fn attr_target(
    k: &Kernel,
    s: usize,
    dirfd: u64,
    path: u64,
    follow: Follow,
    empty_ok: bool,
) -> Result<InodeRef, Errno> {
    if path == 0 {
        let f = file(k, s, dirfd)?;
        return f.inode().cloned().ok_or(Errno::EBADF);
    }
    let path = user_path(k, s, path)?;
    lookup_at(k, s, dirfd, &path, follow, empty_ok)
}

pub fn sys_fchmodat(k: &Kernel, s: usize, dirfd: u64, path: u64, mode: u64) -> Result<i64, Errno> {
    let node = attr_target(k, s, dirfd, path, Follow::Yes, false)?;
    node.set_perm(mode as u32 & 0o7777)?;
    Ok(0)
}

pub fn sys_fchownat(
    k: &Kernel,
    s: usize,
    dirfd: u64,
    path: u64,
    uid: u64,
    gid: u64,
    flags: u64,
) -> Result<i64, Errno> {
    if flags & !((AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let follow = follow_unless_nofollow(flags);
    let node = attr_target(k, s, dirfd, path, follow, flags & AT_EMPTY_PATH as u64 != 0)?;
    let id = |v: u64| (v as u32 != u32::MAX).then_some(v as u32);
    node.set_owner(id(uid), id(gid))?;
    Ok(0)
}

pub fn sys_truncate(k: &Kernel, s: usize, path: u64, len: u64) -> Result<i64, Errno> {
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(k, s, path)?;
    let node = k.vfs.resolve(&k.cwd(s), &path, Follow::Yes)?;
    let meta = node.meta();
    match meta.kind {
        Kind::Directory => Err(Errno::EISDIR),
        Kind::Regular => {
            let _writer = textbusy::Writer::new(&meta)?;
            node.truncate(len).map(|_| 0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_utimensat(
    k: &Kernel,
    s: usize,
    dirfd: u64,
    path: u64,
    times: u64,
    flags: u64,
) -> Result<i64, Errno> {
    if flags & !((AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let follow = follow_unless_nofollow(flags);
    let node = attr_target(k, s, dirfd, path, follow, flags & AT_EMPTY_PATH as u64 != 0)?;
    let now = hypercall::realtime_ns();
    let (atime, mtime) = if times == 0 {
        (Some(now), Some(now))
    } else {
        let space = k.space(s);
        let mut t = [None, None];
        for (i, slot) in t.iter_mut().enumerate() {
            let sec = read_u64(&space, times + 16 * i as u64)?;
            let nsec = read_u64(&space, times + 16 * i as u64 + 8)?;
            *slot = match nsec {
                n if n == UTIME_NOW as u64 => Some(now),
                n if n == UTIME_OMIT as u64 => None,
                n if n < 1_000_000_000 => Some(sec.saturating_mul(1_000_000_000).saturating_add(n)),
                _ => return Err(Errno::EINVAL),
            };
        }
        (t[0], t[1])
    };
    node.set_times(atime, mtime)?;
    Ok(0)
}

// ---- extended attributes ---------------------------------------------------

/// getxattr, lgetxattr, listxattr, llistxattr (`path` given) and their
/// `f` forms: no file system here stores extended attributes, so once
/// the file is found a get is `ENODATA` and a list is empty, as Linux
/// answers for a file without any (what `ls -l` asks for ACLs and
/// SELinux labels).
pub fn sys_xattr_query(
    k: &Kernel,
    s: usize,
    target: XattrTarget,
    list: bool,
) -> Result<i64, Errno> {
    match target {
        XattrTarget::Path(path, follow) => {
            let path = user_path(k, s, path)?;
            k.vfs.resolve(&k.cwd(s), &path, follow)?;
        }
        XattrTarget::Fd(fd) => {
            file(k, s, fd)?;
        }
    }
    if list {
        Ok(0)
    } else {
        Err(Errno::ENODATA)
    }
}

/// What an xattr call names.
pub enum XattrTarget {
    Path(u64, Follow),
    Fd(u64),
}
