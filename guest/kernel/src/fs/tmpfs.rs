//! tmpfs: a file system in guest memory, the root (filled from the boot
//! image, as Linux unpacks an initramfs) and `/tmp`. Directories hold
//! their entries in a sorted map; a regular file's data lives in whole
//! pages from the physical page allocator, indexed by page number, so a
//! sparse file holds only the pages written; reads and writes hand those
//! pages straight to the process copy (no bounce buffer).
//!
//! Every page a file holds counts against the file system's size limit:
//! past it a write is `ENOSPC`, never a kernel panic.
//!
//! Files are mappable ([`Pager`]): a mapping points at the file's own
//! pages. Truncating a file takes the pages past its new end out of every
//! mapping first; each mapping holds its own reference on the pages it
//! maps, so a page is never reused while any process may still see it.
//! The same files, unlinked from birth ([`new_shm`]), back shared
//! anonymous memory.

use alloc::collections::BTreeMap;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::cell::{Cell, RefCell};

use super::device::Device;
use super::vfs::{DirEntry, Inode, InodeRef, Kind, Metadata, Sink, Source, MAX_PIECES, NAME_MAX};
use crate::mm::physmem::Frames;
use crate::mm::{Mappers, PageError, Pager};
use guestlib::hypercall;
use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::Errno;

/// Largest file (Linux's tmpfs allows up to the maximum file size; this
/// bound keeps page numbers and offsets far from overflow).
const MAX_FILE_BYTES: u64 = 1 << 46;

/// One mounted tmpfs.
pub struct Tmpfs {
    dev: u64,
    next_ino: Cell<u64>,
    frames: Frames,
    /// Pages files may hold in all.
    limit_pages: u64,
    used_pages: Cell<u64>,
}

/// A page of zeros for the holes of sparse files.
static ZERO_PAGE: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];

/// Sends the posted calls (`guestlib::batch`) before a file's pages
/// change: a read may have posted a copy of them to the process
/// (`vfs::stable_pieces`).
fn flush_posted() {
    if guestlib::batch::reads_memory() {
        guestlib::batch::flush();
    }
}

impl Tmpfs {
    /// A new, empty tmpfs (device number `dev`) whose files may hold
    /// `limit_bytes`; its root directory.
    pub fn new_root(dev: u64, frames: Frames, limit_bytes: u64) -> Rc<Node> {
        let fs = Rc::new(Tmpfs {
            dev,
            next_ino: Cell::new(1),
            frames,
            limit_pages: limit_bytes / PAGE_SIZE,
            used_pages: Cell::new(0),
        });
        Node::new(&fs, Body::Dir(RefCell::new(Dir::default())), 0o755, None)
    }

    /// A zeroed page for a file: `ENOSPC` past the size limit, `ENOMEM`
    /// when no physical page is left.
    fn alloc_page(&self) -> Result<u64, Errno> {
        if self.used_pages.get() >= self.limit_pages {
            return Err(Errno::ENOSPC);
        }
        let page = self
            .frames
            .borrow_mut()
            .alloc_zeroed()
            .ok_or(Errno::ENOMEM)?;
        self.used_pages.set(self.used_pages.get() + 1);
        Ok(page)
    }

    fn free_page(&self, page: u64) {
        self.frames.borrow_mut().decref(page);
        self.used_pages.set(self.used_pages.get() - 1);
    }
}

#[derive(Default)]
struct Dir {
    entries: BTreeMap<Vec<u8>, Rc<Node>>,
    parent: Option<Weak<Node>>,
}

#[derive(Default)]
struct File {
    size: u64,
    /// Page number -> guest-physical page.
    pages: BTreeMap<u64, u64>,
}

enum Body {
    Dir(RefCell<Dir>),
    File(RefCell<File>),
    Symlink(Vec<u8>),
    /// A device node or fifo: what opening it gives.
    Special(Kind, u64, Option<Rc<dyn Device>>),
}

struct Attrs {
    perm: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    atime_ns: u64,
    mtime_ns: u64,
    ctime_ns: u64,
    /// Data changed since mtime was last set: the next stat reads the
    /// clock (one hypercall then, not one per write).
    dirty: bool,
    /// An `O_TMPFILE` file `linkat` may still name (Linux's I_LINKABLE).
    linkable: bool,
}

/// A tmpfs inode.
pub struct Node {
    fs: Rc<Tmpfs>,
    me: Weak<Node>,
    ino: u64,
    attrs: RefCell<Attrs>,
    body: Body,
    /// The address spaces that map it.
    mappers: Mappers,
}

fn now_ns() -> u64 {
    hypercall::realtime_ns()
}

impl Node {
    /// Makes `node`, created in this directory, the calling process's
    /// (its file-system ids), as Linux's `inode_init_owner`: in a
    /// set-group-ID directory it takes the directory's group instead,
    /// and a directory made there is set-group-ID too.
    fn give_to_creator(&self, node: &Node) {
        let (uid, gid) = super::vfs::creator();
        let dir = self.attrs.borrow();
        let mut a = node.attrs.borrow_mut();
        a.uid = uid;
        a.gid = gid;
        if dir.perm & 0o2000 != 0 {
            a.gid = dir.gid;
            if matches!(node.body, Body::Dir(_)) {
                a.perm |= 0o2000;
            }
        }
    }

    fn new(fs: &Rc<Tmpfs>, body: Body, perm: u32, parent: Option<Weak<Node>>) -> Rc<Node> {
        let ino = fs.next_ino.get();
        fs.next_ino.set(ino + 1);
        let now = now_ns();
        let nlink = if matches!(body, Body::Dir(_)) { 2 } else { 1 };
        let node = Rc::new_cyclic(|me| Node {
            fs: fs.clone(),
            me: me.clone(),
            ino,
            attrs: RefCell::new(Attrs {
                perm: perm & 0o7777,
                uid: 0,
                gid: 0,
                nlink,
                atime_ns: now,
                mtime_ns: now,
                ctime_ns: now,
                dirty: false,
                linkable: false,
            }),
            body,
            mappers: Mappers::default(),
        });
        if let (Body::Dir(d), Some(p)) = (&node.body, parent) {
            d.borrow_mut().parent = Some(p);
        }
        node
    }

    fn kind(&self) -> Kind {
        match &self.body {
            Body::Dir(_) => Kind::Directory,
            Body::File(_) => Kind::Regular,
            Body::Symlink(_) => Kind::Symlink,
            Body::Special(k, _, _) => *k,
        }
    }

    fn dir(&self) -> Result<&RefCell<Dir>, Errno> {
        match &self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn file(&self) -> Result<&RefCell<File>, Errno> {
        match &self.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn touch_dir(&self) {
        let now = now_ns();
        let mut a = self.attrs.borrow_mut();
        a.mtime_ns = now;
        a.ctime_ns = now;
    }

    /// Adds `node` as `name` (the name is free).
    fn insert(&self, name: &[u8], node: Rc<Node>) -> Result<(), Errno> {
        check_name(name)?;
        let mut d = self.dir()?.borrow_mut();
        if d.entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        if node.kind() == Kind::Directory {
            self.attrs.borrow_mut().nlink += 1;
        }
        d.entries.insert(name.to_vec(), node);
        drop(d);
        self.touch_dir();
        Ok(())
    }

    fn same_fs(&self, other: &InodeRef) -> Option<Rc<Node>> {
        let n = other.as_any().downcast_ref::<Node>()?;
        if !Rc::ptr_eq(&n.fs, &self.fs) {
            return None;
        }
        n.me.upgrade()
    }

    fn is_empty_dir(&self) -> bool {
        matches!(&self.body, Body::Dir(d) if d.borrow().entries.is_empty())
    }

    /// Whether `self` is `other` or one of its ancestors.
    fn is_ancestor_of(&self, other: &Rc<Node>) -> bool {
        let mut cur = Some(other.clone());
        while let Some(n) = cur {
            if n.ino == self.ino {
                return true;
            }
            cur = match &n.body {
                Body::Dir(d) => d.borrow().parent.as_ref().and_then(Weak::upgrade),
                _ => None,
            };
        }
        false
    }

    /// Makes a directory entry's link count drop (and frees file pages
    /// when nothing references the node any more: that is its `Drop`).
    fn unlinked(&self) {
        let mut a = self.attrs.borrow_mut();
        a.nlink = a.nlink.saturating_sub(1);
        a.ctime_ns = now_ns();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Body::File(f) = &self.body {
            for (_, page) in core::mem::take(&mut f.borrow_mut().pages) {
                self.fs.free_page(page);
            }
        }
    }
}

fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl Inode for Node {
    fn meta(&self) -> Metadata {
        let mut a = self.attrs.borrow_mut();
        if a.dirty {
            a.dirty = false;
            a.mtime_ns = now_ns();
            a.ctime_ns = a.mtime_ns;
        }
        let (size, blocks, rdev) = match &self.body {
            Body::File(f) => {
                let f = f.borrow();
                (f.size, f.pages.len() as u64 * (PAGE_SIZE / 512), 0)
            }
            Body::Dir(d) => ((d.borrow().entries.len() as u64 + 2) * 20, 0, 0),
            Body::Symlink(t) => (t.len() as u64, 0, 0),
            Body::Special(_, rdev, _) => (0, 0, *rdev),
        };
        Metadata {
            dev: self.fs.dev,
            ino: self.ino,
            kind: self.kind(),
            perm: a.perm,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            size,
            rdev,
            blocks,
            atime_ns: a.atime_ns,
            mtime_ns: a.mtime_ns,
            ctime_ns: a.ctime_ns,
        }
    }

    fn usage(&self) -> (u64, u64) {
        (
            self.fs.used_pages.get() * PAGE_SIZE,
            self.fs.limit_pages * PAGE_SIZE,
        )
    }

    fn set_perm(&self, perm: u32) -> Result<(), Errno> {
        let mut a = self.attrs.borrow_mut();
        a.perm = perm & 0o7777;
        a.ctime_ns = now_ns();
        Ok(())
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let mut a = self.attrs.borrow_mut();
        if let Some(u) = uid {
            a.uid = u;
        }
        if let Some(g) = gid {
            a.gid = g;
        }
        a.ctime_ns = now_ns();
        Ok(())
    }

    fn set_times(&self, atime: Option<u64>, mtime: Option<u64>) -> Result<(), Errno> {
        let mut a = self.attrs.borrow_mut();
        if let Some(t) = atime {
            a.atime_ns = t;
        }
        if let Some(t) = mtime {
            a.mtime_ns = t;
            a.dirty = false;
        }
        a.ctime_ns = now_ns();
        Ok(())
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        let d = self.dir()?.borrow();
        d.entries
            .get(name)
            .map(|n| n.clone() as InodeRef)
            .ok_or(Errno::ENOENT)
    }

    fn parent(&self) -> Option<InodeRef> {
        let d = self.dir().ok()?.borrow();
        match &d.parent {
            Some(p) => p.upgrade().map(|p| p as InodeRef),
            None => self.me.upgrade().map(|n| n as InodeRef),
        }
    }

    fn create(&self, name: &[u8], kind: Kind, perm: u32, rdev: u64) -> Result<InodeRef, Errno> {
        check_name(name)?;
        let body = match kind {
            Kind::Regular => Body::File(RefCell::new(File::default())),
            Kind::Directory => Body::Dir(RefCell::new(Dir::default())),
            Kind::Symlink => return Err(Errno::EINVAL),
            Kind::Fifo => Body::Special(Kind::Fifo, 0, Some(super::pipe::Pipe::new_fifo())),
            Kind::CharDevice | Kind::BlockDevice | Kind::Socket => Body::Special(kind, rdev, None),
        };
        let node = Node::new(&self.fs, body, perm, Some(self.me.clone()));
        self.give_to_creator(&node);
        self.insert(name, node.clone())?;
        Ok(node)
    }

    fn create_unnamed(&self, perm: u32, linkable: bool) -> Result<InodeRef, Errno> {
        self.dir()?;
        let node = Node::new(
            &self.fs,
            Body::File(RefCell::new(File::default())),
            perm,
            None,
        );
        {
            let mut a = node.attrs.borrow_mut();
            a.nlink = 0;
            a.linkable = linkable;
        }
        self.give_to_creator(&node);
        Ok(node)
    }

    fn linkable(&self) -> bool {
        self.attrs.borrow().linkable
    }

    fn symlink(&self, name: &[u8], target: &[u8]) -> Result<InodeRef, Errno> {
        check_name(name)?;
        let node = Node::new(&self.fs, Body::Symlink(target.to_vec()), 0o777, None);
        self.give_to_creator(&node);
        self.insert(name, node.clone())?;
        Ok(node)
    }

    fn link(&self, name: &[u8], inode: &InodeRef) -> Result<(), Errno> {
        let node = self.same_fs(inode).ok_or(Errno::EXDEV)?;
        if node.kind() == Kind::Directory {
            return Err(Errno::EPERM);
        }
        self.insert(name, node.clone())?;
        let mut a = node.attrs.borrow_mut();
        a.nlink += 1;
        a.linkable = false;
        a.ctime_ns = now_ns();
        Ok(())
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let mut d = self.dir()?.borrow_mut();
        let node = d.entries.get(name).ok_or(Errno::ENOENT)?.clone();
        match (dir, node.kind() == Kind::Directory) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            (true, true) if !node.is_empty_dir() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        d.entries.remove(name);
        drop(d);
        if dir {
            self.attrs.borrow_mut().nlink -= 1;
            node.attrs.borrow_mut().nlink = 0;
        } else {
            node.unlinked();
        }
        self.touch_dir();
        Ok(())
    }

    fn rename(&self, old: &[u8], new_dir: &InodeRef, new: &[u8]) -> Result<(), Errno> {
        check_name(new)?;
        let target = self.same_fs(new_dir).ok_or(Errno::EXDEV)?;
        let target_dir = target.dir()?;
        let node = self
            .dir()?
            .borrow()
            .entries
            .get(old)
            .cloned()
            .ok_or(Errno::ENOENT)?;
        let moving_dir = node.kind() == Kind::Directory;
        if moving_dir && node.is_ancestor_of(&target) {
            // A directory cannot move below itself.
            return Err(Errno::EINVAL);
        }
        let existing = target_dir.borrow().entries.get(new).cloned();
        if let Some(e) = &existing {
            // The target is an ancestor of the source: Linux's "trap".
            let source_dir = self.me.upgrade().ok_or(Errno::ENOENT)?;
            if e.kind() == Kind::Directory && !Rc::ptr_eq(e, &node) && e.is_ancestor_of(&source_dir)
            {
                return Err(Errno::ENOTEMPTY);
            }
            if Rc::ptr_eq(e, &node) {
                // Two links to one file: POSIX says do nothing.
                return Ok(());
            }
            match (moving_dir, e.kind() == Kind::Directory) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !e.is_empty_dir() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        self.dir()?.borrow_mut().entries.remove(old);
        if moving_dir {
            self.attrs.borrow_mut().nlink -= 1;
        }
        if let Some(e) = target_dir.borrow_mut().entries.remove(new) {
            if e.kind() == Kind::Directory {
                target.attrs.borrow_mut().nlink -= 1;
                e.attrs.borrow_mut().nlink = 0;
            } else {
                e.unlinked();
            }
        }
        if moving_dir {
            target.attrs.borrow_mut().nlink += 1;
            if let Body::Dir(d) = &node.body {
                d.borrow_mut().parent = Some(target.me.clone());
            }
        }
        target_dir
            .borrow_mut()
            .entries
            .insert(new.to_vec(), node.clone());
        node.attrs.borrow_mut().ctime_ns = now_ns();
        self.touch_dir();
        target.touch_dir();
        Ok(())
    }

    fn readdir(&self, index: u64) -> Result<Option<DirEntry>, Errno> {
        let d = self.dir()?.borrow();
        Ok(match index {
            0 => Some(DirEntry {
                ino: self.ino,
                kind: Kind::Directory,
                name: b".".to_vec(),
            }),
            1 => {
                let ino = d
                    .parent
                    .as_ref()
                    .and_then(Weak::upgrade)
                    .map_or(self.ino, |p| p.ino);
                Some(DirEntry {
                    ino,
                    kind: Kind::Directory,
                    name: b"..".to_vec(),
                })
            }
            i => d
                .entries
                .iter()
                .nth((i - 2) as usize)
                .map(|(name, n)| DirEntry {
                    ino: n.ino,
                    kind: n.kind(),
                    name: name.clone(),
                }),
        })
    }

    /// Hands `out` the file's pages from `off` as lists of up to
    /// [`MAX_PIECES`] pieces (a hole is the zero page), so a large read is
    /// one copy to the process per list.
    fn read_at(&self, off: u64, len: usize, out: Sink) -> Result<usize, Errno> {
        // The file is borrowed only to find each page, never across `out`:
        // the copy may fault on a mapping of this very file.
        let size = self.file()?.borrow().size;
        if off >= size {
            return Ok(0);
        }
        let end = size.min(off.saturating_add(len as u64));
        let mut pieces: Vec<&[u8]> = Vec::new();
        let pages = (end - off).div_ceil(PAGE_SIZE) as usize + 1;
        pieces
            .try_reserve(pages.min(MAX_PIECES))
            .map_err(|_| Errno::ENOMEM)?;
        let mut at = off;
        while at < end {
            pieces.clear();
            let mut want = 0u64;
            let mut next = at;
            {
                let f = self.file()?.borrow();
                // The file's pages in order from `next` (one tree walk,
                // not a lookup per page).
                let mut held = f.pages.range(next / PAGE_SIZE..).peekable();
                while next < end && pieces.len() < MAX_PIECES {
                    let in_page = (next % PAGE_SIZE) as usize;
                    let n = ((PAGE_SIZE as usize - in_page) as u64).min(end - next) as usize;
                    let page = held
                        .next_if(|&(&index, _)| index == next / PAGE_SIZE)
                        .map(|(_, &page)| page);
                    match (page, pieces.last_mut()) {
                        // The page follows the last piece's in RAM (the
                        // allocator hands out neighbours): one piece, so
                        // one copy, where the host would take one per
                        // kernel buffer.
                        (Some(page), Some(last))
                            if in_page == 0
                                && last.as_ptr() != ZERO_PAGE.as_ptr()
                                && last.as_ptr() as u64 + last.len() as u64 == page =>
                        {
                            // SAFETY: the last piece and this page are
                            // this file's pages, adjacent identity-mapped
                            // RAM (see below), so the pieces' bytes are
                            // one run.
                            *last = unsafe {
                                core::slice::from_raw_parts(last.as_ptr(), last.len() + n)
                            };
                        }
                        // SAFETY: the page is this file's (the allocator
                        // gave it and only `free_page` returns it, on
                        // truncate or drop, neither of which a copy can
                        // cause), identity-mapped RAM; `in_page + n <=
                        // PAGE_SIZE`.
                        (Some(page), _) => pieces.push(unsafe {
                            core::slice::from_raw_parts((page as *const u8).add(in_page), n)
                        }),
                        (None, _) => pieces.push(&ZERO_PAGE[..n]),
                    }
                    next += n as u64;
                    want += n as u64;
                }
            }
            // The pages stay as they are until the next hypercall: every
            // write or truncation of them sends the posted calls first.
            let took = super::vfs::stable_pieces(out, &pieces)?;
            at += took as u64;
            if (took as u64) < want {
                break;
            }
        }
        Ok((at - off) as usize)
    }

    /// Hands `src` the file's pages from `off` (allocated as needed) as
    /// lists of up to [`MAX_PIECES`] pieces. Pages this call allocated but
    /// a short copy did not reach are freed again (they stay holes).
    fn write_at(&self, off: u64, len: usize, src: Source) -> Result<usize, Errno> {
        // A read's posted copy of these pages reaches the host first.
        flush_posted();
        let file = self.file()?;
        let end = off.checked_add(len as u64).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_BYTES {
            return Err(Errno::EFBIG);
        }
        let mut pieces: Vec<&mut [u8]> = Vec::new();
        let mut fresh: Vec<u64> = Vec::new();
        let pages = (end - off).div_ceil(PAGE_SIZE) as usize + 1;
        pieces
            .try_reserve(pages.min(MAX_PIECES))
            .and_then(|()| fresh.try_reserve(pages.min(MAX_PIECES)))
            .map_err(|_| Errno::ENOMEM)?;
        let mut at = off;
        while at < end {
            pieces.clear();
            fresh.clear();
            let mut want = 0u64;
            let mut next = at;
            let mut full = false;
            {
                // Borrowed only to find or add the pages, not across `src`:
                // the copy may fault on a mapping of this very file.
                let mut f = file.borrow_mut();
                while next < end && pieces.len() < MAX_PIECES {
                    let index = next / PAGE_SIZE;
                    let page = match f.pages.get(&index) {
                        Some(&p) => p,
                        None => match self.fs.alloc_page() {
                            Ok(p) => {
                                f.pages.insert(index, p);
                                fresh.push(index);
                                p
                            }
                            // A file system short of pages is full, to a
                            // writer.
                            Err(_) if next == off => return Err(Errno::ENOSPC),
                            Err(_) => {
                                full = true;
                                break;
                            }
                        },
                    };
                    let in_page = (next % PAGE_SIZE) as usize;
                    let n = ((PAGE_SIZE as usize - in_page) as u64).min(end - next) as usize;
                    match pieces.last_mut() {
                        // The page follows the last piece's in RAM: one
                        // piece, one copy (as in `read_at`).
                        Some(last)
                            if in_page == 0 && last.as_ptr() as u64 + last.len() as u64 == page =>
                        {
                            let (at, had) = (last.as_mut_ptr(), last.len());
                            // SAFETY: the last piece and this page are
                            // this file's pages, adjacent RAM; no other
                            // slice of this page exists (below).
                            *last = unsafe { core::slice::from_raw_parts_mut(at, had + n) };
                        }
                        // SAFETY: as in `read_at`; each piece is a
                        // different page, so no other slice of these
                        // bytes exists (a mapping of the file may alias
                        // the page, but this kernel runs nothing else
                        // while it copies).
                        _ => pieces.push(unsafe {
                            core::slice::from_raw_parts_mut((page as *mut u8).add(in_page), n)
                        }),
                    }
                    next += n as u64;
                    want += n as u64;
                }
            }
            let got = match src(&mut pieces) {
                Ok(g) => g as u64,
                // Only a copy that could take nothing at all fails (EFAULT).
                Err(e) => {
                    pieces.clear();
                    let mut f = file.borrow_mut();
                    for &index in &fresh {
                        if let Some(p) = f.pages.remove(&index) {
                            self.fs.free_page(p);
                        }
                    }
                    return Err(e);
                }
            };
            at += got;
            let mut f = file.borrow_mut();
            if at > f.size {
                f.size = at;
            }
            if got < want || full {
                // The fresh pages past what the copy reached go back.
                pieces.clear();
                let keep = at.div_ceil(PAGE_SIZE);
                for &index in fresh.iter().filter(|&&i| i >= keep) {
                    if let Some(p) = f.pages.remove(&index) {
                        self.fs.free_page(p);
                    }
                }
                break;
            }
        }
        if at > off {
            self.attrs.borrow_mut().dirty = true;
        }
        Ok((at - off) as usize)
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        if size > MAX_FILE_BYTES {
            return Err(Errno::EFBIG);
        }
        if size < self.file()?.borrow().size {
            // Out of every mapping first (Linux's unmap_mapping_range):
            // touching them later is SIGBUS.
            self.mappers
                .zap(self as *const Node as *const (), size.div_ceil(PAGE_SIZE));
        }
        // A read's posted copy of the tail reaches the host first.
        flush_posted();
        let mut f = self.file()?.borrow_mut();
        if size < f.size {
            // Drop the pages wholly past the end; zero the tail of the last.
            let keep = size.div_ceil(PAGE_SIZE);
            for (_, page) in f.pages.split_off(&keep) {
                self.fs.free_page(page);
            }
            if !size.is_multiple_of(PAGE_SIZE) {
                if let Some(&page) = f.pages.get(&(size / PAGE_SIZE)) {
                    let from = (size % PAGE_SIZE) as usize;
                    // SAFETY: this file's page, borrowed mutably.
                    unsafe {
                        core::ptr::write_bytes(
                            (page as *mut u8).add(from),
                            0,
                            PAGE_SIZE as usize - from,
                        )
                    };
                }
            }
        }
        f.size = size;
        self.attrs.borrow_mut().dirty = true;
        Ok(())
    }

    /// As Linux's shmem_fallocate: pages for the range (all or none: the
    /// ones this call took go back on `ENOSPC`), or, punching, the whole
    /// pages of the range freed and the partial ones at its ends zeroed.
    fn allocate(&self, keep_size: bool, punch: bool, off: u64, len: u64) -> Result<(), Errno> {
        let file = self.file()?;
        let end = off.checked_add(len).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_BYTES {
            return Err(Errno::EFBIG);
        }
        // A read's posted copy of these pages reaches the host first.
        flush_posted();
        if punch {
            let (first, last) = (off.div_ceil(PAGE_SIZE), end / PAGE_SIZE);
            // Out of every mapping (from the first page on: more than
            // needed, and the rest fault back in from the file).
            self.mappers
                .zap(self as *const Node as *const (), off / PAGE_SIZE);
            let mut f = file.borrow_mut();
            // (A range inside one page has no whole page: first > last.)
            let whole: Vec<u64> = if first < last {
                f.pages.range(first..last).map(|(&i, _)| i).collect()
            } else {
                Vec::new()
            };
            for i in whole {
                if let Some(page) = f.pages.remove(&i) {
                    self.fs.free_page(page);
                }
            }
            // The partial pages at the ends: zero their part of the range.
            for index in [off / PAGE_SIZE, end / PAGE_SIZE] {
                if let Some(&page) = f.pages.get(&index) {
                    let from = off.max(index * PAGE_SIZE) - index * PAGE_SIZE;
                    let to = end.min((index + 1) * PAGE_SIZE) - index * PAGE_SIZE;
                    if from < to {
                        // SAFETY: this file's page, borrowed mutably;
                        // `from < to <= PAGE_SIZE`.
                        unsafe {
                            core::ptr::write_bytes(
                                (page as *mut u8).add(from as usize),
                                0,
                                (to - from) as usize,
                            )
                        };
                    }
                }
            }
        } else {
            let mut f = file.borrow_mut();
            let mut taken = Vec::new();
            for index in off / PAGE_SIZE..end.div_ceil(PAGE_SIZE) {
                if f.pages.contains_key(&index) {
                    continue;
                }
                let page = taken
                    .try_reserve(1)
                    .map_err(|_| Errno::ENOMEM)
                    .and_then(|()| self.fs.alloc_page());
                match page {
                    Ok(p) => {
                        f.pages.insert(index, p);
                        taken.push(index);
                    }
                    Err(e) => {
                        for i in taken {
                            if let Some(p) = f.pages.remove(&i) {
                                self.fs.free_page(p);
                            }
                        }
                        return Err(if e == Errno::ENOMEM { Errno::ENOSPC } else { e });
                    }
                }
            }
            if !keep_size && end > f.size {
                f.size = end;
            }
        }
        self.attrs.borrow_mut().dirty = true;
        Ok(())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn device(&self) -> Option<Rc<dyn Device>> {
        match &self.body {
            Body::Special(_, rdev, dev) => dev.clone().or_else(|| {
                // A device node names one of the built-in devices.
                super::devfs::by_rdev(*rdev)
            }),
            _ => None,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn pager(&self) -> Option<Rc<dyn Pager>> {
        match &self.body {
            Body::File(_) => self.me.upgrade().map(|n| n as Rc<dyn Pager>),
            _ => None,
        }
    }
}

impl Pager for Node {
    fn page(&self, index: u64) -> Result<u64, PageError> {
        let file = self.file().map_err(|_| PageError::Bus)?;
        let mut f = file.borrow_mut();
        if index >= f.size.div_ceil(PAGE_SIZE) {
            return Err(PageError::Bus);
        }
        if let Some(&page) = f.pages.get(&index) {
            return Ok(page);
        }
        // A full file system is SIGBUS for the toucher, as Linux's shmem.
        let page = self.fs.alloc_page().map_err(|e| match e {
            Errno::ENOMEM => PageError::NoMem,
            _ => PageError::Bus,
        })?;
        f.pages.insert(index, page);
        Ok(page)
    }

    fn lookup(&self, index: u64) -> Option<u64> {
        let f = self.file().ok()?.borrow();
        if index >= f.size.div_ceil(PAGE_SIZE) {
            return None;
        }
        f.pages.get(&index).copied()
    }

    fn size(&self) -> u64 {
        self.file().map_or(0, |f| f.borrow().size)
    }

    fn identity(&self) -> (u64, u64, bool) {
        (self.fs.dev, self.ino, self.attrs.borrow().nlink == 0)
    }

    fn mappers(&self) -> &Mappers {
        &self.mappers
    }
}

/// A new file of `size` bytes (zeros) with no name, on the tmpfs of `root`:
/// the object behind `MAP_SHARED|MAP_ANONYMOUS` memory (Linux's
/// `shmem_zero_setup`), freed with its last mapping.
pub fn new_shm(root: &Rc<Node>, size: u64) -> Result<Rc<dyn Pager>, Errno> {
    if size > MAX_FILE_BYTES {
        return Err(Errno::ENOMEM);
    }
    let node = Node::new(
        &root.fs,
        Body::File(RefCell::new(File {
            size,
            pages: BTreeMap::new(),
        })),
        0o600,
        None,
    );
    node.attrs.borrow_mut().nlink = 0;
    Ok(node)
}

/// A new empty file with no name on the tmpfs of `root` (mode 0777, as
/// Linux makes them): what `memfd_create` opens, freed with its last
/// descriptor and mapping.
pub fn new_unlinked(root: &Rc<Node>) -> Rc<Node> {
    let node = Node::new(
        &root.fs,
        Body::File(RefCell::new(File {
            size: 0,
            pages: BTreeMap::new(),
        })),
        0o777,
        None,
    );
    node.attrs.borrow_mut().nlink = 0;
    node
}

/// Adds a device node (what devfs is made of).
pub fn add_device(
    dir: &Rc<Node>,
    name: &[u8],
    rdev: u64,
    dev: Rc<dyn Device>,
) -> Result<Rc<Node>, Errno> {
    let node = Node::new(
        &dir.fs,
        Body::Special(Kind::CharDevice, rdev, Some(dev)),
        0o666,
        None,
    );
    dir.insert(name, node.clone())?;
    Ok(node)
}
