//! hostfs: a host directory served by the host through the `hostfs_*`
//! hypercalls (9P-style: walk one name from a handle, getattr, readdir,
//! read a range, readlink, clunk). The root's directory is read-only:
//! writes go to the tmpfs layer an overlay puts above it
//! ([`super::overlay`]). A volume given as writable (`-v HOST:GUEST:rw`)
//! is written through to the host (`hostfs_create` ... `hostfs_chown`),
//! every change at once (write-through: no dirty pages are kept).
//!
//! The page cache stays coherent with writes: a write goes to the host
//! and into the cached pages it covers (so every reader and every mapping
//! of the file sees it at once, as on Linux), a truncation drops the
//! pages past the end and takes them out of every mapping. A writable
//! `MAP_SHARED` mapping of a file of a writable volume is refused
//! (`ENODEV`, logged): its stores would land in the cached page only,
//! never on the host (no writeback on `msync`/`munmap`); a read-only
//! shared mapping is allowed and sees every write.
//!
//! Each inode holds one host handle for its life (clunked on drop). The
//! VFS resolves `.`, `..`, symbolic links and mount points itself, so the
//! host only ever walks single names down from the volume's root.
//! Directories keep their children weakly (one inode per name while it
//! lives); a ring of recently used inodes keeps the working set's handles
//! and cached pages alive between processes (ld.so, libc, the shell).
//!
//! The page cache: a file's pages are read from the host once, on first
//! use, into physical pages that every reader and every mapping share
//! ([`Pager`]: a mapping points at the cached page itself, copy-on-write
//! for a private one). When physical memory runs out the allocator asks
//! the cache ([`Reclaim`]) for pages only it holds (no mapping, no read
//! in progress): they are clean, so they are dropped and read again on
//! the next use. A root file system larger than guest memory works.
//!
//! A name the host will not walk because another host file system is
//! mounted there (`EXDEV`: `/proc`, `/dev`... of a host root) shows as an
//! empty directory, as a non-recursive bind mount does; the guest mounts
//! its own file systems on those.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::cell::{Cell, RefCell};

use super::device::Device;
use super::vfs::{DirEntry, Inode, InodeRef, Kind, Metadata, Sink, Source, MAX_PIECES, NAME_MAX};
use crate::mm::physmem::{Frames, PhysMem, Reclaim};
use crate::mm::{Mappers, PageError, Pager};
use guestlib::hypercall;
use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::{
    Call, Errno, HostfsStat, KernelIovec, HOSTFS_REMOVEDIR, HOSTFS_SET_ATIME, HOSTFS_SET_MODE,
    HOSTFS_SET_MTIME, HOSTFS_SET_SIZE,
};

/// Inodes kept alive after their last user (their handles stay open and
/// their pages cached).
const RECENT_INODES: usize = 512;
/// Pages just handed to a mapping that reclaim leaves alone: the pmap
/// takes its own reference only after it may have allocated a page (a
/// table, a private copy); the host pmap maps up to 16 around a fault.
const PINNED_PAGES: usize = 32;
/// Pages read at once on a miss (128 KiB, Linux's default read-ahead).
const READAHEAD: usize = 32;
/// Missing names a directory remembers.
const MISSING_NAMES: usize = 256;
/// Most bytes one write sends to the host (one bounce buffer).
const WRITE_CHUNK: usize = 256 * 1024;
/// Bytes asked of `hostfs_readdir` at once.
const READDIR_BUF: usize = 16 * 1024;

/// One mounted host directory.
pub struct HostFs {
    dev: u64,
    /// `-v HOST:GUEST:rw`: changes go to the host (else `EROFS`).
    writable: bool,
    frames: Frames,
    me: Weak<HostFs>,
    recent: RefCell<VecDeque<Rc<Node>>>,
    /// Files that have cached pages (reclaim walks them).
    cached: RefCell<Vec<Weak<Node>>>,
    /// Where reclaim resumes in `cached` (round robin).
    hand: Cell<usize>,
    pinned: Cell<[u64; PINNED_PAGES]>,
    pin_at: Cell<usize>,
    /// Pages the cache holds, for `/proc/meminfo`-style figures.
    pages: Cell<u64>,
    /// Regular files by host inode number: every name of a file (hard
    /// links) is one node, so one page cache, as on Linux.
    files: RefCell<BTreeMap<u64, Weak<Node>>>,
}

enum Body {
    Dir {
        children: RefCell<BTreeMap<Vec<u8>, Weak<Node>>>,
        /// Names the host said are missing (the lower does not change
        /// under the guest): ld.so's library search asks for many.
        missing: RefCell<BTreeSet<Vec<u8>>>,
        /// The entries as last read from the host (at position 0).
        listing: RefCell<Vec<DirEntry>>,
    },
    File {
        /// Page number -> cached physical page.
        pages: RefCell<BTreeMap<u64, u64>>,
    },
    /// The target, once read: a symbolic link's target never changes (a
    /// new target is a new link, a new inode), and every exec resolves
    /// the same few (`/lib64/ld-linux-x86-64.so.2`, `/bin` -> `usr/bin`).
    Symlink(RefCell<Option<Vec<u8>>>),
    /// A device node, fifo or socket; a fifo's pipe once opened.
    Special(RefCell<Option<Rc<dyn Device>>>),
}

/// A hostfs inode.
pub struct Node {
    fs: Rc<HostFs>,
    me: Weak<Node>,
    /// The host handle (`None`: a mount point of the host's, shown empty).
    handle: Option<u64>,
    /// The host's attributes, read again after each change made here.
    stat: Cell<HostfsStat>,
    /// Changes when a rename moves it to another directory.
    parent: RefCell<Option<Rc<Node>>>,
    body: Body,
    mappers: Mappers,
}

fn hc(call: Call) -> Result<i64, Errno> {
    hypercall::invoke(call)
}

impl HostFs {
    /// Mounts host volume `volume` (device number `dev`; `writable`:
    /// given with `:rw`); its root.
    pub fn mount(volume: u64, dev: u64, frames: Frames, writable: bool) -> Result<Rc<Node>, Errno> {
        let fs = Rc::new_cyclic(|me| HostFs {
            dev,
            writable,
            frames: frames.clone(),
            me: me.clone(),
            recent: RefCell::new(VecDeque::new()),
            cached: RefCell::new(Vec::new()),
            hand: Cell::new(0),
            pinned: Cell::new([0; PINNED_PAGES]),
            pin_at: Cell::new(0),
            pages: Cell::new(0),
            files: RefCell::new(BTreeMap::new()),
        });
        let weak: Weak<dyn Reclaim> = fs.me.clone();
        frames.borrow_mut().add_reclaimer(weak);
        let handle = hc(Call::HostfsRoot { volume })? as u64;
        Node::new(&fs, Some(handle), None, 0)
    }

    fn keep(&self, node: &Rc<Node>) {
        let mut recent = self.recent.borrow_mut();
        if recent.iter().rev().take(8).any(|n| Rc::ptr_eq(n, node)) {
            return;
        }
        recent.push_back(node.clone());
        let old = (recent.len() > RECENT_INODES).then(|| recent.pop_front());
        drop(recent);
        // Dropped outside the borrow: its drop clunks and frees pages.
        drop(old);
    }

    /// The node of the file `node` names: one already known under
    /// another name (a hard link; `node` is dropped and its handle
    /// clunked), or `node`, now known.
    fn one_node_per_file(&self, node: Rc<Node>) -> Rc<Node> {
        if !matches!(node.body, Body::File { .. }) {
            return node;
        }
        let ino = node.stat.get().ino;
        let mut files = self.files.borrow_mut();
        // A known file with no name left (unlinked, still open) is not
        // the one a reused inode number now names.
        if let Some(known) = files.get(&ino).and_then(Weak::upgrade) {
            if known.stat.get().nlink > 0 {
                drop(files);
                return known;
            }
        }
        if files.len() >= RECENT_INODES * 2 {
            files.retain(|_, w| w.strong_count() > 0);
        }
        files.insert(ino, Rc::downgrade(&node));
        node
    }

    /// Drops a file with no name left from the recently used ring, so its
    /// handle (and the host's space for it) goes with its last user.
    fn forget_if_unlinked(&self, node: &Rc<Node>) {
        if node.stat.get().nlink == 0 {
            let old: VecDeque<Rc<Node>> = {
                let mut recent = self.recent.borrow_mut();
                let (gone, kept) = core::mem::take(&mut *recent)
                    .into_iter()
                    .partition(|n| Rc::ptr_eq(n, node));
                *recent = kept;
                gone
            };
            // Dropped outside the borrow (a drop may clunk).
            drop(old);
        }
    }

    fn pin(&self, page: u64) {
        let mut p = self.pinned.get();
        let i = self.pin_at.get();
        p[i % PINNED_PAGES] = page;
        self.pinned.set(p);
        self.pin_at.set(i.wrapping_add(1));
    }
}

impl Reclaim for HostFs {
    fn reclaim(&self, mem: &mut PhysMem, want: u64) -> u64 {
        let Ok(mut cached) = self.cached.try_borrow_mut() else {
            return 0;
        };
        cached.retain(|w| w.strong_count() > 0);
        let pinned = self.pinned.get();
        let mut freed = 0;
        let n = cached.len();
        for step in 0..n {
            if freed >= want {
                break;
            }
            let i = (self.hand.get() + step) % n;
            let Some(node) = cached[i].upgrade() else {
                continue;
            };
            let Body::File { pages } = &node.body else {
                continue;
            };
            // A file whose pages are being read or filled right now is
            // skipped (its map is borrowed).
            let Ok(mut pages) = pages.try_borrow_mut() else {
                continue;
            };
            pages.retain(|_, &mut page| {
                if freed >= want || mem.refs(page) != 1 || pinned.contains(&page) {
                    return true;
                }
                mem.decref(page);
                freed += 1;
                false
            });
        }
        if n > 0 {
            self.hand.set((self.hand.get() + 1) % n);
        }
        self.pages.set(self.pages.get().saturating_sub(freed));
        mem.cache_pages = mem.cache_pages.saturating_sub(freed);
        freed
    }
}

impl Node {
    /// `ino` is the number of a host mount point (`handle` none), which
    /// the host does not give.
    fn new(
        fs: &Rc<HostFs>,
        handle: Option<u64>,
        parent: Option<Rc<Node>>,
        ino: u64,
    ) -> Result<Rc<Node>, Errno> {
        let mut stat = HostfsStat::default();
        match handle {
            Some(h) => {
                let r = hc(Call::HostfsGetattr {
                    handle: h,
                    buf: &mut stat as *mut HostfsStat as u64,
                });
                if let Err(e) = r {
                    let _ = hc(Call::HostfsClunk { handle: h });
                    return Err(e);
                }
            }
            None => {
                stat.mode = (linux_raw_sys::general::S_IFDIR | 0o755) as u64;
                stat.nlink = 2;
                stat.ino = ino;
            }
        }
        let kind = Kind::from_mode(stat.mode as u32).unwrap_or(Kind::Regular);
        let body = match kind {
            Kind::Directory => Body::Dir {
                children: RefCell::new(BTreeMap::new()),
                missing: RefCell::new(BTreeSet::new()),
                listing: RefCell::new(Vec::new()),
            },
            Kind::Regular => Body::File {
                pages: RefCell::new(BTreeMap::new()),
            },
            Kind::Symlink => Body::Symlink(RefCell::new(None)),
            _ => Body::Special(RefCell::new(None)),
        };
        Ok(Rc::new_cyclic(|me| Node {
            fs: fs.clone(),
            me: me.clone(),
            handle,
            stat: Cell::new(stat),
            parent: RefCell::new(parent),
            body,
            mappers: Mappers::default(),
        }))
    }

    fn kind(&self) -> Kind {
        Kind::from_mode(self.stat.get().mode as u32).unwrap_or(Kind::Regular)
    }

    fn pages(&self) -> Result<&RefCell<BTreeMap<u64, u64>>, Errno> {
        match &self.body {
            Body::File { pages } => Ok(pages),
            Body::Dir { .. } => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The cached page `index`, read from the host if it is not cached,
    /// with the missing pages after it (up to [`READAHEAD`], one
    /// `hostfs_readv`), as Linux reads ahead.
    fn fill(&self, index: u64) -> Result<u64, Errno> {
        let pages = self.pages()?;
        if let Some(&p) = pages.borrow().get(&index) {
            return Ok(p);
        }
        let handle = self.handle.ok_or(Errno::EIO)?;
        let eof = self.stat.get().size.div_ceil(PAGE_SIZE);
        let want = {
            let map = pages.borrow();
            (index..eof.min(index + READAHEAD as u64))
                .take_while(|i| !map.contains_key(i))
                .count()
                .max(1)
        };
        // Allocated before the map is borrowed again: allocation may
        // reclaim. Fewer when memory is short; none is `ENOMEM`.
        let mut iov = [KernelIovec::default(); READAHEAD];
        let mut n = 0;
        while n < want {
            let Some(page) = self.fs.frames.borrow_mut().alloc() else {
                break;
            };
            iov[n] = KernelIovec {
                base: page,
                len: PAGE_SIZE,
            };
            n += 1;
        }
        if n == 0 {
            return Err(Errno::ENOMEM);
        }
        let free = |from: usize| {
            let mut frames = self.fs.frames.borrow_mut();
            for v in &iov[from..n] {
                frames.decref(v.base);
            }
        };
        let got = match hc(Call::HostfsReadv {
            handle,
            iov: iov.as_ptr() as u64,
            iovcnt: n as u64,
            off: index * PAGE_SIZE,
        }) {
            Ok(got) => got as u64,
            Err(e) => {
                free(0);
                return Err(e);
            }
        };
        // Kept: the pages the read reached (the last one zero-filled past
        // the end); a first page past the end of a file that shrank on
        // the host reads as zeros.
        let keep = (got.div_ceil(PAGE_SIZE) as usize).clamp(1, n);
        for (k, v) in iov[..keep].iter().enumerate() {
            let filled = got.saturating_sub(k as u64 * PAGE_SIZE).min(PAGE_SIZE);
            // SAFETY: our fresh page; past what the file holds reads as zeros.
            unsafe {
                core::ptr::write_bytes(
                    (v.base + filled) as *mut u8,
                    0,
                    (PAGE_SIZE - filled) as usize,
                )
            };
        }
        free(keep);
        let first = {
            let mut map = pages.borrow_mut();
            let first = map.is_empty();
            for (k, v) in iov[..keep].iter().enumerate() {
                map.insert(index + k as u64, v.base);
            }
            first
        };
        self.fs.pages.set(self.fs.pages.get() + keep as u64);
        self.fs.frames.borrow_mut().cache_pages += keep as u64;
        if first {
            let mut cached = self.fs.cached.borrow_mut();
            if !cached.iter().any(|w| w.ptr_eq(&self.me)) {
                cached.push(self.me.clone());
            }
        }
        Ok(iov[0].base)
    }

    /// Reads the directory from the host (skipping `.` and `..`).
    fn load_listing(&self) -> Result<Vec<DirEntry>, Errno> {
        let mut out = Vec::new();
        let Some(handle) = self.handle else {
            return Ok(out);
        };
        let mut buf = alloc::vec![0u8; READDIR_BUF];
        let mut cookie = 0u64;
        loop {
            let n = hc(Call::HostfsReaddir {
                handle,
                cookie,
                buf: buf.as_mut_ptr() as u64,
                len: buf.len() as u64,
            })? as usize;
            if n == 0 {
                return Ok(out);
            }
            let mut at = 0;
            // linux_dirent64: ino u64, off i64, reclen u16, type u8, name.
            while at + 19 <= n.min(buf.len()) {
                let ino = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap_or([0; 8]));
                let off = u64::from_le_bytes(buf[at + 8..at + 16].try_into().unwrap_or([0; 8]));
                let reclen = u16::from_le_bytes([buf[at + 16], buf[at + 17]]) as usize;
                if reclen < 19 || at + reclen > n {
                    return Err(Errno::EIO);
                }
                let dtype = buf[at + 18];
                let name_bytes = &buf[at + 19..at + reclen];
                let len = name_bytes
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(name_bytes.len());
                let name = &name_bytes[..len];
                if name != b"." && name != b".." && !name.is_empty() && name.len() <= NAME_MAX {
                    out.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                    out.push(DirEntry {
                        ino,
                        kind: dirent_kind(dtype),
                        name: name.to_vec(),
                    });
                }
                cookie = off;
                at += reclen;
            }
        }
    }
}

/// The inode number shown for a host mount point `name` in directory
/// `parent`: stable, different for each name (FNV-1a), with bit 62 set,
/// which host file systems' numbers do not reach in practice.
fn mount_point_ino(parent: u64, name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ parent;
    for &b in name {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h & ((1 << 62) - 1)) | (1 << 62)
}

fn dirent_kind(t: u8) -> Kind {
    use linux_raw_sys::general::{DT_BLK, DT_CHR, DT_DIR, DT_FIFO, DT_LNK, DT_SOCK};
    match t as u32 {
        DT_DIR => Kind::Directory,
        DT_LNK => Kind::Symlink,
        DT_CHR => Kind::CharDevice,
        DT_BLK => Kind::BlockDevice,
        DT_FIFO => Kind::Fifo,
        DT_SOCK => Kind::Socket,
        _ => Kind::Regular,
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Body::File { pages } = &self.body {
            let pages = core::mem::take(&mut *pages.borrow_mut());
            if !pages.is_empty() {
                let mut frames = self.fs.frames.borrow_mut();
                for page in pages.values() {
                    frames.decref(*page);
                }
                frames.cache_pages = frames.cache_pages.saturating_sub(pages.len() as u64);
                self.fs
                    .pages
                    .set(self.fs.pages.get().saturating_sub(pages.len() as u64));
            }
        }
        if let Some(handle) = self.handle {
            let _ = hc(Call::HostfsClunk { handle });
        }
    }
}

impl Inode for Node {
    fn meta(&self) -> Metadata {
        let s = &self.stat.get();
        Metadata {
            dev: self.fs.dev,
            ino: s.ino,
            kind: self.kind(),
            perm: s.mode as u32 & 0o7777,
            nlink: s.nlink as u32,
            uid: s.uid as u32,
            gid: s.gid as u32,
            size: s.size,
            rdev: s.rdev,
            blocks: s.blocks,
            atime_ns: s.atime_ns,
            mtime_ns: s.mtime_ns,
            ctime_ns: s.ctime_ns,
        }
    }

    fn fs_magic(&self) -> u64 {
        // What a 9P-served root reports on Linux.
        0x0102_1997
    }

    fn set_perm(&self, perm: u32) -> Result<(), Errno> {
        self.setattr(HOSTFS_SET_MODE, perm as u64, 0, 0, 0)
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let handle = self.handle_for_write()?;
        hc(Call::HostfsChown {
            handle,
            uid: uid.unwrap_or(u32::MAX) as u64,
            gid: gid.unwrap_or(u32::MAX) as u64,
        })?;
        self.refresh()
    }

    fn set_times(&self, atime: Option<u64>, mtime: Option<u64>) -> Result<(), Errno> {
        let valid = atime.map_or(0, |_| HOSTFS_SET_ATIME) | mtime.map_or(0, |_| HOSTFS_SET_MTIME);
        if valid == 0 {
            self.handle_for_write()?;
            return Ok(());
        }
        self.setattr(valid, 0, 0, atime.unwrap_or(0), mtime.unwrap_or(0))
    }

    fn open_write(&self) -> Result<(), Errno> {
        // A write of nothing: EROFS, or EACCES where the host would not
        // open the file for writing, at open as Linux says them.
        let handle = self.handle_for_write()?;
        let empty = [KernelIovec { base: 0, len: 0 }];
        hc(Call::HostfsWritev {
            handle,
            iov: empty.as_ptr() as u64,
            iovcnt: 1,
            off: 0,
        })?;
        Ok(())
    }

    fn sync(&self, datasync: bool) -> Result<(), Errno> {
        match self.handle {
            Some(handle) if self.fs.writable => {
                hc(Call::HostfsFsync {
                    handle,
                    datasync: datasync as u64,
                })?;
                Ok(())
            }
            // Nothing of a read-only volume is ever dirty.
            _ => Ok(()),
        }
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        let Body::Dir {
            children, missing, ..
        } = &self.body
        else {
            return Err(Errno::ENOTDIR);
        };
        if let Some(n) = children.borrow().get(name).and_then(Weak::upgrade) {
            self.fs.keep(&n);
            return Ok(n);
        }
        if missing.borrow().contains(name) {
            return Err(Errno::ENOENT);
        }
        if name.is_empty() || name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let me = self.me.upgrade().ok_or(Errno::ENOENT)?;
        let Some(dir) = self.handle else {
            return Err(Errno::ENOENT);
        };
        let handle = match hc(Call::HostfsWalk {
            handle: dir,
            name: name.as_ptr() as u64,
            name_len: name.len() as u64,
        }) {
            Ok(h) => Some(h as u64),
            Err(Errno::EXDEV) => None,
            Err(Errno::ENOENT) => {
                let mut m = missing.borrow_mut();
                if m.len() < MISSING_NAMES {
                    m.insert(name.to_vec());
                }
                return Err(Errno::ENOENT);
            }
            Err(e) => return Err(e),
        };
        let node = self.fs.one_node_per_file(Node::new(
            &self.fs,
            handle,
            Some(me),
            mount_point_ino(self.stat.get().ino, name),
        )?);
        let mut c = children.borrow_mut();
        c.retain(|_, w| w.strong_count() > 0);
        c.insert(name.to_vec(), Rc::downgrade(&node));
        drop(c);
        self.fs.keep(&node);
        Ok(node)
    }

    fn parent(&self) -> Option<InodeRef> {
        match &*self.parent.borrow() {
            Some(p) => Some(p.clone()),
            None => self.me.upgrade().map(|n| n as InodeRef),
        }
    }

    fn create(&self, name: &[u8], kind: Kind, perm: u32, _rdev: u64) -> Result<InodeRef, Errno> {
        let dir = self.dir_for_write()?;
        let mode = (kind.mode_bits() | (perm & 0o7777)) as u64;
        let handle = hc(Call::HostfsCreate {
            dir,
            name: name.as_ptr() as u64,
            name_len: name.len() as u64,
            mode,
        })? as u64;
        self.added(name, handle)
    }

    fn symlink(&self, name: &[u8], target: &[u8]) -> Result<InodeRef, Errno> {
        let dir = self.dir_for_write()?;
        let handle = hc(Call::HostfsSymlink {
            dir,
            name: name.as_ptr() as u64,
            name_len: name.len() as u64,
            target: target.as_ptr() as u64,
            target_len: target.len() as u64,
        })? as u64;
        self.added(name, handle)
    }

    fn link(&self, name: &[u8], inode: &InodeRef) -> Result<(), Errno> {
        let dir = self.dir_for_write()?;
        let node = self.same_fs(inode)?;
        let handle = node.handle.ok_or(Errno::EXDEV)?;
        hc(Call::HostfsLink {
            handle,
            dir,
            name: name.as_ptr() as u64,
            name_len: name.len() as u64,
        })?;
        self.forget_missing(name);
        node.refresh()?;
        self.refresh()
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let handle = self.dir_for_write()?;
        hc(Call::HostfsUnlink {
            dir: handle,
            name: name.as_ptr() as u64,
            name_len: name.len() as u64,
            flags: if dir { HOSTFS_REMOVEDIR } else { 0 },
        })?;
        if let Some(gone) = self.take_child(name) {
            // Still open somewhere: its link count drops.
            let _ = gone.refresh();
            self.fs.forget_if_unlinked(&gone);
        }
        self.refresh()
    }

    fn rename(&self, old: &[u8], new_dir: &InodeRef, new: &[u8]) -> Result<(), Errno> {
        let olddir = self.dir_for_write()?;
        let target = self.same_fs(new_dir)?;
        let newdir = target.dir_for_write()?;
        hc(Call::HostfsRename {
            olddir,
            oldname: old.as_ptr() as u64,
            oldname_len: old.len() as u64,
            newdir,
            newname: new.as_ptr() as u64,
            newname_len: new.len() as u64,
            flags: 0,
        })?;
        let moved = self.take_child(old);
        if let Some(replaced) = target.take_child(new) {
            let _ = replaced.refresh();
            self.fs.forget_if_unlinked(&replaced);
        }
        target.forget_missing(new);
        if let Some(node) = moved {
            *node.parent.borrow_mut() = target.me.upgrade();
            if let Body::Dir { children, .. } = &target.body {
                children
                    .borrow_mut()
                    .insert(new.to_vec(), Rc::downgrade(&node));
            }
            let _ = node.refresh();
        }
        self.refresh()?;
        if !core::ptr::eq(self, target) {
            target.refresh()?;
        }
        Ok(())
    }

    fn readdir(&self, index: u64) -> Result<Option<DirEntry>, Errno> {
        let Body::Dir { listing, .. } = &self.body else {
            return Err(Errno::ENOTDIR);
        };
        match index {
            0 => {
                // A new pass: read the directory again.
                let fresh = self.load_listing()?;
                *listing.borrow_mut() = fresh;
                Ok(Some(DirEntry {
                    ino: self.meta().ino,
                    kind: Kind::Directory,
                    name: b".".to_vec(),
                }))
            }
            1 => Ok(Some(DirEntry {
                ino: self
                    .parent
                    .borrow()
                    .as_ref()
                    .map_or(self.meta().ino, |p| p.meta().ino),
                kind: Kind::Directory,
                name: b"..".to_vec(),
            })),
            i => Ok(listing.borrow().get((i - 2) as usize).map(|e| DirEntry {
                ino: e.ino,
                kind: e.kind,
                name: e.name.clone(),
            })),
        }
    }

    /// Hands `out` the cached pages from `off` (reading the missing ones
    /// from the host first), each held with an extra reference while the
    /// copy runs, so reclaim cannot take one from under it.
    fn read_at(&self, off: u64, len: usize, out: Sink) -> Result<usize, Errno> {
        self.pages()?;
        let size = self.stat.get().size;
        if off >= size {
            return Ok(0);
        }
        let end = size.min(off.saturating_add(len as u64));
        let mut at = off;
        let mut held: Vec<u64> = Vec::new();
        let mut pieces: Vec<&[u8]> = Vec::new();
        let batch = MAX_PIECES.min(256);
        held.try_reserve(batch).map_err(|_| Errno::ENOMEM)?;
        pieces.try_reserve(batch).map_err(|_| Errno::ENOMEM)?;
        while at < end {
            held.clear();
            let mut next = at;
            let mut failed = None;
            while next < end && held.len() < batch {
                match self.fill(next / PAGE_SIZE) {
                    Ok(page) => {
                        // Held: refs(page) > 1, so reclaim leaves it.
                        if !self.fs.frames.borrow_mut().incref(page) {
                            failed = Some(Errno::ENOMEM);
                            break;
                        }
                        held.push(page);
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
                next = (next / PAGE_SIZE + 1) * PAGE_SIZE;
            }
            pieces.clear();
            let mut p = at;
            let mut want = 0u64;
            for &page in &held {
                let in_page = (p % PAGE_SIZE) as usize;
                let n = ((PAGE_SIZE as usize - in_page) as u64).min(end - p) as usize;
                // SAFETY: a cached page we hold a reference on (it cannot
                // be freed or reused until we drop it); `in_page + n <=
                // PAGE_SIZE`; identity-mapped RAM.
                pieces.push(unsafe {
                    core::slice::from_raw_parts((page as *const u8).add(in_page), n)
                });
                p += n as u64;
                want += n as u64;
            }
            let took = if pieces.is_empty() {
                Ok(0)
            } else {
                out(&pieces)
            };
            pieces.clear();
            {
                let mut frames = self.fs.frames.borrow_mut();
                for &page in &held {
                    frames.decref(page);
                }
            }
            let took = took? as u64;
            at += took;
            if took < want {
                break;
            }
            if let Some(e) = failed {
                if at == off {
                    return Err(e);
                }
                break;
            }
        }
        Ok((at - off) as usize)
    }

    /// Writes through to the host, then into the cached pages the range
    /// covers (one bounce buffer of at most [`WRITE_CHUNK`] bytes a round).
    fn write_at(&self, off: u64, len: usize, src: Source) -> Result<usize, Errno> {
        self.pages()?;
        let handle = self.handle_for_write()?;
        let mut done = 0usize;
        let mut buf: Vec<u8> = Vec::new();
        while done < len {
            let want = (len - done).min(WRITE_CHUNK);
            buf.clear();
            buf.try_reserve(want).map_err(|_| Errno::ENOMEM)?;
            buf.resize(want, 0);
            let got = {
                let mut pieces = [&mut buf[..]];
                src(&mut pieces)
            };
            let got = match got {
                Ok(n) => n.min(want),
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            if got == 0 {
                break;
            }
            let iov = [KernelIovec {
                base: buf.as_ptr() as u64,
                len: got as u64,
            }];
            let at = off + done as u64;
            let wrote = match hc(Call::HostfsWritev {
                handle,
                iov: iov.as_ptr() as u64,
                iovcnt: 1,
                off: at,
            }) {
                Ok(n) => (n as usize).min(got),
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            self.update_cache(at, &buf[..wrote]);
            done += wrote;
            if wrote < got || got < want {
                break;
            }
        }
        self.refresh()?;
        Ok(done)
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        let pages = self.pages()?;
        self.handle_for_write()?;
        let old = self.stat.get().size;
        self.setattr(HOSTFS_SET_SIZE, 0, size, 0, 0)?;
        if size < old {
            // Out of every mapping first (Linux's unmap_mapping_range):
            // touching them later is SIGBUS.
            self.mappers
                .zap(self as *const Node as *const (), size.div_ceil(PAGE_SIZE));
            let gone = pages.borrow_mut().split_off(&size.div_ceil(PAGE_SIZE));
            if !gone.is_empty() {
                let mut frames = self.fs.frames.borrow_mut();
                for page in gone.values() {
                    frames.decref(*page);
                }
                frames.cache_pages = frames.cache_pages.saturating_sub(gone.len() as u64);
                self.fs
                    .pages
                    .set(self.fs.pages.get().saturating_sub(gone.len() as u64));
            }
            if !size.is_multiple_of(PAGE_SIZE) {
                if let Some(&page) = pages.borrow().get(&(size / PAGE_SIZE)) {
                    let from = (size % PAGE_SIZE) as usize;
                    // SAFETY: this file's cached page; what lies past the
                    // end reads as zeros, as the host's file does.
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
        Ok(())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        let (Body::Symlink(target), Some(handle)) = (&self.body, self.handle) else {
            return Err(Errno::EINVAL);
        };
        if let Some(t) = &*target.borrow() {
            return Ok(t.clone());
        }
        let mut buf = alloc::vec![0u8; super::vfs::PATH_MAX];
        let n = hc(Call::HostfsReadlink {
            handle,
            buf: buf.as_mut_ptr() as u64,
            len: buf.len() as u64,
        })? as usize;
        buf.truncate(n.min(super::vfs::PATH_MAX));
        *target.borrow_mut() = Some(buf.clone());
        Ok(buf)
    }

    fn device(&self) -> Option<Rc<dyn Device>> {
        let Body::Special(dev) = &self.body else {
            return None;
        };
        match self.kind() {
            // A host fifo is a guest pipe (never opened on the host).
            Kind::Fifo => Some(
                dev.borrow_mut()
                    .get_or_insert_with(super::pipe::Pipe::new_fifo)
                    .clone(),
            ),
            // A device node names one of the guest's own devices.
            Kind::CharDevice | Kind::BlockDevice => super::devfs::by_rdev(self.stat.get().rdev),
            _ => None,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn pager(&self) -> Option<Rc<dyn Pager>> {
        match &self.body {
            Body::File { .. } => self.me.upgrade().map(|n| n as Rc<dyn Pager>),
            _ => None,
        }
    }
}

impl Node {
    fn dir_or_notdir(&self) -> Result<(), Errno> {
        match &self.body {
            Body::Dir { .. } => Ok(()),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// The handle, if this file system may change (`EROFS` otherwise).
    fn handle_for_write(&self) -> Result<u64, Errno> {
        if !self.fs.writable {
            return Err(Errno::EROFS);
        }
        // A host mount point inside the volume (shown empty): not ours.
        self.handle.ok_or(Errno::EROFS)
    }

    /// This directory's handle for a change of its entries.
    fn dir_for_write(&self) -> Result<u64, Errno> {
        self.dir_or_notdir()?;
        self.handle_for_write()
    }

    /// `inode` as a node of this same mount (`EXDEV` otherwise).
    fn same_fs<'a>(&self, inode: &'a InodeRef) -> Result<&'a Node, Errno> {
        match inode.as_any().downcast_ref::<Node>() {
            Some(n) if Rc::ptr_eq(&n.fs, &self.fs) => Ok(n),
            _ => Err(Errno::EXDEV),
        }
    }

    /// Reads the attributes from the host again (after a change).
    fn refresh(&self) -> Result<(), Errno> {
        let Some(handle) = self.handle else {
            return Ok(());
        };
        let mut stat = HostfsStat::default();
        hc(Call::HostfsGetattr {
            handle,
            buf: &mut stat as *mut HostfsStat as u64,
        })?;
        self.stat.set(stat);
        Ok(())
    }

    /// `hostfs_setattr` of this node's handle, then its attributes again.
    fn setattr(
        &self,
        valid: u64,
        mode: u64,
        size: u64,
        atime_ns: u64,
        mtime_ns: u64,
    ) -> Result<(), Errno> {
        let handle = self.handle_for_write()?;
        hc(Call::HostfsSetattr {
            handle,
            valid,
            mode,
            size,
            atime_ns,
            mtime_ns,
        })?;
        self.refresh()
    }

    /// A name was made in this directory, `handle` on it: its node.
    fn added(&self, name: &[u8], handle: u64) -> Result<InodeRef, Errno> {
        let me = self.me.upgrade().ok_or(Errno::ENOENT)?;
        self.forget_missing(name);
        let node = self
            .fs
            .one_node_per_file(Node::new(&self.fs, Some(handle), Some(me), 0)?);
        if let Body::Dir { children, .. } = &self.body {
            let mut c = children.borrow_mut();
            c.retain(|_, w| w.strong_count() > 0);
            c.insert(name.to_vec(), Rc::downgrade(&node));
        }
        self.fs.keep(&node);
        self.refresh()?;
        Ok(node)
    }

    fn forget_missing(&self, name: &[u8]) {
        if let Body::Dir { missing, .. } = &self.body {
            missing.borrow_mut().remove(name);
        }
    }

    /// Takes `name` out of the known children (it was removed or moved).
    fn take_child(&self, name: &[u8]) -> Option<Rc<Node>> {
        let Body::Dir { children, .. } = &self.body else {
            return None;
        };
        children.borrow_mut().remove(name).and_then(|w| w.upgrade())
    }

    /// Copies bytes just written at `off` into the cached pages they
    /// cover (pages not cached are read from the host when next used).
    fn update_cache(&self, off: u64, bytes: &[u8]) {
        let Body::File { pages } = &self.body else {
            return;
        };
        let pages = pages.borrow();
        if pages.is_empty() {
            return;
        }
        let mut at = 0usize;
        while at < bytes.len() {
            let pos = off + at as u64;
            let in_page = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(bytes.len() - at);
            if let Some(&page) = pages.get(&(pos / PAGE_SIZE)) {
                // SAFETY: a cached page of this file (identity-mapped RAM);
                // `in_page + n <= PAGE_SIZE`; the source is our buffer.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        bytes[at..].as_ptr(),
                        (page as *mut u8).add(in_page),
                        n,
                    )
                };
            }
            at += n;
        }
    }
}

impl Pager for Node {
    fn page(&self, index: u64) -> Result<u64, PageError> {
        if index >= self.stat.get().size.div_ceil(PAGE_SIZE) {
            return Err(PageError::Bus);
        }
        match self.fill(index) {
            Ok(page) => {
                self.fs.pin(page);
                Ok(page)
            }
            Err(Errno::ENOMEM) => Err(PageError::NoMem),
            Err(_) => Err(PageError::Bus),
        }
    }

    fn lookup(&self, index: u64) -> Option<u64> {
        if index >= self.stat.get().size.div_ceil(PAGE_SIZE) {
            return None;
        }
        let page = self.pages().ok()?.borrow().get(&index).copied()?;
        self.fs.pin(page);
        Some(page)
    }

    fn readahead(&self, from: u64, to: u64) {
        let Ok(pages) = self.pages() else {
            return;
        };
        let to = to.min(self.stat.get().size.div_ceil(PAGE_SIZE));
        let mut index = from;
        while index < to {
            let cached = pages.borrow().contains_key(&index);
            // Each miss reads the missing pages from it on in one call.
            if !cached && self.fill(index).is_err() {
                return;
            }
            index += 1;
        }
    }

    fn size(&self) -> u64 {
        self.stat.get().size
    }

    fn identity(&self) -> (u64, u64, bool) {
        let st = self.stat.get();
        (self.fs.dev, st.ino, st.nlink == 0)
    }

    fn shared_writable(&self) -> bool {
        // Stores through a shared mapping would stay in the cached page
        // (no writeback): refused on a writable volume. A read-only
        // volume's files are never open for writing.
        !self.fs.writable
    }

    fn mappers(&self) -> &Mappers {
        &self.mappers
    }
}
