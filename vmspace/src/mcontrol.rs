//! `vmspace_mcontrol`: the seed's checks, then madvise semantics on the
//! entries that intersect the page-rounded range.

use vkernel_abi::layout::{PAGE_SIZE, VM_MAX_USER_ADDRESS, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::{
    MADV_CONTROL_END, MADV_DONTNEED, MADV_FREE, MADV_INVAL, MADV_SETMAP, MADV_WILLNEED, PROT_NONE,
};
use vkernel_abi::Errno;

use crate::map::MapEntry;
use crate::registry::VmspaceRegistry;

impl VmspaceRegistry {
    /// `vmspace_mcontrol(id, addr, len, behav, value)`: unknown id →
    /// `ENOENT`; `behav > MADV_CONTROL_END` → `EINVAL`; `addr + len` wraps,
    /// is above `VM_MAX_USER_ADDRESS`, or `addr` below
    /// `VM_MIN_USER_ADDRESS` → `EINVAL`. Then, on the entries inside
    /// `[trunc_page(addr), round_page(addr + len))`:
    /// - `MADV_WILLNEED` brings in and maps every page (not `PROT_NONE` ones);
    /// - `MADV_DONTNEED`, `MADV_FREE` discard the pages: anonymous memory
    ///   reads as zero again, private copies as the kernel's page;
    /// - `MADV_INVAL` drops the translations only (data is kept);
    /// - `MADV_SETMAP` makes `value` the guest page-table root of the
    ///   range (see [`crate::vpt`]) and drops its shadow leaves: `EINVAL`
    ///   if the range is empty, has a hole or holds an entry that is not
    ///   `MAP_VPAGETABLE`, or `value` is not a page-aligned guest-physical
    ///   address whose page lies in the kernel's RAM; `ENOMEM` if
    ///   splitting an entry would pass the map-entry limit;
    /// - `MADV_INVAL` on a `MAP_VPAGETABLE` range drops the shadow leaves,
    ///   so the next access walks the guest's tables again;
    /// - `MADV_WILLNEED` leaves `MAP_VPAGETABLE` entries alone;
    /// - the others are accepted and do nothing.
    pub fn mcontrol(
        &mut self,
        id: u64,
        addr: u64,
        len: u64,
        behav: u64,
        value: u64,
    ) -> Result<(), Errno> {
        let entries_room = self.max_map_entries.saturating_sub(self.map_entries);
        let (space, host) = self.space(id)?;
        if behav > MADV_CONTROL_END {
            return Err(Errno::EINVAL);
        }
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > VM_MAX_USER_ADDRESS || addr < VM_MIN_USER_ADDRESS {
            return Err(Errno::EINVAL);
        }
        let start = addr & !(PAGE_SIZE - 1);
        // Cannot wrap: end <= VM_MAX_USER_ADDRESS.
        let end = (end + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
        match behav {
            MADV_WILLNEED => {
                let pieces: Vec<MapEntry> = space
                    .map
                    .intersecting(start, end)
                    .filter(|e| e.prot != PROT_NONE && !e.is_vpagetable())
                    .map(|e| e.clip(start, end))
                    .collect();
                for piece in pieces {
                    for va in (piece.start..piece.end).step_by(PAGE_SIZE as usize) {
                        if space.lookup(host, va)?.is_none() {
                            space.map_page(host, &piece, va)?;
                        }
                    }
                }
            }
            MADV_DONTNEED | MADV_FREE => space.discard_range(host, start, end)?,
            MADV_INVAL => {
                let whole = match (space.map.iter().next(), space.map.iter().next_back()) {
                    (Some(first), Some(last)) => start <= first.start && last.end <= end,
                    _ => false,
                };
                if whole {
                    space.reroot(host)?;
                } else {
                    space.unmap_range(host, start, end)?;
                    // Shadow tables left empty are freed (a guest pmap's
                    // munmap must not leave the host holding its tables);
                    // the unmap already asked for the flush this needs.
                    for (s, e) in space.map.vpagetable_pieces(start, end) {
                        space.prune(host, s, e)?;
                    }
                }
            }
            MADV_SETMAP => {
                let all_vpt = start < end
                    && space.map.is_covered(start, end)
                    && space
                        .map
                        .intersecting(start, end)
                        .all(|e| e.is_vpagetable());
                let root_ok =
                    value.is_multiple_of(PAGE_SIZE) && host.ram.contains(value, PAGE_SIZE);
                if !all_vpt || !root_ok {
                    return Err(Errno::EINVAL);
                }
                if space.map.splits_needed(start, end) > entries_room {
                    return Err(Errno::ENOMEM);
                }
                let before = space.map.len();
                space.map.set_root_range(start, end, value);
                // A fork's child (pmap=guest) may take over the last dead
                // child's shadow; otherwise the old shadow leaves go.
                if !crate::vpt::adopt_spare_shadow(space, host)? {
                    space.unmap_range(host, start, end)?;
                }
                let after = space.map.len();
                self.map_entries = self.map_entries + after - before;
            }
            _ => {}
        }
        Ok(())
    }
}
