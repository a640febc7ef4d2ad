//! x86-64 4-level page tables (4 KiB pages, optional 2 MiB leaves) built in
//! pool pages. The vCPU walks them as they are, with CR3 = the PML4's
//! guest-physical address, so every entry written here is a hardware entry.
//!
//! Intermediate entries are always `P|RW|US`: permissions live at the leaf.
//! The builder is shared by vmspaces (which draw table pages from their
//! reservation, see [`crate::pool::Charged`]) and by the host's own address
//! space for the guest kernel and the trap area (which uses
//! [`crate::HostPool`] directly).

use vkernel_abi::layout::PAGE_SIZE;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::error::Error;
use crate::pool::FrameAlloc;

/// Page-table entry bits (the ABI's, shared with the guest kernel's own
/// tables), and the host's intermediate-entry flags.
pub mod pte {
    pub use vkernel_abi::paging::pte::*;
    /// Every intermediate (non-leaf) entry.
    pub const TABLE: u64 = P | RW | US;
}

/// Entries per table.
pub const ENTRIES: usize = 512;
/// Bytes mapped by a 2 MiB leaf.
pub const LARGE_PAGE_SIZE: u64 = 1 << 21;

/// Level numbers: 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT.
const PML4: u32 = 4;

pub use vkernel_abi::paging::leaf_flags;

/// Whether replacing leaf `old` by `new` takes away a permission the
/// hardware may have cached: presence, write or execute.
pub fn reduces(old: u64, new: u64) -> bool {
    if old & pte::P == 0 {
        return false;
    }
    new & pte::P == 0
        || (old & pte::RW != 0 && new & pte::RW == 0)
        || (old & pte::US != 0 && new & pte::US == 0)
        || (old & pte::NX == 0 && new & pte::NX != 0)
        || (old & pte::ADDR != new & pte::ADDR)
}

/// Bytes covered by one entry of a table at `level`.
const fn span(level: u32) -> u64 {
    1 << (12 + 9 * (level - 1))
}

/// Index of `va` in a table at `level`.
const fn index(va: u64, level: u32) -> u64 {
    (va >> (12 + 9 * (level - 1))) & 0x1ff
}

/// What [`PageTable::census`] found in a tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Table pages below the root (the root not counted).
    pub tables: usize,
    /// Present 4 KiB leaves: (virtual address, entry).
    pub leaves: Vec<(u64, u64)>,
}

/// A page-table builder over guest memory, taking table pages from `alloc`.
pub struct PageTable<'a, A: FrameAlloc + ?Sized> {
    mem: &'a GuestMemoryMmap,
    alloc: &'a mut A,
}

impl<'a, A: FrameAlloc + ?Sized> PageTable<'a, A> {
    /// A builder writing into `mem`, with table pages from `alloc`.
    pub fn new(mem: &'a GuestMemoryMmap, alloc: &'a mut A) -> Self {
        PageTable { mem, alloc }
    }

    /// A new, empty PML4; its guest-physical address is the CR3 value.
    pub fn new_root(&mut self) -> Result<u64, Error> {
        self.alloc.alloc_frame().ok_or(Error::OutOfFrames)
    }

    /// Maps the 4 KiB page at `va` to `pa` with leaf `flags` (which should
    /// include [`pte::P`]), creating tables as needed and replacing any
    /// 4 KiB leaf already there.
    pub fn map_4k(&mut self, root: u64, va: u64, pa: u64, flags: u64) -> Result<(), Error> {
        check_aligned("virtual address", va, PAGE_SIZE)?;
        check_aligned("physical address", pa, PAGE_SIZE)?;
        let table = self.table_for(root, va, 1)?;
        self.write(table, index(va, 1), (pa & pte::ADDR) | (flags & !pte::ADDR))
    }

    /// Maps the 2 MiB page at `va` to `pa` with leaf `flags` (PS is added).
    /// The slot must not hold a page table already.
    pub fn map_2m(&mut self, root: u64, va: u64, pa: u64, flags: u64) -> Result<(), Error> {
        check_aligned("virtual address", va, LARGE_PAGE_SIZE)?;
        check_aligned("physical address", pa, LARGE_PAGE_SIZE)?;
        let table = self.table_for(root, va, 2)?;
        let old = self.read(table, index(va, 2))?;
        if old & pte::P != 0 && old & pte::PS == 0 {
            return Err(Error::LargePageInTheWay { va });
        }
        let entry = (pa & pte::ADDR) | (flags & !pte::ADDR) | pte::PS;
        self.write(table, index(va, 2), entry)
    }

    /// The present leaf entry (4 KiB, 2 MiB or 1 GiB) mapping `va`, if any.
    pub fn lookup(&self, root: u64, va: u64) -> Result<Option<u64>, Error> {
        Ok(self.leaf_slot(root, va)?.map(|(_, _, e)| e))
    }

    /// How many table pages [`PageTable::map_4k`] at `va` would create
    /// (0..=3): a walk that reads at most three entries. A large leaf on
    /// the way counts as nothing missing (the map refuses it anyway).
    pub fn missing_tables(&self, root: u64, va: u64) -> Result<u64, Error> {
        let mut table = root;
        for level in (2..=PML4).rev() {
            let e = self.read(table, index(va, level))?;
            if e & pte::P == 0 {
                return Ok(u64::from(level - 1));
            }
            if e & pte::PS != 0 {
                return Ok(0);
            }
            table = e & pte::ADDR;
        }
        Ok(0)
    }

    /// Clears the present 4 KiB leaf at `va`, returning it (`None` if
    /// nothing was mapped). Tables are kept (see [`PageTable::prune`]).
    pub fn unmap_4k(&mut self, root: u64, va: u64) -> Result<Option<u64>, Error> {
        self.protect(root, va, 0)
    }

    /// Replaces the flags of the present 4 KiB leaf at `va` (keeping its
    /// address), or clears it if `flags` lacks [`pte::P`]. Returns the old
    /// entry, `None` if nothing was mapped.
    pub fn protect(&mut self, root: u64, va: u64, flags: u64) -> Result<Option<u64>, Error> {
        let Some((table, level, old)) = self.leaf_slot(root, va)? else {
            return Ok(None);
        };
        if level != 1 {
            return Err(Error::LargePageInTheWay { va });
        }
        let new = if flags & pte::P == 0 {
            0
        } else {
            (old & pte::ADDR) | (flags & !pte::ADDR)
        };
        self.write(table, index(va, 1), new)?;
        Ok(Some(old))
    }

    /// Calls `f(va, entry)` for every present 4 KiB leaf in `[start, end)`,
    /// in address order, and stores what it returns (0 clears the leaf).
    /// Large leaves are skipped. Only present tables are visited, so the
    /// cost is bounded by what is mapped, not by the range.
    pub fn update_range(
        &mut self,
        root: u64,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(u64, u64) -> u64,
    ) -> Result<(), Error> {
        if start < end {
            self.update_in(root, PML4, 0, start, end, f)?;
        }
        Ok(())
    }

    /// Frees every table page below the root that is empty and covers part
    /// of `[start, end)`, clearing its parent entry. Returns how many were
    /// freed.
    pub fn prune(&mut self, root: u64, start: u64, end: u64) -> Result<usize, Error> {
        if start >= end {
            return Ok(0);
        }
        self.prune_in(root, PML4, 0, start, end)
    }

    /// Frees the whole tree: every table page and the root, but not the
    /// pages the leaves point to, and not the subtree under PML4 slot
    /// `skip_slot` (shared with other trees). Returns the pages freed.
    pub fn free_tree(&mut self, root: u64, skip_slot: Option<usize>) -> Result<usize, Error> {
        let entries = self.read_table(root)?;
        let mut freed = 0;
        for (slot, &e) in entries.iter().enumerate() {
            if Some(slot) != skip_slot && e & pte::P != 0 {
                freed += self.free_subtree(e & pte::ADDR, PML4 - 1)?;
            }
        }
        self.alloc.free_frame(root);
        Ok(freed + 1)
    }

    /// Counts the table pages below the root and lists the present 4 KiB
    /// leaves, skipping PML4 slot `skip_slot`.
    pub fn census(&self, root: u64, skip_slot: Option<usize>) -> Result<Census, Error> {
        let mut census = Census::default();
        let entries = self.read_table(root)?;
        for (slot, &e) in entries.iter().enumerate() {
            if Some(slot) != skip_slot && e & pte::P != 0 {
                let base = slot as u64 * span(PML4);
                self.census_in(e & pte::ADDR, PML4 - 1, base, &mut census)?;
            }
        }
        Ok(census)
    }

    /// Reads entry `idx` of the table at `table`.
    pub fn read(&self, table: u64, idx: u64) -> Result<u64, Error> {
        let gpa = table + idx * 8;
        self.mem
            .read_obj::<u64>(GuestAddress(gpa))
            .map_err(|source| Error::Memory { gpa, source })
    }

    /// Writes entry `idx` of the table at `table`.
    pub fn write(&self, table: u64, idx: u64, entry: u64) -> Result<(), Error> {
        let gpa = table + idx * 8;
        self.mem
            .write_obj(entry, GuestAddress(gpa))
            .map_err(|source| Error::Memory { gpa, source })
    }

    /// The 512 entries of the table at `table`, read in one copy.
    pub fn read_table(&self, table: u64) -> Result<[u64; ENTRIES], Error> {
        let mut bytes = [0u8; PAGE_SIZE as usize];
        self.mem
            .read_slice(&mut bytes, GuestAddress(table))
            .map_err(|source| Error::Memory { gpa: table, source })?;
        let mut entries = [0u64; ENTRIES];
        for (e, chunk) in entries.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *e = u64::from_le_bytes(word);
        }
        Ok(entries)
    }

    /// The table at `level` (1 = PT, 2 = PD) on the path to `va`, creating
    /// the missing ones above it.
    fn table_for(&mut self, root: u64, va: u64, level: u32) -> Result<u64, Error> {
        let mut table = root;
        for l in (level + 1..=PML4).rev() {
            let idx = index(va, l);
            let e = self.read(table, idx)?;
            table = if e & pte::P == 0 {
                let new = self.alloc.alloc_frame().ok_or(Error::OutOfFrames)?;
                self.write(table, idx, new | pte::TABLE)?;
                new
            } else if e & pte::PS != 0 {
                return Err(Error::LargePageInTheWay { va });
            } else {
                e & pte::ADDR
            };
        }
        Ok(table)
    }

    /// The table, level and entry of the present leaf mapping `va`.
    fn leaf_slot(&self, root: u64, va: u64) -> Result<Option<(u64, u32, u64)>, Error> {
        let mut table = root;
        for level in (1..=PML4).rev() {
            let e = self.read(table, index(va, level))?;
            if e & pte::P == 0 {
                return Ok(None);
            }
            if level == 1 || (level <= 3 && e & pte::PS != 0) {
                return Ok(Some((table, level, e)));
            }
            table = e & pte::ADDR;
        }
        Ok(None)
    }

    /// The indices of a table at `level` based at `base` that overlap
    /// `[start, end)` (which must overlap the table's span).
    fn overlap(level: u32, base: u64, start: u64, end: u64) -> std::ops::RangeInclusive<u64> {
        let first = if start > base {
            (start - base) / span(level)
        } else {
            0
        };
        let last = ((end - 1).saturating_sub(base) / span(level)).min(ENTRIES as u64 - 1);
        first..=last
    }

    fn update_in(
        &mut self,
        table: u64,
        level: u32,
        base: u64,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(u64, u64) -> u64,
    ) -> Result<(), Error> {
        let entries = self.read_table(table)?;
        for i in Self::overlap(level, base, start, end) {
            let e = entries[i as usize];
            if e & pte::P == 0 {
                continue;
            }
            let va = base + i * span(level);
            if level == 1 {
                let new = f(va, e);
                if new != e {
                    self.write(table, i, new)?;
                }
            } else if e & pte::PS == 0 {
                self.update_in(e & pte::ADDR, level - 1, va, start, end, f)?;
            }
        }
        Ok(())
    }

    fn prune_in(
        &mut self,
        table: u64,
        level: u32,
        base: u64,
        start: u64,
        end: u64,
    ) -> Result<usize, Error> {
        let mut freed = 0;
        let entries = self.read_table(table)?;
        for i in Self::overlap(level, base, start, end) {
            let e = entries[i as usize];
            if level == 1 || e & pte::P == 0 || e & pte::PS != 0 {
                continue;
            }
            let child = e & pte::ADDR;
            let va = base + i * span(level);
            freed += self.prune_in(child, level - 1, va, start, end)?;
            if self.read_table(child)?.iter().all(|&c| c == 0) {
                self.write(table, i, 0)?;
                self.alloc.free_frame(child);
                freed += 1;
            }
        }
        Ok(freed)
    }

    fn free_subtree(&mut self, table: u64, level: u32) -> Result<usize, Error> {
        let mut freed = 0;
        if level > 1 {
            for e in self.read_table(table)? {
                if e & pte::P != 0 && e & pte::PS == 0 {
                    freed += self.free_subtree(e & pte::ADDR, level - 1)?;
                }
            }
        }
        self.alloc.free_frame(table);
        Ok(freed + 1)
    }

    fn census_in(
        &self,
        table: u64,
        level: u32,
        base: u64,
        census: &mut Census,
    ) -> Result<(), Error> {
        census.tables += 1;
        for (i, e) in self.read_table(table)?.into_iter().enumerate() {
            if e & pte::P == 0 {
                continue;
            }
            let va = base + i as u64 * span(level);
            if level == 1 {
                census.leaves.push((va, e));
            } else if e & pte::PS == 0 {
                self.census_in(e & pte::ADDR, level - 1, va, census)?;
            }
        }
        Ok(())
    }
}

fn check_aligned(what: &'static str, addr: u64, align: u64) -> Result<(), Error> {
    if !addr.is_multiple_of(align) {
        return Err(Error::Misaligned { what, addr, align });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::HostPool;
    use vkernel_abi::layout::POOL_BASE;
    use vkernel_abi::mman::{PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE};

    fn setup() -> (GuestMemoryMmap, HostPool) {
        let mem = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0), 0x40_0000),
            (GuestAddress(POOL_BASE), 64 * 4096),
        ])
        .unwrap();
        let pool = HostPool::new(mem.clone(), POOL_BASE, 64 * 4096).unwrap();
        (mem, pool)
    }

    #[test]
    fn map_lookup_unmap_4k() {
        let (mem, mut pool) = setup();
        let mut pt = PageTable::new(&mem, &mut pool);
        let root = pt.new_root().unwrap();
        let flags = leaf_flags(PROT_READ | PROT_WRITE);
        assert_eq!(pt.missing_tables(root, 0x1234_5000).unwrap(), 3);
        pt.map_4k(root, 0x1234_5000, 0x7000, flags).unwrap();
        assert_eq!(pt.lookup(root, 0x1234_5000).unwrap(), Some(0x7000 | flags));
        assert_eq!(pt.missing_tables(root, 0x1234_6000).unwrap(), 0);
        assert_eq!(pt.missing_tables(root, 0x1264_5000).unwrap(), 1);
        assert_eq!(pt.missing_tables(root, 0x5234_5000).unwrap(), 2);
        assert_eq!(pt.missing_tables(root, 1 << 39).unwrap(), 3);
        assert_eq!(pt.lookup(root, 0x1234_6000).unwrap(), None);
        // PML4 + PDPT + PD + PT.
        assert_eq!(pool.pages_in_use(), 4);
        let mut pt = PageTable::new(&mem, &mut pool);
        let pdpt = pt.read(root, 0).unwrap();
        assert_eq!(pdpt & !pte::ADDR, pte::TABLE);
        assert_eq!(
            pt.unmap_4k(root, 0x1234_5000).unwrap(),
            Some(0x7000 | flags)
        );
        assert_eq!(pt.lookup(root, 0x1234_5000).unwrap(), None);
        assert_eq!(pt.unmap_4k(root, 0x1234_5000).unwrap(), None);
        assert_eq!(pt.prune(root, 0x1234_5000, 0x1234_6000).unwrap(), 3);
        assert_eq!(pt.read(root, 0).unwrap(), 0);
        assert_eq!(pt.free_tree(root, None).unwrap(), 1);
        assert_eq!(pool.pages_in_use(), 0);
    }

    #[test]
    fn map_2m_and_lookup_inside() {
        let (mem, mut pool) = setup();
        let mut pt = PageTable::new(&mem, &mut pool);
        let root = pt.new_root().unwrap();
        pt.map_2m(root, 0x20_0000, 0x20_0000, pte::P | pte::RW | pte::US)
            .unwrap();
        let e = pt.lookup(root, 0x23_4567).unwrap().unwrap();
        assert_eq!(e, 0x20_0000 | pte::P | pte::RW | pte::US | pte::PS);
        assert!(matches!(
            pt.map_4k(root, 0x20_1000, 0, pte::P),
            Err(Error::LargePageInTheWay { .. })
        ));
        assert!(matches!(
            pt.map_2m(root, 0x20_1000, 0, pte::P),
            Err(Error::Misaligned { .. })
        ));
        assert_eq!(pt.free_tree(root, None).unwrap(), 3);
    }

    #[test]
    fn protect_keeps_address_and_changes_bits() {
        let (mem, mut pool) = setup();
        let mut pt = PageTable::new(&mem, &mut pool);
        let root = pt.new_root().unwrap();
        pt.map_4k(root, 0x5000, 0x9000, leaf_flags(PROT_READ | PROT_WRITE))
            .unwrap();
        pt.protect(root, 0x5000, leaf_flags(PROT_READ)).unwrap();
        let e = pt.lookup(root, 0x5000).unwrap().unwrap();
        assert_eq!(e & pte::ADDR, 0x9000);
        assert_eq!(e & pte::RW, 0);
        assert_ne!(e & pte::NX, 0);
        pt.protect(root, 0x5000, leaf_flags(PROT_READ | PROT_EXEC))
            .unwrap();
        assert_eq!(pt.lookup(root, 0x5000).unwrap().unwrap() & pte::NX, 0);
    }

    #[test]
    fn update_range_visits_only_the_range() {
        let (mem, mut pool) = setup();
        let mut pt = PageTable::new(&mem, &mut pool);
        let root = pt.new_root().unwrap();
        let f = leaf_flags(PROT_READ);
        for va in [0x1000u64, 0x20_0000, 0x20_1000, 0x4000_0000] {
            pt.map_4k(root, va, 0x1000, f).unwrap();
        }
        let mut seen = vec![];
        pt.update_range(root, 0x2000, 0x4000_0000, &mut |va, e| {
            seen.push(va);
            e
        })
        .unwrap();
        assert_eq!(seen, vec![0x20_0000, 0x20_1000]);
        pt.update_range(root, 0, u64::MAX, &mut |_, _| 0).unwrap();
        assert!(pt.census(root, None).unwrap().leaves.is_empty());
        // Two PDPT slots' worth of tables are now empty: all pruned.
        let tables = pt.census(root, None).unwrap().tables;
        assert_eq!(pt.prune(root, 0, 1 << 47).unwrap(), tables);
    }

    #[test]
    fn free_tree_skips_the_shared_slot() {
        let (mem, mut pool) = setup();
        let mut pt = PageTable::new(&mem, &mut pool);
        let root = pt.new_root().unwrap();
        pt.map_4k(root, 0x7f80_0000_0000, 0x1000, pte::P).unwrap();
        pt.map_4k(root, 0x1000, 0x1000, pte::P).unwrap();
        assert_eq!(pt.free_tree(root, Some(255)).unwrap(), 4);
        assert_eq!(pool.pages_in_use(), 3);
    }

    #[test]
    fn leaf_flags_follow_prot() {
        assert_eq!(leaf_flags(PROT_NONE), 0);
        assert_eq!(leaf_flags(PROT_READ), pte::P | pte::US | pte::A | pte::NX);
        assert_eq!(
            leaf_flags(PROT_READ | PROT_WRITE | PROT_EXEC),
            pte::P | pte::US | pte::A | pte::RW | pte::D
        );
        assert!(reduces(leaf_flags(PROT_WRITE), leaf_flags(PROT_READ)));
        assert!(reduces(leaf_flags(PROT_EXEC), leaf_flags(PROT_READ)));
        assert!(reduces(leaf_flags(PROT_READ), 0));
        assert!(!reduces(leaf_flags(PROT_READ), leaf_flags(PROT_WRITE)));
        assert!(!reduces(0, leaf_flags(PROT_READ)));
    }
}
