//! `vmspace_mmap`, `vmspace_munmap` and `vmspace_mprotect`: argument checks
//! in the seed's order (DragonFly's `kern_mmap` and `sys_munmap`), then the
//! map, charge and page-table changes.

use crate::ram::KernelRam;
use vkernel_abi::layout::{PAGE_SIZE, VM_MAX_USER_ADDRESS, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::{
    FD_NONE, MAP_ANON, MAP_FIXED, MAP_KNOWN, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MAP_STACK,
    MAP_VPAGETABLE, PHYSMEM_FD, PROT_MASK, PROT_READ, PROT_WRITE,
};
use vkernel_abi::Errno;

use crate::commit;
use crate::map::{Backing, MapEntry};
use crate::registry::VmspaceRegistry;

/// Lowest address a mapping without `MAP_FIXED` is placed at first (the
/// search then retries from `VM_MIN_USER_ADDRESS`).
pub const MMAP_BASE: u64 = 0x1000_0000;

const PAGE_MASK: u64 = PAGE_SIZE - 1;

/// `round_page`, or `None` on wrap.
fn round_page(x: u64) -> Option<u64> {
    Some(x.checked_add(PAGE_MASK)? & !PAGE_MASK)
}

/// A checked `vmspace_mmap` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmapRequest {
    /// `Some(start)` for `MAP_FIXED`, else the placement hint (page
    /// rounded, maybe out of range).
    pub fixed: Option<u64>,
    /// `MAP_POPULATE`: map every page now.
    pub populate: bool,
    /// Hint for a non-fixed mapping.
    pub hint: u64,
    /// Page-rounded size in bytes (> 0).
    pub size: u64,
    /// `off & PAGE_MASK`, added to the returned address.
    pub pageoff: u64,
    /// `PROT_*` bits.
    pub prot: u64,
    /// What backs it (for physical memory, `gpa` is the first page's).
    pub backing: Backing,
}

/// Checks a `vmspace_mmap` request, in this order: unknown prot or flag
/// bits → `EINVAL`; not exactly one of `MAP_SHARED`/`MAP_PRIVATE` →
/// `EINVAL`; `MAP_ANON` with an fd or offset → `EINVAL`; `len` 0 →
/// `EINVAL`; `MAP_VPAGETABLE` without `MAP_SHARED`, with `MAP_ANON` or
/// `MAP_POPULATE`, or without both `PROT_READ` and `PROT_WRITE` → `EINVAL` (DragonFly's
/// rule); size wraps when rounded →
/// `EINVAL`; `MAP_FIXED` address not page aligned (after taking off the
/// offset's page offset), wrapping, above `VM_MAX_USER_ADDRESS` or below
/// `VM_MIN_USER_ADDRESS` → `EINVAL`; an fd other than `FD_NONE` (with
/// `MAP_ANON`) or `PHYSMEM_FD` → `EBADF`; a physical-memory offset not page
/// aligned or (not for `MAP_VPAGETABLE`) a range past the kernel's RAM →
/// `EINVAL`.
pub fn check_mmap(
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    fd: u64,
    off: u64,
    ram: &KernelRam,
) -> Result<MmapRequest, Errno> {
    if prot & !PROT_MASK != 0 || flags & !MAP_KNOWN != 0 {
        return Err(Errno::EINVAL);
    }
    if (flags & MAP_SHARED != 0) == (flags & MAP_PRIVATE != 0) {
        return Err(Errno::EINVAL);
    }
    let anon = flags & MAP_ANON != 0;
    if anon && (fd != FD_NONE || off != 0) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let vpagetable = flags & MAP_VPAGETABLE != 0;
    if vpagetable
        && (flags & MAP_SHARED == 0
            || anon
            || flags & MAP_POPULATE != 0
            || prot & (PROT_READ | PROT_WRITE) != PROT_READ | PROT_WRITE)
    {
        return Err(Errno::EINVAL);
    }
    let pageoff = off & PAGE_MASK;
    let size = len
        .checked_add(pageoff)
        .and_then(round_page)
        .ok_or(Errno::EINVAL)?;
    let fixed = if flags & MAP_FIXED != 0 {
        let start = addr.checked_sub(pageoff).ok_or(Errno::EINVAL)?;
        if start & PAGE_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        let end = start.checked_add(size).ok_or(Errno::EINVAL)?;
        if end > VM_MAX_USER_ADDRESS || start < VM_MIN_USER_ADDRESS {
            return Err(Errno::EINVAL);
        }
        Some(start)
    } else {
        None
    };
    let shared = flags & MAP_SHARED != 0;
    let backing = if vpagetable {
        // The guest's entries hold guest-physical addresses (offsets into
        // the physical-memory fd from 0), so the offset only has to be a
        // page of it; the range may be larger than RAM, as DragonFly's
        // vkernel maps its whole user range over its memory image.
        if fd != PHYSMEM_FD {
            return Err(Errno::EBADF);
        }
        if pageoff != 0 {
            return Err(Errno::EINVAL);
        }
        Backing::VpageTable { root: None }
    } else if anon {
        Backing::Anonymous {
            shared,
            stack: flags & MAP_STACK != 0,
        }
    } else if fd == PHYSMEM_FD {
        if pageoff != 0 || !ram.contains(off, size) {
            return Err(Errno::EINVAL);
        }
        Backing::Phys { gpa: off, shared }
    } else {
        return Err(Errno::EBADF);
    };
    Ok(MmapRequest {
        fixed,
        populate: flags & MAP_POPULATE != 0,
        hint: round_page(addr).unwrap_or(u64::MAX),
        size,
        pageoff,
        prot,
        backing,
    })
}

/// A checked range for munmap/mprotect: page-aligned `[start, end)`.
type Range = (u64, u64);

/// The seed's `sys_munmap` checks: page-rounds `[addr, addr + len)`; wrap
/// → `EINVAL`; size 0 → `Ok(None)`; above `VM_MAX_USER_ADDRESS` or below
/// `VM_MIN_USER_ADDRESS` → `EINVAL`.
pub fn check_munmap(addr: u64, len: u64) -> Result<Option<Range>, Errno> {
    let pageoff = addr & PAGE_MASK;
    let start = addr - pageoff;
    let size = len
        .checked_add(pageoff)
        .and_then(round_page)
        .ok_or(Errno::EINVAL)?;
    let end = start.checked_add(size).ok_or(Errno::EINVAL)?;
    if size == 0 {
        return Ok(None);
    }
    if end > VM_MAX_USER_ADDRESS || start < VM_MIN_USER_ADDRESS {
        return Err(Errno::EINVAL);
    }
    Ok(Some((start, end)))
}

/// mprotect(2)'s checks: `addr` not page aligned → `EINVAL`; unknown prot
/// bits → `EINVAL`; length wraps when rounded, or the range wraps →
/// `EINVAL`; length 0 → `Ok(None)`; above `VM_MAX_USER_ADDRESS` or below
/// `VM_MIN_USER_ADDRESS` → `EINVAL`.
pub fn check_mprotect(addr: u64, len: u64, prot: u64) -> Result<Option<Range>, Errno> {
    if addr & PAGE_MASK != 0 || prot & !PROT_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    // With `addr` aligned, the rest is munmap's rounding and limits.
    check_munmap(addr, len)
}

impl VmspaceRegistry {
    /// `vmspace_mmap(id, addr, len, prot, flags, fd, off)`: unknown id →
    /// `ENOENT`, then [`check_mmap`]; no free range for a non-fixed mapping,
    /// the pool cannot hold the page tables the mapping may need (or for a
    /// first `MAP_VPAGETABLE` entry the shadow allowance) or too many map
    /// entries → `ENOMEM`. Its pages are charged as they are touched (see
    /// `commit`). `MAP_FIXED` replaces what was mapped there.
    /// Returns the address of the mapping (plus the offset's page offset).
    #[allow(clippy::too_many_arguments)]
    pub fn mmap(
        &mut self,
        id: u64,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: u64,
        off: u64,
    ) -> Result<u64, Errno> {
        let entries_room = self.max_map_entries.saturating_sub(self.map_entries);
        let (space, host) = self.space(id)?;
        let req = check_mmap(addr, len, prot, flags, fd, off, &host.ram)?;
        let start = match req.fixed {
            Some(start) => start,
            None => space
                .map
                .find_free(req.size, req.hint.max(MMAP_BASE), VM_MAX_USER_ADDRESS)
                .or_else(|| {
                    space
                        .map
                        .find_free(req.size, VM_MIN_USER_ADDRESS, VM_MAX_USER_ADDRESS)
                })
                .ok_or(Errno::ENOMEM)?,
        };
        let end = start + req.size;
        let entry = MapEntry {
            start,
            end,
            prot: req.prot,
            backing: req.backing,
        };

        // Replacing splits the end entries, drops one piece per entry in the
        // range, and adds the new entry.
        let added = space.map.splits_needed(start, end) + 1;
        let dropped = space.map.intersecting(start, end).count();
        if added.saturating_sub(dropped) > entries_room {
            return Err(Errno::ENOMEM);
        }
        let change = commit::replacement(
            &space.map,
            start,
            end,
            Some(&entry),
            host.shadow_table_pages,
        );
        let (charge, release) = (change.after.total(), change.before.total());
        if charge > release && !host.reserve((charge - release) as usize) {
            return Err(Errno::ENOMEM);
        }

        let before = space.map.len();
        if dropped > 0 {
            space.remove_range(host, start, end)?;
            // The tables the removed entries leave empty go now: the new
            // entry may be charged for none of them (a MAP_VPAGETABLE one
            // over a large anonymous one), and one it needs comes back on
            // its first fault.
            space.prune(host, start, end)?;
        }
        space.map.insert(entry);
        space.settle(host, &change)?;
        let after = space.map.len();
        // Every page was charged above, so populating cannot run out of
        // pages; the first touch of each then costs the process no exit.
        let populated = if req.populate {
            (start..end)
                .step_by(PAGE_SIZE as usize)
                .try_for_each(|va| space.map_page(host, &entry, va))
        } else {
            Ok(())
        };
        self.map_entries = self.map_entries + after - before;
        populated?;
        Ok(start + req.pageoff)
    }

    /// `vmspace_munmap(id, addr, len)`: unknown id → `ENOENT`, then
    /// [`check_munmap`]; a hole in the range → `EINVAL`. Unmapping the
    /// middle of an entry when the map-entry limit is reached → `ENOMEM`.
    /// Frees the range's pages and the page tables no mapping needs.
    pub fn munmap(&mut self, id: u64, addr: u64, len: u64) -> Result<(), Errno> {
        let entries_room = self.max_map_entries.saturating_sub(self.map_entries);
        let (space, host) = self.space(id)?;
        let Some((start, end)) = check_munmap(addr, len)? else {
            return Ok(());
        };
        if !space.map.is_covered(start, end) {
            return Err(Errno::EINVAL);
        }
        if space.map.splits_needed(start, end) == 2
            && space.map.lookup(start).map(|e| e.start) == space.map.lookup(end).map(|e| e.start)
            && entries_room == 0
        {
            return Err(Errno::ENOMEM);
        }
        // The range may hold MAP_VPAGETABLE entries, charged for no table:
        // the change is worked out before the map changes, from what the
        // removed entries and their neighbours touch.
        let change = commit::replacement(&space.map, start, end, None, host.shadow_table_pages);
        let before = space.map.len();
        space.remove_range(host, start, end)?;
        space.prune(host, start, end)?;
        space.settle(host, &change)?;
        let after = space.map.len();
        self.map_entries = self.map_entries + after - before;
        Ok(())
    }

    /// `vmspace_mprotect(id, addr, len, prot)` (extension, as mprotect(2)):
    /// unknown id → `ENOENT`, then [`check_mprotect`]; a hole in the range
    /// or too many map entries → `ENOMEM`. Changes the entries and the
    /// leaves already present (shadow leaves of `MAP_VPAGETABLE` entries
    /// are dropped instead).
    pub fn mprotect(&mut self, id: u64, addr: u64, len: u64, prot: u64) -> Result<(), Errno> {
        let entries_room = self.max_map_entries.saturating_sub(self.map_entries);
        let (space, host) = self.space(id)?;
        let Some((start, end)) = check_mprotect(addr, len, prot)? else {
            return Ok(());
        };
        if !space.map.is_covered(start, end) {
            return Err(Errno::ENOMEM);
        }
        if space.map.splits_needed(start, end) > entries_room {
            return Err(Errno::ENOMEM);
        }
        let before = space.map.len();
        space.map.protect_range(start, end, prot);
        space.reprotect(host, start, end, prot)?;
        // Shadow leaves combine the entry's protection with the guest's
        // entries: drop them, the next fault recombines.
        for (s, e) in space.map.vpagetable_pieces(start, end) {
            space.unmap_range(host, s, e)?;
        }
        let after = space.map.len();
        self.map_entries = self.map_entries + after - before;
        Ok(())
    }
}
