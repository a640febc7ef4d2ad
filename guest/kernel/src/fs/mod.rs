//! Files: the VFS ([`vfs`]) over tmpfs (the root, filled from the boot
//! image at boot as Linux unpacks an initramfs), devfs (`/dev`) and the
//! rest; open files and descriptor tables ([`file`]); devices and pipes.

pub mod devfs;
pub mod device;
pub mod epoll;
pub mod eventfd;
pub mod file;
pub mod hostfs;
pub mod lock;
pub mod overlay;
pub mod pipe;
pub mod pty;
pub mod signalfd;
pub mod textbusy;
pub mod timerfd;
pub mod tmpfs;
pub mod tty;
pub mod unix;
pub mod vfs;

use alloc::rc::Weak;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::mm::physmem::Frames;
use vfs::{Follow, Inode, InodeRef, Kind, Vfs};
use vkernel_abi::cpio::{self, Archive};

/// Device numbers (`st_dev`) of the file systems.
pub const DEV_ROOTFS: u64 = 0x01;
pub const DEV_TMP: u64 = 0x02;
pub const DEV_PROC: u64 = 0x04;
/// The unmounted tmpfs behind shared anonymous memory.
pub const DEV_SHM: u64 = 0x06;
/// /dev/shm (POSIX shared memory and semaphores: shm_open, sem_open).
pub const DEV_DEVSHM: u64 = 0x07;
pub const DEV_PIPEFS: u64 = 0x0c;
/// The tmpfs upper layer of a host root (never mounted on its own).
pub const DEV_UPPER: u64 = 0x0d;
/// Host directories: the root's lower layer, then each volume's.
pub const DEV_HOSTFS: u64 = 0x20;

/// Host directories the host serves (`vkernel run --rootfs`, `--volume`).
#[derive(Default)]
pub struct HostDirs<'a> {
    /// Volume 0 is the root (a read-only lower under a tmpfs upper).
    pub root: bool,
    /// Where the other volumes go (absolute paths, `:rw` after a
    /// writable one's), in volume order.
    pub volumes: Vec<&'a str>,
}

/// A malformed member of the boot image: its name and what is wrong.
pub struct BadEntry {
    pub name: alloc::string::String,
    pub problem: &'static str,
}

/// Builds the file tree: a tmpfs root holding the image's directories,
/// files and symlinks (with their modes), `/dev`, `/proc` and `/tmp`
/// mounted on it. `limit_bytes` bounds what each tmpfs's files may hold;
/// `proc` is what procfs reads.
pub fn boot(
    image: &[u8],
    host: &HostDirs,
    frames: &Frames,
    limit_bytes: u64,
    proc_fs: impl FnOnce(Weak<RefCell<Vec<vfs::Mount>>>) -> InodeRef,
) -> Result<Vfs, BadEntry> {
    let host_err = |what: &str| BadEntry {
        name: alloc::string::String::from(what),
        problem: "cannot be served by the host",
    };
    let (root, vfs): (InodeRef, Vfs) = if host.root {
        // The host directory under a writable tmpfs: the image holds
        // only init's arguments, read from it directly.
        let lower = hostfs::HostFs::mount(0, DEV_HOSTFS, frames.clone(), false)
            .map_err(|_| host_err("(root)"))?;
        let upper = tmpfs::Tmpfs::new_root(DEV_UPPER, frames.clone(), limit_bytes);
        let root = overlay::Overlay::new_root(DEV_ROOTFS, lower, upper);
        (root.clone(), Vfs::new(root, "overlay"))
    } else {
        let root = tmpfs::Tmpfs::new_root(DEV_ROOTFS, frames.clone(), limit_bytes);
        let vfs = Vfs::new(root.clone(), "rootfs");
        unpack(&vfs, image)?;
        (root, vfs)
    };
    for dir in [&b"dev"[..], b"proc", b"tmp"] {
        match root.create(dir, Kind::Directory, 0o755, 0) {
            Ok(_) | Err(vkernel_abi::Errno::EEXIST) => {}
            Err(_) => {
                return Err(BadEntry {
                    name: alloc::string::String::from_utf8_lossy(dir).into_owned(),
                    problem: "is not a directory",
                })
            }
        }
    }
    let _ = root.lookup(b"tmp").map(|t| t.set_perm(0o1777));
    let mount = |path: &[u8], fs: InodeRef, fstype: &'static str| {
        vfs.mount(path, fs, fstype, fstype).map_err(|_| BadEntry {
            name: alloc::string::String::from_utf8_lossy(path).into_owned(),
            problem: "cannot be mounted on",
        })
    };
    let dev = devfs::new(frames.clone());
    // /dev/shm: a tmpfs anyone may create in (glibc's shm_open and
    // sem_open, and so Python's multiprocessing, put their objects there).
    dev.create(b"shm", Kind::Directory, 0o1777, 0)
        .map_err(|_| BadEntry {
            name: alloc::string::String::from("/dev/shm"),
            problem: "cannot be made as a mount point",
        })?;
    mount(b"/dev", dev, "devtmpfs")?;
    mount(b"/dev/pts", pty::new_root(frames.clone()), "devpts")?;
    let shm = tmpfs::Tmpfs::new_root(DEV_DEVSHM, frames.clone(), limit_bytes);
    shm.set_perm(0o1777).ok();
    mount(b"/dev/shm", shm, "tmpfs")?;
    // procfs belongs to the process subsystem (it reads its records):
    // the caller makes it, given the mount table it lists.
    mount(b"/proc", proc_fs(vfs.mount_table()), "proc")?;
    let tmp = tmpfs::Tmpfs::new_root(DEV_TMP, frames.clone(), limit_bytes);
    tmp.set_perm(0o1777).ok();
    mount(b"/tmp", tmp, "tmpfs")?;
    let first = u64::from(host.root);
    for (i, spec) in host.volumes.iter().enumerate() {
        let volume = first + i as u64;
        // `/path` or `/path:rw` (a guest path holds no `:`).
        let (path, writable) = match spec.strip_suffix(":rw") {
            Some(p) => (p, true),
            None => (*spec, false),
        };
        let fs = hostfs::HostFs::mount(volume, DEV_HOSTFS + volume, frames.clone(), writable)
            .map_err(|_| host_err(path))?;
        mkdir_p(&vfs, &vfs.root(), path.as_bytes()).ok_or_else(|| BadEntry {
            name: alloc::string::String::from(path),
            problem: "cannot be made as a mount point",
        })?;
        mount(path.as_bytes(), fs, "hostfs")?;
    }
    Ok(vfs)
}

/// Copies the image's members into the root, refusing a malformed one.
fn unpack(vfs: &Vfs, image: &[u8]) -> Result<(), BadEntry> {
    let root = vfs.root();
    for entry in Archive::new(image) {
        let e = entry.map_err(|_| BadEntry {
            name: alloc::string::String::from("(archive)"),
            problem: "is truncated or malformed",
        })?;
        let bad = |problem| BadEntry {
            name: alloc::string::String::from(e.name),
            problem,
        };
        let name = cpio::normalize(e.name);
        if name.is_empty() || name == "." {
            continue;
        }
        // No component may climb above the root.
        let mut depth = 0i32;
        for part in name.split('/') {
            match part {
                "" | "." => {}
                ".." => depth -= 1,
                _ => depth += 1,
            }
            if depth < 0 {
                return Err(bad("climbs out of the root with .."));
            }
        }
        let kind = Kind::from_mode(e.mode).ok_or_else(|| bad("has an unknown file type"))?;
        let (dir_path, last) = match name.rsplit_once('/') {
            Some((d, l)) => (d, l),
            None => ("", name),
        };
        let dir = mkdir_p(vfs, &root, dir_path.as_bytes())
            .ok_or_else(|| bad("has a parent that is not a directory"))?;
        let perm = e.mode & 0o7777;
        match kind {
            Kind::Directory => match dir.lookup(last.as_bytes()) {
                Ok(d) if d.meta().kind == Kind::Directory => {
                    let _ = d.set_perm(perm);
                }
                Ok(_) => return Err(bad("is a directory and also something else")),
                Err(_) => {
                    dir.create(last.as_bytes(), Kind::Directory, perm, 0)
                        .map_err(|_| bad("cannot be created"))?;
                }
            },
            Kind::Regular => {
                let _ = dir.unlink(last.as_bytes(), false);
                let f = dir
                    .create(last.as_bytes(), Kind::Regular, perm, 0)
                    .map_err(|_| bad("cannot be created"))?;
                let mut at = 0usize;
                let written = f.write_at(0, e.data.len(), &mut |pieces| {
                    let start = at;
                    for dst in pieces.iter_mut() {
                        dst.copy_from_slice(&e.data[at..at + dst.len()]);
                        at += dst.len();
                    }
                    Ok(at - start)
                });
                if written != Ok(e.data.len()) {
                    return Err(bad("does not fit in the root file system (tmpfs_size=)"));
                }
            }
            Kind::Symlink => {
                let _ = dir.unlink(last.as_bytes(), false);
                dir.symlink(last.as_bytes(), e.data)
                    .map_err(|_| bad("cannot be created"))?;
            }
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo | Kind::Socket => {
                // cpio keeps rdev in fields this reader does not return:
                // device nodes are made without one (devfs has the real
                // devices); fifos work.
                let _ = dir.unlink(last.as_bytes(), false);
                dir.create(last.as_bytes(), kind, perm, 0)
                    .map_err(|_| bad("cannot be created"))?;
            }
        }
    }
    Ok(())
}

/// Makes (or finds) the directory at `path` below `root`.
fn mkdir_p(vfs: &Vfs, root: &InodeRef, path: &[u8]) -> Option<InodeRef> {
    let mut cur = root.clone();
    for name in path
        .split(|&b| b == b'/')
        .filter(|n| !n.is_empty() && *n != b".")
    {
        cur = if name == b".." {
            vfs.resolve(&cur, b"..", Follow::No).ok()?
        } else {
            // Through the VFS: a volume may go below a mount (/tmp/x).
            match vfs.resolve(&cur, name, Follow::Yes) {
                Ok(d) if d.meta().kind == Kind::Directory => d,
                Ok(_) => return None,
                Err(_) => cur.create(name, Kind::Directory, 0o755, 0).ok()?,
            }
        };
    }
    Some(cur)
}

/// Reads all of regular file `node` (for exec).
pub fn read_all(node: &InodeRef) -> Result<Vec<u8>, vkernel_abi::Errno> {
    let size = node.meta().size as usize;
    let mut out = Vec::new();
    out.try_reserve_exact(size)
        .map_err(|_| vkernel_abi::Errno::ENOMEM)?;
    node.read_at(0, size, &mut |pieces| {
        let start = out.len();
        for b in pieces {
            out.extend_from_slice(b);
        }
        Ok(out.len() - start)
    })?;
    Ok(out)
}
