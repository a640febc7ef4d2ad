//! An address space's regions: what exec, brk and mmap mapped, with their
//! protection (the kernel's own view of an address space, as a vm_map).
//! Both pmaps keep them: new mappings are placed by them, so a mapping
//! never lands on another, and the guest pmap resolves faults against them.

use alloc::vec::Vec;

use crate::param::MAX_MAP_COUNT;
use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::Errno;

/// A mapped range, page aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub prot: u64,
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
    pub fn region_of(&self, va: u64) -> Option<Region> {
        let regions = self.as_slice();
        // Sorted and disjoint: the last region starting at or below `va`.
        let i = regions.partition_point(|r| r.start <= va).checked_sub(1)?;
        Some(regions[i]).filter(|r| va < r.end)
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
        let mut upper = self.list[i];
        upper.start = at;
        self.list[i].end = at;
        self.list.insert(i + 1, upper);
    }

    /// Merges neighbours that touch and share a protection.
    fn merge(&mut self) {
        self.list.dedup_by(|next, prev| {
            let touch = prev.end == next.start && prev.prot == next.prot;
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
        list.extend_from_slice(&self.list);
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

    /// Adds `[start, end)` with `prot`, replacing what was there; `ENOMEM`
    /// past the limit (the range may then be unmapped, as after a failed
    /// Linux `MAP_FIXED`).
    pub fn insert(&mut self, start: u64, end: u64, prot: u64) -> Result<(), Errno> {
        debug_assert!(
            start < end && start.is_multiple_of(PAGE_SIZE) && end.is_multiple_of(PAGE_SIZE)
        );
        self.remove(start, end)?;
        self.room(1)?;
        let at = self.as_slice().partition_point(|r| r.start < end);
        self.list.insert(at, Region { start, end, prot });
        self.merge();
        Ok(())
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
