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

/// What an edit of a tree ([`PageTable::update_range`],
/// [`PageTable::prune`]) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edited {
    /// The tree's root now: a copy of the old one if the edit took a
    /// translation away under a root KVM may have shadowed.
    pub root: u64,
    /// A translation was taken away in a table the allocator said may be
    /// edited in place ([`FrameAlloc::edit_in_place`]): if KVM may have
    /// shadowed it after all, the caller must drop KVM's translations.
    pub reduced_in_place: bool,
    /// Table pages freed ([`PageTable::prune`]).
    pub freed: usize,
}

/// What [`PageTable::census`] found in a tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Table pages below the root (the root not counted).
    pub tables: usize,
    /// Present 4 KiB leaves: (virtual address, entry).
    pub leaves: Vec<(u64, u64)>,
    /// Where each table below the root sits: (level, first virtual
    /// address it covers), in walk order.
    pub table_at: Vec<(u32, u64)>,
    /// Large (2 MiB or 1 GiB) leaves seen (not in `leaves`).
    pub large_leaves: usize,
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

    /// Writes the 4 KiB leaves `leaves` (`(va, entry)`, each entry with
    /// its frame's address and flags), creating tables as needed: one
    /// walk from the root and one read and write of the page table per
    /// 2 MiB region the leaves fall in, instead of a walk per page (a
    /// fork's copy writes its whole tree this way). Leaves already
    /// present are replaced, as [`PageTable::map_4k`] replaces them.
    pub fn map_4k_many(&mut self, root: u64, leaves: &[(u64, u64)]) -> Result<(), Error> {
        let mut rest = leaves;
        while let Some(&(first, _)) = rest.first() {
            let region = first & !(LARGE_PAGE_SIZE - 1);
            let run = rest
                .iter()
                .position(|&(va, _)| va & !(LARGE_PAGE_SIZE - 1) != region)
                .unwrap_or(rest.len());
            let (group, after) = rest.split_at(run);
            rest = after;
            for &(va, entry) in group {
                check_aligned("virtual address", va, PAGE_SIZE)?;
                check_aligned("physical address", entry & pte::ADDR, PAGE_SIZE)?;
            }
            let table = self.table_for(root, first, 1)?;
            let mut entries = self.read_table(table)?;
            for &(va, entry) in group {
                entries[index(va, 1) as usize] = entry;
            }
            self.write_table(table, &entries)?;
        }
        Ok(())
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
    ///
    /// A change that takes a translation away ([`reduces`]) is written in
    /// place only into a table the allocator allows
    /// ([`FrameAlloc::edit_in_place`]); any other table is first copied to
    /// a new page (the old one freed), and so is every table above it on
    /// the way to the root, since each parent's entry changes too. KVM
    /// shadows the tables a vCPU walked and trusts its write-protection to
    /// see their changes, which the host's writes bypass: a copy is a page
    /// KVM has never shadowed, so the next run under the new root walks
    /// the new entries, while the subtrees left alone keep their shadows.
    /// That is what spares a flush of all of KVM's translations.
    pub fn update_range(
        &mut self,
        root: u64,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(u64, u64) -> u64,
    ) -> Result<Edited, Error> {
        let mut edited = Edited {
            root,
            reduced_in_place: false,
            freed: 0,
        };
        if start < end {
            edited.root = self.update_in(root, PML4, 0, start, end, f, &mut edited)?;
        }
        Ok(edited)
    }

    /// Frees every table page below the root that is empty and covers part
    /// of `[start, end)`, clearing its parent entry (a parent KVM may have
    /// shadowed is copied first, as in [`PageTable::update_range`]).
    pub fn prune(&mut self, root: u64, start: u64, end: u64) -> Result<Edited, Error> {
        let mut edited = Edited {
            root,
            reduced_in_place: false,
            freed: 0,
        };
        if start < end {
            edited.root = self.prune_in(root, PML4, 0, start, end, &mut edited)?;
        }
        Ok(edited)
    }

    /// The table at `table`, ready to lose a translation: itself if the
    /// allocator lets it be edited in place, else a copy on a new page (the
    /// old page freed). If no page is left for the copy, itself, noted in
    /// `edited` (the caller then drops KVM's translations).
    fn editable(&mut self, table: u64, edited: &mut Edited) -> Result<u64, Error> {
        if self.alloc.edit_in_place(table) {
            edited.reduced_in_place = true;
            return Ok(table);
        }
        let Some(copy) = self.alloc.alloc_frame() else {
            edited.reduced_in_place = true;
            return Ok(table);
        };
        let mut bytes = [0u8; PAGE_SIZE as usize];
        self.mem
            .read_slice(&mut bytes, GuestAddress(table))
            .map_err(|source| Error::Memory { gpa: table, source })?;
        self.mem
            .write_slice(&bytes, GuestAddress(copy))
            .map_err(|source| Error::Memory { gpa: copy, source })?;
        self.alloc.free_frame(table);
        Ok(copy)
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
        let mut entries = [0u64; ENTRIES];
        // One copy straight into the entries (a fork's clone reads every
        // table of two trees; a byte buffer and a conversion pass were
        // two more copies of each). x86-64 only: entries are
        // little-endian, as the host's u64.
        // SAFETY: any bytes are a valid u64; the view covers exactly
        // `entries`, which nothing else borrows meanwhile.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(entries.as_mut_ptr().cast::<u8>(), PAGE_SIZE as usize)
        };
        self.mem
            .read_slice(bytes, GuestAddress(table))
            .map_err(|source| Error::Memory { gpa: table, source })?;
        Ok(entries)
    }

    /// Writes the 512 entries of the table at `table` in one copy.
    fn write_table(&self, table: u64, entries: &[u64; ENTRIES]) -> Result<(), Error> {
        let mut bytes = [0u8; PAGE_SIZE as usize];
        for (chunk, e) in bytes.chunks_exact_mut(8).zip(entries) {
            chunk.copy_from_slice(&e.to_le_bytes());
        }
        self.mem
            .write_slice(&bytes, GuestAddress(table))
            .map_err(|source| Error::Memory { gpa: table, source })
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

    /// [`PageTable::update_range`] below `table`; returns where the table
    /// is now (a copy if it had to lose a translation).
    #[allow(clippy::too_many_arguments)]
    fn update_in(
        &mut self,
        table: u64,
        level: u32,
        base: u64,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(u64, u64) -> u64,
        edited: &mut Edited,
    ) -> Result<u64, Error> {
        let entries = self.read_table(table)?;
        let mut at = table;
        for i in Self::overlap(level, base, start, end) {
            let e = entries[i as usize];
            if e & pte::P == 0 {
                continue;
            }
            let va = base + i * span(level);
            let new = if level == 1 {
                f(va, e)
            } else if e & pte::PS == 0 {
                let child = e & pte::ADDR;
                let moved = self.update_in(child, level - 1, va, start, end, f, edited)?;
                (e & !pte::ADDR) | moved
            } else {
                continue;
            };
            if new == e {
                continue;
            }
            if reduces(e, new) {
                at = self.editable(at, edited)?;
            }
            self.write(at, i, new)?;
        }
        Ok(at)
    }

    /// [`PageTable::prune`] below `table`; returns where the table is now.
    fn prune_in(
        &mut self,
        table: u64,
        level: u32,
        base: u64,
        start: u64,
        end: u64,
        edited: &mut Edited,
    ) -> Result<u64, Error> {
        let entries = self.read_table(table)?;
        let mut at = table;
        for i in Self::overlap(level, base, start, end) {
            let e = entries[i as usize];
            if level == 1 || e & pte::P == 0 || e & pte::PS != 0 {
                continue;
            }
            let child = e & pte::ADDR;
            let va = base + i * span(level);
            let moved = self.prune_in(child, level - 1, va, start, end, edited)?;
            let new = if self.read_table(moved)?.iter().all(|&c| c == 0) {
                self.alloc.free_frame(moved);
                edited.freed += 1;
                0
            } else if moved != child {
                (e & !pte::ADDR) | moved
            } else {
                continue;
            };
            at = self.editable(at, edited)?;
            self.write(at, i, new)?;
        }
        Ok(at)
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
        census.table_at.push((level, base));
        for (i, e) in self.read_table(table)?.into_iter().enumerate() {
            if e & pte::P == 0 {
                continue;
            }
            let va = base + i as u64 * span(level);
            if level == 1 {
                census.leaves.push((va, e));
            } else if e & pte::PS == 0 {
                self.census_in(e & pte::ADDR, level - 1, va, census)?;
            } else {
                census.large_leaves += 1;
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
        assert_eq!(pt.prune(root, 0x1234_5000, 0x1234_6000).unwrap().freed, 3);
        assert_eq!(pt.read(root, 0).unwrap(), 0);
        assert_eq!(pt.free_tree(root, None).unwrap(), 1);
        assert_eq!(pool.pages_in_use(), 0);
    }

    #[test]
    fn map_4k_many_builds_the_tree_map_4k_builds() {
        let (mem, mut pool) = setup();
        let flags = leaf_flags(PROT_READ | PROT_WRITE);
        // Three pages in one 2 MiB region, one in the next, one in another
        // PML4 slot; and one replaced leaf.
        let leaves = [
            (0x40_0000, 0x7000 | flags),
            (0x40_1000, 0x8000 | flags),
            (0x5f_f000, 0x9000 | flags),
            (0x60_0000, 0xa000 | flags),
            (1 << 39, 0xb000 | flags),
        ];
        let (one, many) = {
            let mut pt = PageTable::new(&mem, &mut pool);
            let one = pt.new_root().unwrap();
            for &(va, e) in &leaves {
                pt.map_4k(one, va, e & pte::ADDR, e & !pte::ADDR).unwrap();
            }
            let many = pt.new_root().unwrap();
            pt.map_4k(many, 0x40_1000, 0x1000, flags).unwrap();
            pt.map_4k_many(many, &leaves).unwrap();
            (one, many)
        };
        let pt = PageTable::new(&mem, &mut pool);
        let (a, b) = (
            pt.census(one, None).unwrap(),
            pt.census(many, None).unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(b.leaves, leaves.to_vec());
        // PDPT, PD, two PTs; PDPT, PD, PT.
        assert_eq!(b.tables, 7);
        let mut pt = PageTable::new(&mem, &mut pool);
        assert!(matches!(
            pt.map_4k_many(many, &[(0x40_0800, 0x7000 | flags)]),
            Err(Error::Misaligned { .. })
        ));
        pt.map_2m(many, 0x80_0000, 0x20_0000, flags).unwrap();
        assert!(matches!(
            pt.map_4k_many(many, &[(0x80_1000, 0x7000 | flags)]),
            Err(Error::LargePageInTheWay { .. })
        ));
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
        assert_eq!(pt.prune(root, 0, 1 << 47).unwrap().freed, tables);
    }

    /// The pool, with every table made before `seal` counted as shadowed
    /// by KVM (the vmspace ran since).
    struct Sealed<'a> {
        pool: &'a mut HostPool,
        shadowed: std::collections::HashSet<u64>,
        made: Vec<u64>,
        freed: Vec<u64>,
    }

    impl Sealed<'_> {
        fn seal(&mut self) {
            self.shadowed.extend(self.made.drain(..));
        }
    }

    impl FrameAlloc for Sealed<'_> {
        fn alloc_frame(&mut self) -> Option<u64> {
            let f = self.pool.alloc_frame()?;
            self.made.push(f);
            Some(f)
        }
        fn free_frame(&mut self, gpa: u64) {
            self.freed.push(gpa);
            self.pool.free_frame(gpa);
        }
        fn edit_in_place(&self, gpa: u64) -> bool {
            !self.shadowed.contains(&gpa)
        }
    }

    #[test]
    fn a_reduction_copies_the_shadowed_path_and_nothing_else() {
        let (mem, mut pool) = setup();
        let mut alloc = Sealed {
            pool: &mut pool,
            shadowed: Default::default(),
            made: vec![],
            freed: vec![],
        };
        let mut pt = PageTable::new(&mem, &mut alloc);
        let root = pt.new_root().unwrap();
        let rw = leaf_flags(PROT_READ | PROT_WRITE);
        // Two PTs under one PD, and another PDPT slot.
        for va in [0x1000u64, 0x2000, 0x20_1000, 0x40_0000_0000] {
            pt.map_4k(root, va, 0x5000, rw).unwrap();
        }
        alloc.seal();
        let mut pt = PageTable::new(&mem, &mut alloc);
        // Adding a leaf to a shadowed table is in place.
        pt.map_4k(root, 0x3000, 0x6000, rw).unwrap();
        // Making write-protected what was writable copies the PT of 0x1000,
        // its PD, PDPT and the root; the other PT and PDPT stay.
        let edited = pt
            .update_range(root, 0x1000, 0x2000, &mut |_, e| e & !pte::RW)
            .unwrap();
        assert_ne!(edited.root, root);
        assert!(!edited.reduced_in_place);
        assert_eq!(
            pt.lookup(edited.root, 0x1000).unwrap().unwrap() & pte::RW,
            0
        );
        assert_ne!(
            pt.lookup(edited.root, 0x2000).unwrap().unwrap() & pte::RW,
            0
        );
        assert_eq!(pt.lookup(edited.root, 0x3000).unwrap(), Some(0x6000 | rw));
        // The old tree is as KVM saw it.
        assert_ne!(pt.lookup(root, 0x1000).unwrap().unwrap() & pte::RW, 0);
        let shared = |pt: &PageTable<'_, Sealed<'_>>, r: u64, va: u64| {
            let pdpt = pt.read(r, index(va, 4)).unwrap() & pte::ADDR;
            let pd = pt.read(pdpt, index(va, 3)).unwrap() & pte::ADDR;
            (pdpt, pd, pt.read(pd, index(va, 2)).unwrap() & pte::ADDR)
        };
        let (old_pdpt, old_pd, _) = shared(&pt, root, 0x20_1000);
        let (new_pdpt, new_pd, new_pt2) = shared(&pt, edited.root, 0x20_1000);
        assert_ne!((old_pdpt, old_pd), (new_pdpt, new_pd));
        assert_eq!(
            new_pt2,
            shared(&pt, root, 0x20_1000).2,
            "the untouched PT is shared"
        );
        assert_eq!(
            pt.read(edited.root, 0).unwrap() & pte::ADDR,
            new_pdpt,
            "the root points at the copied PDPT"
        );
        assert_eq!(
            pt.read(edited.root, 1).unwrap(),
            pt.read(root, 1).unwrap(),
            "the other PDPT is shared"
        );
        // The four replaced tables were freed; the copies are new.
        assert_eq!(alloc.freed.len(), 4);
        assert!(alloc.freed.contains(&root));
        assert_eq!(alloc.made.len(), 4);
        // Clearing everything under 2 MiB in the new tree, then pruning,
        // frees the copied PT in place (it is unshadowed) and copies nothing.
        let mut pt = PageTable::new(&mem, &mut alloc);
        let r2 = pt
            .update_range(edited.root, 0, 0x20_0000, &mut |_, _| 0)
            .unwrap();
        assert_eq!(r2.root, edited.root);
        let pruned = pt.prune(edited.root, 0, 0x20_0000).unwrap();
        assert_eq!((pruned.root, pruned.freed), (edited.root, 1));
        assert_eq!(
            pt.lookup(edited.root, 0x20_1000).unwrap(),
            Some(0x5000 | rw)
        );
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
