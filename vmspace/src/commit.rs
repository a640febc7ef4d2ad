//! Commit accounting: what a vmspace is charged against the pool, so that
//! nothing it was promised can fail later.
//!
//! A vmspace is charged, at all times, for
//! - its PML4 (1 page),
//! - one page per page of every anonymous or private entry,
//! - the page-table pages its entries could ever need: one PT per 2 MiB
//!   region, one PD per 1 GiB region and one PDPT per 512 GiB region that
//!   some entry touches.
//!
//! Frames exist only for pages of such entries and table pages only for
//! regions some entry touches (munmap prunes the rest), so the pages a
//! vmspace holds never exceed its charge.

use crate::map::VmMap;

/// Bytes covered by one PT, PD and PDPT page.
const TABLE_SPANS: [u64; 3] = [1 << 21, 1 << 30, 1 << 39];

/// Frame pages charged for the parts of entries inside `[start, end)`.
pub fn frame_pages_in(map: &VmMap, start: u64, end: u64) -> u64 {
    map.intersecting(start, end)
        .filter(|e| e.needs_frames())
        .map(|e| e.clip(start, end).pages())
        .sum()
}

/// Table pages for the regions overlapping `[start, end)` that no entry of
/// `map` touches: what mapping `[start, end)` adds to the charge, or,
/// called after unmapping it, what the unmap takes off.
///
/// The cost is bounded by the entries inside the range, not by its size.
pub fn untouched_table_pages(map: &VmMap, start: u64, end: u64) -> u64 {
    if start >= end {
        return 0;
    }
    TABLE_SPANS
        .iter()
        .map(|&span| untouched_regions(map, start, end, span))
        .sum()
}

/// Table pages needed by every region touched by any entry of `map`
/// (computed from scratch; for audits).
pub fn table_pages_for(map: &VmMap) -> u64 {
    TABLE_SPANS
        .iter()
        .map(|&span| {
            let mut count = 0;
            let mut last: Option<u64> = None;
            for e in map.iter() {
                let (first, end) = (e.start / span, (e.end - 1) / span);
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

/// Regions of size `span` overlapping `[start, end)` not touched by `map`.
fn untouched_regions(map: &VmMap, start: u64, end: u64, span: u64) -> u64 {
    let first = start / span;
    let last = (end - 1) / span;
    let region = |r: u64| (r * span, r.saturating_mul(span).saturating_add(span));
    let mut touched = 0;
    let (s, e) = region(first);
    if map.any_in(s, e) {
        touched += 1;
    }
    if last != first {
        let (s, e) = region(last);
        if map.any_in(s, e) {
            touched += 1;
        }
    }
    // Regions strictly between first and last lie inside [start, end): only
    // entries inside the range can touch them.
    let mut counted_up_to = first;
    for entry in map.intersecting(start, end) {
        let piece = entry.clip(start, end);
        let lo = (piece.start / span).max(counted_up_to + 1);
        let hi = ((piece.end - 1) / span).min(last.saturating_sub(1));
        if hi >= lo {
            touched += hi - lo + 1;
            counted_up_to = hi;
        }
    }
    (last - first + 1) - touched
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::{Backing, MapEntry};

    const MB2: u64 = 1 << 21;

    fn anon(start: u64, end: u64) -> MapEntry {
        MapEntry {
            start,
            end,
            prot: 1,
            backing: Backing::Anonymous { shared: false },
        }
    }

    #[test]
    fn empty_map_needs_one_table_per_level() {
        let m = VmMap::new();
        assert_eq!(untouched_table_pages(&m, 0x1000, 0x2000), 3);
        assert_eq!(untouched_table_pages(&m, MB2 - 0x1000, MB2 + 0x1000), 4);
        assert_eq!(untouched_table_pages(&m, 0x1000, 0x1000), 0);
    }

    #[test]
    fn touched_regions_are_not_charged_twice() {
        let mut m = VmMap::new();
        m.insert(anon(0x1000, 0x2000));
        assert_eq!(untouched_table_pages(&m, 0x3000, 0x4000), 0);
        assert_eq!(untouched_table_pages(&m, 0x3000, MB2 + 0x1000), 1);
        // An entry in the middle of a long range touches interior regions.
        m.insert(anon(3 * MB2, 3 * MB2 + 0x1000));
        assert_eq!(untouched_table_pages(&m, MB2, 5 * MB2), 3);
        assert_eq!(table_pages_for(&m), 4);
    }

    #[test]
    fn charge_from_scratch_matches_incremental() {
        let mut m = VmMap::new();
        let mut charged = 0;
        for (s, e) in [
            (0x1000, 0x3000),
            (MB2 * 7, MB2 * 9 + 0x1000),
            (1 << 30, (1 << 30) + 0x1000),
            (0x5000, 0x6000),
            (1 << 39, (1 << 39) + MB2 * 3),
        ] {
            charged += untouched_table_pages(&m, s, e);
            m.insert(anon(s, e));
            assert_eq!(charged, table_pages_for(&m));
        }
        // munmap removes only fully mapped ranges: the formula relies on it.
        for (s, e) in [(MB2 * 8, MB2 * 9 + 0x1000), (1 << 30, (1 << 30) + 0x1000)] {
            assert!(m.is_covered(s, e));
            m.remove_range(s, e);
            charged -= untouched_table_pages(&m, s, e);
            assert_eq!(charged, table_pages_for(&m));
        }
        let removed = m.remove_range(0x1000, 0x2000);
        assert_eq!(frame_pages_in(&m, 0, u64::MAX), {
            let pages: u64 = m.iter().map(|e| e.pages()).sum();
            pages
        });
        assert_eq!(removed.len(), 1);
        charged -= untouched_table_pages(&m, 0x1000, 0x2000);
        assert_eq!(charged, table_pages_for(&m));
    }
}
