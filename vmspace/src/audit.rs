//! A full consistency check of the registry, for tests and debugging:
//! every present leaf belongs to a mapping and has its flags and page
//! (a shadow leaf of a `MAP_VPAGETABLE` entry: a page of kernel RAM with
//! no more than the entry's permissions),
//! every frame belongs to a mapping, charges match the frames held and
//! the maps (tables of host-managed entries, plus the shadow allowance
//! for `MAP_VPAGETABLE` ones), the table pages held are counted right and stay within that
//! charge, and the pool's reservation is exactly what the vmspaces were
//! promised and do not hold.
//! Costs a walk of every table; not for the hot path.

use crate::commit;
use crate::map::Backing;
use crate::pagetable::{leaf_flags, pte, PageTable};
use crate::registry::VmspaceRegistry;
use crate::space::TRAP_AREA_PML4_SLOT;
use vkernel_abi::mman::{PROT_EXEC, PROT_WRITE};

impl VmspaceRegistry {
    /// Checks every invariant of every vmspace; the first broken one is
    /// described in the error.
    pub fn audit(&mut self) -> Result<(), String> {
        let trap = self.trap_area_pml4e();
        let mut promised_not_held = 0u64;
        let mut entries = 0;
        for (&id, space) in &self.spaces {
            let fail = |what: String| Err(format!("vmspace {id:#x}: {what}"));
            let pt = PageTable::new(&self.host.mem, &mut self.host.pool);
            let census = pt
                .census(space.root, Some(TRAP_AREA_PML4_SLOT))
                .map_err(|e| e.to_string())?;
            let slot = pt
                .read(space.root, TRAP_AREA_PML4_SLOT as u64)
                .map_err(|e| e.to_string())?;
            if slot != trap {
                return fail(format!("trap slot holds {slot:#x}, not {trap:#x}"));
            }
            for &(va, leaf) in &census.leaves {
                let Some(entry) = space.map.lookup(va) else {
                    return fail(format!("leaf at {va:#x} outside every entry"));
                };
                if let Backing::VpageTable { root } = entry.backing {
                    // A shadow leaf: a page of kernel RAM, with at most the
                    // entry's permissions (the guest's may take more away).
                    let flags = leaf & !pte::ADDR;
                    let page = leaf & pte::ADDR;
                    let base = pte::P | pte::US | pte::A;
                    let well_formed = flags & base == base
                        && flags & !(base | pte::RW | pte::D | pte::NX) == 0
                        && (flags & pte::RW != 0) == (flags & pte::D != 0)
                        && (flags & pte::RW == 0 || entry.prot & PROT_WRITE != 0)
                        && (flags & pte::NX != 0 || entry.prot & PROT_EXEC != 0);
                    if root.is_none() || !well_formed || !self.host.ram.contains(page, 1) {
                        return fail(format!(
                            "shadow leaf at {va:#x} = {leaf:#x}, prot {}, root {root:x?}",
                            entry.prot
                        ));
                    }
                    continue;
                }
                if leaf & !pte::ADDR != leaf_flags(entry.prot) {
                    return fail(format!("leaf at {va:#x} = {leaf:#x}, prot {}", entry.prot));
                }
                let expected = match entry.backing {
                    Backing::Phys { shared: true, .. } => entry.phys_of(va),
                    _ => space.frames.get(&va).copied(),
                };
                if expected != Some(leaf & pte::ADDR) {
                    return fail(format!("leaf at {va:#x} maps {leaf:#x}, not {expected:x?}"));
                }
            }
            for e in space.map.iter() {
                if let Backing::VpageTable { root: Some(root) } = e.backing {
                    if !root.is_multiple_of(4096) || !self.host.ram.contains(root, 1) {
                        return fail(format!("guest root {root:#x} of {:#x}", e.start));
                    }
                }
            }
            for (&va, &frame) in &space.frames {
                if !space.map.lookup(va).is_some_and(|e| e.needs_frames()) {
                    return fail(format!("frame for {va:#x} outside a private entry"));
                }
                if !self.host.pool.contains(frame) {
                    return fail(format!("frame {frame:#x} for {va:#x} not in the pool"));
                }
            }
            if let Err(e) = space.map.check_index() {
                return fail(e);
            }
            let tables = commit::table_pages_for(&space.map);
            let shadow = commit::shadow_charge(&space.map, self.host.shadow_table_pages);
            let frames = space.frames.len() as u64;
            if space.charged != 1 + frames + tables + shadow {
                return fail(format!(
                    "charged {} pages, needs 1 + {frames} frames + {tables} + {shadow}",
                    space.charged
                ));
            }
            if space.host_tables != tables {
                return fail(format!(
                    "counts {} table pages charged, map needs {tables}",
                    space.host_tables
                ));
            }
            if census.tables as u64 != space.tables {
                return fail(format!(
                    "{} table pages, counted {}",
                    census.tables, space.tables
                ));
            }
            if census.tables as u64 > tables + shadow {
                return fail(format!(
                    "{} table pages, allowed {tables} + {shadow}",
                    census.tables
                ));
            }
            let held = 1 + census.tables as u64 + space.frames.len() as u64;
            if held > space.charged {
                return fail(format!("holds {held} pages, charged {}", space.charged));
            }
            promised_not_held += space.charged - held;
            entries += space.map.len();
        }
        // Each vmspace's host state is reserved too, and never drawn; the
        // spare kept for the next clone keeps its reservation.
        promised_not_held += (self.spaces.len() * crate::registry::HOST_STATE_PAGES) as u64;
        if let Some(spare) = &self.host.spare {
            let held = 1 + spare.tables + spare.frames.len() as u64;
            if held > spare.charged {
                return Err(format!(
                    "the spare vmspace holds {held} pages, charged {}",
                    spare.charged
                ));
            }
            promised_not_held += spare.charged - held + crate::registry::HOST_STATE_PAGES as u64;
        }
        let reserved = self.host.pool.reserved_pages() as u64;
        if reserved != promised_not_held {
            return Err(format!(
                "pool reserves {reserved} pages, vmspaces were promised {promised_not_held} more than they hold"
            ));
        }
        if entries != self.map_entries {
            return Err(format!(
                "{entries} map entries, counted {}",
                self.map_entries
            ));
        }
        Ok(())
    }
}
