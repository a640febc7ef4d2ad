//! Guest-managed page tables (`MAP_VPAGETABLE`, `MADV_SETMAP`,
//! `MADV_INVAL`), as DragonFly's vkernel runs its processes: the guest
//! kernel keeps a process's 4-level page tables in its own RAM and names
//! the root with `mcontrol(MADV_SETMAP, root)`; it issues `MADV_INVAL`
//! after it changes or removes a valid entry.
//!
//! # Why a shadow, not the guest's tables on the hardware
//!
//! Our entry format is the hardware's, so CR3 could point at the guest's
//! root. It must not, here:
//! - the guest's entries may name any guest-physical address, the host
//!   pool included: the vmspace tables the host relies on, other
//!   vmspaces' private pages, and the trap area (GDT, IDT, TSSs, stubs);
//! - the guest owns every PML4 slot of its root, slot 255 too, so it
//!   could supply its own IDT/GDT/TSS and ring-0 stubs at the trap area's
//!   address and run code in ring 0 (and from there, anything).
//!
//! Checking the guest's tables before each run is no cure (the process,
//! or the kernel, can change them while it runs) and copying slot 255
//! into the guest's root would let the guest write the host's slot.
//!
//! So the vmspace keeps its host-owned tables in the pool (trap area in
//! slot 255, as for every vmspace) and the vCPU walks only those. A fault
//! inside a `MAP_VPAGETABLE` entry walks the guest's tables from the root
//! ([`walk`]): every table and the final page must lie in the guest
//! kernel's RAM (read through [`KernelRam`]), anything else reads as not
//! present. If the guest's entry is present and allows the access (P at
//! every level, US at every level, RW at every level for a write, no NX
//! at any level for a fetch; 2 MiB and 1 GiB guest leaves are followed),
//! the host sets A (and D for a write) in the guest's leaf, as the MMU
//! would, and installs one 4 KiB *shadow leaf* VA → that guest-physical
//! page with the permissions of the map entry and of the guest's entry
//! together (writable only once the guest's leaf is dirty, so a guest
//! pmap's D bits mean what they mean on hardware). Otherwise the fault
//! goes to the guest kernel as `T_PAGEFLT` with the address and the error
//! code its own tables would have produced. Neighbours in the fault-around
//! window are shadowed too when their guest leaf is already accessed (A
//! set), so a guest pmap that creates entries with A set gets one fault
//! per window instead of one per page.
//!
//! Measured (`vkernel bench`): a first touch that faults to the host costs
//! about one exception exit plus the walk (`vpt_fault`, ~3x the floor), 10-25
//! times a touch KVM resolves on its own (`vpt_touch_shadowed`,
//! the cost a hardware walk of the guest's tables would have here): the
//! shadow's price, which the accessed-neighbour fault-around amortizes.
//!
//! Shadow leaves are a cache of the guest's tables: `MADV_INVAL` drops
//! them for its range, `MADV_SETMAP` drops them for the entry, `mprotect`
//! drops them (the next fault recombines the permissions), and every drop
//! makes the host flush KVM's cached translations before the next run.
//! A clone copies the entry and its root, never the shadow.
//!
//! # What the shadow may hold
//!
//! Shadow leaves point at guest RAM, so they hold no pool page; the
//! shadow's table pages come from the pool. They are not charged by the
//! entries' size, which would make the usual mapping of the whole user
//! range cost tens of millions of pages, but by a fixed allowance per
//! vmspace ([`crate::commit::SHADOW_TABLE_PAGES`]), on top of the tables
//! charged for the vmspace's other entries. A fault whose leaf would take
//! the tables past that first drops every shadow leaf of the vmspace and
//! frees the tables left empty (the cache is rebuilt by the faults that
//! follow, at the price of one walk each), which leaves room for the
//! leaf; so does a fault of another entry whose tables the shadow was
//! using. Fault-around stays inside the faulting page's 2 MiB region, whose
//! PT the faulting leaf has just made, so it never needs a table page of
//! its own.

use crate::ram::KernelRam;
use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::mman::{PROT_EXEC, PROT_READ, PROT_WRITE};
use vm_memory::{Bytes, GuestAddress};

use crate::error::Error;
use crate::fault::{pf, FaultOutcome};
use crate::map::MapEntry;
use crate::pagetable::{leaf_flags, pte, reduces, LARGE_PAGE_SIZE};
use crate::space::{Host, Vmspace};

/// A present translation found in the guest's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestLeaf {
    /// Guest-physical address of the 4 KiB page behind the address.
    pub page: u64,
    /// Guest-physical address of the leaf entry (4 KiB, 2 MiB or 1 GiB).
    pub slot: u64,
    /// The leaf entry as read.
    pub entry: u64,
    /// US at every level.
    pub user: bool,
    /// RW at every level.
    pub writable: bool,
    /// NX at no level.
    pub executable: bool,
}

impl GuestLeaf {
    /// Whether the guest's tables allow the access in `error_code` (as the
    /// MMU checks a ring-3 access, with SMEP/SMAP irrelevant).
    pub fn allows(&self, error_code: u64) -> bool {
        self.user
            && (error_code & pf::W == 0 || self.writable)
            && (error_code & pf::I == 0 || self.executable)
    }
}

/// Walks the guest's 4-level tables from `root` for `va`, reading guest
/// RAM only: `None` if some level is not present, a PML4 entry has PS
/// set, or a table or the final page lies outside the kernel's RAM.
pub fn walk(ram: &KernelRam, root: u64, va: u64) -> Result<Option<GuestLeaf>, Error> {
    let (mut user, mut writable, mut executable) = (true, true, true);
    let mut table = root & pte::ADDR;
    for level in (1..=4u32).rev() {
        let shift = 12 + 9 * (level - 1);
        let slot = table + ((va >> shift) & 0x1ff) * 8;
        // Tables and RAM are page aligned: the slot is in RAM exactly when
        // its table page is.
        let Ok(e) = ram.read_obj::<u64>(slot) else {
            return Ok(None);
        };
        if e & pte::P == 0 || (level == 4 && e & pte::PS != 0) {
            return Ok(None);
        }
        user &= e & pte::US != 0;
        writable &= e & pte::RW != 0;
        executable &= e & pte::NX == 0;
        if level == 1 || e & pte::PS != 0 {
            let span = 1u64 << shift;
            // Bit 12 of a large leaf is PAT, not address.
            let base = e & pte::ADDR & !(span - 1);
            let page = base + (va & (span - 1) & !(PAGE_SIZE - 1));
            if !ram.contains(page, PAGE_SIZE) {
                return Ok(None);
            }
            return Ok(Some(GuestLeaf {
                page,
                slot,
                entry: e,
                user,
                writable,
                executable,
            }));
        }
        table = e & pte::ADDR;
    }
    Ok(None)
}

/// The guest-physical page behind `va` of VPAGETABLE `entry`, ignoring
/// protections (for pread/pwrite, as ptrace does); `None` if the guest's
/// tables do not map it.
pub(crate) fn translate(host: &Host, entry: &MapEntry, va: u64) -> Result<Option<u64>, Error> {
    let crate::map::Backing::VpageTable { root: Some(root) } = entry.backing else {
        return Ok(None);
    };
    Ok(walk(&host.ram, root, va)?.map(|l| l.page))
}

/// Resolves a fault at `addr` (error code `error_code`) inside VPAGETABLE
/// `entry` whose protection allows the access: installs the shadow leaf
/// (and those of accessed neighbours, see [`fault_around_accessed`]) and
/// returns `Resolved`, or returns `DeliverWith` the error code the
/// guest's tables give (P clear if they do not map the page, set if they
/// map it without the permission).
pub(crate) fn resolve_fault(
    space: &mut Vmspace,
    host: &mut Host,
    entry: &MapEntry,
    addr: u64,
    error_code: u64,
    fault_around: usize,
) -> Result<FaultOutcome, Error> {
    let not_present = FaultOutcome::DeliverWith {
        error_code: error_code & !pf::P,
    };
    let crate::map::Backing::VpageTable { root: Some(root) } = entry.backing else {
        return Ok(not_present);
    };
    let va = addr & !(PAGE_SIZE - 1);
    let Some(leaf) = walk(&host.ram, root, va)? else {
        return Ok(not_present);
    };
    if !leaf.allows(error_code) {
        return Ok(FaultOutcome::DeliverWith {
            error_code: error_code | pf::P,
        });
    }
    // Accessed, and dirty for a write, in the guest's leaf, as the MMU
    // would set them.
    let mut updated = leaf.entry | pte::A;
    if error_code & pf::W != 0 {
        updated |= pte::D;
    }
    if updated != leaf.entry {
        host.mem
            .write_obj(updated, GuestAddress(leaf.slot))
            .map_err(|source| Error::Memory {
                gpa: leaf.slot,
                source,
            })?;
    }
    let flags = shadow_flags(entry, &leaf, updated);
    if let Some(old) = space.lookup(host, va)? {
        // A present shadow leaf that already allowed the access is stale in
        // KVM; one that maps another page or less is replaced: both need
        // KVM's copy dropped.
        if crate::fault::leaf_allows(old, error_code) || reduces(old, leaf.page | flags) {
            host.translation_reduced = true;
        }
    }
    space.make_room_for_leaf(host, va)?;
    space.map_leaf(host, va, leaf.page, flags)?;
    fault_around_accessed(space, host, entry, root, va, fault_around)?;
    Ok(FaultOutcome::Resolved)
}

/// The shadow leaf flags for guest `leaf` (whose entry is now
/// `guest_entry`) in `entry`: readable; writable if the entry and every
/// guest level allow it and the guest's leaf is dirty; executable if the
/// entry and every guest level allow it.
fn shadow_flags(entry: &MapEntry, leaf: &GuestLeaf, guest_entry: u64) -> u64 {
    let mut prot = PROT_READ;
    if leaf.writable && entry.prot & PROT_WRITE != 0 && guest_entry & pte::D != 0 {
        prot |= PROT_WRITE;
    }
    if leaf.executable && entry.prot & PROT_EXEC != 0 {
        prot |= PROT_EXEC;
    }
    leaf_flags(prot)
}

/// Fault-around through the guest's tables: in the aligned window of
/// `fault_around` pages around `va` (larger for a sequential first touch,
/// see [`Vmspace::fault_window`]; inside `entry`, and inside the 2 MiB
/// region of `va`, so that it needs no table page), shadows every page
/// with no shadow leaf yet whose guest leaf is present, user-accessible
/// and already *accessed* (A set by the guest, or by an earlier fault).
/// Pages the guest has not marked accessed are left to fault, so the A
/// bits the host sets always mean an access happened; a guest pmap that
/// wants its fresh mappings prefaulted creates them with A set.
fn fault_around_accessed(
    space: &mut Vmspace,
    host: &mut Host,
    entry: &MapEntry,
    root: u64,
    va: u64,
    fault_around: usize,
) -> Result<(), Error> {
    if fault_around <= 1 {
        return Ok(());
    }
    // Larger for a sequential first touch (the guest pmap's demand-zero
    // windows grow the same way), within the PT the faulting leaf has: no
    // table page to make room for.
    let window_pages = space.fault_window(va, fault_around);
    let window_bytes = ((window_pages as u64).next_power_of_two() * PAGE_SIZE).min(LARGE_PAGE_SIZE);
    let window = va & !(window_bytes - 1);
    let from = window.max(entry.start);
    let to = window.saturating_add(window_bytes).min(entry.end);
    let mut budget = window_pages - 1;
    let mut neighbour = from;
    let mut shadowed_end = va + PAGE_SIZE;
    while budget > 0 && neighbour < to {
        if neighbour != va && space.lookup(host, neighbour)?.is_none() {
            if let Some(leaf) = walk(&host.ram, root, neighbour)? {
                if leaf.user && leaf.entry & pte::A != 0 {
                    let flags = shadow_flags(entry, &leaf, leaf.entry);
                    space.map_leaf(host, neighbour, leaf.page, flags)?;
                    shadowed_end = shadowed_end.max(neighbour + PAGE_SIZE);
                    budget -= 1;
                }
            }
        }
        neighbour += PAGE_SIZE;
    }
    // Only a window the guest had filled with accessed leaves counts as
    // a step of a sequential touch: a guest that maps pages one at a time
    // (no accessed neighbours) would otherwise make every fault scan a
    // whole 2 MiB for nothing.
    space.sequential_next = shadowed_end;
    space.sequential_window = if shadowed_end > va + PAGE_SIZE {
        window_pages
    } else {
        0
    };
    Ok(())
}

/// Gives `space`, a fresh vmspace whose `MAP_VPAGETABLE` entries just got
/// their guest root (`MADV_SETMAP`), the shadow of the spare vmspace (the
/// last one destroyed, see `VmspaceRegistry::keep_as_spare`) when it has
/// the same entries (roots aside, so the same charge). Each shadow leaf
/// it holds becomes the one a fault-around would install now: kept where
/// the guest leaf under the new root is user-accessible, already
/// accessed and maps the same page with the same permissions, rewritten
/// where it maps another page or allows something else, cleared where
/// the guest leaf is gone or not accessed. A leaf that loses a
/// translation is rewritten in a copy of its tables (and of those above
/// it, the root included), which KVM has never walked: nothing KVM
/// cached from the spare's tree is stale, and the tables left alone keep
/// their shadow.
///
/// Why: a `pmap=guest` fork's child gets a fresh vmspace, so KVM built
/// a new shadow for it every cycle (its tables and every page the child
/// touched), and its dead tables went to the pool's quarantine: a flush
/// of every shadow page every few hundred forks. The guest's copy of the
/// parent's tables maps what the last child's did (the same shared
/// pages), but for the pages the fork copied for the child at once (its
/// stack page, the pages children write first thing), which are new
/// pages each time: before they were rewritten here, each cost the child
/// a fault to the host (five exits of a glibc fork cycle's thirteen).
///
/// Returns whether it did; `space` must be the only thing changed since
/// it was created (its PML4 unshadowed, no table, no frame, not on the
/// vCPU).
pub(crate) fn adopt_spare_shadow(space: &mut Vmspace, host: &mut Host) -> Result<bool, Error> {
    let fresh = space.tables == 0
        && space.frames.is_empty()
        && space.refs == 0
        && space.unshadowed.contains(&space.root);
    let Some(spare) = host.spare.as_ref().filter(|_| fresh) else {
        return Ok(false);
    };
    let same_entries = spare.charged == space.charged
        && spare.frames.is_empty()
        && spare.map.len() == space.map.len()
        && spare.map.iter().zip(space.map.iter()).all(|(a, b)| {
            a.start == b.start && a.end == b.end && a.prot == b.prot && a.is_vpagetable()
        })
        && space.map.iter().all(|e| e.is_vpagetable());
    if !same_entries {
        return Ok(false);
    }
    let census = match crate::pagetable::PageTable::new(&host.mem, &mut host.pool)
        .census(spare.root, Some(crate::space::TRAP_AREA_PML4_SLOT))
    {
        Ok(c) if c.large_leaves == 0 => c,
        _ => return Ok(false),
    };
    // (address, leaf it becomes), in address order as the census walks.
    let mut changes = Vec::new();
    for &(va, shadow) in &census.leaves {
        let now = match space.map.lookup(va) {
            Some(entry) => match entry.backing {
                crate::map::Backing::VpageTable { root: Some(root) } => {
                    match walk(&host.ram, root, va)? {
                        Some(leaf) if leaf.user && leaf.entry & pte::A != 0 => {
                            let flags = shadow_flags(entry, &leaf, leaf.entry);
                            (leaf.page & pte::ADDR) | (flags & !pte::ADDR)
                        }
                        _ => 0,
                    }
                }
                _ => 0,
            },
            None => 0,
        };
        if now != shadow {
            changes.push((va, now));
        }
    }
    let Some(spare) = host.spare.take() else {
        return Ok(false);
    };
    // The spare's PML4 and tables move to `space`; its charge (the same
    // as `space`'s) and host-state charge go, as on its end; the fresh
    // PML4, which KVM never saw, is freed into `space`'s reservation.
    let fresh_root = std::mem::replace(&mut space.root, spare.root);
    space.tables = spare.tables;
    space.unshadowed = spare.unshadowed;
    host.pool.free_unshadowed_into_reserve(fresh_root);
    host.pool
        .unreserve(spare.charged as usize + crate::registry::HOST_STATE_PAGES);
    space.rewrite_leaves(host, &changes)?;
    host.spare_stats.shadows += 1;
    host.spare_stats.leaves_rewritten += changes.len() as u64;
    Ok(true)
}
