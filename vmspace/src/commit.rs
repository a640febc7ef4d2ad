//! Commit accounting: what a vmspace is charged against the pool.
//!
//! A vmspace is charged, at all times, for
//! - its PML4 (1 page),
//! - every private frame it holds (an anonymous page or a private copy),
//!   charged when the frame is made and released when it goes: as Linux
//!   with its heuristic overcommit (`vm.overcommit_memory` 0), a mapping
//!   costs no memory until it is touched, so an address-space reservation
//!   (`PROT_NONE`, `MAP_NORESERVE`, a large untouched heap or thread
//!   stack) is free. A touch the pool cannot back fails then, not at
//!   mmap: the fault is handed to the guest kernel, which ends the
//!   process (see `fault.rs`),
//! - the page-table pages its *host-managed* entries (every entry but
//!   `MAP_VPAGETABLE`) could ever need: one PT per 2 MiB region, one PD
//!   per 1 GiB region and one PDPT per 512 GiB region that some such entry
//!   touches (2 MiB per GiB mapped, so that mapping a frame never fails
//!   for want of a table),
//! - if it holds a `MAP_VPAGETABLE` entry, a fixed allowance of
//!   [`SHADOW_TABLE_PAGES`] table pages for the shadow (charged once, with
//!   its first such entry, and released with its last).
//!
//! # Why `MAP_VPAGETABLE` entries are not charged by their size
//!
//! A guest kernel maps one `MAP_VPAGETABLE` entry over its processes'
//! whole user range, `[VM_MIN_USER_ADDRESS, VM_MAX_USER_ADDRESS)`, as
//! DragonFly's vkernel does. Charged like the others, that one entry would
//! ask for the tables of 127.5 TiB, tens of millions of pages: `ENOMEM`
//! for a mapping that, in practice, shadows a few regions. And the shadow
//! does not need the promise: its leaves are a cache of the guest's own
//! tables, which the host may drop at any time (the next access faults
//! and walks the guest's tables again). So the shadow is bounded instead.
//!
//! # Why the table pages held never exceed the charge
//!
//! Table pages are checked where they are made and where their charge
//! goes:
//! - without `MAP_VPAGETABLE` entries, a vmspace holds tables only under
//!   regions its entries touch, because munmap and a replacing mmap prune
//!   what the removed entries leave empty;
//! - with them, the shadow may hold tables anywhere, and may even use the
//!   charge of host-managed tables not made yet. Before any table page is
//!   made past the table charge (host-managed tables plus the allowance),
//!   for a shadow leaf or a host-managed page alike, every shadow leaf is
//!   dropped and the tables left empty are freed; munmap and mmap do the
//!   same when they leave more tables than charged (a table that shadow
//!   leaves keep alive under a host-managed entry that is gone). After
//!   such a drop only tables under host-managed entries remain, at most
//!   one per region they touch, which leaves room for what either kind of
//!   leaf needs (the allowance is at least 3, one leaf's tables).
//!
//! Charge changes are computed from the entries in the changed range and
//! O(log n) lookups, never from the whole map or the range's size: a
//! mapping of the whole user range costs what its neighbours cost.

use crate::map::{MapEntry, VmMap};

/// Table pages a vmspace with `MAP_VPAGETABLE` entries is charged for its
/// shadow, whatever the entries' size: enough for 62 shadowed 2 MiB
/// regions in one 1 GiB region (a PDPT, a PD and their PTs), or for 21
/// spread over distinct 512 GiB regions (a PDPT, a PD and a PT each),
/// before the shadow is dropped and rebuilt: a process's working set
/// rarely spans more, and a 256 KiB charge per process stays small. At
/// least 3, so that one leaf always fits after a drop.
pub const SHADOW_TABLE_PAGES: u64 = 64;

/// Bytes covered by one PT, PD and PDPT page.
const TABLE_SPANS: [u64; 3] = [1 << 21, 1 << 30, 1 << 39];

/// The shadow allowance charged to a vmspace whose map is `map`, when
/// [`SHADOW_TABLE_PAGES`] (or a test's smaller value) is `shadow_pages`.
pub fn shadow_charge(map: &VmMap, shadow_pages: u64) -> u64 {
    if map.has_vpagetable() {
        shadow_pages
    } else {
        0
    }
}

/// Table pages needed by every region touched by a host-managed entry of
/// `map` (computed from scratch; for audits).
pub fn table_pages_for(map: &VmMap) -> u64 {
    TABLE_SPANS
        .iter()
        .map(|&span| {
            let mut count = 0;
            let mut last: Option<u64> = None;
            for (start, end) in map.host_managed() {
                let (first, end) = (start / span, (end - 1) / span);
                let from = match last {
                    Some(l) if l >= first => l + 1,
                    _ => first,
                };
                if end >= from {
                    count += end - from + 1;
                }
                last = Some(last.map_or(end, |l| l.max(end)));
            }
            count
        })
        .sum()
}

/// The parts of a vmspace's charge that replacing a range can change (its
/// frames are charged one by one as they come and go).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeCharge {
    /// Table pages of the regions overlapping the range that host-managed
    /// entries touch.
    pub tables: u64,
    /// The shadow allowance (0 or the registry's shadow table pages).
    pub shadow: u64,
}

impl RangeCharge {
    /// All of it.
    pub fn total(&self) -> u64 {
        self.tables + self.shadow
    }
}

/// What replacing a range changes: the range's share of the charge before
/// and after. The rest of the charge does not change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replacement {
    /// Before the range's entries are removed.
    pub before: RangeCharge,
    /// After they are removed and the new entry, if any, inserted.
    pub after: RangeCharge,
}

/// What removing `[start, end)` from `map` and inserting `new` there
/// (`None` for munmap) does to the charge; `shadow_pages` is the shadow
/// allowance. Computed before the change, from the entries overlapping the
/// range and O(log n) lookups.
pub fn replacement(
    map: &VmMap,
    start: u64,
    end: u64,
    new: Option<&MapEntry>,
    shadow_pages: u64,
) -> Replacement {
    if start >= end {
        let unchanged = RangeCharge {
            shadow: shadow_charge(map, shadow_pages),
            ..RangeCharge::default()
        };
        return Replacement {
            before: unchanged,
            after: unchanged,
        };
    }
    let new_host_managed = new.is_some_and(|e| !e.is_vpagetable());
    let before = RangeCharge {
        tables: TABLE_SPANS
            .iter()
            .map(|&span| touched_regions(map, start, end, span))
            .sum(),
        shadow: shadow_charge(map, shadow_pages),
    };
    let keeps_vpagetable =
        new.is_some_and(MapEntry::is_vpagetable) || map.vpagetable_outside(start, end);
    let after = RangeCharge {
        tables: TABLE_SPANS
            .iter()
            .map(|&span| {
                if new_host_managed {
                    (end - 1) / span - start / span + 1
                } else {
                    touched_from_outside(map, start, end, span)
                }
            })
            .sum(),
        shadow: if keeps_vpagetable { shadow_pages } else { 0 },
    };
    Replacement { before, after }
}

/// The region of size `span` with index `r`.
fn region(r: u64, span: u64) -> (u64, u64) {
    let base = r * span;
    (base, base.saturating_add(span))
}

/// Regions of size `span` overlapping `[start, end)` (not empty) that
/// host-managed entries of `map` touch, wholly or in part.
fn touched_regions(map: &VmMap, start: u64, end: u64, span: u64) -> u64 {
    let first = start / span;
    let last = (end - 1) / span;
    let mut touched = 0;
    let (s, e) = region(first, span);
    if map.any_host_managed_in(s, e) {
        touched += 1;
    }
    if last != first {
        let (s, e) = region(last, span);
        if map.any_host_managed_in(s, e) {
            touched += 1;
        }
    }
    // Regions strictly between first and last lie inside [start, end): only
    // entries inside the range can touch them.
    let mut counted_up_to = first;
    for (s, e) in map.host_managed_in(start, end) {
        let lo = (s.max(start) / span).max(counted_up_to + 1);
        let hi = ((e.min(end) - 1) / span).min(last.saturating_sub(1));
        if hi >= lo {
            touched += hi - lo + 1;
            counted_up_to = hi;
        }
    }
    touched
}

/// Regions of size `span` overlapping `[start, end)` (not empty) that the
/// parts of host-managed entries of `map` outside the range touch: what
/// stays touched once the range is removed. Only the first and last
/// regions stick out of the range.
fn touched_from_outside(map: &VmMap, start: u64, end: u64, span: u64) -> u64 {
    let first = start / span;
    let last = (end - 1) / span;
    let left = map.any_host_managed_in(region(first, span).0, start);
    let right = map.any_host_managed_in(end, region(last, span).1);
    if first == last {
        u64::from(left || right)
    } else {
        u64::from(left) + u64::from(right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Backing;

    const MB2: u64 = 1 << 21;
    const GB: u64 = 1 << 30;
    const TB: u64 = 1 << 39;
    const SHADOW: u64 = 7;

    fn anon(start: u64, end: u64) -> MapEntry {
        MapEntry {
            start,
            end,
            prot: 1,
            backing: Backing::Anonymous {
                shared: false,
                stack: false,
            },
        }
    }

    fn vpt(start: u64, end: u64) -> MapEntry {
        MapEntry {
            backing: Backing::VpageTable { root: None },
            ..anon(start, end)
        }
    }

    /// The charge of `map` from scratch, PML4 and frames left out.
    fn from_scratch(map: &VmMap) -> u64 {
        table_pages_for(map) + shadow_charge(map, SHADOW)
    }

    /// Replaces `[start, end)` by `new` as mmap and munmap do, checking the
    /// incremental charge against the one from scratch.
    fn replace(map: &mut VmMap, charged: &mut u64, start: u64, end: u64, new: Option<MapEntry>) {
        let change = replacement(map, start, end, new.as_ref(), SHADOW);
        map.remove_range(start, end);
        if let Some(e) = new {
            map.insert(e);
        }
        *charged = *charged - change.before.total() + change.after.total();
        assert_eq!(*charged, from_scratch(map), "{start:#x}..{end:#x} {new:?}");
    }

    #[test]
    fn empty_map_needs_one_table_per_level() {
        let m = VmMap::new();
        let at = |s, e| replacement(&m, s, e, Some(&anon(s, e)), SHADOW).after;
        assert_eq!(at(0x1000, 0x2000).tables, 3);
        assert_eq!(at(MB2 - 0x1000, MB2 + 0x1000).tables, 4);
        assert_eq!(
            replacement(&m, 0x1000, 0x1000, None, SHADOW).after.total(),
            0
        );
    }

    #[test]
    fn vpagetable_entries_cost_the_allowance_not_their_tables() {
        let mut m = VmMap::new();
        let mut charged = 0;
        let (lo, hi) = (0x1000, 0x7f80_0000_0000);
        replace(&mut m, &mut charged, lo, hi, Some(vpt(lo, hi)));
        assert_eq!(charged, SHADOW);
        // A second one and a host-managed one inside the first.
        replace(&mut m, &mut charged, TB, TB + GB, Some(vpt(TB, TB + GB)));
        replace(&mut m, &mut charged, MB2, 2 * MB2, Some(anon(MB2, 2 * MB2)));
        assert_eq!(charged, SHADOW + 3);
        // Unmapping a whole VPAGETABLE entry keeps the allowance while
        // another remains.
        replace(&mut m, &mut charged, TB, TB + GB, None);
        assert_eq!(charged, SHADOW + 3);
        replace(&mut m, &mut charged, lo, MB2, None);
        replace(&mut m, &mut charged, 2 * MB2, hi, None);
        assert_eq!(charged, 3);
        assert!(!m.has_vpagetable());
    }

    #[test]
    fn regions_shared_with_vpagetable_entries_stay_charged_while_touched() {
        let mut m = VmMap::new();
        let mut charged = 0;
        replace(
            &mut m,
            &mut charged,
            0x1000,
            0x3000,
            Some(anon(0x1000, 0x3000)),
        );
        replace(&mut m, &mut charged, 0x3000, GB, Some(vpt(0x3000, GB)));
        assert_eq!(charged, 3 + SHADOW);
        // The 2 MiB region keeps its PT while the anonymous page is there.
        replace(&mut m, &mut charged, 0x3000, 0x5000, None);
        assert_eq!(charged, 3 + SHADOW);
        // munmap over a hole-free range made of both kinds.
        replace(&mut m, &mut charged, 0x2000, 0x3000, None);
        replace(&mut m, &mut charged, 0x1000, 0x2000, None);
        assert_eq!(charged, SHADOW);
    }

    #[test]
    fn incremental_charge_matches_from_scratch_over_many_changes() {
        // A small LCG: deterministic, no dependency.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let scales = [0x1000, MB2 / 2, MB2, GB, TB];
        let mut m = VmMap::new();
        let mut charged = 0;
        for _ in 0..4000 {
            let scale = scales[next(scales.len() as u64) as usize];
            let start = 0x1000 + next(64) * scale;
            let end = start + (1 + next(4)) * scale.max(0x1000);
            let new = match next(4) {
                0 => None,
                1 => Some(vpt(start, end)),
                _ => Some(anon(start, end)),
            };
            replace(&mut m, &mut charged, start, end, new);
            m.check_index().unwrap();
        }
    }
}
