//! overlay: a read-only lower file system (a host directory, [`super::hostfs`])
//! under a writable tmpfs upper, with Linux overlayfs's semantics:
//!
//! - a name is the upper's if the upper has it, else the lower's; a
//!   directory present in both is merged (the upper's entries first);
//! - changing a lower object copies it up first (its parents too): a
//!   file opened for writing, truncated, chmod/chown/utimes; its data,
//!   mode, owner and times are copied;
//! - removing or renaming away a name the lower has leaves a *whiteout*
//!   in the upper (a character device 0/0, as overlayfs), which hides it;
//! - a directory made where a lower one was removed is *opaque*: nothing
//!   of the lower shows through it. tmpfs has no extended attributes, so
//!   the mark is a whiteout named [`OPAQUE`] inside it (aufs's name),
//!   which no one else can create and no listing shows;
//! - renaming a directory the lower has is `EXDEV` (overlayfs without
//!   `redirect_dir`): `mv` then copies it.
//!
//! Inode numbers are the lower's where there is one (stable across
//! copy-up), else the upper's with bit 63 set.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::cell::RefCell;

use super::device::Device;
use super::vfs::{DirEntry, Inode, InodeRef, Kind, Metadata, Sink, Source};
use vkernel_abi::Errno;

/// The name that marks an upper directory opaque.
pub const OPAQUE: &[u8] = b".wh..wh..opq";
const UPPER_INO: u64 = 1 << 63;
/// Bytes copied per step of a copy-up.
const COPY_CHUNK: usize = 64 * 1024;

/// One overlay mount.
pub struct Overlay {
    dev: u64,
    /// The upper tmpfs's root: statfs of any overlay file reports that
    /// file system, as Linux's ovl_statfs does.
    upper_root: InodeRef,
}

/// An overlay inode: the lower object, the upper one, or both.
pub struct OvNode {
    ov: Rc<Overlay>,
    me: Weak<OvNode>,
    /// Where it is: its directory and name (`None` for the root).
    place: RefCell<Option<(Rc<OvNode>, Vec<u8>)>>,
    lower: Option<InodeRef>,
    upper: RefCell<Option<InodeRef>>,
    ino: u64,
    children: RefCell<BTreeMap<Vec<u8>, Weak<OvNode>>>,
    listing: RefCell<Vec<DirEntry>>,
}

fn is_whiteout(node: &InodeRef) -> bool {
    let m = node.meta();
    m.kind == Kind::CharDevice && m.rdev == 0
}

fn lookup_opt(dir: &InodeRef, name: &[u8]) -> Result<Option<InodeRef>, Errno> {
    match dir.lookup(name) {
        Ok(n) => Ok(Some(n)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Overlay {
    /// An overlay of `upper` (an empty tmpfs root) over `lower`, device
    /// number `dev`; its root.
    pub fn new_root(dev: u64, lower: InodeRef, upper: InodeRef) -> Rc<OvNode> {
        let ov = Rc::new(Overlay {
            dev,
            upper_root: upper.clone(),
        });
        let ino = lower.meta().ino;
        OvNode::new(&ov, None, Some(lower), Some(upper), ino)
    }
}

impl OvNode {
    fn new(
        ov: &Rc<Overlay>,
        place: Option<(Rc<OvNode>, Vec<u8>)>,
        lower: Option<InodeRef>,
        upper: Option<InodeRef>,
        ino: u64,
    ) -> Rc<OvNode> {
        Rc::new_cyclic(|me| OvNode {
            ov: ov.clone(),
            me: me.clone(),
            place: RefCell::new(place),
            lower,
            upper: RefCell::new(upper),
            ino,
            children: RefCell::new(BTreeMap::new()),
            listing: RefCell::new(Vec::new()),
        })
    }

    fn top(&self) -> InodeRef {
        match &*self.upper.borrow() {
            Some(u) => u.clone(),
            // Every node has a lower or an upper.
            None => self
                .lower
                .clone()
                .unwrap_or_else(|| unreachable!("overlay node with neither layer")),
        }
    }

    fn kind(&self) -> Kind {
        self.top().meta().kind
    }

    fn dir_check(&self) -> Result<(), Errno> {
        if self.kind() != Kind::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(())
    }

    /// Whether the lower's entries show through this directory.
    fn opaque(&self) -> bool {
        match &*self.upper.borrow() {
            Some(u) => matches!(u.lookup(OPAQUE), Ok(n) if is_whiteout(&n)),
            None => false,
        }
    }

    /// The upper object, copied up from the lower (with its parents)
    /// if it has none yet.
    fn copy_up(&self) -> Result<InodeRef, Errno> {
        if let Some(u) = &*self.upper.borrow() {
            return Ok(u.clone());
        }
        let lower = self.lower.clone().ok_or(Errno::EIO)?;
        let (parent, name) = self.place.borrow().clone().ok_or(Errno::EIO)?;
        let dir = parent.copy_up()?;
        let m = lower.meta();
        // An upper entry left there (a whiteout cannot be: the lower would
        // not show) is reused rather than doubled.
        let up = match lookup_opt(&dir, &name)? {
            Some(existing) if !is_whiteout(&existing) => existing,
            _ => {
                let up = match m.kind {
                    Kind::Directory => dir.create(&name, Kind::Directory, m.perm, 0)?,
                    Kind::Regular => {
                        let f = dir.create(&name, Kind::Regular, m.perm, 0)?;
                        if let Err(e) = copy_data(&lower, &f, m.size) {
                            let _ = dir.unlink(&name, false);
                            return Err(e);
                        }
                        f
                    }
                    Kind::Symlink => dir.symlink(&name, &lower.readlink()?)?,
                    k => dir.create(&name, k, m.perm, m.rdev)?,
                };
                let _ = up.set_owner(Some(m.uid), Some(m.gid));
                let _ = up.set_perm(m.perm);
                let _ = up.set_times(Some(m.atime_ns), Some(m.mtime_ns));
                up
            }
        };
        *self.upper.borrow_mut() = Some(up.clone());
        Ok(up)
    }

    fn same_ov(&self, other: &InodeRef) -> Option<Rc<OvNode>> {
        let n = other.as_any().downcast_ref::<OvNode>()?;
        if !Rc::ptr_eq(&n.ov, &self.ov) {
            return None;
        }
        n.me.upgrade()
    }

    fn forget(&self, name: &[u8]) {
        self.children.borrow_mut().remove(name);
    }

    /// Makes `name` free in the upper directory for a new entry: a
    /// whiteout there goes (and says the new directory must be opaque).
    fn clear_whiteout(&self, up: &InodeRef, name: &[u8]) -> Result<bool, Errno> {
        match lookup_opt(up, name)? {
            Some(n) if is_whiteout(&n) => {
                up.unlink(name, false)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The merged entries (no `.`/`..`, whiteouts and the opaque mark
    /// left out).
    fn merged(&self) -> Result<Vec<DirEntry>, Errno> {
        let mut out = Vec::new();
        let mut hidden: BTreeSet<Vec<u8>> = BTreeSet::new();
        if let Some(up) = &*self.upper.borrow() {
            up.readdir(0)?;
            let mut i = 2;
            while let Some(e) = up.readdir(i)? {
                i += 1;
                hidden.insert(e.name.clone());
                if e.kind == Kind::CharDevice && e.name != OPAQUE {
                    if let Ok(n) = up.lookup(&e.name) {
                        if is_whiteout(&n) {
                            continue;
                        }
                    }
                }
                if e.name == OPAQUE {
                    continue;
                }
                out.push(e);
            }
        }
        // The upper's numbers are as lookup gives them.
        for e in out.iter_mut() {
            e.ino = match self.lookup(&e.name) {
                Ok(n) => n.meta().ino,
                Err(_) => e.ino | UPPER_INO,
            };
        }
        if let Some(low) = &self.lower {
            if !self.opaque() && low.meta().kind == Kind::Directory {
                // Position 0 starts a pass (hostfs reads the host then).
                low.readdir(0)?;
                let mut i = 2;
                while let Some(e) = low.readdir(i)? {
                    i += 1;
                    if !hidden.contains(&e.name) {
                        out.push(e);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Copies `size` bytes of `from` into `to` (both regular files).
fn copy_data(from: &InodeRef, to: &InodeRef, size: u64) -> Result<(), Errno> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(COPY_CHUNK)
        .map_err(|_| Errno::ENOMEM)?;
    let mut off = 0u64;
    while off < size {
        buf.clear();
        let want = COPY_CHUNK.min((size - off) as usize);
        let n = from.read_at(off, want, &mut |pieces| {
            let start = buf.len();
            for p in pieces {
                buf.extend_from_slice(p);
            }
            Ok(buf.len() - start)
        })?;
        if n == 0 {
            break;
        }
        let mut at = 0usize;
        let w = to.write_at(off, n, &mut |pieces| {
            let start = at;
            for dst in pieces.iter_mut() {
                let len = dst.len();
                dst.copy_from_slice(&buf[at..at + len]);
                at += len;
            }
            Ok(at - start)
        })?;
        if w != n {
            return Err(Errno::ENOSPC);
        }
        off += n as u64;
    }
    Ok(())
}

impl Inode for OvNode {
    fn meta(&self) -> Metadata {
        let mut m = self.top().meta();
        m.dev = self.ov.dev;
        m.ino = self.ino;
        m
    }

    fn usage(&self) -> (u64, u64) {
        self.ov.upper_root.usage()
    }

    fn fs_magic(&self) -> u64 {
        0x794c_7630 // OVERLAYFS_SUPER_MAGIC
    }

    fn set_perm(&self, perm: u32) -> Result<(), Errno> {
        self.copy_up()?.set_perm(perm)
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        self.copy_up()?.set_owner(uid, gid)
    }

    fn set_times(&self, atime: Option<u64>, mtime: Option<u64>) -> Result<(), Errno> {
        self.copy_up()?.set_times(atime, mtime)
    }

    fn open_write(&self) -> Result<(), Errno> {
        self.copy_up().map(|_| ())
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        self.dir_check()?;
        if name == OPAQUE {
            return Err(Errno::ENOENT);
        }
        if let Some(n) = self.children.borrow().get(name).and_then(Weak::upgrade) {
            return Ok(n);
        }
        let upper = match &*self.upper.borrow() {
            Some(u) => lookup_opt(u, name)?,
            None => None,
        };
        if upper.as_ref().is_some_and(is_whiteout) {
            return Err(Errno::ENOENT);
        }
        // The lower's entry, if the lower shows here: what a directory
        // merges with, and what a removal must whiteout even when an upper
        // file hides it.
        let lower = match &self.lower {
            Some(low) if !self.opaque() && low.meta().kind == Kind::Directory => {
                lookup_opt(low, name)?
            }
            _ => None,
        };
        let ino = match (&lower, &upper) {
            (Some(l), _) => l.meta().ino,
            (None, Some(u)) => u.meta().ino | UPPER_INO,
            (None, None) => return Err(Errno::ENOENT),
        };
        let me = self.me.upgrade().ok_or(Errno::ENOENT)?;
        let node = OvNode::new(&self.ov, Some((me, name.to_vec())), lower, upper, ino);
        let mut c = self.children.borrow_mut();
        c.retain(|_, w| w.strong_count() > 0);
        c.insert(name.to_vec(), Rc::downgrade(&node));
        Ok(node)
    }

    fn parent(&self) -> Option<InodeRef> {
        match &*self.place.borrow() {
            Some((p, _)) => Some(p.clone()),
            None => self.me.upgrade().map(|n| n as InodeRef),
        }
    }

    fn create(&self, name: &[u8], kind: Kind, perm: u32, rdev: u64) -> Result<InodeRef, Errno> {
        self.dir_check()?;
        if name == OPAQUE {
            return Err(Errno::EINVAL);
        }
        if self.lookup(name).is_ok() {
            return Err(Errno::EEXIST);
        }
        let up = self.copy_up()?;
        let was_whiteout = self.clear_whiteout(&up, name)?;
        let new = up.create(name, kind, perm, rdev)?;
        if kind == Kind::Directory && was_whiteout {
            new.create(OPAQUE, Kind::CharDevice, 0, 0)?;
        }
        self.forget(name);
        self.lookup(name)
    }

    fn symlink(&self, name: &[u8], target: &[u8]) -> Result<InodeRef, Errno> {
        self.dir_check()?;
        if name == OPAQUE {
            return Err(Errno::EINVAL);
        }
        if self.lookup(name).is_ok() {
            return Err(Errno::EEXIST);
        }
        let up = self.copy_up()?;
        self.clear_whiteout(&up, name)?;
        up.symlink(name, target)?;
        self.forget(name);
        self.lookup(name)
    }

    fn link(&self, name: &[u8], inode: &InodeRef) -> Result<(), Errno> {
        self.dir_check()?;
        let target = self.same_ov(inode).ok_or(Errno::EXDEV)?;
        if name == OPAQUE {
            return Err(Errno::EINVAL);
        }
        if self.lookup(name).is_ok() {
            return Err(Errno::EEXIST);
        }
        let target_up = target.copy_up()?;
        let up = self.copy_up()?;
        self.clear_whiteout(&up, name)?;
        up.link(name, &target_up)?;
        self.forget(name);
        Ok(())
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        self.dir_check()?;
        let node = self.lookup(name)?;
        let node = self.same_ov(&node).ok_or(Errno::EIO)?;
        let is_dir = node.kind() == Kind::Directory;
        match (dir, is_dir) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            (true, true) if !node.merged()?.is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let up = self.copy_up()?;
        let node_upper = node.upper.borrow().clone();
        if let Some(u) = node_upper {
            if is_dir {
                // Its whiteouts and opaque mark go with it.
                let mut names = Vec::new();
                let mut i = 2;
                while let Some(e) = u.readdir(i)? {
                    i += 1;
                    names.push(e.name);
                }
                for n in names {
                    u.unlink(&n, false)?;
                }
            }
            up.unlink(name, dir)?;
        }
        if node.lower.is_some() {
            up.create(name, Kind::CharDevice, 0, 0)?;
        }
        self.forget(name);
        Ok(())
    }

    fn rename(&self, old: &[u8], new_dir: &InodeRef, new: &[u8]) -> Result<(), Errno> {
        self.dir_check()?;
        let target_dir = self.same_ov(new_dir).ok_or(Errno::EXDEV)?;
        target_dir.dir_check()?;
        if new == OPAQUE {
            return Err(Errno::EINVAL);
        }
        let node = self.lookup(old)?;
        let node = self.same_ov(&node).ok_or(Errno::EIO)?;
        let moving_dir = node.kind() == Kind::Directory;
        if moving_dir && node.lower.is_some() {
            // overlayfs without redirect_dir: the caller copies.
            return Err(Errno::EXDEV);
        }
        if let Ok(existing) = target_dir.lookup(new) {
            let existing = target_dir.same_ov(&existing).ok_or(Errno::EIO)?;
            if Rc::ptr_eq(&existing, &node) {
                return Ok(());
            }
            let e_dir = existing.kind() == Kind::Directory;
            match (moving_dir, e_dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                _ => {}
            }
            // Removed the overlay's way (a whiteout if the lower has it);
            // the renamed entry then replaces the whiteout.
            target_dir.unlink(new, e_dir)?;
        }
        let src_up = self.copy_up()?;
        let node_up = node.copy_up()?;
        let dst_up = target_dir.copy_up()?;
        let replaced_whiteout = target_dir.clear_whiteout(&dst_up, new)?;
        src_up.rename(old, &dst_up, new)?;
        if moving_dir && (replaced_whiteout || target_dir.lower_has(new)) {
            // Nothing of a lower directory of that name may show through.
            let _ = node_up.create(OPAQUE, Kind::CharDevice, 0, 0);
        }
        if node.lower.is_some() {
            src_up.create(old, Kind::CharDevice, 0, 0)?;
        }
        self.forget(old);
        target_dir.forget(new);
        *node.place.borrow_mut() = Some((target_dir.clone(), new.to_vec()));
        Ok(())
    }

    fn readdir(&self, index: u64) -> Result<Option<DirEntry>, Errno> {
        self.dir_check()?;
        match index {
            0 => {
                let fresh = self.merged()?;
                *self.listing.borrow_mut() = fresh;
                Ok(Some(DirEntry {
                    ino: self.ino,
                    kind: Kind::Directory,
                    name: b".".to_vec(),
                }))
            }
            1 => Ok(Some(DirEntry {
                ino: self.parent().map_or(self.ino, |p| p.meta().ino),
                kind: Kind::Directory,
                name: b"..".to_vec(),
            })),
            i => Ok(self
                .listing
                .borrow()
                .get((i - 2) as usize)
                .map(|e| DirEntry {
                    ino: e.ino,
                    kind: e.kind,
                    name: e.name.clone(),
                })),
        }
    }

    fn read_at(&self, off: u64, len: usize, out: Sink) -> Result<usize, Errno> {
        self.top().read_at(off, len, out)
    }

    fn write_at(&self, off: u64, len: usize, src: Source) -> Result<usize, Errno> {
        if self.kind() != Kind::Regular {
            return self.top().write_at(off, len, src);
        }
        self.copy_up()?.write_at(off, len, src)
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        if self.kind() != Kind::Regular {
            return self.top().truncate(size);
        }
        self.copy_up()?.truncate(size)
    }

    fn allocate(&self, keep_size: bool, punch: bool, off: u64, len: u64) -> Result<(), Errno> {
        if self.kind() != Kind::Regular {
            return self.top().allocate(keep_size, punch, off, len);
        }
        self.copy_up()?.allocate(keep_size, punch, off, len)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        self.top().readlink()
    }

    fn device(&self) -> Option<Rc<dyn Device>> {
        self.top().device()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn pager(&self) -> Option<Rc<dyn crate::mm::Pager>> {
        self.top().pager()
    }
}

impl OvNode {
    fn lower_has(&self, name: &[u8]) -> bool {
        self.lower
            .as_ref()
            .is_some_and(|l| matches!(lookup_opt(l, name), Ok(Some(_))))
    }
}
