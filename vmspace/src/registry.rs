//! The registry of vmspaces by id: creation, destruction, references held
//! by vCPU runs, cloning (fork), teardown when the guest kernel ends, and
//! the state they share (guest memory, the pool, the trap-area entry).
//!
//! The mapping calls live in `mmap.rs`, `mcontrol.rs`, `rw.rs` and
//! `fault.rs`, each an `impl VmspaceRegistry` block.

use crate::ram::KernelRam;
use std::collections::BTreeMap;

use vkernel_abi::layout::{PAGE_SIZE, POOL_BASE};
use vkernel_abi::Errno;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::error::Error;
use crate::map::Backing;
use crate::pagetable::{leaf_flags, pte, PageTable};
use crate::pool::HostPool;
use crate::space::{Host, Vmspace, TRAP_AREA_PML4_SLOT};

/// Pages fault-around maps by default, the faulting page included (one
/// aligned window of that many pages: 256 KiB by default, which
/// makes first touch of fresh memory cost a quarter of an exit per page).
pub const DEFAULT_FAULT_AROUND: usize = 64;
/// Pool pages charged to every vmspace, beyond its own pages and tables,
/// for what the host keeps for it outside the pool: its map, its registry
/// entry and its shadow bookkeeping (the FPU state is the guest kernel's,
/// not kept per vmspace since 2026-12).
/// They are reserved and never drawn (the pool pages stay untouched): the
/// charge makes the pool bound the number of vmspaces, so the host memory
/// they hold stays within `--pool` (262,144 vmspaces took the host 30 %
/// past it when only their PML4s were charged).
pub const HOST_STATE_PAGES: usize = 1;

/// Pages a destroyed vmspace may hold to be kept whole for the next
/// clone (see [`VmspaceRegistry::keep_as_spare`]): 16 MiB, the pool's
/// reserve of free pages.
pub const SPARE_MAX_PAGES: u64 = 4096;

/// Default limit on map entries over all vmspaces (bounds host memory the
/// guest can make the host spend; like Linux's `vm.max_map_count`, going
/// over it is `ENOMEM`).
pub const DEFAULT_MAX_MAP_ENTRIES: usize = 1 << 20;

/// Every vmspace of the guest kernel, and the pool they live in.
#[derive(Debug)]
pub struct VmspaceRegistry {
    pub(crate) host: Host,
    pub(crate) spaces: BTreeMap<u64, Vmspace>,
    trap_pml4e: u64,
    pub(crate) fault_around: usize,
    /// Map entries over all vmspaces.
    pub(crate) map_entries: usize,
    pub(crate) max_map_entries: usize,
}

impl VmspaceRegistry {
    /// A registry over `mem`, whose RAM `[0, kernel_mem_bytes)` belongs to
    /// the guest kernel and whose pool is `[POOL_BASE, POOL_BASE +
    /// pool_bytes)`. Both must be regions of `mem`.
    pub fn new(
        mem: GuestMemoryMmap,
        kernel_mem_bytes: u64,
        pool_bytes: u64,
    ) -> Result<Self, Error> {
        if kernel_mem_bytes > POOL_BASE || !kernel_mem_bytes.is_multiple_of(PAGE_SIZE) {
            return Err(Error::Layout(format!(
                "kernel memory of {kernel_mem_bytes:#x} bytes is not page aligned below the pool"
            )));
        }
        let ram_ok = usize::try_from(kernel_mem_bytes)
            .ok()
            .is_some_and(|len| len == 0 || mem.get_slice(GuestAddress(0), len).is_ok());
        if !ram_ok {
            return Err(Error::Layout(format!(
                "kernel memory [0, {kernel_mem_bytes:#x}) is not one region of guest memory"
            )));
        }
        let pool = HostPool::new(mem.clone(), POOL_BASE, pool_bytes)?;
        Ok(VmspaceRegistry {
            host: Host {
                ram: KernelRam::new(mem.clone(), kernel_mem_bytes),
                mem,
                pool,
                translation_reduced: false,
                shadow_table_pages: crate::commit::SHADOW_TABLE_PAGES,
                spare: None,
                spare_stats: Default::default(),
            },
            spaces: BTreeMap::new(),
            trap_pml4e: 0,
            fault_around: DEFAULT_FAULT_AROUND,
            map_entries: 0,
            max_map_entries: DEFAULT_MAX_MAP_ENTRIES,
        })
    }

    /// The guest memory the registry works on.
    pub fn mem(&self) -> &GuestMemoryMmap {
        &self.host.mem
    }

    /// The guest kernel's RAM, the checked accessor for addresses the
    /// guest names.
    pub fn ram(&self) -> &KernelRam {
        &self.host.ram
    }

    /// Size of the guest kernel's RAM.
    pub fn kernel_mem_bytes(&self) -> u64 {
        self.host.ram.len()
    }

    /// The pool, for the host's own allocations (unreserved pages only).
    pub fn pool(&self) -> &HostPool {
        &self.host.pool
    }

    /// The pool, for the host's own allocations (unreserved pages only).
    pub fn pool_mut(&mut self) -> &mut HostPool {
        &mut self.host.pool
    }

    /// A page-table builder on the pool for the host's own address spaces
    /// (the guest kernel's, the trap area).
    pub fn host_page_table(&mut self) -> PageTable<'_, HostPool> {
        PageTable::new(&self.host.mem, &mut self.host.pool)
    }

    /// Sets the PML4 entry (slot 255) that maps the trap area, copied into
    /// every vmspace's PML4 (those that exist now included) and never freed
    /// by their teardown.
    pub fn set_trap_area_pml4e(&mut self, entry: u64) {
        let old = std::mem::replace(&mut self.trap_pml4e, entry);
        // The spare's PML4 holds the old entry: not worth keeping.
        self.host.end_spare();
        for space in self.spaces.values() {
            if let Err(e) = space.set_trap_entry(&mut self.host, entry) {
                log::error!("cannot install the trap-area entry: {e}");
            }
        }
        if old != entry && !self.spaces.is_empty() {
            self.host.translation_reduced = true;
        }
    }

    /// The trap-area PML4 entry.
    pub fn trap_area_pml4e(&self) -> u64 {
        self.trap_pml4e
    }

    /// Sets how many pages a resolved fault maps at most (the faulting one
    /// included), inside its aligned window of that many pages; 1 or 0 maps only the
    /// faulting page.
    pub fn set_fault_around(&mut self, pages: usize) {
        self.fault_around = pages;
    }

    /// Sets the limit on map entries over all vmspaces.
    pub fn set_max_map_entries(&mut self, entries: usize) {
        self.max_map_entries = entries;
    }

    /// Sets the table pages a vmspace with `MAP_VPAGETABLE` entries is
    /// charged for its shadow (default
    /// [`crate::commit::SHADOW_TABLE_PAGES`]), so that tests can make the
    /// shadow overflow in a small pool. Only while no vmspace exists
    /// (their charges depend on it): `EBUSY` otherwise; fewer than 3 pages
    /// (the tables of one leaf) → `EINVAL`.
    pub fn set_shadow_table_pages(&mut self, pages: u64) -> Result<(), Errno> {
        if pages < 3 {
            return Err(Errno::EINVAL);
        }
        if !self.spaces.is_empty() {
            return Err(Errno::EBUSY);
        }
        self.host.shadow_table_pages = pages;
        Ok(())
    }

    /// Table pages held by vmspace `id` below its PML4.
    pub fn table_pages(&self, id: u64) -> Option<u64> {
        self.spaces.get(&id).map(|s| s.tables)
    }

    /// Pool pages in use (vmspaces and the host's own tables). The spare
    /// vmspace kept for the next clone is not counted: it is a cache,
    /// given back whenever a reservation needs its pages.
    pub fn pages_in_use(&self) -> usize {
        self.host.pool.pages_in_use() - self.host.spare_pages()
    }

    /// Pool pages held by the destroyed vmspace kept for the next clone
    /// (0 if there is none).
    pub fn spare_pages(&self) -> usize {
        self.host.spare_pages()
    }

    /// What became of the destroyed vmspaces kept as the spare.
    pub fn spare_stats(&self) -> crate::space::SpareStats {
        self.host.spare_stats
    }

    /// Ends the destroyed vmspace kept for the next clone, if any (its
    /// pages and reservation go back to the pool): for tests that check
    /// the pool's own counts.
    pub fn end_spare(&mut self) {
        self.host.end_spare();
    }

    /// Whether [`VmspaceRegistry::take_translation_reduced`] would return
    /// true now (for the statistics: which call asked for the flush).
    pub fn translation_reduced_pending(&self) -> bool {
        self.host.translation_reduced || self.host.pool.flush_needed()
    }

    /// Whether a present translation of some vmspace was removed or
    /// reduced, or a page-table page or frame was freed, since the last
    /// call (and clears the flag). KVM caches translations (shadow paging
    /// here) without seeing the host's writes to the tables: when this is
    /// true, drop them before running a vmspace.
    pub fn take_translation_reduced(&mut self) -> bool {
        let flush =
            std::mem::take(&mut self.host.translation_reduced) || self.host.pool.flush_needed();
        if flush {
            // The caller drops KVM's translations now: every page that
            // served as a table may serve as one again.
            self.host.pool.flushed();
        }
        flush
    }

    /// Ids of the existing vmspaces, in order.
    pub fn ids(&self) -> Vec<u64> {
        self.spaces.keys().copied().collect()
    }

    /// Whether vmspace `id` exists.
    pub fn contains(&self, id: u64) -> bool {
        self.spaces.contains_key(&id)
    }

    /// The PML4 of vmspace `id` (its CR3 value), without taking a reference.
    pub fn root(&self, id: u64) -> Option<u64> {
        self.spaces.get(&id).map(|s| s.root)
    }

    /// Pages charged to vmspace `id` (see the `commit` module).
    pub fn charged_pages(&self, id: u64) -> Option<u64> {
        self.spaces.get(&id).map(|s| s.charged)
    }

    /// Private frames vmspace `id` holds (each charged since it was
    /// touched; see the `commit` module).
    pub fn frame_pages(&self, id: u64) -> Option<u64> {
        self.spaces.get(&id).map(|s| s.frames.len() as u64)
    }

    /// `vmspace_create(id, type, data)`: id 0 → `EINVAL`; type or data not
    /// 0 → `EINVAL`; existing id → `EEXIST`; no pool page for the PML4 →
    /// `ENOMEM`. The new vmspace is empty.
    pub fn create(&mut self, id: u64, ty: u64, data: u64) -> Result<(), Errno> {
        if id == 0 || ty != 0 || data != 0 {
            return Err(Errno::EINVAL);
        }
        if self.spaces.contains_key(&id) {
            return Err(Errno::EEXIST);
        }
        let space = self.new_space()?;
        self.spaces.insert(id, space);
        Ok(())
    }

    /// `vmspace_destroy(id)`: unknown → `ENOENT`; running → `EBUSY`; frees
    /// its pages and page tables.
    pub fn destroy(&mut self, id: u64) -> Result<(), Errno> {
        let space = self.spaces.get(&id).ok_or(Errno::ENOENT)?;
        if space.refs > 0 {
            return Err(Errno::EBUSY);
        }
        if let Some(space) = self.spaces.remove(&id) {
            self.map_entries -= space.map.len();
            self.keep_as_spare(space);
        }
        Ok(())
    }

    /// Keeps destroyed vmspace `space` whole for the next clone (or, with
    /// `MAP_VPAGETABLE` entries, the next fork's child of a guest pmap,
    /// see [`crate::vpt`]), in place of the spare kept so far (which
    /// ends).
    ///
    /// Why: KVM has shadowed the tables of a vmspace that ran, so once
    /// freed they wait in the pool's quarantine until KVM's translations
    /// are dropped (see `pool`), and new tables take never-used pages
    /// meanwhile. A fork loop destroyed a child's 7 tables per cycle: a
    /// flush every ~150 forks (zapping every shadow page, the guest
    /// kernel's too) and 7 fresh pages (host page faults) per fork in
    /// between. A fork whose child looks like the last one's instead
    /// takes over the dead child's tables and frames as they are: nothing
    /// KVM cached changes (the same leaves map the same frames), so its
    /// shadow serves the new child too.
    fn keep_as_spare(&mut self, space: Vmspace) {
        self.host.end_spare();
        if 1 + space.tables + space.frames.len() as u64 > SPARE_MAX_PAGES {
            // A large process's pages go back now (and so, past the pool's
            // reserve of free pages, to the host), not at the next
            // destroy; its copy dominates its forks anyway.
            self.end(space);
        } else {
            self.host.spare = Some(space);
        }
    }

    /// Takes a reference for a run of vmspace `id` and returns its CR3
    /// value (`ENOENT` if unknown). Pair with [`VmspaceRegistry::release`].
    pub fn acquire_for_run(&mut self, id: u64) -> Result<u64, Errno> {
        let space = self.spaces.get_mut(&id).ok_or(Errno::ENOENT)?;
        space.refs = space.refs.checked_add(1).ok_or(Errno::EBUSY)?;
        space.ran();
        Ok(space.root)
    }

    /// Drops a reference taken by [`VmspaceRegistry::acquire_for_run`]
    /// (`ENOENT` if unknown, `EINVAL` if it holds none).
    pub fn release(&mut self, id: u64) -> Result<(), Errno> {
        let space = self.spaces.get_mut(&id).ok_or(Errno::ENOENT)?;
        space.refs = space.refs.checked_sub(1).ok_or(Errno::EINVAL)?;
        Ok(())
    }

    /// The vmspaces that hold references (were running when the guest
    /// kernel ended), for a warning when the process's exit is left to
    /// free them.
    pub fn running_ids(&self) -> Vec<u64> {
        self.spaces
            .iter()
            .filter(|(_, space)| space.refs > 0)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Destroys every vmspace, running or not (the seed's `vkernel_exit`),
    /// and returns the ids that still held references, for a warning. The
    /// pool is left with only the host's own pages.
    pub fn teardown_all(&mut self) -> Vec<u64> {
        let spaces = std::mem::take(&mut self.spaces);
        self.host.end_spare();
        let mut running = Vec::new();
        for (id, space) in spaces {
            if space.refs > 0 {
                running.push(id);
            }
            self.end(space);
        }
        self.map_entries = 0;
        running
    }

    /// Makes vmspace `dst` an eager copy of `src` (for fork): the same map,
    /// a copy of every private page, the same kernel pages for shared
    /// physical-memory mappings. `dst` 0 → `EINVAL`; `dst` exists →
    /// `EEXIST`; `src` unknown → `ENOENT`; no room for the copy (its whole
    /// charge) → `ENOMEM`, with nothing made.
    pub fn clone_vmspace(&mut self, src: u64, dst: u64) -> Result<(), Errno> {
        if dst == 0 {
            return Err(Errno::EINVAL);
        }
        if self.spaces.contains_key(&dst) {
            return Err(Errno::EEXIST);
        }
        let source = self.spaces.get(&src).ok_or(Errno::ENOENT)?;
        if self.map_entries + source.map.len() > self.max_map_entries {
            return Err(Errno::ENOMEM);
        }
        if let Some(spare) = self.host.spare.take() {
            match self.recycle(src, spare) {
                Ok(copy) => {
                    self.host.spare_stats.clones += 1;
                    self.map_entries += copy.map.len();
                    self.spaces.insert(dst, copy);
                    return Ok(());
                }
                Err(Some(e)) => return Err(e),
                // It did not fit (and ended): an ordinary copy.
                Err(None) => {}
            }
        }
        // The PML4 is charged by new_space; the rest here.
        let rest = self.spaces[&src].charged - 1;
        if !self.host.reserve(rest as usize) {
            return Err(Errno::ENOMEM);
        }
        let mut copy = match self.new_space() {
            Ok(copy) => copy,
            Err(e) => {
                self.host.pool.unreserve(rest as usize);
                return Err(e);
            }
        };
        // Same map, same charge: the source's shadow allowance included
        // (the copy has its MAP_VPAGETABLE entries), though the shadow
        // itself is not copied.
        copy.charged += rest;
        let source = &self.spaces[&src];
        copy.map = source.map.clone();
        copy.host_tables = source.host_tables;
        // What the source has mapped is mapped in the copy now too, so the
        // copy does not fault its working set back in one exit at a time:
        // its private pages (copies), and the kernel's pages of shared
        // physical-memory entries (the program's text and libraries under
        // the guest's file mappings). Shadow leaves are not copied.
        // One walk of the source's tables finds what it has mapped (in
        // address order), and the copy's tables are written a page table
        // at a time from the list of its leaves: a walk per page from the
        // root, and a map lookup per page, took a third of the clone.
        let census = match PageTable::new(&self.host.mem, &mut self.host.pool)
            .census(source.root, Some(TRAP_AREA_PML4_SLOT))
        {
            Ok(census) => census,
            Err(e) => {
                self.end(copy);
                return Err(e.into());
            }
        };
        // Every private frame is copied, mapped or not.
        let (frames, failed) = copy_frames(&mut self.host, &source.frames, |host, _| {
            host.pool.alloc_reserved_for_copy()
        });
        copy.frames = frames.into_iter().collect();
        if let Some(e) = failed {
            self.end(copy);
            return Err(e.into());
        }
        let mut leaves = Vec::with_capacity(census.leaves.len());
        for &(va, _) in &census.leaves {
            let Some(entry) = copy.map.lookup(va) else {
                continue;
            };
            let flags = leaf_flags(entry.prot);
            if flags == 0 {
                continue;
            }
            let frame = match entry.backing {
                Backing::Phys { shared: true, .. } => entry.phys_of(va),
                Backing::VpageTable { .. } => None,
                _ => copy.frames.get(&va).copied(),
            };
            if let Some(frame) = frame {
                leaves.push((va, (frame & pte::ADDR) | (flags & !pte::ADDR)));
            }
        }
        if let Err(e) = copy.map_leaves(&mut self.host, &leaves) {
            self.end(copy);
            return Err(e.into());
        }
        // Only host-managed leaves were copied, in regions the map charges
        // for: within the copy's allowance (it has no shadow).
        debug_assert!(copy.tables <= copy.table_allowance(&self.host));
        self.map_entries += copy.map.len();
        self.spaces.insert(dst, copy);
        Ok(())
    }

    /// Makes `spare` (a destroyed vmspace, see
    /// [`VmspaceRegistry::keep_as_spare`]) the copy of `src` that
    /// [`VmspaceRegistry::clone_vmspace`] would make, without changing a
    /// translation its tree holds: when every leaf it has is one the copy
    /// would have (the same frame of its own for a private page, the same
    /// kernel page for a shared one, the same flags) and every table it
    /// has sits where `src` has one (so it lies in a region the copy's
    /// map charges for). Its frames take `src`'s contents, frames `src`
    /// has no page for are freed (none is mapped), and the leaves it lacks
    /// are added, which needs no flush of KVM's translations (as a fault
    /// adds them). The charge becomes `src`'s.
    ///
    /// `Err(None)`: it does not fit, and was ended; `Err(Some(e))`: the
    /// clone fails with `e` (nothing made, the spare ended).
    fn recycle(&mut self, src: u64, mut spare: Vmspace) -> Result<Vmspace, Option<Errno>> {
        let source = &self.spaces[&src];
        let walked = {
            let pt = PageTable::new(&self.host.mem, &mut self.host.pool);
            pt.census(source.root, Some(TRAP_AREA_PML4_SLOT))
                .and_then(|s| Ok((s, pt.census(spare.root, Some(TRAP_AREA_PML4_SLOT))?)))
        };
        let (theirs, ours) = match walked {
            Ok(w) => w,
            Err(e) => {
                end_space(&mut self.host, spare);
                return Err(Some(e.into()));
            }
        };
        let mut positions = theirs.table_at.clone();
        positions.sort_unstable();
        // Both censuses list leaves in address order: one pass over each.
        let mut in_theirs = SortedCursor::new(&theirs.leaves);
        let fits = !source.map.has_vpagetable()
            && !spare.map.has_vpagetable()
            && ours.large_leaves == 0
            && ours
                .table_at
                .iter()
                .all(|t| positions.binary_search(t).is_ok())
            && ours.leaves.iter().all(|&(va, leaf)| {
                source.map.lookup(va).is_some_and(|entry| {
                    let flags = leaf_flags(entry.prot);
                    let frame = match entry.backing {
                        Backing::Phys { shared: true, .. } => entry.phys_of(va),
                        Backing::VpageTable { .. } => None,
                        _ if source.frames.contains_key(&va) => spare.frames.get(&va).copied(),
                        _ => None,
                    };
                    flags != 0
                        && frame.is_some_and(|f| leaf == (f & pte::ADDR) | (flags & !pte::ADDR))
                        && in_theirs.holds(va)
                })
            });
        if !fits {
            end_space(&mut self.host, spare);
            return Err(None);
        }
        // Promise the larger of the two charges while frames move, then
        // settle on the source's.
        let promise = spare.charged.max(source.charged);
        if !self.host.reserve((promise - spare.charged) as usize) {
            end_space(&mut self.host, spare);
            return Err(Some(Errno::ENOMEM));
        }
        spare.charged = promise;
        // A fork loop's child has the pages its parent has: each takes
        // its counterpart's contents, and the frame map stays as it is.
        let same_pages = spare.frames.len() == source.frames.len()
            && spare.frames.keys().eq(source.frames.keys());
        if same_pages {
            for (&from, &to) in source.frames.values().zip(spare.frames.values()) {
                if let Err(e) = self.host.copy_page(from, to) {
                    end_space(&mut self.host, spare);
                    return Err(Some(e.into()));
                }
            }
        }
        // Otherwise: frames the source has no page for are unmapped in
        // the spare (every leaf it has maps a page the source has), so
        // free at once; the others take their contents, and pages the
        // spare lacks are drawn.
        let mut old = if same_pages {
            BTreeMap::new()
        } else {
            std::mem::take(&mut spare.frames)
        };
        old.retain(|va, frame| {
            let keep = source.frames.contains_key(va);
            if !keep {
                self.host.pool.free_into_reserve(*frame);
            }
            keep
        });
        let (mut frames, failed) = if same_pages {
            (Vec::new(), None)
        } else {
            copy_frames(&mut self.host, &source.frames, |host, va| {
                old.remove(&va)
                    .or_else(|| host.pool.alloc_reserved_for_copy())
            })
        };
        if !same_pages {
            frames.extend(old);
            spare.frames = frames.into_iter().collect();
        }
        if let Some(e) = failed {
            end_space(&mut self.host, spare);
            return Err(Some(e.into()));
        }
        // The leaves the spare lacks.
        let mut leaves = Vec::new();
        let mut in_ours = SortedCursor::new(&ours.leaves);
        for &(va, _) in &theirs.leaves {
            if in_ours.holds(va) {
                continue;
            }
            let Some(entry) = source.map.lookup(va) else {
                continue;
            };
            let flags = leaf_flags(entry.prot);
            let frame = match entry.backing {
                Backing::Phys { shared: true, .. } => entry.phys_of(va),
                Backing::VpageTable { .. } => None,
                _ => spare.frames.get(&va).copied(),
            };
            if let (Some(frame), true) = (frame, flags != 0) {
                leaves.push((va, (frame & pte::ADDR) | (flags & !pte::ADDR)));
            }
        }
        if let Err(e) = spare.map_leaves(&mut self.host, &leaves) {
            end_space(&mut self.host, spare);
            return Err(Some(e.into()));
        }
        self.host
            .pool
            .unreserve((promise - source.charged) as usize);
        spare.charged = source.charged;
        spare.map = source.map.clone();
        spare.host_tables = source.host_tables;
        spare.sequential_next = 0;
        spare.sequential_window = 0;
        debug_assert!(spare.tables <= spare.table_allowance(&self.host));
        Ok(spare)
    }

    /// A new empty vmspace with its PML4 charged, and its host state
    /// ([`HOST_STATE_PAGES`]).
    fn new_space(&mut self) -> Result<Vmspace, Errno> {
        if !self.host.reserve(1 + HOST_STATE_PAGES) {
            return Err(Errno::ENOMEM);
        }
        Vmspace::new(&mut self.host, self.trap_pml4e).map_err(|e| {
            self.host.pool.unreserve(1 + HOST_STATE_PAGES);
            Errno::from(e)
        })
    }

    /// Ends `space`: its pages and tables, and its host-state charge.
    fn end(&mut self, space: Vmspace) {
        end_space(&mut self.host, space);
    }

    /// The vmspace `id` and the host state, or `ENOENT`.
    pub(crate) fn space(&mut self, id: u64) -> Result<(&mut Vmspace, &mut Host), Errno> {
        let space = self.spaces.get_mut(&id).ok_or(Errno::ENOENT)?;
        Ok((space, &mut self.host))
    }
}

/// Ends `space`: its pages and tables, and its host-state charge.
fn end_space(host: &mut Host, space: Vmspace) {
    space.teardown(host);
    host.pool.unreserve(HOST_STATE_PAGES);
}

/// Copies each private frame of `source` (`va -> frame`, in address
/// order) into the page `dest` gives for its address (a pool page drawn
/// from the reservation, or one the copy had already): the copy's
/// `(va, frame)` list in address order, and the error that stopped it
/// (the list then holds the pages taken so far, for the caller to free).
/// Pages are copied in full, so not zeroed first.
fn copy_frames(
    host: &mut Host,
    source: &BTreeMap<u64, u64>,
    mut dest: impl FnMut(&mut Host, u64) -> Option<u64>,
) -> (Vec<(u64, u64)>, Option<Error>) {
    let mut frames = Vec::with_capacity(source.len());
    for (&va, &from) in source {
        let Some(to) = dest(host, va) else {
            return (frames, Some(Error::OutOfFrames));
        };
        frames.push((va, to));
        if let Err(e) = host.copy_page(from, to) {
            return (frames, Some(e));
        }
    }
    (frames, None)
}

/// Membership in a list of leaves sorted by address, for addresses asked
/// in increasing order: one pass over the list in all, where a binary
/// search per address was a fork's largest cost in its census of ~200
/// leaves.
struct SortedCursor<'a> {
    leaves: &'a [(u64, u64)],
    at: usize,
}

impl<'a> SortedCursor<'a> {
    fn new(leaves: &'a [(u64, u64)]) -> Self {
        SortedCursor { leaves, at: 0 }
    }

    /// Whether the list holds `va`; `va` must not be below the last asked.
    fn holds(&mut self, va: u64) -> bool {
        while self.leaves.get(self.at).is_some_and(|&(at, _)| at < va) {
            self.at += 1;
        }
        self.leaves.get(self.at).is_some_and(|&(at, _)| at == va)
    }
}
