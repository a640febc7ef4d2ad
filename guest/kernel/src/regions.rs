//! A process's regions: what exec, brk and mmap mapped, with their
//! protection (the kernel's own view of an address space, as a vm_map).
//! Both paths keep them, one set per address space: new mappings are
//! placed by them, so a mapping never lands on another, and the guest
//! pmap resolves faults against them.

use crate::proc::NPROC;
use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::Errno;

/// Most regions per process: glibc programs use a dozen, and neighbours
/// with one protection merge. (6 KiB per process, in the kernel's bss,
/// which must stay below the 4 MiB where programs are linked, or gdb
/// names their addresses after kernel symbols.)
pub const MAX_REGIONS: usize = 256;

/// Address spaces: every process, plus the new image of one exec.
const MAX_SPACES: usize = NPROC + 1;

struct Tracked {
    vmid: u64,
    regions: Regions,
}

static mut TABLE: [Tracked; MAX_SPACES] = [const {
    Tracked {
        vmid: 0,
        regions: Regions::EMPTY,
    }
}; MAX_SPACES];

fn table() -> &'static mut [Tracked; MAX_SPACES] {
    // SAFETY: the kernel is single-threaded and never re-enters itself; no
    // caller holds a reference from here across another call into it.
    unsafe { &mut *core::ptr::addr_of_mut!(TABLE) }
}

/// Starts an empty set of regions for address space `vmid`.
pub fn track(vmid: u64) -> Result<(), Errno> {
    let slot = table()
        .iter_mut()
        .find(|t| t.vmid == 0)
        .ok_or(Errno::ENOMEM)?;
    slot.vmid = vmid;
    slot.regions.clear();
    Ok(())
}

/// Forgets address space `vmid`'s regions.
pub fn untrack(vmid: u64) {
    if let Some(t) = table().iter_mut().find(|t| t.vmid == vmid && vmid != 0) {
        t.vmid = 0;
        t.regions.clear();
    }
}

/// The regions of address space `vmid` (`ENOENT` if untracked).
pub fn of(vmid: u64) -> Result<&'static mut Regions, Errno> {
    table()
        .iter_mut()
        .find(|t| t.vmid == vmid && vmid != 0)
        .map(|t| &mut t.regions)
        .ok_or(Errno::ENOENT)
}

/// A mapped range, page aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub prot: u64,
}

/// Sorted, non-overlapping regions; adjacent ones with the same
/// protection are merged.
#[derive(Clone, Copy)]
pub struct Regions {
    list: [Region; MAX_REGIONS],
    len: usize,
}

impl Regions {
    pub const EMPTY: Regions = Regions {
        list: [Region {
            start: 0,
            end: 0,
            prot: 0,
        }; MAX_REGIONS],
        len: 0,
    };

    /// The regions, in address order.
    pub fn as_slice(&self) -> &[Region] {
        &self.list[..self.len]
    }

    /// Forgets every region.
    pub fn clear(&mut self) {
        self.len = 0;
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
        self.list.copy_within(i..self.len, i + 1);
        self.len += 1;
        self.list[i].end = at;
        self.list[i + 1].start = at;
    }

    /// Merges neighbours that touch and share a protection.
    fn merge(&mut self) {
        let mut out = 0;
        for i in 0..self.len {
            let r = self.list[i];
            if out > 0 && self.list[out - 1].end == r.start && self.list[out - 1].prot == r.prot {
                self.list[out - 1].end = r.end;
            } else {
                self.list[out] = r;
                out += 1;
            }
        }
        self.len = out;
    }

    /// Removes `[start, end)` (holes allowed); `ENOMEM` (nothing changed)
    /// if splitting a region would pass the limit.
    pub fn remove(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        if self.len + self.splits(start, end) > MAX_REGIONS {
            return Err(Errno::ENOMEM);
        }
        self.split_at(start);
        self.split_at(end);
        let mut out = 0;
        for i in 0..self.len {
            let r = self.list[i];
            if r.end <= start || r.start >= end {
                self.list[out] = r;
                out += 1;
            }
        }
        self.len = out;
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
        if self.len == MAX_REGIONS {
            return Err(Errno::ENOMEM);
        }
        let at = self.as_slice().partition_point(|r| r.start < end);
        self.list.copy_within(at..self.len, at + 1);
        self.list[at] = Region { start, end, prot };
        self.len += 1;
        self.merge();
        Ok(())
    }

    /// Sets the protection of `[start, end)`, which must be covered
    /// (`ENOMEM` otherwise, or past the limit; nothing changed then).
    pub fn protect(&mut self, start: u64, end: u64, prot: u64) -> Result<(), Errno> {
        if !self.covers(start, end) || self.len + self.splits(start, end) > MAX_REGIONS {
            return Err(Errno::ENOMEM);
        }
        self.split_at(start);
        self.split_at(end);
        for r in self.list[..self.len].iter_mut() {
            if r.start >= start && r.end <= end {
                r.prot = prot;
            }
        }
        self.merge();
        Ok(())
    }
}
