//! One vmspace: its map, its private frames, its page tables and its
//! charge; and the page-level work every call shares (bring a page in, map
//! it, unmap or discard a range, tear down).
//!
//! Private frames (anonymous pages and private copies of kernel pages) are
//! kept in `frames`, independent of the page tables: dropping translations
//! (`MADV_INVAL`, `PROT_NONE`) never loses data, and a later fault maps the
//! same frame again.
//!
//! Each vmspace counts the table pages it holds, so that the bound on the
//! shadow's tables (see [`crate::commit`]) costs nothing to check on a
//! fault; the audit compares the count with a walk of the tables.

use crate::ram::KernelRam;
use std::collections::{BTreeMap, HashSet};

use vkernel_abi::layout::{PAGE_SIZE, VM_MAX_USER_ADDRESS};
use vkernel_abi::mman::{STACK_FAULT_AROUND, STACK_GROWTH_GAP};
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::commit::{self, Replacement};
use crate::error::Error;
use crate::map::{Backing, MapEntry, VmMap};
use crate::pagetable::{leaf_flags, pte, Edited, PageTable};
use crate::pool::{FrameAlloc, HostPool};

/// PML4 slot of the trap area, shared by every address space.
pub const TRAP_AREA_PML4_SLOT: usize = 255;

/// A PML4 drawn from the reservation, holding the shared trap-area entry
/// `trap_pml4e` (nothing else: every other translation faults in).
fn new_root(host: &mut Host, trap_pml4e: u64) -> Result<u64, Error> {
    let mut charged = host.pool.charged();
    let root = PageTable::new(&host.mem, &mut charged).new_root()?;
    let written = PageTable::new(&host.mem, &mut host.pool).write(
        root,
        TRAP_AREA_PML4_SLOT as u64,
        trap_pml4e,
    );
    if let Err(e) = written {
        host.pool.free_into_reserve(root);
        return Err(e);
    }
    Ok(root)
}

/// What every vmspace operation works on besides the vmspace itself.
#[derive(Debug)]
pub(crate) struct Host {
    /// All guest memory (kernel RAM and the pool).
    pub mem: GuestMemoryMmap,
    /// The host pool.
    pub pool: HostPool,
    /// The guest kernel's RAM: every address the guest names is checked
    /// through it.
    pub ram: KernelRam,
    /// Set when a cached translation may have become stale (see
    /// [`crate::VmspaceRegistry::take_translation_reduced`]).
    pub translation_reduced: bool,
    /// The shadow allowance of every vmspace with a `MAP_VPAGETABLE`
    /// entry ([`commit::SHADOW_TABLE_PAGES`] unless a test set another).
    pub shadow_table_pages: u64,
    /// The last destroyed vmspace, kept whole (tables, frames, charge and
    /// host-state charge) for the next clone to take over (see
    /// [`crate::VmspaceRegistry::clone_vmspace`]), or with
    /// `MAP_VPAGETABLE` entries the next fresh vmspace's `MADV_SETMAP`
    /// (see `vpt::adopt_spare_shadow`). It is a cache: the
    /// pages it holds count as free ([`Host::spare_pages`]), and any
    /// reservation the pool cannot meet ends it first ([`Host::reserve`]).
    pub spare: Option<Vmspace>,
    /// How often a new vmspace took over the spare (a clone's copy, or a
    /// fork's child's shadow), and the shadow leaves rewritten then.
    pub spare_stats: SpareStats,
}

/// What became of destroyed vmspaces kept as the spare.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpareStats {
    /// Clones made over the spare's tables and frames.
    pub clones: u64,
    /// Fresh `MAP_VPAGETABLE` vmspaces that took over its shadow.
    pub shadows: u64,
    /// Shadow leaves those rewrote (another page, other rights, gone).
    pub leaves_rewritten: u64,
}

impl Host {
    /// Promises `pages` free pages (see [`HostPool::reserve`]), ending the
    /// spare vmspace first if the pool cannot promise them otherwise:
    /// what the spare holds is never the reason a reservation fails.
    pub fn reserve(&mut self, pages: usize) -> bool {
        if self.pool.reserve(pages) {
            return true;
        }
        if self.spare.is_none() {
            return false;
        }
        self.end_spare();
        self.pool.reserve(pages)
    }

    /// Ends the spare vmspace, if any: its pages go back to the pool (its
    /// tables to the quarantine, as any destroyed vmspace's).
    pub fn end_spare(&mut self) {
        if let Some(spare) = self.spare.take() {
            spare.teardown(self);
            self.pool.unreserve(crate::registry::HOST_STATE_PAGES);
        }
    }

    /// Pool pages the spare vmspace holds (its PML4, tables and frames).
    pub fn spare_pages(&self) -> usize {
        self.spare
            .as_ref()
            .map_or(0, |s| 1 + s.tables as usize + s.frames.len())
    }

    /// Copies the page at `from` to the page at `to`.
    pub fn copy_page(&self, from: u64, to: u64) -> Result<(), Error> {
        // One copy between the two pages' host mappings (through a buffer
        // it was two, and the larger part of a fork's clone).
        let slice = |gpa| {
            self.mem
                .get_slice(GuestAddress(gpa), PAGE_SIZE as usize)
                .map_err(|source| Error::Memory { gpa, source })
        };
        slice(from)?.copy_to_volatile_slice(slice(to)?);
        Ok(())
    }
}

/// The largest fault-around window a sequential first touch grows to
/// (pages): 2 MiB, one page table's worth.
pub const MAX_FAULT_AROUND: usize = 512;

/// One address space.
#[derive(Debug)]
pub(crate) struct Vmspace {
    /// Guest-physical address of the PML4 (the CR3 value).
    pub root: u64,
    /// Number of vCPU runs holding it (destroy refuses while > 0).
    pub refs: u32,
    /// The entries.
    pub map: VmMap,
    /// Page-aligned virtual address → private frame.
    pub frames: BTreeMap<u64, u64>,
    /// Pages charged to this vmspace (see [`crate::commit`]).
    pub charged: u64,
    /// The part of `charged` for the tables of host-managed entries
    /// ([`commit::table_pages_for`] of the map, kept up to date).
    pub host_tables: u64,
    /// Table pages held below the PML4 (the trap area's are the host's).
    pub tables: u64,
    /// Table pages (the PML4 included) made since the vmspace last ran:
    /// KVM has never walked them, so they may lose translations in place
    /// and be freed without the pool's quarantine. Any other table is
    /// copied before it loses one (see [`PageTable::update_range`]).
    pub unshadowed: HashSet<u64>,
    /// The page just past the last window a resolved fault mapped, and that
    /// window's size in pages: a fault there is the next of a sequential
    /// first touch, and gets a larger window (see [`Vmspace::fault_window`]).
    pub sequential_next: u64,
    pub sequential_window: usize,
    /// The lowest page the last fault in a stack (`MAP_STACK`) entry
    /// mapped, and that window's size in pages: a fault a little below it
    /// is the next of a stack growing down, and gets twice the window (see
    /// [`Vmspace::stack_window`]).
    pub stack_low: u64,
    pub stack_window: usize,
}

/// The reservation as one vmspace's tables draw from it: counts the table
/// pages the vmspace holds, and knows which ones KVM may have shadowed.
struct TableAlloc<'a> {
    pool: &'a mut HostPool,
    tables: &'a mut u64,
    /// The vmspace's unshadowed tables; `None` while it is on the vCPU
    /// (its tables are in use: every edit is in place, and a reduction
    /// needs a flush of KVM's translations).
    unshadowed: Option<&'a mut HashSet<u64>>,
}

impl FrameAlloc for TableAlloc<'_> {
    fn alloc_frame(&mut self) -> Option<u64> {
        let frame = self.pool.charged().alloc_frame()?;
        *self.tables += 1;
        if let Some(set) = self.unshadowed.as_deref_mut() {
            set.insert(frame);
        }
        Some(frame)
    }

    fn free_frame(&mut self, gpa: u64) {
        let unshadowed = self
            .unshadowed
            .as_deref_mut()
            .is_some_and(|set| set.remove(&gpa));
        if unshadowed {
            self.pool.free_unshadowed_into_reserve(gpa);
        } else {
            self.pool.free_into_reserve(gpa);
        }
        *self.tables -= 1;
    }

    fn edit_in_place(&self, gpa: u64) -> bool {
        self.unshadowed
            .as_deref()
            .is_none_or(|set| set.contains(&gpa))
    }
}

impl Vmspace {
    /// An empty vmspace whose PML4 holds `trap_pml4e` in the trap slot.
    /// The caller has reserved one page for the PML4.
    pub fn new(host: &mut Host, trap_pml4e: u64) -> Result<Vmspace, Error> {
        let root = new_root(host, trap_pml4e)?;
        Ok(Vmspace {
            root,
            refs: 0,
            map: VmMap::new(),
            frames: BTreeMap::new(),
            charged: 1,
            host_tables: 0,
            tables: 0,
            unshadowed: HashSet::from([root]),
            sequential_next: 0,
            sequential_window: 0,
            stack_low: 0,
            stack_window: 0,
        })
    }

    /// The fault-around window, in pages, for a fault at page `va`: `base`
    /// pages, or, for a fault on the page just past the previous fault's
    /// window (a sequential first touch: a loop writing fresh memory in
    /// order), twice that window, up to [`MAX_FAULT_AROUND`] (2 MiB).
    ///
    /// So a sparse toucher pays for `base` pages per touch as before, and
    /// a sequential one, after touching `base` pages in order, gets
    /// windows of 2, 4 and 8 times that: each fault maps at most as much
    /// memory ahead as it has already touched in order (never more than
    /// 2 MiB ahead, what one transparent huge page of Linux's would
    /// charge at once), and the exits per page fall by that factor.
    /// The fault-around window (pages) of a fault at `va` in a stack
    /// (`MAP_STACK`) entry: `STACK_FAULT_AROUND`, or for a fault at most
    /// [`STACK_GROWTH_GAP`] pages below the last stack window (a stack
    /// growing down, a deep recursion), twice that window, up to
    /// [`MAX_FAULT_AROUND`]: a program that uses little stack keeps a few
    /// pages, one that goes deep faults about as rarely as before.
    pub fn stack_window(&self, va: u64) -> usize {
        let base = STACK_FAULT_AROUND as usize;
        let below = self.stack_low.saturating_sub(STACK_GROWTH_GAP * PAGE_SIZE);
        if self.stack_window >= base && va < self.stack_low && va >= below {
            (self.stack_window * 2).min(MAX_FAULT_AROUND)
        } else {
            base
        }
    }

    pub fn fault_window(&self, va: u64, base: usize) -> usize {
        if base > 1 && va == self.sequential_next && self.sequential_window >= base {
            (self.sequential_window * 2).min(MAX_FAULT_AROUND.max(base))
        } else {
            base
        }
    }

    /// Writes the shared trap-area entry into this PML4.
    pub fn set_trap_entry(&self, host: &mut Host, entry: u64) -> Result<(), Error> {
        let pt = PageTable::new(&host.mem, &mut host.pool);
        pt.write(self.root, TRAP_AREA_PML4_SLOT as u64, entry)
    }

    /// The pool page (or kernel page) holding the page at `va` of `entry`,
    /// allocating and charging it (zeroed, or a copy of the kernel's page)
    /// if it has none yet: `OutOfFrames` when the pool has no page left.
    /// `va` must be a page of `entry`.
    pub fn materialize(
        &mut self,
        host: &mut Host,
        entry: &MapEntry,
        va: u64,
    ) -> Result<u64, Error> {
        debug_assert!(va.is_multiple_of(PAGE_SIZE) && entry.start <= va && va < entry.end);
        match entry.backing {
            Backing::Phys { shared: true, .. } => {
                return entry.phys_of(va).ok_or(Error::OutOfFrames)
            }
            Backing::VpageTable { .. } => return Err(Error::NotHostManaged { va }),
            _ => {}
        }
        if let Some(&frame) = self.frames.get(&va) {
            return Ok(frame);
        }
        // Charged now, not at mmap (see `commit`): a pool that cannot back
        // the page fails this touch.
        if !host.reserve(1) {
            return Err(Error::OutOfFrames);
        }
        let Some(frame) = host.pool.alloc_reserved() else {
            host.pool.unreserve(1);
            return Err(Error::OutOfFrames);
        };
        if let Some(source) = entry.phys_of(va) {
            if let Err(e) = host.copy_page(source, frame) {
                host.pool.free_into_reserve(frame);
                host.pool.unreserve(1);
                return Err(e);
            }
        }
        self.frames.insert(va, frame);
        self.charged += 1;
        Ok(frame)
    }

    /// Brings in the page at `va` of `entry` and maps it with the entry's
    /// protection (nothing to map for `PROT_NONE`).
    pub fn map_page(&mut self, host: &mut Host, entry: &MapEntry, va: u64) -> Result<(), Error> {
        let flags = leaf_flags(entry.prot);
        if flags == 0 {
            return Ok(());
        }
        let frame = self.materialize(host, entry, va)?;
        if self.map.has_vpagetable() {
            // The shadow may be holding table pages this entry's charge
            // pays for (see `make_room_for_leaf`).
            self.make_room_for_leaf(host, va)?;
        }
        self.map_leaf(host, va, frame, flags)
    }

    /// Maps the 4 KiB page at `va` to `pa` with leaf `flags`, creating the
    /// tables it needs from the reservation.
    pub fn map_leaf(&mut self, host: &mut Host, va: u64, pa: u64, flags: u64) -> Result<(), Error> {
        let root = self.root;
        let mut alloc = self.table_alloc(&mut host.pool);
        PageTable::new(&host.mem, &mut alloc).map_4k(root, va, pa, flags)
    }

    /// Writes the 4 KiB leaves `leaves` (`(va, entry)`, in address
    /// order), creating the tables they need from the reservation: a page
    /// table at a time (see [`PageTable::map_4k_many`]).
    pub fn map_leaves(&mut self, host: &mut Host, leaves: &[(u64, u64)]) -> Result<(), Error> {
        let root = self.root;
        let mut alloc = self.table_alloc(&mut host.pool);
        PageTable::new(&host.mem, &mut alloc).map_4k_many(root, leaves)
    }

    /// The allocator for this vmspace's tables.
    fn table_alloc<'a>(&'a mut self, pool: &'a mut HostPool) -> TableAlloc<'a> {
        TableAlloc {
            pool,
            tables: &mut self.tables,
            unshadowed: (self.refs == 0).then_some(&mut self.unshadowed),
        }
    }

    /// KVM is about to walk this vmspace's tables: none is unshadowed now.
    pub fn ran(&mut self) {
        self.unshadowed.clear();
    }

    /// Edits the tree with `edit` (under a new root if a table KVM may
    /// have shadowed had to be copied), with one pool page lent for the
    /// copies (each copy frees the table it replaces, so the tables held
    /// do not grow). A translation taken away in a table KVM may have
    /// shadowed (the vmspace is on the vCPU, or no page was left for a
    /// copy) asks for a flush of KVM's translations. Returns the table
    /// pages freed.
    fn edit_tables(
        &mut self,
        host: &mut Host,
        edit: impl FnOnce(&mut PageTable<'_, TableAlloc<'_>>, u64) -> Result<Edited, Error>,
    ) -> Result<usize, Error> {
        let lent = self.refs == 0 && host.reserve(1);
        let root = self.root;
        let edited = {
            let mut alloc = self.table_alloc(&mut host.pool);
            if !lent {
                // No page for a copy: edit in place, and flush.
                alloc.unshadowed = None;
            }
            edit(&mut PageTable::new(&host.mem, &mut alloc), root)
        };
        if lent {
            host.pool.unreserve(1);
        }
        let edited = edited?;
        self.root = edited.root;
        if edited.reduced_in_place && (self.refs > 0 || !lent) {
            host.translation_reduced = true;
        }
        Ok(edited.freed)
    }

    /// How many table pages mapping the page at `va` would create (0..=3).
    pub fn missing_tables(&self, host: &mut Host, va: u64) -> Result<u64, Error> {
        PageTable::new(&host.mem, &mut host.pool).missing_tables(self.root, va)
    }

    /// The present leaf mapping `va`, if any.
    pub fn lookup(&self, host: &mut Host, va: u64) -> Result<Option<u64>, Error> {
        PageTable::new(&host.mem, &mut host.pool).lookup(self.root, va)
    }

    /// Rewrites every present leaf in `[start, end)` with the flags for
    /// `prot` (clearing them for `PROT_NONE`).
    pub fn reprotect(
        &mut self,
        host: &mut Host,
        start: u64,
        end: u64,
        prot: u64,
    ) -> Result<(), Error> {
        let flags = leaf_flags(prot);
        self.edit_tables(host, |pt, root| {
            pt.update_range(root, start, end, &mut |_, old| {
                if flags == 0 {
                    0
                } else {
                    (old & pte::ADDR) | flags
                }
            })
        })?;
        Ok(())
    }

    /// Rewrites the present leaves named in `changes` ((virtual address,
    /// new leaf), in address order; 0 clears the leaf), as
    /// [`Vmspace::reprotect`] edits: a table KVM may have shadowed is
    /// copied before it loses a translation.
    pub(crate) fn rewrite_leaves(
        &mut self,
        host: &mut Host,
        changes: &[(u64, u64)],
    ) -> Result<(), Error> {
        let (Some(&(first, _)), Some(&(last, _))) = (changes.first(), changes.last()) else {
            return Ok(());
        };
        self.edit_tables(host, |pt, root| {
            pt.update_range(root, first, last + PAGE_SIZE, &mut |va, old| match changes
                .binary_search_by_key(&va, |&(at, _)| at)
            {
                Ok(i) => changes[i].1,
                Err(_) => old,
            })
        })?;
        Ok(())
    }

    /// Clears every present leaf in `[start, end)`; frames are kept.
    pub fn unmap_range(&mut self, host: &mut Host, start: u64, end: u64) -> Result<(), Error> {
        self.reprotect(host, start, end, 0)
    }

    /// Unmaps `[start, end)` and frees its private frames, and their
    /// charge: the pages read as zero (anonymous) or as the kernel's page
    /// (private copy) again.
    pub fn discard_range(&mut self, host: &mut Host, start: u64, end: u64) -> Result<(), Error> {
        self.unmap_range(host, start, end)?;
        // No leaf of this tree maps the frames now, and a tree KVM may
        // still have them cached under was replaced (see `unmap_range`): a
        // frame freed here may serve anyone at once. While the vmspace is
        // on the vCPU, the unmapping asked for a flush.
        let dropped: Vec<u64> = self.frames.range(start..end).map(|(&va, _)| va).collect();
        for va in dropped {
            if let Some(frame) = self.frames.remove(&va) {
                host.pool.free_into_reserve(frame);
                host.pool.unreserve(1);
                self.charged -= 1;
            }
        }
        Ok(())
    }

    /// Removes the entries in `[start, end)`, their translations and
    /// frames (and the frames' charge); the caller settles the tables'.
    /// Tables stay until [`Vmspace::prune`].
    pub fn remove_range(&mut self, host: &mut Host, start: u64, end: u64) -> Result<(), Error> {
        self.discard_range(host, start, end)?;
        self.map.remove_range(start, end);
        Ok(())
    }

    /// Frees the empty table pages covering `[start, end)`.
    pub fn prune(&mut self, host: &mut Host, start: u64, end: u64) -> Result<(), Error> {
        self.edit_tables(host, |pt, root| pt.prune(root, start, end))?;
        Ok(())
    }

    /// The table pages this vmspace may hold: those charged for its
    /// host-managed entries, plus the shadow allowance if it has
    /// `MAP_VPAGETABLE` entries.
    pub fn table_allowance(&self, host: &Host) -> u64 {
        self.host_tables + commit::shadow_charge(&self.map, host.shadow_table_pages)
    }

    /// Makes room for the table pages a leaf at `va` needs: if they would
    /// take the vmspace past its allowance, drops the whole shadow first
    /// ([`Vmspace::reclaim_shadow`]). After that the tables held are at most
    /// one per region host-managed entries touch, so there is room for a
    /// host-managed leaf's tables (in regions its entry touches, charged
    /// and not held yet) and for a shadow leaf's (the shadow allowance is
    /// at least 3).
    ///
    /// Every table page of a vmspace with `MAP_VPAGETABLE` entries goes
    /// through here, shadow or not: the shadow may use table pages charged
    /// to host-managed entries that have not needed them yet, and gives
    /// them back when they do.
    pub fn make_room_for_leaf(&mut self, host: &mut Host, va: u64) -> Result<(), Error> {
        let needed = self.missing_tables(host, va)?;
        if needed == 0 || self.tables + needed <= self.table_allowance(host) {
            return Ok(());
        }
        self.reclaim_shadow(host)?;
        debug_assert!(self.tables + self.missing_tables(host, va)? <= self.table_allowance(host));
        Ok(())
    }

    /// Takes the charge from `change.before` to `change.after` once the map
    /// has changed (the caller reserved any growth, and pruned the removed
    /// range), brings the tables held back within the allowance, then
    /// gives back any shrink. The shadow goes first: a table that only
    /// shadow leaves keep alive may have lost the charge of the entry that
    /// made it, and until it is freed the reservation owes that page.
    pub fn settle(&mut self, host: &mut Host, change: &Replacement) -> Result<(), Error> {
        let (before, after) = (change.before.total(), change.after.total());
        self.charged = self.charged - before + after;
        self.host_tables = self.host_tables - change.before.tables + change.after.tables;
        if self.tables > self.table_allowance(host) {
            self.reclaim_shadow(host)?;
        }
        debug_assert!(self.tables <= self.table_allowance(host));
        if before > after {
            host.pool.unreserve((before - after) as usize);
        }
        Ok(())
    }

    /// Drops every shadow leaf and frees the table pages left empty: what
    /// remains is under host-managed entries, within their charge. The
    /// shadow is a cache of the guest's tables, so nothing is lost; the
    /// caller's next run must drop KVM's translations (flagged here).
    ///
    /// Shadow leaves lie only outside host-managed entries, so the gaps
    /// between those are swept: the cost is the host-managed entries and the
    /// tables present, not the `MAP_VPAGETABLE` entries or their size.
    pub fn reclaim_shadow(&mut self, host: &mut Host) -> Result<(), Error> {
        let mut gaps = Vec::new();
        let mut at = 0;
        for (start, end) in self.map.host_managed() {
            if start > at {
                gaps.push((at, start));
            }
            at = end;
        }
        if at < VM_MAX_USER_ADDRESS {
            gaps.push((at, VM_MAX_USER_ADDRESS));
        }
        // Off the vCPU the edits copy the tables KVM may have shadowed;
        // on it (a fault), they ask for a flush.
        for (start, end) in gaps {
            self.unmap_range(host, start, end)?;
            self.prune(host, start, end)?;
        }
        Ok(())
    }

    /// Drops every translation of the vmspace without making KVM drop its
    /// cached ones: the vmspace moves to a fresh PML4, which KVM has never
    /// shadowed, and the old tables go back to the pool's quarantine, as on
    /// destroy (the old root is never loaded again). Frames are kept; every
    /// page faults back in. A whole-space `MADV_INVAL` (a guest pmap's fork
    /// write-protecting the parent) then costs no KVM flush. Falls back to
    /// unmapping and a flush if the pool cannot lend the new root's page.
    pub fn reroot(&mut self, host: &mut Host) -> Result<(), Error> {
        let trap_pml4e = {
            let pt = PageTable::new(&host.mem, &mut host.pool);
            pt.read(self.root, TRAP_AREA_PML4_SLOT as u64)?
        };
        // The new root exists before the old one is freed: one page beyond
        // the charge, lent for the moment.
        if self.refs > 0 || !host.reserve(1) {
            self.unmap_range(host, 0, VM_MAX_USER_ADDRESS)?;
            return Ok(());
        }
        let root = match new_root(host, trap_pml4e) {
            Ok(root) => root,
            Err(e) => {
                host.pool.unreserve(1);
                return Err(e);
            }
        };
        let old = std::mem::replace(&mut self.root, root);
        let mut charged = host.pool.charged();
        let freed =
            PageTable::new(&host.mem, &mut charged).free_tree(old, Some(TRAP_AREA_PML4_SLOT));
        // The old PML4 went back into the reservation: return the loan.
        host.pool.unreserve(1);
        freed?;
        self.tables = 0;
        self.unshadowed.clear();
        self.unshadowed.insert(root);
        Ok(())
    }

    /// Frees everything: frames, tables (not the shared trap-area slot),
    /// the PML4, and the charge.
    pub fn teardown(self, host: &mut Host) {
        for &frame in self.frames.values() {
            host.pool.free_into_reserve(frame);
        }
        let mut charged = host.pool.charged();
        if let Err(e) =
            PageTable::new(&host.mem, &mut charged).free_tree(self.root, Some(TRAP_AREA_PML4_SLOT))
        {
            // Cannot happen (tables are pool pages); the pages are lost.
            log::error!("vmspace teardown: {e}");
        }
        host.pool.unreserve(self.charged as usize);
        // No flush needed: this root is never loaded again, and its tables
        // are quarantined by the pool until the next flush (see `pool`).
    }
}
