//! The map of one vmspace: non-overlapping, page-aligned entries keyed by
//! start address, each with a protection and what backs it. Range
//! operations split entries at the range's ends; entries are never merged.
//!
//! Beside the entries the map keeps an index of the host-managed ones
//! (every entry but `MAP_VPAGETABLE`): commit accounting charges table
//! pages for those only (see [`crate::commit`]), and must ask "does a
//! host-managed entry touch this region?" in O(log n) even when the region
//! is full of `MAP_VPAGETABLE` entries. The number of `MAP_VPAGETABLE`
//! entries follows from it in O(1).

use std::collections::BTreeMap;
use std::ops::Bound;

use vkernel_abi::layout::PAGE_SIZE;

/// What a map entry's pages come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Zero-filled on demand, one pool page per touched page.
    Anonymous {
        /// Mapped `MAP_SHARED` (recorded only: a clone copies it like a
        /// private mapping).
        shared: bool,
        /// Mapped `MAP_STACK`: a fault maps a small window around it
        /// (`STACK_FAULT_AROUND` pages), not the usual one.
        stack: bool,
    },
    /// The guest kernel's physical memory (`PHYSMEM_FD`).
    Phys {
        /// Guest-physical address of the entry's first page.
        gpa: u64,
        /// `MAP_SHARED`: the kernel's own pages; otherwise (`MAP_PRIVATE`) a
        /// pool copy of each page made on first touch.
        shared: bool,
    },
    /// `MAP_VPAGETABLE` over the guest kernel's physical memory: the
    /// translations come from the guest's own 4-level page tables, whose
    /// root `mcontrol(MADV_SETMAP)` names (see [`crate::vpt`]). No pool
    /// page backs it: the host keeps only shadow leaves pointing at guest
    /// RAM, and the shadow's page-table pages, charged as a fixed
    /// allowance per vmspace rather than by the entry's size (see
    /// [`crate::commit`]).
    VpageTable {
        /// Guest-physical address of the guest's PML4; `None` until
        /// `MADV_SETMAP` names one (every fault is the guest's until then).
        root: Option<u64>,
    },
}

/// One mapping: `[start, end)` with protection `prot` (`PROT_*` bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// First address (page aligned).
    pub start: u64,
    /// One past the last address (page aligned, > start).
    pub end: u64,
    /// `PROT_*` bits.
    pub prot: u64,
    /// What backs the pages.
    pub backing: Backing,
}

impl MapEntry {
    /// Number of pages.
    pub fn pages(&self) -> u64 {
        (self.end - self.start) / PAGE_SIZE
    }

    /// Whether each page gets its own pool page (anonymous memory and
    /// private copies), which is what mappings are charged for.
    pub fn needs_frames(&self) -> bool {
        !matches!(
            self.backing,
            Backing::Phys { shared: true, .. } | Backing::VpageTable { .. }
        )
    }

    /// Whether the entry is a `MAP_VPAGETABLE` mapping.
    pub fn is_vpagetable(&self) -> bool {
        matches!(self.backing, Backing::VpageTable { .. })
    }

    /// For a physical-memory entry, the guest-physical address behind `va`.
    pub fn phys_of(&self, va: u64) -> Option<u64> {
        match self.backing {
            Backing::Phys { gpa, .. } => Some(gpa + (va - self.start)),
            Backing::Anonymous { .. } | Backing::VpageTable { .. } => None,
        }
    }

    /// The part of this entry inside `[start, end)` (which must overlap it).
    pub fn clip(&self, start: u64, end: u64) -> MapEntry {
        let s = self.start.max(start);
        let e = self.end.min(end);
        let backing = match self.backing {
            Backing::Phys { gpa, shared } => Backing::Phys {
                gpa: gpa + (s - self.start),
                shared,
            },
            anon => anon,
        };
        MapEntry {
            start: s,
            end: e,
            prot: self.prot,
            backing,
        }
    }
}

/// The entries of one vmspace.
#[derive(Clone, Debug, Default)]
pub struct VmMap {
    entries: BTreeMap<u64, MapEntry>,
    /// Start → end of every entry that is not `MAP_VPAGETABLE`.
    host_managed: BTreeMap<u64, u64>,
}

impl VmMap {
    /// An empty map.
    pub fn new() -> Self {
        VmMap::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All entries in address order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &MapEntry> {
        self.entries.values()
    }

    /// The entry containing `va`.
    pub fn lookup(&self, va: u64) -> Option<&MapEntry> {
        let (_, e) = self.entries.range(..=va).next_back()?;
        (va < e.end).then_some(e)
    }

    /// The entries overlapping `[start, end)`, whole (not clipped), in order.
    pub fn intersecting(&self, start: u64, end: u64) -> impl Iterator<Item = &MapEntry> {
        let before = self
            .entries
            .range(..start)
            .next_back()
            .map(|(_, e)| e)
            .filter(|e| e.end > start);
        let inside = self
            .entries
            .range((Bound::Included(start), Bound::Excluded(end.max(start))))
            .map(|(_, e)| e);
        before.into_iter().chain(inside)
    }

    /// The parts of `[start, end)` that `MAP_VPAGETABLE` entries cover.
    pub fn vpagetable_pieces(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        self.intersecting(start, end)
            .filter(|e| e.is_vpagetable())
            .map(|e| (e.start.max(start), e.end.min(end)))
            .collect()
    }

    /// Whether any entry overlaps `[start, end)`.
    pub fn any_in(&self, start: u64, end: u64) -> bool {
        self.intersecting(start, end).next().is_some()
    }

    /// Whether an entry that is not `MAP_VPAGETABLE` overlaps `[start,
    /// end)`: entries do not overlap, so only the last one starting below
    /// `end` can.
    pub fn any_host_managed_in(&self, start: u64, end: u64) -> bool {
        start < end
            && self
                .host_managed
                .range(..end)
                .next_back()
                .is_some_and(|(_, &e)| e > start)
    }

    /// The `[start, end)` of every entry that is not `MAP_VPAGETABLE`, in
    /// address order.
    pub fn host_managed(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.host_managed.iter().map(|(&s, &e)| (s, e))
    }

    /// The `[start, end)` (whole, not clipped) of the entries that are not
    /// `MAP_VPAGETABLE` and overlap `[start, end)`, in order; costs only
    /// those.
    pub fn host_managed_in(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let before = self
            .host_managed
            .range(..start)
            .next_back()
            .filter(|(_, &e)| e > start);
        let inside = self
            .host_managed
            .range((Bound::Included(start), Bound::Excluded(end.max(start))));
        before.into_iter().chain(inside).map(|(&s, &e)| (s, e))
    }

    /// Number of `MAP_VPAGETABLE` entries.
    pub fn vpagetable_entries(&self) -> usize {
        self.entries.len() - self.host_managed.len()
    }

    /// Whether the map holds a `MAP_VPAGETABLE` entry.
    pub fn has_vpagetable(&self) -> bool {
        self.vpagetable_entries() > 0
    }

    /// Whether a `MAP_VPAGETABLE` entry (or part of one) would remain after
    /// removing `[start, end)`. Costs the entries overlapping the range.
    pub fn vpagetable_outside(&self, start: u64, end: u64) -> bool {
        let inside = self
            .intersecting(start, end)
            .filter(|e| e.is_vpagetable() && start <= e.start && e.end <= end)
            .count();
        self.vpagetable_entries() > inside
    }

    /// Whether `[start, end)` is mapped with no hole (the seed's
    /// `vm_map_check_protection` with `VM_PROT_NONE`).
    pub fn is_covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for e in self.intersecting(start, end) {
            if e.start > at {
                return false;
            }
            at = e.end;
            if at >= end {
                return true;
            }
        }
        at >= end
    }

    /// How many entries splitting at `start` and `end` would add (0..=2).
    pub fn splits_needed(&self, start: u64, end: u64) -> usize {
        [start, end]
            .into_iter()
            .filter(|&a| self.lookup(a).is_some_and(|e| e.start < a))
            .count()
    }

    /// Inserts an entry into a range that must be empty.
    pub fn insert(&mut self, entry: MapEntry) {
        debug_assert!(entry.start < entry.end);
        debug_assert!(!self.any_in(entry.start, entry.end), "overlapping insert");
        self.put(entry);
    }

    /// Removes `[start, end)`, returning the removed parts (clipped).
    pub fn remove_range(&mut self, start: u64, end: u64) -> Vec<MapEntry> {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.entries.range(start..end).map(|(&k, _)| k).collect();
        keys.into_iter()
            .filter_map(|k| {
                self.host_managed.remove(&k);
                self.entries.remove(&k)
            })
            .collect()
    }

    /// Sets the protection of every mapped part of `[start, end)`.
    pub fn protect_range(&mut self, start: u64, end: u64, prot: u64) {
        self.split_at(start);
        self.split_at(end);
        for (_, e) in self.entries.range_mut(start..end) {
            e.prot = prot;
        }
    }

    /// Sets the guest page-table root of every entry in `[start, end)`
    /// (which must all be `MAP_VPAGETABLE` entries), splitting the end
    /// entries.
    pub fn set_root_range(&mut self, start: u64, end: u64, root: u64) {
        self.split_at(start);
        self.split_at(end);
        for (_, e) in self.entries.range_mut(start..end) {
            debug_assert!(e.is_vpagetable());
            e.backing = Backing::VpageTable { root: Some(root) };
        }
    }

    /// The lowest `addr >= from` with `[addr, addr + size)` free and
    /// `addr + size <= limit`.
    pub fn find_free(&self, size: u64, from: u64, limit: u64) -> Option<u64> {
        let mut candidate = from;
        if let Some(e) = self.lookup(from) {
            candidate = e.end;
        }
        for e in self.entries.range(candidate..).map(|(_, e)| e) {
            if candidate.checked_add(size)? <= e.start {
                break;
            }
            candidate = e.end;
        }
        (candidate.checked_add(size)? <= limit).then_some(candidate)
    }

    /// Splits the entry containing `at` (strictly inside it) in two.
    fn split_at(&mut self, at: u64) {
        let Some(e) = self.lookup(at).copied() else {
            return;
        };
        if e.start == at {
            return;
        }
        self.put(e.clip(e.start, at));
        self.put(e.clip(at, e.end));
    }

    /// Stores `entry` (replacing one with the same start) and indexes it.
    fn put(&mut self, entry: MapEntry) {
        if !entry.is_vpagetable() {
            self.host_managed.insert(entry.start, entry.end);
        }
        self.entries.insert(entry.start, entry);
    }

    /// Checks the index of host-managed entries against the entries (for
    /// audits).
    pub fn check_index(&self) -> Result<(), String> {
        let expected: BTreeMap<u64, u64> = self
            .iter()
            .filter(|e| !e.is_vpagetable())
            .map(|e| (e.start, e.end))
            .collect();
        if expected != self.host_managed {
            return Err(format!(
                "host-managed index {:x?}, entries say {expected:x?}",
                self.host_managed
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vkernel_abi::mman::{PROT_READ, PROT_WRITE};

    const ANON: Backing = Backing::Anonymous {
        shared: false,
        stack: false,
    };

    fn entry(start: u64, end: u64, prot: u64, backing: Backing) -> MapEntry {
        MapEntry {
            start,
            end,
            prot,
            backing,
        }
    }

    #[test]
    fn lookup_and_coverage() {
        let mut m = VmMap::new();
        m.insert(entry(0x1000, 0x3000, PROT_READ, ANON));
        m.insert(entry(0x3000, 0x4000, PROT_READ, ANON));
        m.insert(entry(0x6000, 0x7000, PROT_READ, ANON));
        assert_eq!(m.lookup(0x2fff).unwrap().start, 0x1000);
        assert!(m.lookup(0x4000).is_none());
        assert!(m.is_covered(0x1000, 0x4000));
        assert!(m.is_covered(0x2000, 0x3800));
        assert!(!m.is_covered(0x1000, 0x5000));
        assert!(!m.is_covered(0x5000, 0x6800));
        assert!(!m.is_covered(0x0, 0x2000));
        assert_eq!(m.intersecting(0x2000, 0x6001).count(), 3);
        assert!(!m.any_in(0x4000, 0x6000));
    }

    #[test]
    fn remove_range_splits_and_clips_phys_offsets() {
        let mut m = VmMap::new();
        let phys = Backing::Phys {
            gpa: 0x10_0000,
            shared: true,
        };
        m.insert(entry(0x1000, 0x5000, PROT_READ, phys));
        assert_eq!(m.splits_needed(0x2000, 0x3000), 2);
        let removed = m.remove_range(0x2000, 0x3000);
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].phys_of(0x2000), Some(0x10_1000));
        assert_eq!(m.len(), 2);
        assert_eq!(m.lookup(0x3000).unwrap().phys_of(0x4000), Some(0x10_3000));
        assert_eq!(m.lookup(0x1000).unwrap().end, 0x2000);
    }

    #[test]
    fn protect_range_splits() {
        let mut m = VmMap::new();
        m.insert(entry(0x1000, 0x5000, PROT_READ, ANON));
        m.protect_range(0x2000, 0x3000, PROT_READ | PROT_WRITE);
        let prots: Vec<_> = m.iter().map(|e| (e.start, e.prot)).collect();
        assert_eq!(
            prots,
            vec![
                (0x1000, PROT_READ),
                (0x2000, PROT_READ | PROT_WRITE),
                (0x3000, PROT_READ)
            ]
        );
    }

    #[test]
    fn the_host_managed_index_follows_splits_and_removals() {
        let vpt = Backing::VpageTable { root: None };
        let mut m = VmMap::new();
        m.insert(entry(0x1000, 0x10_0000, PROT_READ, vpt));
        m.insert(entry(0x10_0000, 0x10_4000, PROT_READ, ANON));
        assert_eq!(m.vpagetable_entries(), 1);
        assert!(!m.any_host_managed_in(0x1000, 0x10_0000));
        assert!(m.any_host_managed_in(0xf_f000, 0x10_1000));
        // Splits on both sides of both kinds.
        m.protect_range(0x8000, 0x10_2000, PROT_READ | PROT_WRITE);
        m.set_root_range(0x2000, 0x3000, 0xa000);
        assert_eq!(m.vpagetable_entries(), 4);
        assert_eq!(
            m.host_managed().collect::<Vec<_>>(),
            vec![(0x10_0000, 0x10_2000), (0x10_2000, 0x10_4000)]
        );
        assert_eq!(m.host_managed_in(0x10_1000, 0x10_3000).count(), 2);
        m.check_index().unwrap();
        // Only VPAGETABLE pieces wholly inside a range go with it.
        assert!(m.vpagetable_outside(0x1000, 0x10_0000 - 0x1000));
        assert!(!m.vpagetable_outside(0x1000, 0x10_0000));
        m.remove_range(0x1000, 0x10_1000);
        assert!(!m.has_vpagetable());
        assert_eq!(m.host_managed_in(0, 0x10_2000).count(), 1);
        m.check_index().unwrap();
    }

    #[test]
    fn find_free_first_fit() {
        let mut m = VmMap::new();
        m.insert(entry(0x1000, 0x3000, PROT_READ, ANON));
        m.insert(entry(0x4000, 0x5000, PROT_READ, ANON));
        assert_eq!(m.find_free(0x1000, 0x1000, 0x10000), Some(0x3000));
        assert_eq!(m.find_free(0x2000, 0x1000, 0x10000), Some(0x5000));
        assert_eq!(m.find_free(0x1000, 0x4800, 0x10000), Some(0x5000));
        assert_eq!(m.find_free(0x1000, 0x6000, 0x7000), Some(0x6000));
        assert_eq!(m.find_free(0x2000, 0x6000, 0x7000), None);
        assert_eq!(m.find_free(u64::MAX, 0x1000, u64::MAX), None);
    }
}
