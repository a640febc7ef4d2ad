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
    /// - `MADV_SETMAP` → `EINVAL` (no `MAP_VPAGETABLE` mapping exists yet);
    /// - the others are accepted and do nothing.
    pub fn mcontrol(
        &mut self,
        id: u64,
        addr: u64,
        len: u64,
        behav: u64,
        _value: u64,
    ) -> Result<(), Errno> {
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
                    .filter(|e| e.prot != PROT_NONE)
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
            MADV_INVAL => space.unmap_range(host, start, end)?,
            MADV_SETMAP => return Err(Errno::EINVAL),
            _ => {}
        }
        Ok(())
    }
}
