//! An address space's regions: what exec, brk and mmap mapped, with their
//! protection (the kernel's own view of an address space, as a vm_map).
//! Both pmaps keep them: new mappings are placed by them, so a mapping
//! never lands on another, and the guest pmap resolves faults against them.
//!
//! A region is anonymous memory or a window on a file ([`FileMap`]): a
//! tmpfs file, or the unlinked shared-memory object behind
//! `MAP_SHARED|MAP_ANONYMOUS`. The file is seen through [`Pager`], which
//! the file system implements (this layer cannot import `fs`).

use alloc::rc::Rc;
use alloc::vec::Vec;

use crate::param::MAX_MAP_COUNT;
use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::Errno;

/// Why a file has no page to give a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageError {
    /// The page lies wholly past the end of the file, or the file system
    /// is full: SIGBUS, as Linux's shmem.
    Bus,
    /// No physical page is left.
    NoMem,
}

/// A mappable file, as the memory layer sees it: each page of it is a
/// physical page of the kernel's, which mappings point at directly.
pub trait Pager {
    /// The physical page holding file page `index`, allocated (zeroed) if
    /// the file has none there yet (tmpfs faults fill holes, as Linux's
    /// shmem does). `Bus` for a page wholly past the end of the file.
    fn page(&self, index: u64) -> Result<u64, PageError>;
    /// File page `index` if the file already has it (inside the file).
    fn lookup(&self, index: u64) -> Option<u64>;
    /// Brings the file's pages `[from, to)` into memory where it keeps
    /// them elsewhere (a host file's), so that [`Pager::lookup`] finds
    /// them: a fault maps its whole window, as Linux reads ahead around
    /// a fault. A hint; holes stay holes.
    fn readahead(&self, _from: u64, _to: u64) {}
    /// The file's size in bytes.
    fn size(&self) -> u64;
    /// Device, inode number, and whether it has no name any more, for
    /// `/proc/PID/maps`.
    fn identity(&self) -> (u64, u64, bool);
    /// The address spaces that map it (truncate takes pages out of them).
    fn mappers(&self) -> &super::space::Mappers;
    /// Whether a writable `MAP_SHARED` mapping reaches the file (its
    /// pages are the file's, or are written back); `false` refuses one.
    fn shared_writable(&self) -> bool {
        true
    }
}

/// The identity of a pager, for comparing mappings of one file.
pub fn pager_id(p: &Rc<dyn Pager>) -> *const () {
    Rc::as_ptr(p) as *const ()
}

/// A file mapping: page `pgoff` of `object` is at the region's start.
#[derive(Clone)]
pub struct FileMap {
    pub object: Rc<dyn Pager>,
    pub pgoff: u64,
    /// `MAP_SHARED`: writes go to the file; else private copy-on-write.
    pub shared: bool,
    /// Whether the mapping may ever be writable (Linux's `VM_MAYWRITE`:
    /// false for a shared mapping of a file not open for writing).
    pub may_write: bool,
    /// The path it was mapped by (`/proc/PID/maps`).
    pub name: Rc<[u8]>,
}

impl core::fmt::Debug for FileMap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "FileMap({}, pgoff {:#x}, shared {})",
            alloc::string::String::from_utf8_lossy(&self.name),
            self.pgoff,
            self.shared
        )
    }
}

/// What a region's pages come from.
#[derive(Clone, Debug)]
pub enum Backing {
    /// Private demand-zero memory; `stack`: mapped `MAP_STACK` (a
    /// thread's stack, touched near its top only), whose faults map a
    /// small window (`STACK_FAULT_AROUND` pages) instead of the usual one.
    Anon { stack: bool },
    /// A file's pages.
    File(FileMap),
}

/// A mapped range, page aligned.
#[derive(Clone, Debug)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub prot: u64,
    pub backing: Backing,
}

impl Region {
    /// The file mapping, if it is one.
    pub fn file(&self) -> Option<&FileMap> {
        match &self.backing {
            Backing::File(f) => Some(f),
            Backing::Anon { .. } => None,
        }
    }

    /// Whether it is a `MAP_STACK` mapping (see [`Backing::Anon`]).
    pub fn is_stack(&self) -> bool {
        matches!(self.backing, Backing::Anon { stack: true })
    }

    /// Whether `next` continues this region exactly (same protection and
    /// backing, and for a file the next pages of it).
    fn continued_by(&self, next: &Region) -> bool {
        if self.end != next.start || self.prot != next.prot {
            return false;
        }
        match (&self.backing, &next.backing) {
            (Backing::Anon { stack: a }, Backing::Anon { stack: b }) => a == b,
            (Backing::File(a), Backing::File(b)) => {
                pager_id(&a.object) == pager_id(&b.object)
                    && a.shared == b.shared
                    && a.may_write == b.may_write
                    && a.pgoff + (self.end - self.start) / PAGE_SIZE == b.pgoff
            }
            _ => false,
        }
    }
}

/// Sorted, non-overlapping regions; adjacent ones with the same
/// protection are merged. At most [`MAX_MAP_COUNT`], as Linux's
/// `vm.max_map_count`.
#[derive(Default)]
pub struct Regions {
    list: Vec<Region>,
}

impl Regions {
    /// The regions, in address order.
    pub fn as_slice(&self) -> &[Region] {
        &self.list
    }

    /// The region holding `va`.
    pub fn region_of(&self, va: u64) -> Option<&Region> {
        let regions = self.as_slice();
        // Sorted and disjoint: the last region starting at or below `va`.
        let i = regions.partition_point(|r| r.start <= va).checked_sub(1)?;
        Some(&regions[i]).filter(|r| va < r.end)
    }

    /// Whether no region overlaps `[start, end)`.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        !self
            .as_slice()
            .iter()
            .any(|r| r.start < end && start < r.end)
    }

    /// The highest `len`-byte free range inside `[floor, top)`, as Linux
    /// places mappings top-down.
    pub fn find_free_below(&self, top: u64, floor: u64, len: u64) -> Option<u64> {
        // `hi` is the top of the gap below the regions seen so far.
        let mut hi = top;
        for r in self.as_slice().iter().rev() {
            if r.start >= hi {
                continue;
            }
            let lo = r.end.max(floor);
            if hi >= lo && hi - lo >= len {
                return Some(hi - len);
            }
            hi = r.start;
            if hi < floor.saturating_add(len) {
                return None;
            }
        }
        (hi >= floor.saturating_add(len)).then(|| hi - len)
    }

    /// Whether `[start, end)` is covered with no hole.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for r in self.as_slice() {
            if r.start <= at && r.end > at {
                at = r.end;
            }
        }
        at >= end
    }

    /// How many more regions splitting at `start` and `end` needs.
    fn splits(&self, start: u64, end: u64) -> usize {
        [start, end]
            .iter()
            .filter(|&&a| self.as_slice().iter().any(|r| r.start < a && a < r.end))
            .count()
    }

    /// Splits the region containing `at` strictly inside it (room checked
    /// by the caller).
    fn split_at(&mut self, at: u64) {
        let Some(i) = self
            .as_slice()
            .iter()
            .position(|r| r.start < at && at < r.end)
        else {
            return;
        };
        let mut upper = self.list[i].clone();
        if let Backing::File(f) = &mut upper.backing {
            f.pgoff += (at - upper.start) / PAGE_SIZE;
        }
        upper.start = at;
        self.list[i].end = at;
        self.list.insert(i + 1, upper);
    }

    /// Merges neighbours that continue each other.
    fn merge(&mut self) {
        self.list.dedup_by(|next, prev| {
            let touch = prev.continued_by(next);
            if touch {
                prev.end = next.end;
            }
            touch
        });
    }

    /// Makes room for `extra` more regions: `ENOMEM` past
    /// `MAX_MAP_COUNT`, or when the kernel heap cannot hold them (a
    /// process's map must never panic the kernel).
    fn room(&mut self, extra: usize) -> Result<(), Errno> {
        if self.list.len() + extra > MAX_MAP_COUNT {
            return Err(Errno::ENOMEM);
        }
        self.list.try_reserve(extra).map_err(|_| Errno::ENOMEM)
    }

    /// A copy, or `ENOMEM` when the kernel heap cannot hold one.
    pub fn try_clone(&self) -> Result<Regions, Errno> {
        let mut list = Vec::new();
        list.try_reserve_exact(self.list.len())
            .map_err(|_| Errno::ENOMEM)?;
        list.extend(self.list.iter().cloned());
        Ok(Regions { list })
    }

    /// Removes `[start, end)` (holes allowed); `ENOMEM` (nothing changed)
    /// if splitting a region would pass the limit.
    pub fn remove(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        self.room(self.splits(start, end))?;
        self.split_at(start);
        self.split_at(end);
        self.list.retain(|r| r.end <= start || r.start >= end);
        Ok(())
    }

    /// Adds `[start, end)` with `prot` over `backing`, replacing what was
    /// there; `ENOMEM` past the limit (the range may then be unmapped, as
    /// after a failed Linux `MAP_FIXED`).
    pub fn insert(
        &mut self,
        start: u64,
        end: u64,
        prot: u64,
        backing: Backing,
    ) -> Result<(), Errno> {
        debug_assert!(
            start < end && start.is_multiple_of(PAGE_SIZE) && end.is_multiple_of(PAGE_SIZE)
        );
        self.remove(start, end)?;
        self.room(1)?;
        let at = self.as_slice().partition_point(|r| r.start < end);
        self.list.insert(
            at,
            Region {
                start,
                end,
                prot,
                backing,
            },
        );
        self.merge();
        Ok(())
    }

    /// The pieces of the regions inside `[start, end)`, clipped to it.
    pub fn pieces(&self, start: u64, end: u64) -> impl Iterator<Item = Region> + '_ {
        self.as_slice()
            .iter()
            .filter(move |r| r.start < end && start < r.end)
            .map(move |r| {
                let mut p = r.clone();
                if let Backing::File(f) = &mut p.backing {
                    f.pgoff += (start.max(r.start) - r.start) / PAGE_SIZE;
                }
                p.start = r.start.max(start);
                p.end = r.end.min(end);
                p
            })
    }

    /// Sets the protection of `[start, end)`, which must be covered
    /// (`ENOMEM` otherwise, or past the limit; nothing changed then).
    pub fn protect(&mut self, start: u64, end: u64, prot: u64) -> Result<(), Errno> {
        if !self.covers(start, end) {
            return Err(Errno::ENOMEM);
        }
        self.room(self.splits(start, end))?;
        self.split_at(start);
        self.split_at(end);
        for r in self.list.iter_mut() {
            if r.start >= start && r.end <= end {
                r.prot = prot;
            }
        }
        self.merge();
        Ok(())
    }
}
