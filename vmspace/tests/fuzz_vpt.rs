//! Host-side fuzzing (#19) of the VPAGETABLE walker (`vpt::walk`): the
//! host reads a guest kernel's own page tables, which the guest may fill
//! with anything. Random tables in a small RAM, next to a pool region the
//! same memory object holds (as the real VM's does, at 4 GiB): the walk
//! ends, never panics, and a leaf it returns, and every table it read,
//! lies inside kernel RAM, never in the pool.
//!
//! `VKERNEL_FUZZ_CASES` sets the cases (default 2,000: about a second).

use proptest::prelude::*;
use vkernel_abi::layout::PAGE_SIZE;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmspace::pagetable::pte;
use vmspace::vpt::walk;
use vmspace::KernelRam;

/// Kernel RAM: 16 pages at 0.
const RAM_PAGES: u64 = 16;
const RAM: u64 = RAM_PAGES * PAGE_SIZE;
/// The pool, as in the real VM: above 4 GiB, in the same memory object.
const POOL: u64 = 1 << 32;
const POOL_PAGES: u64 = 4;

fn cases() -> u32 {
    std::env::var("VKERNEL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// A page-table entry: mostly present and pointing at a RAM page (so
/// walks go deep), sometimes at the pool, past RAM, at a large page, or
/// anything.
fn entry() -> impl Strategy<Value = u64> {
    let flags = any::<u64>().prop_map(|f| f & (pte::P | pte::RW | pte::US | pte::PS | pte::NX));
    prop_oneof![
        4 => (0..RAM_PAGES, flags.clone()).prop_map(|(p, f)| (p * PAGE_SIZE) | f | pte::P),
        1 => (0..POOL_PAGES, flags.clone()).prop_map(|(p, f)| (POOL + p * PAGE_SIZE) | f | pte::P),
        1 => (0..64u64, flags.clone()).prop_map(|(p, f)| (RAM + p * PAGE_SIZE) | f | pte::P),
        1 => (0..4u64, flags).prop_map(|(p, f)| (p << 21) | f | pte::P | pte::PS),
        1 => any::<u64>(),
    ]
}

fn va() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        (0u64..512, 0u64..512, 0u64..512, 0u64..512, 0u64..4096).prop_map(|(a, b, c, d, o)| (a
            << 39)
            | (b << 30)
            | (c << 21)
            | (d << 12)
            | o),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn vpagetable_walker_stays_in_kernel_ram(
        // A few entries at random slots of each RAM page (the rest zero),
        // and the pool pages full of present entries pointing back at RAM.
        sparse in proptest::collection::vec((0..RAM_PAGES * 512, entry()), 0..256),
        pool_fill in entry(),
        root in prop_oneof![
            (0..RAM_PAGES).prop_map(|p| p * PAGE_SIZE),
            (0..POOL_PAGES).prop_map(|p| POOL + p * PAGE_SIZE),
            any::<u64>(),
        ],
        vas in proptest::collection::vec(va(), 1..16),
    ) {
        let mem = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0), RAM as usize),
            (GuestAddress(POOL), (POOL_PAGES * PAGE_SIZE) as usize),
        ])
        .unwrap();
        for (slot, e) in &sparse {
            mem.write_obj(*e, GuestAddress(slot * 8)).unwrap();
        }
        for i in 0..POOL_PAGES * 512 {
            mem.write_obj(pool_fill, GuestAddress(POOL + i * 8)).unwrap();
        }
        let ram = KernelRam::new(mem, RAM);
        for va in vas {
            let Ok(found) = walk(&ram, root, va) else {
                continue;
            };
            if let Some(leaf) = found {
                prop_assert!(leaf.page.is_multiple_of(PAGE_SIZE), "{:?}", leaf);
                prop_assert!(leaf.page + PAGE_SIZE <= RAM, "leaf outside RAM: {:?}", leaf);
                prop_assert!(leaf.slot + 8 <= RAM, "slot outside RAM: {:?}", leaf);
                prop_assert!(leaf.entry & pte::P != 0);
                // What the walk saw is what RAM holds there.
                prop_assert_eq!(ram.read_obj::<u64>(leaf.slot), Ok(leaf.entry));
            }
        }
    }
}
